"""Theorem 4.1 (App B.5): a linear RNN with chain of thought that runs a linear-space Turing machine.

The task of the proof: for input length n let m = floor(log2 n); the input is
``S_in = 0^(n-m) x`` with a boolean x of length m, the label YES iff M(x) = 1.  The proof's
upper half: "maintain the state, the pointer, and the tape of M inside the state of the RNN ...
the transition function ... in its output function as a lookup table (Lemma B.4) and write
down the updated state, the direction of the pointer movement, and the updated cell value in
its context.  Paired with the ability to memorize the recent input (Lemma B.20) the RNN can
then simulate the running of the Turing machine."  This module is that RNN, as literally as the
sketch allows; where it needs more, ``notes/errata/turing_cot_rnn.md`` (T41-E1..E5) says so.

Conventions (the proof leaves them open; ``proofs_check.checks.turing_cot_rnn`` uses the same):

* **the tape** is the cells 1..L (L = ``cells``, default m), x in cells 1..m, blank beyond; the
  head starts on cell 1 in state A (as ``proofs_check.turing.simulate``);
* **bounded tape** (a linear-bounded run of any machine): a step whose move leaves cells 1..L
  (and does not halt) *rejects*: the model answers NO.  A machine that never leaves the cells
  is simulated exactly; any other is the linear-space machine "M, rejecting on leaving";
* **acceptance** (T41-E4): M(x) = 1 iff M halts (a ``Z`` transition or an undefined ``---``
  one) and the halting step leaves the symbol 1 in its cell (for ``---``: the cell read);
* a run that has not halted after ``max_steps`` steps gives no answer (the chain bound).

What the model writes (all special tokens): per step t, in state q on cell h reading r,

    r<r>  q<q'>  <move>  w<w>          (read, new state, move L / R / S, written symbol)

then, after a halting step, ``YES`` / ``NO`` (acceptance above), or after a move off the
tape, ``NO``.  ``r<r>`` is the cell *read*, which the sketch does not write (T41-E1: a linear
state update needs the old value to overwrite a cell).  An undefined transition writes
``qZ S w<r>`` (halt in place).

Layers (Def 3.5: ``h_t = A h_(t-1) + B x_t``, ``Y = X + h``, ``Z = Y + g(Y)``), all values integers:

1. **Linear unit:** Lemma B.20 shift registers ``x@j`` (the last m input numbers; at position n
   they hold x, T41-E2), ``qc@j`` (state code of the token j back: A..=1..B, Z = B+1, else 0),
   ``rc@j`` (read code s+1, else 0), ``wc@0`` (write code), ``z@j`` ([token j back is qZ]),
   ``mv@j`` (move: R = +1, L = -1); Lemma B.21 ``hd`` = sum of the moves (head = 1 + hd).
   **FFN:** the transition function as Lemma B.4 lookup tables keyed by (state code, read code)
   at the offsets the token order puts them (next state at ``r``, move at ``q'``, written symbol
   at the move token), and the answer table (z@2, wc@0); the tape deltas ``dcell:c`` =
   [head before the move = c] (wc@0 - rc@3) (the write minus the read: T41-E1) and, at
   position n, [pos = n] x@(m-c); ``out`` = [hd < 0 or hd >= L].
2. **Linear unit:** Lemma B.21 ``cell:c`` = sum of ``dcell:c`` (the tape, one dim per cell).
   **FFN:** ``rd`` = cell[head] = sum_c [hd = c - 1] cell:c.
3. **FFN** (no state): after a write that did not halt and stayed on the tape, or at the
   prompt's end, emit the read token of ``rd`` (``o:rd``, ``o:isread``); off the tape, ``NO``.

Readout (erratum F4's explicit unembed): ``r<v>`` gets ``2 v o:rd + (1 - v^2) o:isread``
(= 1 + rd^2 - (v - rd)^2 when reading, else 0), every other special token T gets ``o:T``, the
numbers 0 / 1 get 0: at every chain position exactly one output is set, so the emitted token
is the unique maximum.

Sizes: 3 layers; state dims m + L + 17 (the x window, the tape, 16 register dims, hd) = Theta(log n);
p = Theta(log n) (positions up to n + 4 T); state bits Theta(log^2 n), not the printed
Theta(log n) (T41-E3).  CoT: 4 tokens per step + the answer.

Packed tape (``tape="packed"``, T41-E3's fix): layer 2's state is one dim ``tape`` = sum_c
cell_c S^(c-1) (x enters as x_c S^(c-1) at its position, a hat on ``pos``; a write adds
(w - r) S^(h-1)); layers 2 .. L peel the digits off the top (``digit:c`` = sum_k [rem >= k
S^(c-1)], Lemma B.5's integer threshold; ``rem`` -= digit S^(c-1)); layer L + 1 reads
``rd`` = the digit under the head; layer L + 2 the rules.  State dims 18 at every n (the
registers, ``hd``, ``tape``): Theta(log n) bits with L + 2 = Theta(log n) layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .blocks import FFNSpec, Form, LayerSpec, LinearUnitSpec, Unit, assemble
from .errors import EvaluatorError, InputError, MachineError
from .ffn_blocks import integer_hat, lookup_precision, lookup_spec, min_precision, precision_or_declared
from .layout import NUM, POS, LayoutBuilder, special_dim
from .model import Model
from .numerics import Precision
from .rnn_blocks import prefix_sum_spec, recent_input_spec
from .turing_machine import HALT, Machine, parse_machine, state_letter
from .vocab import Token, Vocabulary

YES, NO = "YES", "NO"
STOP_TOKENS = frozenset({YES, NO})
MOVE_TOKENS: dict[int, str] = {-1: "L", +1: "R", 0: "S"}  # S: the undefined transition stays
TOKENS_PER_STEP = 4  # r, q', move, w


def read_token(s: int) -> str:
    return f"r{s}"


def write_token(s: int) -> str:
    return f"w{s}"


def state_token(q: int) -> str:
    return f"q{state_letter(q)}"


# ---- sizes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The instance shape: n (input length), m = floor(log2 n) input cells, L tape cells, T steps."""

    n: int
    m: int
    cells: int
    max_steps: int

    @property
    def chain_bound(self) -> int:
        """CoT steps before the answer (Def A.4): 4 tokens per machine step."""
        return TOKENS_PER_STEP * self.max_steps

    @property
    def max_len(self) -> int:
        return self.n + self.chain_bound + 1


