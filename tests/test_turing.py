"""The Turing-machine toolkit: the bbchallenge text format, the reference simulator, strategies."""
from __future__ import annotations

import pytest
from hypothesis import given

from constructions.errors import InputError, MachineError
from constructions.turing_machine import HALT, Machine, Transition, parse_instance, parse_machine, time_bound
from proofs_check.strategies import machines, tm_cases
from proofs_check.turing import KNOWN_MACHINES, simulate


@given(machines(min_states=1, max_states=5, max_symbols=4))
def test_text_format_round_trips(m: Machine) -> None:
    assert parse_machine(m.to_text()) == m
    assert parse_machine(m.to_text()).to_text() == m.to_text()


def test_parse_reads_the_fields() -> None:
    m = parse_machine("1RB2LA1LA_2LA2RB0RA")
    assert (m.n_states, m.n_symbols) == (2, 3)
    assert m.delta(1, 0) == Transition(1, +1, 2)
    assert m.delta(1, 1) == Transition(2, -1, 1)
    assert m.delta(2, 2) == Transition(0, +1, 1)
    assert not m.can_halt()
    h = parse_machine("1RB---_1LH0RA")  # H is beyond B: halts; --- is undefined
    assert h.delta(1, 1) is None and h.delta(2, 0).next_state == HALT
    assert h.to_text() == "1RB---_1LZ0RA"


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("1RB1L", "3 per symbol"),
    ("1RB1LB_1LA", "every group needs 6"),
    ("2RB1LB_1LA1RZ", "digit 0..1"),
    ("1XB1LB_1LA1RZ", "L or R"),
    ("1R?1LB_1LA1RZ", "letter"),
    ("1RB", "1 symbols: a machine has 2..10"),
    ("1RB1LB__1LA1RZ", "has 0 characters"),
])
def test_malformed_machines_are_refused_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(MachineError, match=words):
        parse_machine(text)


def test_machine_error_is_an_input_error() -> None:
    assert issubclass(MachineError, InputError)


def test_instances() -> None:
    m, tape, steps = parse_instance('{"machine": "1RB1LB_1LA1RZ", "input": [1, 0], "max_steps": 9}')
    assert (m.to_text(), tape, steps) == ("1RB1LB_1LA1RZ", [1, 0], 9)
    for bad, words in [({"machine": "1RB1LB_1LA1RZ", "input": [2]}, "symbols are the integers 0..1"),
                       ({"machine": "1RB1LB_1LA1RZ", "input": "101"}, "list of symbols"),
                       ({"input": []}, "no 'machine'"),
                       ({"machine": "1RB1LB_1LA1RZ", "tape": []}, "unknown keys"),
                       ({"machine": "1RB1LB_1LA1RZ", "max_steps": 0}, "positive integer"),
                       ([1], "JSON object")]:
        with pytest.raises(MachineError, match=words):
            parse_instance(bad)


def test_busy_beavers_match_the_literature() -> None:
    """Published values (bbchallenge / Radó, Lin, Brady): independent of this code."""
    published = {"bb2": (6, 4), "bb3": (21, 5), "bb2x3": (38, 9), "bb4": (107, 13)}
    for name, (steps, ones) in published.items():
        run = simulate(parse_machine(KNOWN_MACHINES[name]))
        assert run.halted and (run.steps, run.ones) == (steps, ones), name


def test_a_hand_run() -> None:
    # A: on 1 write 0, move right, stay in A; on 0 write 1 and halt moving left.
    m = parse_machine("1LZ0RA")
    run = simulate(m, [1, 1, 0, 1], record=True)
    assert run.halted and run.steps == 3
    assert (run.tape_start, run.tape) == (1, [0, 0, 1, 1])
    assert run.head == 2 and run.ones == 2
    assert [(s.head, s.read, s.write) for s in run.trace] == [(1, 1, 0), (2, 1, 0), (3, 0, 1)]


def test_the_head_may_leave_the_input_on_the_left() -> None:
    run = simulate(parse_machine("1LB1LZ_1LZ0RA"), [])  # A,0 -> 1 L B; B,0 -> 1 L halt
    assert run.halted and run.steps == 2
    assert (run.tape_start, run.tape, run.head) == (0, [1, 1], -1)


def test_undefined_transitions_halt_in_place() -> None:
    run = simulate(parse_machine("1RB---_---1LA"), [0, 0])
    assert (run.halted, run.steps, run.head, run.tape) == (True, 2, 2, [1, 0])


def test_non_halting_machines() -> None:
    m = parse_machine("1RB2LA1LA_2LA2RB0RA")
    with pytest.raises(MachineError, match="--max-steps"):
        simulate(m, [])
    run = simulate(m, [], 50)
    assert not run.halted and run.steps == 50 and run.to_json()["state"] in "AB"


def test_time_bound() -> None:
    assert time_bound(10, 2) == 100 and time_bound(0, 3) == 8
    with pytest.raises(MachineError):
        time_bound(4, 0)


@given(tm_cases(min_steps=2))
def test_strategy_cases_halt_within_their_limit(case) -> None:
    run = simulate(case.machine, case.tape, case.max_steps)
    assert run.halted and run.steps <= case.max_steps
    # the span holds the input and every cell read, and nothing outside it is non-blank
    assert run.tape_start <= 1 and run.tape_start + len(run.tape) - 1 >= len(case.tape)
    assert all(run.tape_start <= i < run.tape_start + len(run.tape) for i in run.cells)
