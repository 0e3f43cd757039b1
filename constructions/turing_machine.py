"""Turing machines as data: the machine of Theorem 5.4's proof, read and written in the
bbchallenge standard text format.

The proof of Thm 5.4 (App B.10) fixes a machine T with states 1..B (1 is the initial state), a
tape indexed by all integers, initialised blank except the n input cells 1..n, a head
(``POINTER``) starting at cell 1, and a transition function
``delta(state, symbol) -> (new state, written symbol, move in {-1, +1})``; T halts when it
enters the halting state.  This module holds such a machine as a plain table, so that builders
(in ``constructions/``) and the reference simulator (``proofs_check.turing``) read the same
data and nothing else.

Text format (bbchallenge's "standard text format", any number of symbols): one ``_``-separated
group per state, in order A, B, C, ...; in each group three characters per symbol 0, 1, ...:
the written symbol (a digit), the move (``L`` = -1, ``R`` = +1) and the next state's letter.  A
letter beyond the machine's states (conventionally ``Z``) is the halting state; ``---`` is an
undefined transition, which halts too (the tape and the head stay as they are).  Either way the
halting transition counts as a step, the busy-beaver convention.  Symbol 0 is the blank.

Examples: ``1RB1LB_1LA1RZ`` (the 2-state busy-beaver champion), ``1RB2LA1LA_2LA2RB0RA`` (a
2-state, 3-symbol machine with no halting transition).

Conventions fixed here (the proof leaves them open):

* states are numbered 1..B (A = 1); :data:`HALT` = 0 is the halting state, printed ``Z``;
* a halting transition written with a letter (``1RZ``) writes and moves, then halts; an
  undefined one (``---``) is stored as ``None`` and halts without writing or moving.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import MachineError
from .json_text import parse_json

HALT = 0
HALT_LETTER = "Z"
LETTERS = string.ascii_uppercase
MAX_STATES = 25  # A..Y: Z stays free to name the halting state
MAX_SYMBOLS = 10  # symbols are single digits in the text format
MOVES = {"L": -1, "R": +1}


@dataclass(frozen=True)
class Transition:
    """delta(state, symbol) = (next_state, write, move); ``next_state == HALT`` halts."""

    write: int
    move: int  # -1 (L) or +1 (R)
    next_state: int  # 1..B, or HALT

    @property
    def halts(self) -> bool:
        return self.next_state == HALT


@dataclass(frozen=True)
class Machine:
    """States 1..``n_states``, symbols 0..``n_symbols`` - 1 (0 = blank), and ``table[state - 1][symbol]``
    a :class:`Transition` or ``None`` (undefined: halts without writing or moving)."""

    n_states: int
    n_symbols: int
    table: tuple[tuple[Transition | None, ...], ...]

    def __post_init__(self) -> None:
        _validate(self)

    # ---- lookups ----------------------------------------------------------------------------
    def delta(self, state: int, symbol: int) -> Transition | None:
        if not 1 <= state <= self.n_states:
            raise MachineError(f"state {state} is not one of this machine's states 1..{self.n_states}")
        if not 0 <= symbol < self.n_symbols:
            raise MachineError(f"symbol {symbol} is not one of this machine's symbols 0..{self.n_symbols - 1}")
        return self.table[state - 1][symbol]

    @property
    def states(self) -> range:
        return range(1, self.n_states + 1)

    @property
    def symbols(self) -> range:
        return range(self.n_symbols)

    def transitions(self) -> list[tuple[int, int, Transition | None]]:
        """Every (state, symbol, delta(state, symbol)), states then symbols in order."""
        return [(q, s, self.table[q - 1][s]) for q in self.states for s in self.symbols]

    def can_halt(self) -> bool:
        """Is some halting transition (or an undefined one) reachable from state A in the state
        graph?  (Static: says nothing about whether a run reaches it.)"""
        seen, todo = {1}, [1]
        while todo:
            q = todo.pop()
            for s in self.symbols:
                tr = self.table[q - 1][s]
                if tr is None or tr.halts:
                    return True
                if tr.next_state not in seen:
                    seen.add(tr.next_state)
                    todo.append(tr.next_state)
        return False

    # ---- text and JSON ----------------------------------------------------------------------
    def to_text(self) -> str:
        groups = []
        for row in self.table:
            cells = []
            for tr in row:
                if tr is None:
                    cells.append("---")
                else:
                    letter = HALT_LETTER if tr.halts else LETTERS[tr.next_state - 1]
                    cells.append(f"{tr.write}{'L' if tr.move < 0 else 'R'}{letter}")
            groups.append("".join(cells))
        return "_".join(groups)

    def __str__(self) -> str:
        return self.to_text()

    def check_input(self, tape: Sequence[Any]) -> list[int]:
        """The input cells 1..n as symbols; a clear error for anything else."""
        if isinstance(tape, (str, bytes)) or not isinstance(tape, Sequence):
            raise MachineError(f"the input must be a list of symbols 0..{self.n_symbols - 1}, got {tape!r}")
        out = []
        for i, s in enumerate(tape, start=1):
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < self.n_symbols:
                raise MachineError(
                    f"input cell {i} holds {s!r}; this machine's symbols are the integers 0..{self.n_symbols - 1}"
                )
            out.append(s)
        return out


def state_letter(state: int) -> str:
    """A, B, ... for live states; Z for :data:`HALT`."""
    return HALT_LETTER if state == HALT else LETTERS[state - 1]


def _validate(m: Machine) -> None:
    if isinstance(m.n_states, bool) or not isinstance(m.n_states, int) or not 1 <= m.n_states <= MAX_STATES:
        raise MachineError(f"a machine has 1..{MAX_STATES} states, got {m.n_states!r}")
    if isinstance(m.n_symbols, bool) or not isinstance(m.n_symbols, int) or not 2 <= m.n_symbols <= MAX_SYMBOLS:
        raise MachineError(f"a machine has 2..{MAX_SYMBOLS} symbols, got {m.n_symbols!r}")
    if len(m.table) != m.n_states or any(len(row) != m.n_symbols for row in m.table):
        raise MachineError(f"the transition table must be {m.n_states} rows of {m.n_symbols} transitions")
    for q, row in enumerate(m.table, start=1):
        for s, tr in enumerate(row):
            if tr is None:
                continue
            if not isinstance(tr, Transition):
                raise MachineError(f"delta({state_letter(q)}, {s}) is {tr!r}, not a Transition")
            if not 0 <= tr.write < m.n_symbols:
                raise MachineError(f"delta({state_letter(q)}, {s}) writes {tr.write}, not a symbol 0..{m.n_symbols - 1}")
            if tr.move not in (-1, 1):
                raise MachineError(f"delta({state_letter(q)}, {s}) moves {tr.move}; a move is -1 (L) or +1 (R)")
            if not 0 <= tr.next_state <= m.n_states:
                raise MachineError(f"delta({state_letter(q)}, {s}) goes to state {tr.next_state}, not 0..{m.n_states}")


def parse_machine(text: Any) -> Machine:
    """A machine from the bbchallenge standard text format (see the module docstring)."""
    if not isinstance(text, str):
        raise MachineError(f"a machine is a string in the bbchallenge format like '1RB1LB_1LA1RZ', got {text!r}")
    text = text.strip()
    if not text:
        raise MachineError("the machine string is empty; write it like '1RB1LB_1LA1RZ' (one '_'-separated group per state)")
    groups = text.split("_")
    n_states = len(groups)
    if n_states > MAX_STATES:
        raise MachineError(f"{n_states} states: at most {MAX_STATES} (A..Y) are supported")
    first = len(groups[0])
    if first == 0 or first % 3:
        raise MachineError(
            f"group A of {text!r} has {first} characters; each state's group has 3 per symbol "
            "(written symbol, L or R, next state letter), e.g. '1RB1LB'"
        )
    n_symbols = first // 3
    if not 2 <= n_symbols <= MAX_SYMBOLS:
        raise MachineError(f"{n_symbols} symbols: a machine has 2..{MAX_SYMBOLS}")
    rows = []
    for q, group in enumerate(groups, start=1):
        if len(group) != 3 * n_symbols:
            raise MachineError(
                f"group {state_letter(q)} ({group!r}) has {len(group)} characters; every group needs "
                f"{3 * n_symbols} (3 per symbol, as group A has)"
            )
        row: list[Transition | None] = []
        for s in range(n_symbols):
            cell = group[3 * s: 3 * s + 3]
            where = f"delta({state_letter(q)}, {s}) = {cell!r}"
            if cell == "---":
                row.append(None)
                continue
            w, mv, nxt = cell
            if not (w.isascii() and w.isdigit()) or int(w) >= n_symbols:
                raise MachineError(f"{where}: the written symbol must be a digit 0..{n_symbols - 1}")
            if mv not in MOVES:
                raise MachineError(f"{where}: the move must be L or R")
            if nxt not in LETTERS:
                raise MachineError(f"{where}: the next state must be a letter A..Z (beyond the states: halt)")
            k = LETTERS.index(nxt) + 1
            row.append(Transition(int(w), MOVES[mv], k if k <= n_states else HALT))
        rows.append(tuple(row))
    return Machine(n_states, n_symbols, tuple(rows))


def parse_instance(data: Any) -> tuple[Machine, list[int], int | None]:
    """``{"machine": "1RB1LB_1LA1RZ", "input": [1, 0, 1], "max_steps": 100}`` (input and
    max_steps optional) -> (machine, input cells, max_steps or None)."""
    if isinstance(data, str):
        data = parse_json(data, MachineError, "the Turing-machine instance")
    if not isinstance(data, dict):
        raise MachineError('a Turing-machine instance is a JSON object {"machine": "...", "input": [...]}')
    unknown = sorted(set(data) - {"machine", "input", "max_steps"})
    if unknown:
        raise MachineError(f"unknown keys {unknown}; an instance has 'machine', 'input' and optionally 'max_steps'")
    if "machine" not in data:
        raise MachineError("the instance has no 'machine' (a bbchallenge string like '1RB1LB_1LA1RZ')")
    machine = parse_machine(data["machine"])
    tape = machine.check_input(data.get("input", []))
    steps = data.get("max_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise MachineError(f"max_steps must be a positive integer, got {steps!r}")
    return machine, tape, steps


def time_bound(n: int, exponent: int) -> int:
    """The T in TIME(n^A) of Theorem 5.4 read as a step bound: max(n, 2)^A."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise MachineError(f"the input length n must be a whole number >= 0, got {n!r}")
    if isinstance(exponent, bool) or not isinstance(exponent, int) or exponent < 1:
        raise MachineError(f"the time exponent A must be a positive integer, got {exponent!r}")
    return max(n, 2) ** exponent