def input_cells(n: int) -> int:
    """m = floor(log2 n), the length of x (n >= 2, so that m >= 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise InputError(f"Thm 4.1's input 0^(n-m) x needs n >= 2 (m = floor(log2 n) >= 1), got n = {n!r}")
    return n.bit_length() - 1


def shape(n: int, max_steps: int, cells: int | None = None) -> Shape:
    m = input_cells(n)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise MachineError(f"max_steps must be a positive integer, got {max_steps!r}")
    L = m if cells is None else cells
    if isinstance(L, bool) or not isinstance(L, int) or L < m:
        raise MachineError(f"the tape needs at least the m = {m} input cells, got cells = {cells!r}")
    return Shape(n, m, L, max_steps)


def space_time_bound(machine: Machine, cells: int) -> int:
    """Configurations of a run on L cells, B L S^L: a linear-space machine that halts does so
    within this many steps (exp(O(m)) = poly(n), the proof's last paragraph)."""
    return machine.n_states * cells * machine.n_symbols ** cells


# ---- vocabulary and codes -----------------------------------------------------------------------


def vocabulary(machine: Machine) -> Vocabulary:
    """Numbers 0, 1 (the prompt's bits) and the chain's tokens."""
    syms, states = machine.symbols, [*machine.states, HALT]
    extras = ([read_token(s) for s in syms] + [state_token(q) for q in states]
              + list(MOVE_TOKENS.values()) + [write_token(s) for s in syms])
    return Vocabulary.with_extras(1, extras, min_number=0)


def state_code(machine: Machine, q: int) -> int:
    """A..=1..B, Z = B + 1 (0: not a state token)."""
    return machine.n_states + 1 if q == HALT else q


def _code_form(tokens: dict[str, int]) -> Form:
    return {special_dim(t): c for t, c in tokens.items()}


def _registers(machine: Machine, m: int) -> dict[str, tuple[Form, int]]:
    """Lemma B.20 registers: name -> (linear form of the current token, slots kept 0..depth)."""
    syms = machine.symbols
    return {
        "x": ({NUM: 1}, m - 1),
        "qc": (_code_form({state_token(q): state_code(machine, q) for q in [*machine.states, HALT]}), 5),
        "rc": (_code_form({read_token(s): s + 1 for s in syms}), 3),
        "wc": (_code_form({write_token(s): s + 1 for s in syms}), 0),
        "z": (_code_form({state_token(HALT): 1}), 2),
        "mv": (_code_form({MOVE_TOKENS[+1]: 1, MOVE_TOKENS[-1]: -1}), 1),
    }


def reg(name: str, j: int) -> str:
    return f"{name}@{j}"


# ---- the transition function as lookup tables (Lemma B.4) ---------------------------------------


def _step_of(machine: Machine, q: int, s: int) -> tuple[int, int, int]:
    """(next state, move, written symbol) of delta(q, s); ``---`` halts in place."""
    tr = machine.delta(q, s)
    if tr is None:
        return HALT, 0, s
    return tr.next_state, tr.move, tr.write


def transition_tables(machine: Machine) -> dict[str, dict[tuple[int, int], dict[str, int]]]:
    """Key (state code, read code): code 0 (no state token yet: the first step) is state A."""
    tables: dict[str, dict] = {"next": {}, "move": {}, "write": {}}
    for code in range(0, machine.n_states + 1):
        q = max(code, 1)
        for s in machine.symbols:
            nxt, move, write = _step_of(machine, q, s)
            key = (code, s + 1)
            tables["next"][key] = {f"o:{state_token(nxt)}": 1}
            tables["move"][key] = {f"o:{MOVE_TOKENS[move]}": 1}
            tables["write"][key] = {f"o:{write_token(write)}": 1}
    return tables


def answer_table(machine: Machine) -> dict[tuple[int, int], dict[str, int]]:
    """Key ([qZ two back], write code): after the halting step, YES iff it wrote 1 (T41-E4)."""
    return {(1, s + 1): {f"o:{YES if s == 1 else NO}": 1} for s in machine.symbols}


#: lookup name -> (state-code slot, read-code slot): the offsets in ``r q' move w``
LOOKUP_SLOTS: dict[str, tuple[int, int]] = {"next": (3, 0), "move": (4, 1), "write": (5, 2)}


def _key_ranges(machine: Machine) -> list[tuple[int, int]]:
    return [(0, machine.n_states + 1), (0, machine.n_symbols)]


# ---- FFN pieces ---------------------------------------------------------------------------------


#: how a write token changes the tape's sum: "delta" (new minus old, the old from the read token,
#: T41-E1's fix) or "paper" (the written value alone, what the sketch's CoT carries)
CELL_UPDATES = ("delta", "paper")


def _write_value(machine: Machine, cell_update: str) -> Form:
    if cell_update == "paper":
        return {special_dim(write_token(s)): s for s in machine.symbols if s}
    if cell_update == "delta":
        return {reg("wc", 0): 1, reg("rc", 3): -1}
    raise InputError(f"cell_update must be one of {CELL_UPDATES}, got {cell_update!r}")


def _tape_delta_units(sh: Shape, delta: Form) -> list[Unit]:
    """dcell:c = [hd - mv@1 = c - 1] delta: at a write token, the change at the cell the head
    stood on before the move (delta = wc@0 - rc@3, new minus old: T41-E1); and, at position n,
    [pos = n] x@(m - c) (T41-E2)."""
    units: list[Unit] = []
    for c in range(1, sh.cells + 1):
        units += integer_hat(f"write:{c}", {"hd": 1, reg("mv", 1): -1}, -(c - 1), {f"dcell:{c}": 1}, gate=delta, gate_bias=0)
    for c in range(1, sh.m + 1):
        units += integer_hat(f"init:{c}", {POS: 1}, -sh.n, {f"dcell:{c}": 1}, gate={reg("x", sh.m - c): 1}, gate_bias=0)
    return units


def _off_tape_units(cells: int) -> list[Unit]:
    """out = [hd <= -1] + [hd >= L] for integer hd (two ReLU steps)."""
    return [
        Unit("out:left", {"hd": -1}, 0, {}, 1, {"out": 1}),
        Unit("out:left-1", {"hd": -1}, -1, {}, 1, {"out": -1}),
        Unit("out:right", {"hd": 1}, -(cells - 1), {}, 1, {"out": 1}),
        Unit("out:right-1", {"hd": 1}, -cells, {}, 1, {"out": -1}),
    ]


def _lookups(machine: Machine) -> FFNSpec:
    specs = [
        lookup_spec([reg("qc", qs), reg("rc", rs)], transition_tables(machine)[name],
                    ranges=_key_ranges(machine), name=f"delta:{name}")
        for name, (qs, rs) in LOOKUP_SLOTS.items()
    ]
    specs.append(lookup_spec([reg("z", 2), reg("wc", 0)], answer_table(machine),
                             ranges=[(0, 1), (0, machine.n_symbols)], name="answer"))
    return FFNSpec.sum(specs)


def _read_units(dims: Sequence[str]) -> list[Unit]:
    """rd = cell[1 + hd] = sum_c [hd = c - 1] dims[c - 1] (the cell values, or the packed tape's digits)."""
    units: list[Unit] = []
    for c, dim in enumerate(dims, start=1):
        units += integer_hat(f"read:{c}", {"hd": 1}, -(c - 1), {"rd": 1}, gate={dim: 1}, gate_bias=0)
    return units


# ---- the packed tape (T41-E3's fix: O(1) state dims, Theta(m) layers) -----------------------------


def _scaled(form: Form, k: int) -> Form:
    return {d: v * k for d, v in form.items()}


def _packed_tape_units(sh: Shape, S: int, delta: Form) -> list[Unit]:
    """dtape = sum_c [head before the move = c] delta S^(c-1), and at the position n - m + c of x_c,
    x_c S^(c-1) (a Lemma B.3 hat on the position: no B.20 window): the tape as one base-S number."""
    units: list[Unit] = []
    for c in range(1, sh.cells + 1):
        units += integer_hat(f"write:{c}", {"hd": 1, reg("mv", 1): -1}, -(c - 1), {"dtape": 1}, gate=_scaled(delta, S ** (c - 1)), gate_bias=0)
    for c in range(1, sh.m + 1):
        units += integer_hat(f"init:{c}", {POS: 1}, -(sh.n - sh.m + c), {"dtape": 1}, gate={NUM: S ** (c - 1)}, gate_bias=0)
    return units


def digit_dims(cells: int) -> list[str]:
    """Where digit c (cell c) of the packed tape lands: ``digit:c`` for c >= 2, the remainder for c = 1."""
    if cells == 1:
        return ["tape"]
    return ["rem"] + [f"digit:{c}" for c in range(2, cells + 1)]


def _digit_ffns(cells: int, S: int) -> list[FFNSpec]:
    """Digits L, L-1, ..., 2 of the tape, one FFN each (so Theta(m) layers): digit c = sum_k
    [rem >= k S^(c-1)] (Lemma B.5's threshold for integers: ReLU(t + 1) - ReLU(t)), and
    rem -= digit S^(c-1); the first FFN copies the tape into rem (tape >= 0)."""
    ffns = []
    for c in range(cells, 1, -1):
        src, u = ("tape" if c == cells else "rem"), S ** (c - 1)
        units = [Unit("copy", {"tape": 1}, 0, {}, 1, {"rem": 1})] if c == cells else []
        for k in range(1, S):
            units += [Unit(f"digit:{c}:{k}:a", {src: 1}, -k * u + 1, {}, 1, {f"digit:{c}": 1, "rem": -u}),
                      Unit(f"digit:{c}:{k}:b", {src: 1}, -k * u, {}, 1, {f"digit:{c}": -1, "rem": u})]
        ffns.append(FFNSpec(units))
    return ffns


TAPES = ("cells", "packed")


def _tape_part(lb: LayoutBuilder, sh: Shape, machine: Machine, delta: Form, tape: str):
    """(layer-1 FFN units, layer-2 linear unit, the FFNs from layer 2 on before the rules): the
    tape as one dim per cell (as the sketch) or packed base S into one dim."""
    if tape == "cells":
        for c in range(1, sh.cells + 1):
            lb.alloc(f"dcell:{c}")
        lu2 = LinearUnitSpec()
        for c in range(1, sh.cells + 1):
            lu2 = lu2 + prefix_sum_spec(f"dcell:{c}", lb.alloc(f"cell:{c}"))
        lb.alloc("rd")
        cells = [f"cell:{c}" for c in range(1, sh.cells + 1)]
        return _tape_delta_units(sh, delta), lu2, [FFNSpec(_read_units(cells))]
    if tape != "packed":
        raise InputError(f"tape must be one of {TAPES}, got {tape!r}")
    lb.alloc_many(["dtape", "tape", *(d for d in digit_dims(sh.cells) if d != "tape"), "rd"])
    ffns = _digit_ffns(sh.cells, machine.n_symbols) + [FFNSpec(_read_units(digit_dims(sh.cells)))]
    return _packed_tape_units(sh, machine.n_symbols, delta), prefix_sum_spec("dtape", "tape"), ffns


def _rule_units(vocab: Vocabulary, machine: Machine) -> list[Unit]:
    """Emit the read token after a write that neither halted nor left the tape, and at the
    prompt (a number token: its last position starts the chain); NO after leaving the tape."""
    is_write = {special_dim(write_token(s)): 1 for s in machine.symbols}
    next_read = {**is_write, reg("z", 2): -1, "out": -1}  # AND(write, not halted, on the tape)
    rejected = {**is_write, reg("z", 2): -1, "out": 1}  # AND(write, not halted, off the tape) + 1
    prompt = {special_dim(s): -1 for s in vocab.specials}  # 1 - [special] = [number token]
    units: list[Unit] = []
    for name, form, bias in (("read-next", next_read, 0), ("read-first", prompt, 1)):
        units.append(Unit(f"{name}:value", form, bias, {"rd": 1}, 0, {"o:rd": 1}))
        units.append(Unit(f"{name}:flag", form, bias, {}, 1, {"o:isread": 1}))
    units.append(Unit("reject-off-tape", rejected, -1, {}, 1, {f"o:{NO}": 1}))
    return units


def _unembed(vocab: Vocabulary, machine: Machine) -> dict[Token, Form]:
    reads = {read_token(s): s for s in machine.symbols}
    out: dict[Token, Form] = {}
    for tok in vocab.specials:
        if tok in reads:
            v = reads[tok]
            out[tok] = {"o:rd": 2 * v, "o:isread": 1 - v * v}
        elif f"o:{tok}" in _emitted(machine):
            out[tok] = {f"o:{tok}": 1}
    return out


def _emitted(machine: Machine) -> list[str]:
    toks = ([state_token(q) for q in [*machine.states, HALT]] + list(MOVE_TOKENS.values())
            + [write_token(s) for s in machine.symbols] + [YES, NO])
    return [f"o:{t}" for t in toks]


# ---- precision ----------------------------------------------------------------------------------


def declared_p(machine: Machine, sh: Shape, tape: str = "cells") -> int:
    """Smallest odd p at which every value is exact: the init gates' ReLU(pos - n + 1) x reach
    max_len (x 2 in W3), the tape gates (L + 3) S (x 2), the lookups Lemma B.4's own p; the
    readout 1 + S^2.  Packed: the tape reaches S^L, its init gates 2 max_len S^m, its write gates
    2 (L + 3) S^L, a digit unit's W3 product S^L S^(L-1)."""
    S = machine.n_symbols
    if tape == "packed":
        L = sh.cells
        packed = max(2 * sh.max_len * S ** sh.m, 2 * (L + 3) * S ** L, S ** (2 * L - 1))
        return max(declared_p(machine, sh), min_precision(packed))
    lookups = [lookup_precision(t, _key_ranges(machine), out=None) for t in transition_tables(machine).values()]
    lookups.append(lookup_precision(answer_table(machine), [(0, 1), (0, S)], out=None))
    return max(min_precision(max(2 * sh.max_len, 2 * (sh.cells + 3) * S, 1 + S * S)), *lookups)


# ---- the model ----------------------------------------------------------------------------------


def _layer1_state(lb: LayoutBuilder, machine: Machine, m: int, window: bool) -> LinearUnitSpec:
    lu = LinearUnitSpec()
    for name, (form, depth) in _registers(machine, m).items():
        if name == "x" and not window:
            continue
        rows = [[lb.alloc(reg(name, j))] for j in range(depth + 1)]
        if name == "x":
            lu = lu + recent_input_spec([NUM], rows)
        else:  # Lemma B.20 on a linear form of the token dims (its code)
            A = {rows[j][0]: {rows[j - 1][0]: 1} for j in range(1, len(rows))}
            lu = lu + LinearUnitSpec(A, {rows[0][0]: dict(form)})
    lb.alloc("hd")
    move = _registers(machine, m)["mv"][0]
    return lu + LinearUnitSpec({"hd": {"hd": 1}}, {"hd": dict(move)})  # Lemma B.21 on the move


def turing_cot_rnn(machine: Machine | str, n: int, max_steps: int, p: int | None = None,
                   cells: int | None = None, cell_update: str = "delta", tape: str = "cells") -> Model:
    """Theorem 4.1: the linear RNN with CoT that runs ``machine`` on the x of ``0^(n-m) x``
    (m = floor(log2 n)) on a bounded tape of ``cells`` (default m) cells, for at most
    ``max_steps`` steps.  ``p`` defaults to :func:`declared_p`; a smaller p raises PrecisionError.
    ``cell_update="paper"`` builds the sketch's literal tape update (for erratum T41-E1's test);
    ``tape="packed"`` keeps the tape in one dim (T41-E3's fix: O(1) state dims, L + 2 layers)."""
    machine = parse_machine(machine) if isinstance(machine, str) else machine
    sh = shape(n, max_steps, cells)
    need = declared_p(machine, sh, tape)
    p = precision_or_declared(p, need, f"tm-cot-rnn (n = {n}, {sh.cells} cells, {max_steps} steps, {tape} tape)")
    vocab = vocabulary(machine)
    lb = LayoutBuilder(vocab)
    lu1 = _layer1_state(lb, machine, sh.m, window=tape == "cells")
    lb.alloc_many(["out", *_emitted(machine), "o:rd", "o:isread"])
    tape_units, lu2, ffns = _tape_part(lb, sh, machine, _write_value(machine, cell_update), tape)
    ffn1 = _lookups(machine) + FFNSpec(tape_units + _off_tape_units(sh.cells))
    layers = [
        LayerSpec("linear_rnn", lu=lu1, ffn=ffn1, name="registers (B.20), head (B.21); delta (B.4), tape deltas"),
        LayerSpec("linear_rnn", lu=lu2, ffn=ffns[0], name="tape (B.21)" + ("; cell under the head" if len(ffns) == 1 else "; a digit")),
        *(LayerSpec("linear_rnn", lu=None, ffn=f, name="a digit" if k < len(ffns) - 2 else "cell under the head")
          for k, f in enumerate(ffns[1:])),
        LayerSpec("linear_rnn", lu=None, ffn=FFNSpec(_rule_units(vocab, machine)), name="read / reject"),
    ]
    meta = {
        "construction": "tm-cot-rnn", "theorem": "4.1", "decoding": "chain_of_thought",
        "machine": machine.to_text(), "n": n, "m": sh.m, "cells": sh.cells, "max_steps": max_steps,
        "cot_steps": sh.chain_bound, "max_chain": sh.chain_bound, "cell_update": cell_update, "tape": tape,
    }
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=layers,
                    max_len=sh.max_len, unembed=_unembed(vocab, machine), meta=meta,
                    declared=Precision(need), declared_p=need)


