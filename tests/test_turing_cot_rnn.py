"""Theorem 4.1: the linear RNN with CoT that runs a linear-space Turing machine (constructions/turing_cot_rnn.py).

The reference is ``proofs_check.turing.simulate`` (plain Python), cut at the first move off the
cells by ``checks.turing_cot_rnn.bounded_reference``; nothing here reads the model's weights to
decide an answer.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings

from constructions.decode import chain_of_thought
from constructions.errors import EvaluatorError, InputError, PrecisionError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.modelfile import load_model, save_model
from constructions.turing_cot_rnn import (
    STOP_TOKENS, chain_bound, declared_p, read_back, shape, space_time_bound, steps_of, turing_cot_rnn,
)
from constructions.turing_machine import parse_machine
from proofs_check import catalog, cli
from proofs_check.checks.turing_cot_rnn import (
    PARITY, REREAD, WALK, Case, bounded_reference, compare, decode, halting_cases, parity_case,
)
from proofs_check.turing import simulate

torch.set_num_threads(1)

THREE_SYMBOLS = "2RC2LB1RA_0LA1RZ2RB_2LC0LB1RC"  # on x = 011 in 5 cells: halts writing 1 after 17 steps


def run_case(case: Case, evaluator=None):
    return decode(case, evaluator or FastEvaluator(), {})


@pytest.mark.parametrize("case", [
    parity_case(4),  # YES: two 1s between the markers, 10 steps, every cell overwritten
    parity_case(5),  # NO: three 1s, 15 steps
    Case(parse_machine(WALK), 16, (1, 1, 1, 0), 4, 4),  # YES on the last cell
    Case(parse_machine(WALK), 8, (1, 1, 1), 3, 4),  # walks off the right end: NO (bounded tape)
    Case(parse_machine("1RB1LB_1LA1RZ"), 16, (1, 0, 1, 1), 4, 20),  # bb2 leaves on the left: NO
    Case(parse_machine("1RB---_0LA1RZ"), 4, (0, 1), 2, 10),  # an undefined transition halts in place
    Case(parse_machine("1RA1RA"), 4, (0, 0), 2, 1),  # the step bound: no answer
    Case(parse_machine(THREE_SYMBOLS), 8, (0, 1, 1), 5, 60),  # 3 symbols, L = m + 2 cells, 17 steps
], ids=["parity-even", "parity-odd", "walk-accepts", "walk-falls-off", "bb2-leaves", "undefined", "bound", "three-symbols"])
def test_runs_match_the_bounded_reference(case: Case) -> None:
    model, res = run_case(case)
    compare(case, model, res)  # every step, the answer, the read-back run, the chain length


def test_the_reference_evaluator_gives_the_same_chain() -> None:
    case = Case(parse_machine(REREAD), 4, (1, 1), 2, 3)
    model, fast = run_case(case)
    slow = chain_of_thought(ReferenceEvaluator().session(model, case.prompt), chain_bound(model), answers=STOP_TOKENS)
    assert slow.generated == fast.generated == ["r1", "qB", "R", "w0", "r1", "qC", "L", "w1", "r0", "qZ", "R", "w1", "YES"]


@settings(max_examples=8, deadline=None)
@given(halting_cases(max_m=3))
def test_random_halting_machines(case: Case) -> None:
    model, res = run_case(case)
    compare(case, model, res)


def test_chain_is_four_tokens_per_step_and_the_answer() -> None:
    case = parity_case(5)
    model, res = run_case(case)
    steps = simulate(case.machine, list(case.x), case.max_steps).steps
    assert len(res.generated) == 4 * steps + 1 and res.answer == "NO"
    assert steps <= space_time_bound(case.machine, case.cells)  # a halting bounded run fits B L S^L
    with pytest.raises(EvaluatorError, match="is not a step"):
        steps_of(model, ["r0", "r1", "L", "w0"])


# ---- errata ------------------------------------------------------------------------------------


def test_erratum_T41_E1_paper_cot_cannot_overwrite_a_cell() -> None:
    """The sketch's CoT writes (new state, move, new cell): a linear tape sum can only *add* the
    new value, so overwriting cell 1's 1 with 0 leaves 1 there and the re-read goes wrong."""
    case = Case(parse_machine(REREAD), 4, (1, 1), 2, 3)
    ref = bounded_reference(case.machine, list(case.x), case.cells, case.max_steps)
    assert ref.answer == "YES"  # cell 1 is 0 when read back, so C halts writing 1
    paper = turing_cot_rnn(case.machine, case.n, case.max_steps, cells=case.cells, cell_update="paper")
    res = chain_of_thought(FastEvaluator().session(paper, case.prompt), chain_bound(paper), answers=STOP_TOKENS)
    assert steps_of(paper, res.generated)[2][0] == 1 != ref.run.trace[2].read  # reads the stale 1
    assert res.answer == "NO"
    fixed = turing_cot_rnn(case.machine, case.n, case.max_steps, cells=case.cells)  # the read token carries the old value
    assert chain_of_thought(FastEvaluator().session(fixed, case.prompt), chain_bound(fixed),
                            answers=STOP_TOKENS).answer == "YES"


