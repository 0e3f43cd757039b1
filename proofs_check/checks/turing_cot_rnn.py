"""Check "4.1": the linear RNN with chain of thought of Theorem 4.1 runs a linear-space Turing machine.

Setting (``constructions.turing_cot_rnn``): input ``S_in = 0^(n-m) x``, m = floor(log2 n), x
boolean; the machine runs on x in cells 1..L (L = m, sometimes m + 1 or m + 2).

Which machines: the **bounded-tape variant** of random machines, which rejects when a move
leaves the L cells.  Why: a machine that stays within its cells is exactly a linear-space
(linear-bounded) machine, and the bounded variant of *any* machine is one (it decides a
language in space L); filtering random machines to those that happen to stay within m cells
would keep mostly trivial ones (most random runs walk off within a few steps) and never test the
reject path.  The reference (:func:`bounded_reference`) is ``proofs_check.turing.simulate``'s
own trace cut at the first move off the cells (plain Python, no model).

Property: the answer (YES iff the halting step leaves 1 in its cell; NO on leaving the tape; no
answer when the step bound is reached) and every written step (read, new state, move, written
symbol) equal the reference, and ``read_back``'s run (steps, state, head, tape span, ones)
equals ``simulate`` cut there.  Both tapes: one dim per cell (the sketch) and packed base S in
one dim (T41-E3's fix), the latter on the fixed cases and a few random ones.  Measured: state
dims and bits against Theta(log n), and the CoT length against the step count (4 per step + the
answer).

Not checked: the lower half of Thm 4.1 (no regular RNN with Theta(log n) bits solves the task
without CoT) and Lemma B.25 are complexity-theoretic, conditional on PSPACE not in P/Poly; no
run can check them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.errors import ProofsCheckError
from constructions.turing_cot_rnn import (
    NO, STOP_TOKENS, TOKENS_PER_STEP, YES, chain_bound, input_cells, read_back, steps_of, turing_cot_rnn,
)
from constructions.turing_machine import HALT, Machine
from proofs_check.claims import measure
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import machines, tm_cases
from proofs_check.turing import TMRun, simulate

RUN_KEYS = ("halted", "steps", "state", "head", "tape", "tape_start", "ones")


@dataclass(frozen=True)
class BoundedRun:
    """The bounded-tape variant's run: ``run`` is simulate's, cut at the first move off the cells."""

    run: TMRun
    answer: str | None
    left_tape: bool


def bounded_reference(machine: Machine, x: list[int], cells: int, max_steps: int) -> BoundedRun:
    """Accept iff M halts, within the cells and the bound, leaving 1 in the halting step's cell."""
    full = simulate(machine, x, max_steps, record=True)
    for step in full.trace:
        if step.next_state != HALT and not 1 <= step.head + step.move <= cells:
            return BoundedRun(simulate(machine, x, step.t, record=True), NO, True)
    if not full.halted:
        return BoundedRun(full, None, False)
    return BoundedRun(full, YES if full.trace[-1].write == 1 else NO, False)


@dataclass(frozen=True)
class Case:
    machine: Machine
    n: int
    x: tuple[int, ...]
    cells: int
    max_steps: int
    tape: str = "cells"  # or "packed" (T41-E3's fix)

    @property
    def prompt(self) -> list[int]:
        return [0] * (self.n - len(self.x)) + list(self.x)


@st.composite
def halting_cases(draw, max_m: int) -> Case:
    """tm_cases on boolean tapes (halting on x unbounded), n any length with floor(log2 n) = |x|."""
    tc = draw(tm_cases(max_n=max_m, max_steps=40, max_symbols=2))
    m = len(tc.tape)
    if m == 0:  # a blank tape is x = 0 (blank = 0) at the smallest n
        return Case(tc.machine, 2, (0,), 1, tc.max_steps)
    n = (1 << m) + draw(st.integers(0, (1 << m) - 1))
    return Case(tc.machine, n, tc.tape, m + draw(st.sampled_from((0, 0, 1, 2, 4))), tc.max_steps)


@st.composite
def any_cases(draw, max_m: int) -> Case:
    """Random machines (2-3 symbols) on random boolean x, under a step bound (may not halt)."""
    machine = draw(machines(max_symbols=3))
    m = draw(st.integers(1, max_m))
    x = tuple(draw(st.lists(st.integers(0, 1), min_size=m, max_size=m)))
    return Case(machine, 1 << m, x, m + draw(st.sampled_from((0, 0, 1, 3))), draw(st.integers(1, 30)))


#: machines that stay within their cells on the inputs below (a sweep, an overwrite re-read, a walk)
PARITY = "0RB1RZ_0LC1RB_1RZ0LD_0RE1LD_0RZ0RB"  # x = 0 1^k 0: YES iff k even, (k+2)(k+3)/2 steps
REREAD = "1RZ0RB_0LC1LC_1RZ0RZ"  # overwrites cell 1 and reads it back (T41-E1)
WALK = "1RZ1RA"  # right over 1s, halts writing 1 on the first 0