# ---- the ``run tm`` protocol (proofs_check.tm_runners) ----------------------------------------


def build(machine: Machine, n: int, max_steps: int, p: int | None = None) -> Model:
    """``run tm --model cot-rnn``: the input is the whole S_in = 0^(n-m) x, so n = its length."""
    return turing_cot_rnn(machine, n, max_steps, p)


def prompt(model: Model, tape: Sequence[int]) -> list[Token]:
    """S_in itself: n bits, the first n - m of them 0 (Thm 4.1's task); a clear error otherwise."""
    n, m = model.meta["n"], model.meta["m"]
    bits = list(tape)
    if len(bits) != n:
        raise InputError(f"this model reads S_in = 0^(n-m) x of exactly n = {n} bits, got {len(bits)}")
    if any(b not in (0, 1) or isinstance(b, bool) for b in bits):
        raise InputError(f"Thm 4.1's input is boolean: S_in = 0^(n-m) x with bits 0/1, got {bits}")
    if any(bits[: n - m]):
        raise InputError(f"Thm 4.1's input is 0^(n-m) x: the first n - m = {n - m} bits must be 0 "
                         f"(x is the last m = {m} bits)")
    return bits


def chain_bound(model: Model) -> int:
    return model.meta["max_chain"]


def _parse_step(group: Sequence[Token], vocab_machine: Machine) -> tuple[int, int, int, int]:
    """(read, next state, move, write) of one ``r q' move w`` group; a clear error otherwise."""
    reads = {read_token(s): s for s in vocab_machine.symbols}
    states = {state_token(q): q for q in [*vocab_machine.states, HALT]}
    moves = {t: mv for mv, t in MOVE_TOKENS.items()}
    writes = {write_token(s): s for s in vocab_machine.symbols}
    try:
        return reads[group[0]], states[group[1]], moves[group[2]], writes[group[3]]
    except KeyError:
        raise EvaluatorError(f"the chain {list(group)} is not a step 'r<s> q<X> L|R|S w<s>'") from None


