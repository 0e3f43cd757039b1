"""Theorem 5.8 / App B.13: the hybrid that simulates a Turing machine (constructions/turing_hybrid.py).

References: the plain-Python simulator (proofs_check.turing.simulate) and runs worked out by hand.
"""
from __future__ import annotations

import json
from functools import lru_cache

import pytest
import torch

from constructions.attention_blocks import match_close_block
from constructions.decode import chain_of_thought
from constructions.errors import InputError, MachineError, PrecisionError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.model import LinearRNNLayer, TransformerLayer
from constructions.modelfile import load_model, save_model
from constructions.turing_hybrid import (
    FIXED, LITERAL, STOP_TOKENS, Variant, build, chain_bound, prompt, read_back,
)
from proofs_check import catalog
from proofs_check.checks.turing_hybrid import check_run, expected_groups
from proofs_check.turing import KNOWN_MACHINES, parse_machine, simulate

torch.set_num_threads(1)
BB2 = parse_machine(KNOWN_MACHINES["bb2"])


def decode(model, tape, evaluator=None):
    ev = evaluator or FastEvaluator()
    return chain_of_thought(ev.session(model, prompt(model, tape)), chain_bound(model), answers=STOP_TOKENS)


@lru_cache(maxsize=None)
def _decoded(text: str, tape: tuple, steps: int, variant: Variant):
    model = build(parse_machine(text), len(tape), steps, variant=variant)
    return model, decode(model, list(tape))


def run_variant(machine, tape, steps, variant):
    model, result = _decoded(machine.to_text(), tuple(tape), steps, variant)
    return read_back(model, result)


def test_bb2_sequence_by_hand():
    """BB(2) from a blank tape: A0 -> 1RB, B0 -> 1LA, A1 -> 1LB, B0 -> 1LA, A0 -> 1RB, B1 -> 1RZ."""
    model, result = _decoded(BB2.to_text(), (), 8, FIXED)
    got = result.generated
    assert got == [1, "s1", 1, "qB", "R", 2, "s1", 2, "qA", "L", 1, "s1", 1, "qB", "L",
                   0, "s1", 0, "qA", "L", -1, "s1", -1, "qB", "R", 0, "s1", 0, "qZ", "R", "HALT"]
    assert read_back(model, result) == simulate(BB2, [], 8).to_json()


def test_architecture_is_def_5_5():
    model = build(BB2, 3, 10)
    kinds = [type(l) for l in model.layers]
    assert kinds[:-1] == [LinearRNNLayer] * 3 and kinds[-1] is TransformerLayer
    assert model.arch == "hybrid" and model.n_heads() == 1


def test_input_tape_overwritten_and_head_right_of_input():
    """1RZ1RA: walk right over the 1s, write 1 on the first blank and halt (unary +1)."""
    mc = parse_machine("1RZ1RA")
    for tape in ([1, 1, 1], [1, 0, 1], [], [0]):
        got = run_variant(mc, tape, 6, FIXED)
        assert got == simulate(mc, tape, 6).to_json()
    assert run_variant(mc, [1, 1, 1], 6, FIXED)["tape"] == [1, 1, 1, 1]


@pytest.mark.parametrize("text,tape", [
    ("1RB2LA1LA_2LA2RB0RA", [1, 2]),  # never halts: the bound is reported as not halted
    ("1LB---_0RA1RZ", [0, 1]),  # an undefined transition: halts in place (move N)
    ("1RB1LB_1LA1RZ", [1, 0, 1, 1]),
])
def test_against_simulator_and_trace(text, tape):
    check_run(parse_machine(text), tape, 12)


def test_not_halting_within_the_bound_is_reported():
    got = run_variant(BB2, [], 4, FIXED)
    assert got["halted"] is False and got == simulate(BB2, [], 4).to_json()


def test_expected_groups_by_hand():
    ref = simulate(BB2, [], 2, record=True)
    assert expected_groups(ref.trace) == [[1, "s1", 1, "qB", "R"], [2, "s1", 2, "qA", "L"]]


def test_reference_and_fast_agree_bit_for_bit():
    model = build(BB2, 1, 2)
    toks = prompt(model, [1]) + [1, "s1", 1, "qB", "L", 0, "s1"]
    a = ReferenceEvaluator().forward(model, toks)
    b = FastEvaluator().forward(model, toks)
    assert a.next_token == b.next_token == 0
    assert a.logits == b.logits and (a.residual == b.residual).all()
    ra, rb = decode(model, [1], ReferenceEvaluator()), decode(model, [1])
    assert ra.generated == rb.generated and read_back(model, ra) == simulate(BB2, [1], 2).to_json()


def test_model_file_round_trip(tmp_path):
    model = build(BB2, 2, 6)
    path = tmp_path / "tm.safetensors"
    save_model(model, path)
    back = load_model(path)
    assert back.meta == model.meta and back.p == model.p and back.vocab == model.vocab
    wa, wb = model.all_weights(), back.all_weights()
    assert list(wa) == list(wb) and all((wa[k] == wb[k]).all() for k in wa)
    assert decode(back, [1, 1]).generated == decode(model, [1, 1]).generated


