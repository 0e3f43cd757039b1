"""Theorem 5.4 / Lemma B.31: the retrieval-augmented linear RNN simulating a Turing machine.

References are independent of the construction: ``proofs_check.turing.simulate`` (plain-Python
machine) and the token-level helpers below (the last ``i x i`` triple of a cell, read straight
off a token list).  The erratum tests run the paper's printed patterns through the real RETRIEVE
(``RegexOracle``: Python ``re.search(...).group(1)``) on sequences the model really generated.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from constructions import turing_rag as tr
from constructions.decode import FAILED, START, RegexOracle, retrieval_augmented
from constructions.errors import EvaluatorError, InputError, MachineError, PrecisionError, TokenError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.modelfile import load_model, save_model
from constructions.vocab import Vocabulary, detokenize
from proofs_check import catalog
from proofs_check.turing import KNOWN_MACHINES, parse_machine, simulate

torch.set_num_threads(1)


def decode(machine: str, tape=(), max_steps: int = 40, queries: str = "fixed", evaluator=None):
    model = tr.build(parse_machine(machine), len(tape), max_steps, queries=queries)
    session = (evaluator or FastEvaluator()).session(model, tr.prompt(model, list(tape)))
    return model, retrieval_augmented(session, model.vocab, tr.chain_bound(model), answers=tr.STOP_TOKENS)


@pytest.fixture(scope="module")
def bb3():
    """bb3 from a blank tape (21 steps; cells are overwritten with other symbols)."""
    return decode(KNOWN_MACHINES["bb3"], (), 21)


def step_searches(seq: list) -> list[tuple[int, int]]:
    """(index of <StartSearch>, pointer) of every step query: ``<StartSearch> Q1 p Q2 p``."""
    return [(k, seq[k + 2]) for k in range(len(seq) - 4)
            if seq[k] == START and isinstance(seq[k + 2], int) and seq[k + 2] == seq[k + 4]]


def last_triple_value(tokens: list, cell: int):
    """The middle token of the last ``cell x cell`` with x a symbol token ``s<d>``, else None."""
    for k in range(len(tokens) - 3, -1, -1):
        mid = tokens[k + 1]
        if tokens[k] == cell == tokens[k + 2] and isinstance(mid, str) and re.fullmatch(r"s\d", mid):
            return mid
    return None


def ask(pattern: str, tokens: list):
    with RegexOracle() as oracle:
        return oracle.search(pattern, detokenize(tokens))


# ---- the construction -------------------------------------------------------------------------


@pytest.mark.parametrize("machine,tape", [
    ("bb2", ()),
    ("1RB1LA_1LA1RZ", (1, 0, 1, 1)),          # input cells read and rewritten
    ("1RB2LA1RZ_2LA0RB1LB", (2, 1, 0)),       # 3 symbols, writes the blank back
    ("1RB---_1LA0LA", (0, 1)),                # an undefined transition: halts in place
])
def test_runs_agree_with_the_simulator(machine, tape):
    m = parse_machine(KNOWN_MACHINES.get(machine, machine))
    model, res = decode(m.to_text(), tape, 30)
    assert res.stopped == "answer" and res.answer == tr.HALT_TOKEN
    assert tr.read_back(model, res) == simulate(m, tape, 30).to_json()


def test_a_machine_that_does_not_halt_is_reported_not_halted():
    m = parse_machine("1RB1LA_1LA1RB")  # no halting transition at all
    model, res = decode(m.to_text(), (1,), 7)
    got, want = tr.read_back(model, res), simulate(m, (1,), 7).to_json()
    assert res.stopped == "max_steps" and got["halted"] is False
    assert got == want


def test_declared_p_holds_the_extreme_logits():
    """A machine that only moves right: the last pointer is near the largest number M and the
    readout row of the smallest number (-M + 2) gives |2 i v + 1 - i^2| ~ 3 M^2 (at S = 10 and
    p = 17 this overflowed while p was sized for 2 M^2)."""
    m = parse_machine("1RB1RB_1RA1RA")
    for steps in (10, 21):
        model, res = decode(m.to_text(), (), steps)
        assert tr.read_back(model, res) == simulate(m, (), steps).to_json()


def test_every_step_matches_the_reference_trace(bb3):
    model, res = bb3
    run = simulate(parse_machine(KNOWN_MACHINES["bb3"]), (), 21, record=True)
    _, steps = tr.parse_generated(model, res.generated)
    assert [(s.pointer, s.write, s.next_state, s.move) for s in steps] == \
        [(r.head, r.write, r.next_state, r.move) for r in run.trace]
    reads = [0 if r.result == [FAILED] else int(r.result[0][1:]) for r in res.retrievals]
    assert reads == [r.read for r in run.trace]
    assert len(res.sequence) - len(res.prompt) == 13 * run.steps + 1  # 13 tokens a step + HALT


def test_fast_and_reference_evaluators_agree_on_a_whole_sequence():
    """One reference forward over a whole decoded sequence: every position bit-equal."""
    model, res = decode(KNOWN_MACHINES["bb2"], (1,), 6)
    seq = res.sequence[:-1]
    ref = ReferenceEvaluator().forward(model, seq)
    fast = FastEvaluator().forward(model, seq)
    assert (ref.residual == fast.residual).all() and ref.logits == fast.logits
    assert ref.next_token == res.sequence[-1] == tr.HALT_TOKEN


def test_sizes_depend_on_the_machine_only_and_p_grows_like_log():
    m = parse_machine(KNOWN_MACHINES["bb3"])
    small, big = tr.build(m, 4, 16), tr.build(m, 64, 1024)
    assert small.state_dims() == big.state_dims()
    assert small.parameter_count() - _readout(small) == big.parameter_count() - _readout(big)
    assert small.p < big.p <= 3 * small.p


def _readout(model) -> int:
    return int(np.count_nonzero(model.unembed != 0))


def test_model_file_round_trip(tmp_path):
    model = tr.build(parse_machine(KNOWN_MACHINES["bb2"]), 2, 8)
    path = tmp_path / "tm.safetensors"
    save_model(model, path)
    back = load_model(path)
    assert back.meta["machine"] == "1RB1LB_1LA1RZ" and back.p == model.p
    for name, w in model.all_weights().items():
        assert (back.all_weights()[name] == w).all(), name
    session = FastEvaluator().session(back, tr.prompt(back, [0, 1]))
    res = retrieval_augmented(session, back.vocab, tr.chain_bound(back), answers=tr.STOP_TOKENS)
    assert tr.read_back(back, res) == simulate(parse_machine("1RB1LB_1LA1RZ"), (0, 1), 8).to_json()


def test_catalog_entry_builds_from_a_machine_string():
    model = catalog.build("tm-rag", machine="1RB1LB_1LA1RZ", max_steps=8)
    assert model.meta["machine"] == "1RB1LB_1LA1RZ" and model.meta["theorem"] == "5.4"


def test_bad_inputs_are_clear_errors():
    m = parse_machine(KNOWN_MACHINES["bb2"])
    model = tr.build(m, 2, 8)
    with pytest.raises(InputError, match="built for inputs of 2 cells"):
        tr.prompt(model, [1])
    with pytest.raises(MachineError, match="symbols are the integers 0..1"):
        tr.prompt(model, [1, 2])
    with pytest.raises(MachineError, match="a machine has 2..10"):
        tr.build("1RB", 0, 8)
    with pytest.raises(MachineError, match="bbchallenge"):
        tr.build(17, 0, 8)
    with pytest.raises(MachineError, match="positive integer"):
        tr.build(m, 0, 0)
    with pytest.raises(PrecisionError, match="needs p >="):
        tr.build(m, 0, 8, p=5)


# ---- errata: Thm 5.4's printed queries under A.5 (notes/errata/turing_rag.md) ---------------


def test_erratum_T54_E1_index_query_counts_characters_and_cannot_be_emitted():
    prompt = ["<s>", "s1", "s0"]
    # as one string, ^(?:\S\s*).{1}(\S) steps over characters of "<s>": it returns ">", not s1
    assert ask(r"^(?:\S\s*).{1}(\S)", prompt) == ">"
    # as emitted tokens (i is a number token) the braces hold spaces: no quantifier, no match
    assert detokenize(tr.index_query(1, "paper")) == r"^(?:\S\s*).{ 1 }(\S)"
    assert ask(detokenize(tr.index_query(1, "paper")), prompt) is None
    # the fix (Thm 5.2's, erratum R1): (?x)^(?:\S+\s+) {i} (\S+) with {i} one token
    assert [ask(detokenize(tr.index_query(i)), prompt) for i in (1, 2)] == ["s1", "s0"]


def test_erratum_T54_E2_outer_group_returns_the_rest_of_the_string(bb3):
    _, res = bb3
    seq = res.sequence
    k, p = step_searches(seq)[2]  # step 3 reads cell 1, written by step 2
    # B.10's (POINTER (.) POINTER.*?$), with (.) widened to a symbol token: group 1 is the outer group
    got = ask(rf"({p} (s\d) {p}.*?$)", seq[:k])
    assert got.startswith(f"{p} s1 {p} q") and len(got.split()) > 3
    assert ask(rf"{p} (s\d) {p}.*?$", seq[:k]) == "s1"  # the sketch's p (.) p .*?$: group 1 = the value


def test_erratum_T54_E3_dot_captures_one_character_not_a_token(bb3):
    _, res = bb3
    seq = res.sequence
    k, p = step_searches(seq)[2]
    assert last_triple_value(seq[:k], p) == "s1"
    assert ask(detokenize(tr.step_query(p, "paper")), seq[:k]) is None  # ( 1 (.) 1 .*?$): FAILED
    assert ask(rf"{p} (.) {p}.*?$", seq[:k]) is None  # the sketch's form fails the same way
    # a whole-token group (\S+) is no fix: the leftmost "1 x 1" is step 1's own query text
    assert ask(rf"{p} (\S+) {p}.*?$", seq[:k]) == tr.FIXED_FRAGMENTS["Q2"]


def test_model_emitting_the_printed_queries_does_not_simulate():
    m = parse_machine(KNOWN_MACHINES["bb2"])
    model, res = decode(m.to_text(), (), 8, queries="paper")  # blank tape: step queries only
    assert res.retrievals and all(r.result == [FAILED] for r in res.retrievals)  # every printed query FAILs
    assert tr.read_back(model, res) != simulate(m, (), 8).to_json()
    model, res = decode(m.to_text(), (1, 0), 8, queries="paper")  # with input: the index queries FAIL too
    assert res.retrievals[0].result == [FAILED]
    with pytest.raises(EvaluatorError, match="expected a tape symbol"):
        tr.read_back(model, res)  # nothing to copy into the triple "1 x 1"


def test_erratum_T54_E4_leftmost_match_is_the_first_write_not_the_last(bb3):
    _, res = bb3
    seq = res.sequence
    first_write_differs = []
    for k, p in step_searches(seq):
        leftmost = ask(rf"(?x)(?<!\S) {p} \s(s\d)\s {p} (?!\S)", seq[:k])  # every other fix applied
        if leftmost is not None and leftmost != last_triple_value(seq[:k], p):
            first_write_differs.append((k, p))
        assert ask(detokenize(tr.step_query(p)), seq[:k]) == last_triple_value(seq[:k], p)  # the fix
    assert first_write_differs, "bb3 overwrites cells: the leftmost match must miss some last write"


def test_erratum_T54_E5_a_pointer_matches_inside_a_longer_number():
    tape = (1,) + (0,) * 9 + (0,)  # cell 1 holds 1, cell 11 holds the blank
    _, res = decode("1RZ1RZ", tape, 1)
    seq = res.sequence
    (k, p), = step_searches(seq)
    assert p == 1 and last_triple_value(seq[:k], 1) == "s1"
    # without token boundaries "1 s0 1" is found inside "11 s0 11" (the last triple before step 1)
    assert ask(r"(?x)^.* 1 \s(s\d)\s 1", seq[:k]) == "s0"
    assert ask(r"(?x)^.* \b1\b \s(s\d)\s \b1\b", seq[:k]) == "s1"  # \b works for positive cells ...
    ctx = ["<s>", -1, "s1", -1, "qA"]
    assert ask(r"(?x)^.* \b-1\b \s(s\d)\s \b-1\b", ctx) is None  # ... not for -1 (no \b before "-")
    assert ask(detokenize(tr.step_query(-1)), ctx) == "s1"


def test_erratum_T54_E6_pointers_leave_the_vocabulary_1_to_n():
    run = simulate(parse_machine(KNOWN_MACHINES["bb2"]), (), 10)
    assert run.lo == -1  # bb2 visits cells 0 and -1
    with pytest.raises(TokenError, match="outside this model's vocabulary"):
        Vocabulary(4).check(0)
    model = tr.build(parse_machine(KNOWN_MACHINES["bb2"]), 0, 10)
    assert (model.vocab.min_number, model.vocab.n) == tr.number_range(0, 10) == (-9, 11)


def test_erratum_T54_E7_a_linear_unit_cannot_overwrite_a_state_register():
    """h_t = a h_(t-1) + b x_t for the state code: keep it through non-state tokens (x = 0)
    and overwrite it by a state token (x = code).  No (a, b) does both: solve the three
    equations (keep 2; overwrite 1 by 2; overwrite 2 by 2) by least squares, residual > 0."""
    A = np.array([[2.0, 0.0], [1.0, 2.0], [2.0, 2.0]])  # rows (h_prev, x)
    target = np.array([2.0, 2.0, 2.0])
    _, residual, *_ = np.linalg.lstsq(A, target, rcond=None)
    assert residual[0] > 0.1


# ---- errata: Lemma B.31 ---------------------------------------------------------------------


def test_erratum_B31_E1_the_last_triple_in_all_of_S_is_the_final_tape(bb3):
    _, res = bb3
    seq = res.sequence
    (k, p), *_ = step_searches(seq)
    # before step 1 (t = 1) of a blank-tape run cell 1 is empty, so the lemma promises no triple;
    # read in the whole S, the last "1 x 1" is the final tape's cell 1
    assert p == 1 and last_triple_value(seq[:k], 1) is None
    assert last_triple_value(seq, 1) == "s1"


def test_erratum_B31_E2_cells_left_of_1_are_not_covered():
    run = simulate(parse_machine(KNOWN_MACHINES["bb3"]), (), 21, record=True)
    assert any(s.head <= 0 for s in run.trace)  # the lemma's i in [n^A] omits the cells bb3 reads


def test_erratum_B31_E3_the_queries_also_contain_i_x_i(bb3):
    _, res = bb3
    seq = res.sequence
    non_triples = [seq[k:k + 3] for k in range(len(seq) - 2)
                   if isinstance(seq[k], int) and seq[k] == seq[k + 2] and not re.fullmatch(r"s\d", str(seq[k + 1]))]
    assert non_triples and all(t[1] == tr.FIXED_FRAGMENTS["Q2"] for t in non_triples)
    assert not any(isinstance(a, int) and a == b for a, b in zip(seq, seq[1:]))  # "i, i" adjacent: never
    k, p = step_searches(seq)[-1]
    assert seq[k + 2:k + 5] == [p, tr.FIXED_FRAGMENTS["Q2"], p]  # the last step's own query: i * i


# ---- the command line -----------------------------------------------------------------------


def test_run_tm_command_human_json_and_a_bad_line(capsys, tmp_path):
    from tests.test_run_command import run

    code, out, _ = run(capsys, "run", "tm", "--model", "rag-rnn", "--machine", "1RB1LB_1LA1RZ", "--max-steps", "8")
    assert code == 0 and out.startswith("halted: True  steps=6  state=Z  ones=4  tape[-1..]=1111")
    path = tmp_path / "tm.jsonl"
    path.write_text('{"machine": "1RB1LB_1LA1RZ", "input": [1]}\n{"machine": "1RB"}\n'
                    '{"machine": "1RB1LA_1LA1RB", "max_steps": 4}\n', encoding="utf-8")
    code, out, err = run(capsys, "run", "tm", "--model", "rag-rnn", "--input", str(path), "--json")
    first, bad, loop = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 2 and "instance 2" in err and "error" in bad
    m = parse_machine("1RB1LB_1LA1RZ")
    want = simulate(m, (1,), 1000).to_json()
    assert {k: first[k] for k in want} == want and first["p"] == tr.build(m, 1, 1000).p
    assert loop["halted"] is False and loop["steps"] == 4


# ---- the check can fail ---------------------------------------------------------------------


def test_check_catches_a_model_of_another_machine(monkeypatch):
    from proofs_check.checks import turing_rag as check
    from proofs_check.strategies import TMCase

    real_build = tr.build
    monkeypatch.setattr(tr, "build", lambda m, n, s: real_build("1RB1LB_1LA0RZ", n, s))  # writes 0 when halting
    with RegexOracle() as oracle, pytest.raises(AssertionError, match="read back"):
        check.check_case(TMCase(parse_machine(KNOWN_MACHINES["bb2"]), (), 6), FastEvaluator(), oracle, {})


def test_lemma_b31_check_catches_a_tampered_triple(bb3):
    from proofs_check.checks.turing_rag import check_lemma_b31

    _, res = bb3
    seq = list(res.sequence)
    run = simulate(parse_machine(KNOWN_MACHINES["bb3"]), (), 21, record=True)
    assert check_lemma_b31(seq, run, ()) == 21  # the 21 step queries' own "p Q2 p"
    k = next(j for j in range(len(seq) - 2) if isinstance(seq[j], int) and seq[j + 1] == "s1" and seq[j + 2] == seq[j])
    seq[k + 1] = "s0"
    with pytest.raises(AssertionError, match="Lemma B.31"):
        check_lemma_b31(seq, run, ())