def test_erratum_T41_E2_recent_input_window_loses_x() -> None:
    """Lemma B.20's window holds x only at the prompt's end: m tokens later it holds chain
    tokens, so x must be copied into a persistent tape at position n (the [pos = n] gate)."""
    case = parity_case(4)
    model, res = run_case(case)
    seq = res.sequence[: case.n + 4]
    stages = dict(ReferenceEvaluator().forward(model, seq, trace=True).trace)
    state = stages["layer 1 after linear_unit"]
    m = len(case.x)
    window = [[model.precision.decode(int(state[model.layout.index(f"x@{j}"), k])) for j in range(m)]
              for k in (case.n - 1, case.n + 3)]
    assert window[0] == list(reversed(case.x))  # at position n: x@j = x_(m-j)
    assert window[1] != list(reversed(case.x))  # 4 chain tokens later: gone
    back = read_back(model, res)
    assert back["tape"] == simulate(case.machine, list(case.x), case.max_steps).tape  # the tape kept it


def test_erratum_T41_E3_state_bits_grow_like_log_squared() -> None:
    """One dim per cell (and per window slot) and p >= 2 log2 n + 1 (positions reach n): the
    state has Theta(log n) dims of Theta(log n) bits, Theta(log^2 n) bits, not Theta(log n)."""
    per_log = []
    for m in (8, 10, 12, 14, 16):  # n up to 2^16, the tool's size bound (constructions/limits.py)
        model = turing_cot_rnn(WALK, 1 << m, 4 * m)
        assert model.state_dims() >= 2 * m and model.p >= 2 * m + 1
        assert model.state_bits() >= 4 * m * m  # so state bits / log2 n >= 4 log2 n: unbounded
        per_log.append(model.state_bits() / m)
    assert per_log == sorted(per_log) and len(set(per_log)) == len(per_log)  # bits / log n keeps growing


@pytest.mark.parametrize("case", [parity_case(4), Case(parse_machine(REREAD), 4, (1, 1), 2, 3),
                                  Case(parse_machine("1RB1LB_1LA1RZ"), 16, (1, 0, 1, 1), 4, 20),
                                  Case(parse_machine(THREE_SYMBOLS), 8, (0, 1, 1), 5, 60)],
                         ids=["parity", "reread", "bb2-leaves", "three-symbols"])
def test_packed_tape_runs_match_the_bounded_reference(case: Case) -> None:
    """T41-E3's fix: the tape as one base-S number, read digit by digit (L + 2 layers)."""
    packed = replace(case, tape="packed")
    model, res = run_case(packed)
    compare(packed, model, res)
    assert len(model.layers) == case.cells + 2


def test_packed_tape_state_bits_are_theta_log_n() -> None:
    """T41-E3's fix: 18 state dims at every n (the registers, the head, the tape), so state
    bits / log2 n stays bounded (p = Theta(log n): the tape reaches S^L and a digit unit S^(2L-1))."""
    per_log = []
    for m in (6, 8, 12, 16):  # n up to 2^16, the tool's size bound (constructions/limits.py)
        model = turing_cot_rnn(WALK, 1 << m, 4 * m, tape="packed")
        assert model.state_dims() == 18
        per_log.append(model.state_bits() / m)
    assert per_log == sorted(per_log, reverse=True) and per_log[-1] <= 18 * 4.5