def test_catalog_entry_and_inspect(capsys):
    model = catalog.build("tm-hybrid", machine="1RB1LB_1LA1RZ")
    assert model.meta["machine"] == "1RB1LB_1LA1RZ" and model.meta["theorem"] == "5.8"
    from proofs_check import cli
    assert cli.main(["inspect", "tm-hybrid", "--param", "machine=1RB1LB_1LA1RZ"]) == 0
    out = capsys.readouterr().out
    assert "m:stval@5" in out and "hybrid, 4 layer(s)" in out and '"boost": 32' in out


def test_run_tm_command_jsonl_with_a_bad_line(capsys, tmp_path):
    from proofs_check import cli
    path = tmp_path / "tm.jsonl"
    path.write_text(json.dumps({"machine": "1RB"}) + "\n" + json.dumps({"machine": "1RB1LB_1LA1RZ", "max_steps": 8}) + "\n")
    code = cli.main(["run", "tm", "--model", "hybrid", "--input", str(path), "--json"])
    captured = capsys.readouterr()
    bad, rec = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert code == 2 and bad["instance"] == 1 and "symbols" in bad["error"] and "error: instance 1" in captured.err
    exp = simulate(BB2, [], 8).to_json()
    assert {k: rec[k] for k in exp} == exp and rec["model"] == "hybrid" and rec["generated"][-1] == "HALT"


def test_bad_input_errors():
    with pytest.raises(InputError):
        build(BB2, -1, 5)
    with pytest.raises(MachineError):
        build(BB2, 0, 0)
    with pytest.raises(MachineError):
        build("1RB", 0, 5)
    model = build(BB2, 2, 5)
    with pytest.raises(InputError, match="built for inputs of 2"):
        prompt(model, [1])
    with pytest.raises(MachineError):
        prompt(model, [1, 7])
    with pytest.raises(PrecisionError, match="exact for p in"):
        build(BB2, 2, 5, p=model.p - 2)


# ---- errata (notes/errata/turing_hybrid.md) -------------------------------------------------------


def test_erratum_T58_E1_key_on_the_write_reads_the_new_value():
    """Keyed where the value is written (the triple i, TAPE, i of Lemma B.31), MatchClose at the
    triple's second POINTER and at the State token finds the write just made: BB(2)'s first step
    reads 0, writes 1, and the literal model takes delta(A, 1) = 1LB's move L instead of R."""
    literal = Variant("triple", True, "fixed")
    got = run_variant(BB2, [], 8, literal)
    assert got != simulate(BB2, [], 8).to_json()
    assert _decoded(BB2.to_text(), (), 8, literal)[1].generated[:5] == [1, "s1", 1, "qB", "L"]  # the simulator moves R
    assert run_variant(BB2, [], 8, FIXED) == simulate(BB2, [], 8).to_json()


def test_erratum_T58_E2_pointer_zero_is_a_zero_query():
    """Raw pointer values as key and query: cell 0 (the head left of the input) is the query 0,
    which MatchClose forbids (X_(I2,k) != 0, erratum AB-4) and which matches every position
    without a key (key 0): BB(2)'s step 6 at cell 0 (written 1 at step 4) reads blank, so the
    machine takes B0 -> 1LA instead of halting by B1 -> 1RZ."""
    raw = Variant("direction", False, "fixed")
    model, result = _decoded(BB2.to_text(), (), 8, raw)
    gen = result.generated
    ref = simulate(BB2, [], 8, record=True)
    assert (ref.trace[3].head, ref.trace[3].write) == (0, 1) and (ref.trace[5].head, ref.trace[5].read) == (0, 1)
    assert gen[:25] == [t for g in expected_groups(ref.trace[:5]) for t in g]  # steps 1-5 agree
    assert gen[25:30] == [0, "s1", 0, "qA", "L"]  # the simulator: [0, "s1", 0, "qZ", "R"]
    assert read_back(model, result) != ref.to_json()
    assert run_variant(BB2, [], 8, FIXED) == ref.to_json()


def test_erratum_T58_E3_paper_scales_have_no_exact_p():
    """MatchClose with the theorem's n: n <= 1 (every blank-tape run) has no constants at all,
    and for 2 <= n <= 32 with S = O(n) steps the exact-p window is empty (AB-2)."""
    with pytest.raises(InputError):
        match_close_block(["key"], ["query"], ["read"], ["val"], 1, c=3, max_len=8)
    for n, steps in ((0, 6), (1, 6)):
        with pytest.raises(PrecisionError, match="need n >= 2"):
            build(BB2, n, steps, variant=LITERAL)
    for n, steps in ((2, 6), (4, 10), (8, 30), (32, 100)):
        with pytest.raises(PrecisionError, match="no exact p"):
            build(BB2, n, steps, variant=Variant(scales="paper"))
        assert build(BB2, n, steps).meta["match_close"]["boost"] > 1
