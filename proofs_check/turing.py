"""The Turing-machine toolkit: the reference simulator every TM construction is checked against.

Machines are :class:`constructions.turing_machine.Machine` (bbchallenge text format, see that
module; re-exported here).  :func:`simulate` is a plain-Python run of the proof of Thm 5.4's
semantics: the tape is indexed by all integers, blank (0) except the input cells 1..n, the head
starts at cell 1 in state A (1); each step reads the cell under the head, writes, moves and
changes state; the halting transition counts as a step (busy-beaver convention).  It knows
nothing of any model.

What a run reports (the fields of ``proofs-check run tm``):

* ``halted``, ``steps`` (every transition taken, the halting one included), ``state`` (the
  state letter after the last step: ``Z`` once halted), ``head`` (the head's cell after it);
* ``tape``: the cells ``tape_start .. tape_start + len(tape) - 1``, the span of the input
  cells 1..n and every cell the head *read* (the cell it stands on after the last move is not
  read, so it is not in the span unless it was before), so a model that writes its tape into
  its chain of thought can report exactly the same span;
* ``ones``: the number of non-blank cells (the busy-beaver "sigma").

A run that does not halt within ``max_steps`` has ``halted = False``; it is never reported as
a result of the machine (``run tm`` prints it as not halted).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from constructions.errors import MachineError
from constructions.turing_machine import (
    HALT,
    Machine,
    Transition,
    parse_instance,
    parse_machine,
    state_letter,
    time_bound,
)

__all__ = [
    "HALT", "KNOWN_MACHINES", "Machine", "Step", "TMRun", "Transition", "parse_instance",
    "parse_machine", "simulate", "state_letter", "time_bound",
]

#: Busy-beaver champions and other worked examples, run from a blank tape.  The published step
#: and non-blank counts are in the README (and in one simulator test as literature values).
KNOWN_MACHINES: dict[str, str] = {
    "bb2": "1RB1LB_1LA1RZ",  # BB(2): 6 steps, 4 ones
    "bb3": "1RB1RZ_1LB0RC_1LC1LA",  # BB(3): 21 steps, 5 ones
    "bb2x3": "1RB2LB1RZ_2LA2RB1LB",  # BB(2, 3): 38 steps, 9 non-blank
    "bb4": "1RB1LB_1LA0LC_1RZ1LD_1RD0RA",  # BB(4): 107 steps, 13 ones
}


@dataclass(frozen=True)
class Step:
    """One transition: at time t (1-based) in ``state`` with the head on ``head`` reading ``read``."""

    t: int
    state: int
    head: int
    read: int
    write: int
    move: int  # 0 for an undefined (``---``) transition
    next_state: int


@dataclass
class TMRun:
    halted: bool
    steps: int
    state: int
    head: int
    cells: dict[int, int]  # every cell that is not blank
    lo: int  # span of the input cells and the cells read
    hi: int
    trace: list[Step] = field(default_factory=list)

    @property
    def tape(self) -> list[int]:
        return [self.cells.get(i, 0) for i in range(self.lo, self.hi + 1)]

    @property
    def tape_start(self) -> int:
        return self.lo

    @property
    def ones(self) -> int:
        return sum(1 for v in self.cells.values() if v != 0)

    def to_json(self) -> dict:
        return {
            "halted": self.halted,
            "steps": self.steps,
            "state": state_letter(self.state),
            "head": self.head,
            "tape": self.tape,
            "tape_start": self.tape_start,
            "ones": self.ones,
        }


def simulate(machine: Machine, tape_input: Sequence[int] = (), max_steps: int | None = None,
             record: bool = False) -> TMRun:
    """Run ``machine`` on ``tape_input`` (cells 1..n) for at most ``max_steps`` transitions.

    ``max_steps`` may be omitted only for a machine that can reach a halting transition
    (``Machine.can_halt``); it then defaults to 10^6 (a bound, not a promise to halt: the run
    says ``halted = False`` if it is reached).  ``record`` keeps every :class:`Step`."""
    cells_in = machine.check_input(tape_input)
    if max_steps is None:
        if not machine.can_halt():
            raise MachineError(
                f"machine {machine} has no reachable halting transition, so it never halts; give a step limit (--max-steps N)"
            )
        max_steps = 10**6
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise MachineError(f"the step limit must be a non-negative integer, got {max_steps!r}")
    n = len(cells_in)
    cells = {i: s for i, s in enumerate(cells_in, start=1) if s != 0}
    state, head, steps = 1, 1, 0
    lo, hi = (1, n) if n else (None, None)  # span of the input cells and the cells read
    trace: list[Step] = []
    while state != HALT and steps < max_steps:
        read = cells.get(head, 0)
        lo = head if lo is None else min(lo, head)
        hi = head if hi is None else max(hi, head)
        tr = machine.delta(state, read)
        steps += 1
        if tr is None:  # undefined transition: halt in place
            if record:
                trace.append(Step(steps, state, head, read, read, 0, HALT))
            state = HALT
            break
        if tr.write:
            cells[head] = tr.write
        else:
            cells.pop(head, None)
        if record:
            trace.append(Step(steps, state, head, read, tr.write, tr.move, tr.next_state))
        head += tr.move
        state = tr.next_state
    if lo is None:
        lo, hi = 1, 0  # no input and no step: the empty span
    return TMRun(state == HALT, steps, state, head, cells, lo, hi, trace)