def test_erratum_T41_E4_acceptance_is_a_convention() -> None:
    """The proof never says when M(x) = 1.  A machine that halts writing 0: 'halts' accepts,
    this module's convention (the halting step leaves 1) rejects; the model follows the latter."""
    case = Case(parse_machine("0RZ0RZ"), 4, (1, 0), 2, 2)
    assert simulate(case.machine, list(case.x), 2).halted  # accepted under "M halts"
    model, res = run_case(case)
    assert res.answer == "NO" == bounded_reference(case.machine, list(case.x), 2, 2).answer


def test_erratum_T41_E5_the_tape_bound_decides_the_answer() -> None:
    """'M uses at most m cells' is not checkable for a given machine; a machine that leaves the
    m cells needs a rule.  bb2 on x = 0 0: simulate halts (cells -1..2), the bounded model says NO."""
    case = Case(parse_machine("1RB1LB_1LA1RZ"), 4, (0, 0), 2, 10)
    full = simulate(case.machine, [0, 0], 10)
    assert full.halted and full.tape_start < 1
    model, res = run_case(case)
    back = read_back(model, res)
    assert res.answer == "NO" and back["left_tape"] and not back["halted"]
    wide = Case(case.machine, 4, (0, 0), 6, 10)  # more cells do not help on the left: cell 0 is off
    assert run_case(wide)[1].answer == "NO"


# ---- sizes, precision, files, command line ---------------------------------------------------


def test_declared_precision_is_refused_below() -> None:
    m = parse_machine(PARITY)
    need = declared_p(m, shape(16, 10))
    assert turing_cot_rnn(m, 16, 10).p == need
    with pytest.raises(PrecisionError, match=f"p >= {need}"):
        turing_cot_rnn(m, 16, 10, p=need - 2)


def test_p_grows_like_log_n() -> None:
    ps = {m: turing_cot_rnn(WALK, 1 << m, 4 * m).p for m in (4, 8, 16)}
    for m, p in ps.items():
        assert 2 * math.log2((1 << m) + 16 * m) <= p <= 2 * math.log2(4 * (1 << m) + 64 * m) + 3


def test_bad_inputs_are_clear_errors() -> None:
    model = turing_cot_rnn(WALK, 16, 4)
    from constructions.turing_cot_rnn import prompt
    with pytest.raises(InputError, match="first n - m = 12 bits must be 0"):
        prompt(model, [1] + [0] * 15)
    with pytest.raises(InputError, match="exactly n = 16"):
        prompt(model, [0, 1])
    with pytest.raises(InputError, match="n >= 2"):
        turing_cot_rnn(WALK, 1, 4)


def test_model_file_round_trip(tmp_path) -> None:
    case = parity_case(4)
    model, res = run_case(case)
    path = tmp_path / "tm.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    again = chain_of_thought(FastEvaluator().session(loaded, case.prompt), chain_bound(loaded), answers=STOP_TOKENS)
    assert again.generated == res.generated and loaded.meta["machine"] == PARITY


def test_catalog_entry() -> None:
    model = catalog.build("tm-cot-rnn", machine="1RB1LB_1LA1RZ", n=8)
    assert model.meta["theorem"] == "4.1" and model.meta["m"] == 3


def test_run_command_json(capsys) -> None:
    code = cli.main(["run", "tm", "--model", "cot-rnn", "--machine", PARITY,
                     "--input", "0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 0", "--json"])
    out = json.loads(capsys.readouterr().out)
    ref = simulate(parse_machine(PARITY), [0, 1, 1, 0], 1000).to_json()
    assert code == 0 and {k: out[k] for k in ref} == ref
    assert out["answer"] == "YES" and out["accepted"] is True and out["n"] == 16 and out["m"] == 4
    code = cli.main(["run", "tm", "--model", "cot-rnn", "--machine", PARITY, "--input", "1 0 1 1"])
    assert code == 2 and "first n - m" in capsys.readouterr().err