def steps_of(model: Model, generated: Sequence[Token]) -> list[tuple[int, int, int, int]]:
    """Every complete step (read, next state, move, write) the chain wrote, in order."""
    machine = parse_machine(model.meta["machine"])
    body = [t for t in generated if t not in STOP_TOKENS]
    k = TOKENS_PER_STEP
    return [_parse_step(body[i: i + k], machine) for i in range(0, len(body) - k + 1, k)]


def read_back(model: Model, result) -> dict:
    """The run as ``proofs-check run tm`` reports it, from the chain alone (x from the prompt):
    a cell's value is its last write; ``accepted`` is the answer (None: no answer within the
    bound); ``left_tape``: the answer NO came from a move off the L cells (M did not halt)."""
    m = model.meta["m"]
    cells = {c: v for c, v in enumerate(result.prompt[len(result.prompt) - m:], start=1) if v}
    head, state, lo, hi = 1, 1, 1, m
    steps = steps_of(model, result.generated)
    for read, nxt, move, write in steps:
        lo, hi = min(lo, head), max(hi, head)
        cells[head] = write
        head, state = head + move, nxt
    answer = result.answer
    return {
        "halted": state == HALT, "steps": len(steps), "state": state_letter(state), "head": head,
        "tape": [cells.get(c, 0) for c in range(lo, hi + 1)], "tape_start": lo,
        "ones": sum(1 for v in cells.values() if v), "answer": answer,
        "accepted": None if answer is None else answer == YES,
        "left_tape": answer == NO and state != HALT, "m": m, "x": list(result.prompt[len(result.prompt) - m:]),
    }


def catalog_model(machine: str = "1RZ1RA", n: int = 16, max_steps: int = 16, p: int | None = None,
                  cells: int | None = None, tape: str = "cells") -> Model:
    """Thm 4.1: the linear RNN with CoT running a linear-space Turing machine (--param machine=1RB1LB_1LA1RZ)."""
    return turing_cot_rnn(machine, n, max_steps, p, cells, tape=tape)


CATALOG = {"tm-cot-rnn": catalog_model}