def parity_case(m: int) -> Case:
    """The sweep on x = 0 1^(m-2) 0 at n = 2^m (claims rows use it too)."""
    x = (0,) + (1,) * (m - 2) + (0,)
    k = m - 2
    return Case(_machine(PARITY), 1 << m, x, m, (k + 2) * (k + 3) // 2)


def _machine(text: str) -> Machine:
    from constructions.turing_machine import parse_machine

    return parse_machine(text)


def fixed_cases() -> list[Case]:
    return [parity_case(4), parity_case(5), Case(_machine(REREAD), 4, (1, 1), 2, 3),
            Case(_machine(WALK), 16, (1, 1, 1, 0), 4, 4), Case(_machine(WALK), 8, (1, 1, 1), 3, 4)]


def decode(case: Case, evaluator, models: dict):
    key = (case.machine.to_text(), case.n, case.max_steps, case.cells, case.tape)
    if key not in models:
        models[key] = turing_cot_rnn(case.machine, case.n, case.max_steps, cells=case.cells, tape=case.tape)
    model = models[key]
    return model, chain_of_thought(evaluator.session(model, case.prompt), chain_bound(model), answers=STOP_TOKENS)


def compare(case: Case, model, res) -> BoundedRun:
    """Assert the decode equals the bounded reference; return the reference."""
    ref = bounded_reference(case.machine, list(case.x), case.cells, case.max_steps)
    what = (f"{case.machine} on x={''.join(map(str, case.x))} (n={case.n}, L={case.cells}, T={case.max_steps}, "
            f"{case.tape} tape)")
    want_steps = [(s.read, s.next_state, s.move, s.write) for s in ref.run.trace]
    got_steps = steps_of(model, res.generated)
    assert got_steps == want_steps, f"{what}: steps\n got {got_steps}\n ref {want_steps}"
    assert res.answer == ref.answer, f"{what}: answered {res.answer}, reference {ref.answer}"
    back = read_back(model, res)
    want = ref.run.to_json()
    assert {k: back[k] for k in RUN_KEYS} == want, f"{what}: read back {back}, reference {want}"
    assert back["left_tape"] == ref.left_tape, f"{what}: left_tape {back['left_tape']}"
    expected_len = TOKENS_PER_STEP * ref.run.steps + 1  # the answer, or the next read at the bound
    assert len(res.generated) == expected_len, f"{what}: {len(res.generated)} tokens for {ref.run.steps} steps"
    return ref


def each_case(cases: list[Case], body) -> CheckOutcome:
    """The fixed cases, every one (a property run would sample them)."""
    for k, case in enumerate(cases):
        try:
            body(case)
        except (AssertionError, ProofsCheckError) as exc:
            return CheckOutcome(False, k + 1, f"{type(exc).__name__}: {exc}")
    return CheckOutcome(True, len(cases))


def check_max_m(profile: Profile) -> int:
    """Largest m = |x| drawn (n < 2^(m+1)): ci 5, dev 6, thorough 7; capped by the profile's max_n."""
    return max(1, min({"ci": 5, "dev": 6}.get(profile.name, 7), profile.max_n.bit_length() - 1))


def _run(profile: Profile) -> CheckOutcome:
    from constructions.evaluate_fast import FastEvaluator

    evaluator = FastEvaluator()
    models: dict = {}
    seen: dict[int, dict[str, Any]] = {}

    def body(case: Case) -> None:
        model, res = decode(case, evaluator, models)
        ref = compare(case, model, res)
        row = seen.setdefault((case.n, case.tape), {"state_dims": model.state_dims(), "state_bits": model.state_bits(),
                                       "p": model.p, "m": input_cells(case.n), "max_steps_seen": 0, "answers": set()})
        row["max_steps_seen"] = max(row["max_steps_seen"], ref.run.steps)
        row["answers"].add(str(ref.answer))

    max_m = check_max_m(profile)
    outcome = combine([
        each_case(fixed_cases(), body),
        each_case([replace(c, tape="packed") for c in fixed_cases()[::2]], body),
        property_check(halting_cases(max_m), body, profile),
        property_check(any_cases(max_m), body, profile, max_examples=max(5, profile.max_examples // 2)),
        property_check(halting_cases(min(max_m, 4)).map(lambda c: replace(c, tape="packed")), body, profile,
                       max_examples=max(5, profile.max_examples // 4)),
    ])
    outcome.measured = {
        "max_m": max_m,
        "cot_length": f"{TOKENS_PER_STEP} tokens per step + 1 (answer, or the next read at the bound)",
        "per_n": {f"n={n} {tape}": {**v, "answers": sorted(v["answers"])} for (n, tape), v in sorted(seen.items())},
        "sizes": {f"n={n} {tape}": {k: measure(turing_cot_rnn(WALK, n, 4 * input_cells(n), tape=tape))[k]
                                    for k in ("p", "layers", "state_dims", "state_bits", "params")}
                  for tape in ("cells", "packed") for n in (16, 256, 4096, 65536)},
        "state_bits_claim": "Theta(log n); the sketch's tape (one dim per cell) gives Theta(log^2 n) (T41-E3), "
                            "the packed tape Theta(log n) with L + 2 layers",
    }
    return outcome


CHECKS = [
    Check(
        id="4.1",
        title="Linear RNN with CoT simulating a linear-space Turing machine (Thm 4.1, App B.5)",
        claim="For a linear-space machine M and S_in = 0^(n-m) x (m = floor(log2 n)), a linear RNN with "
        "O(log n) state dims writes M's run as its chain of thought (per step: read, new state, move, "
        "written cell; 4 tokens) and answers YES iff M(x) = 1 (upper half of Thm 4.1, checked on "
        "bounded-tape random machines).  State bits: Theta(log^2 n) with the sketch's one dim per cell "
        "(T41-E3), Theta(log n) with the tape packed in one dim (Theta(log n) layers).  Not checked: the "
        "lower half (no regular RNN with Theta(log n) bits without CoT) and Lemma B.25 are conditional "
        "on PSPACE not in P/Poly; no run can check them",
        run=_run,
    )
]
