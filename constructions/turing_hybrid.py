"""Theorem 5.8 (App B.13): a hybrid linear RNN (Def 5.5) that simulates a Turing machine.

For a machine T (:class:`constructions.turing_machine.Machine`, states 1..B, symbols 0..S-1,
0 = blank), an input length n (0 allowed) and a step bound ``max_steps`` = S_max, the model reads

    S_in = <s>, TAPE[1,1], ..., TAPE[1,n]          (input cell i at position i + 1)

and writes, as in B.13 (the sequence of B.10 without the retrieval parts), one *group* per step t

    POINTER[t], TAPE[t+1, POINTER[t]], POINTER[t], State[t+1], Direction[t+1]

until the halting state, then the stop token ``HALT`` (the paper's sequence has no end; a
decoder needs one).  Tokens: pointers are numbers (``min_number`` = 1 - S_max, so the head may
leave 1..n to the left); every tape symbol, state and direction is one special token
(``s0, s1, ..``; ``qA, qB, .., qZ`` with ``qZ`` = halted; ``L``, ``R``, and ``N`` for an
undefined ``---`` transition, which halts without moving).  Group phases g0..g4 = the five
tokens of a group; the model at a token emits the next one.

Layers (all constants from T, n, S_max and p):

1. linear RNN: shift registers (Lemma B.20) of the last few token types and values
   (``m:<what>@j`` = <what> of the token j back: the number, "is special", "is symbol", the
   symbol index, "is live state", the state index, "is qZ"); prefix sums (Lemma B.21)
   ``cnt:R``, ``cnt:L``, so POINTER = 1 + cnt:R - cnt:L (Thm 5.4's pointer, B.21).
   FFN: phase flags (g0, g2, g3 and their code 1/2/3), ``is_cell`` (an input cell), the
   query (the pointer), the value (the written symbol), and the window-determined next
   tokens: 1 at the prompt's end, POINTER[t] at g1 (the number one back), POINTER[t+1] or
   ``HALT`` at g4 (HALT iff the state one back is qZ).
2. linear RNN (no recurrence): FFN: the current state State[t] (the state token 2, 4, 5 back
   at g0, g2, g3; state 1 in the first group, B.20 memory), the key.
3. linear RNN (no recurrence): FFN: MatchClose's g (Lemma B.16: 1, k^2, squares of key and query).
4. the Transformer layer: one MatchClose head (Lemma B.16, ``attention_blocks.match_close_block``):
   ``read`` = the value at the last position <= k whose key equals the query, else position 1
   (<s>, value 0 = blank).  FFN: the transition function as one Lemma B.4 lookup on
   (phase code, state, read) -> the token to emit at g0 (written symbol), g2 (new state),
   g3 (direction): 3 B S entries, O(B^2) width for S = O(B) symbols.

Keys and the fix of the literal reading (errata T58-E1, T58-E2 in notes/errata/turing_hybrid.md):
the key of "cell P now holds W" sits on the group's Direction token (P two back, W three back)
and on each input cell (cell pos - 1); values are keyed by POINTER - lo + 1 (lo = the smallest
pointer), so every key and query is >= 1 (MatchClose needs X_(I2,k) != 0) and 0 marks "no key".
``LITERAL`` = ``Variant("triple", False, "paper")`` is the literal reading (key on the triple's
second POINTER, raw pointer values, Lemma B.16's constants with the theorem's n, erratum T58-E3);
each field alone shows one failure in the tests.

Readout: an explicit ``unembed`` (erratum F4): number i gets ``2i out_num + (1 - i^2) out_isnum``
(= 1 + v^2 - (i - v)^2 when v is emitted, else 0), an emitted special T gets ``out:T``, others -1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Sequence

from .attention_blocks import AttentionBlock, choose_boost, match_close_block, resolve_p
from .blocks import FFNSpec, Form, LayerSpec, LinearUnitSpec, Unit, assemble, padded_layout
from .dfs_transformer import unit as _u
from .errors import InputError, MachineError, PrecisionError
from .ffn_blocks import lookup_precision, lookup_spec, min_precision, require_precision
from .layout import NUM, POS, Layout, LayoutBuilder, special_dim
from .model import Model
from .numerics import Precision, check_p
from .rnn_blocks import prefix_sum_spec, recent_input_spec
from .turing_machine import HALT, LETTERS, Machine, parse_machine, state_letter
from .vocab import PAPER_SPECIALS, Token, Vocabulary

STOP = "HALT"
STOP_TOKENS: frozenset[Token] = frozenset({STOP})
MOVE_TOKEN = {-1: "L", 1: "R", 0: "N"}
TOKEN_MOVE = {v: k for k, v in MOVE_TOKEN.items()}
GROUP = 5  # tokens per simulated step
BOS = special_dim("<s>")


def sym_token(s: int) -> str:
    return f"s{s}"


def state_token(q: int) -> str:
    """``qA`` .. for live states, ``qZ`` for :data:`HALT`."""
    return f"q{state_letter(q)}"


def m(what: str, j: int) -> str:
    """Register dim: ``what`` of the token j back (Lemma B.20; j = 0 is the current token)."""
    return f"m:{what}@{j}"


@dataclass(frozen=True)
class Variant:
    """Where the write key sits and how pointers are encoded.  ``Variant()`` is the fix;
    ``Variant("triple", False)`` the literal reading of B.13 (errata T58-E1, T58-E2)."""

    key_at: Literal["direction", "triple"] = "direction"
    offset: bool = True
    scales: Literal["fixed", "paper"] = "fixed"


FIXED = Variant()
LITERAL = Variant("triple", False, "paper")


@dataclass(frozen=True)
class Geometry:
    """Sizes derived from (T, n, S_max): the pointer range, token range, sequence length."""

    machine: Machine
    n: int
    max_steps: int

    @property
    def lo(self) -> int:  # smallest pointer: S_max moves left from cell 1
        return 1 - self.max_steps

    @property
    def hi(self) -> int:  # largest number token: an input cell or a pointer
        return max(self.n, 1 + self.max_steps, 1)

    @property
    def max_len(self) -> int:
        """Prompt (n + 1) + S_max groups + the last token (HALT or the next POINTER) + 1."""
        return self.n + 1 + GROUP * self.max_steps + 2

    def code(self, pointer_form: Form, const: int, variant: Variant) -> tuple[Form, Fraction]:
        """Key/query of a cell: pointer - lo + 1 (>= 1) with the offset, else the pointer."""
        shift = 1 - self.lo if variant.offset else 0
        return dict(pointer_form), Fraction(const + shift)

    def vmax(self, variant: Variant) -> int:
        return self.hi - self.lo + 1 if variant.offset else max(self.hi, -self.lo, 1)


def _check(machine: Machine | str, n: int, max_steps: int) -> Geometry:
    if isinstance(machine, str):
        machine = parse_machine(machine)
    if not isinstance(machine, Machine):
        raise MachineError(f"tm-hybrid needs a Machine or a bbchallenge string, got {machine!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"tm-hybrid: the input length n must be an integer >= 0, got {n!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise MachineError(f"tm-hybrid: max_steps must be a positive integer, got {max_steps!r}")
    return Geometry(machine, n, max_steps)


def vocabulary(geo: Geometry) -> Vocabulary:
    mc = geo.machine
    extras = ([sym_token(s) for s in mc.symbols] + [state_token(q) for q in mc.states] + [state_token(HALT)]
              + list(MOVE_TOKEN.values()) + [STOP])
    return Vocabulary(geo.hi, PAPER_SPECIALS + tuple(extras), min_number=geo.lo)


# ---- layer 1: registers (B.20), pointer (B.21) -------------------------------------------------

#: register name -> deepest slot read
DEPTH = {NUM: 2, "spec": 2, "sym": 1, "symval": 3, "st": 5, "stval": 5, "Z": 1}
EMIT = ("out_num", "out_isnum")
DIMS = ("one", "cnt:R", "cnt:L", "g0", "g2", "g3", "code", "is_cell", "query", "val", "state", "key",
        "read", *EMIT)


def _register(name: str, form: Form) -> LinearUnitSpec:
    """Lemma B.20 on a linear form of the token (a shift register of ``form . x``)."""
    dims = [m(name, j) for j in range(DEPTH[name] + 1)]
    A = {dims[j]: {dims[j - 1]: 1} for j in range(1, len(dims))}
    return LinearUnitSpec(A, {dims[0]: dict(form)})


def _register_forms(mc: Machine, vocab: Vocabulary) -> dict[str, Form]:
    return {
        "spec": {special_dim(t): 1 for t in vocab.specials},
        "sym": {special_dim(sym_token(s)): 1 for s in mc.symbols},
        "symval": {special_dim(sym_token(s)): s for s in mc.symbols if s},
        "st": {special_dim(state_token(q)): 1 for q in mc.states},
        "stval": {special_dim(state_token(q)): q for q in mc.states},
        "Z": {special_dim(state_token(HALT)): 1},
    }


def _layer1_unit(mc: Machine, vocab: Vocabulary) -> LinearUnitSpec:
    lu = recent_input_spec([NUM], [[m(NUM, j)] for j in range(DEPTH[NUM] + 1)])
    for name, form in _register_forms(mc, vocab).items():
        lu = lu + _register(name, form)
    return lu + prefix_sum_spec(special_dim("R"), "cnt:R") + prefix_sum_spec(special_dim("L"), "cnt:L")


def _emit_number(name: str, flag: Form, flag_b, value: Form, value_b) -> list[Unit]:
    """[flag] * value to out_num and [flag] to out_isnum (flag form in {0, 1})."""
    return [_u(f"{name}.v", flag, flag_b, value, value_b, {"out_num": 1}),
            _u(f"{name}.g", flag, flag_b, {}, 1, {"out_isnum": 1})]


def _ffn1(geo: Geometry, variant: Variant) -> FFNSpec:
    n = geo.n
    spec0, spec1, spec2 = (m("spec", j) for j in range(3))
    sym0, sym1 = m("sym", 0), m("sym", 1)
    st0, z0, z1 = m("st", 0), m("Z", 0), m("Z", 1)
    direction = {special_dim(t): 1 for t in MOVE_TOKEN.values()}
    pointer = {"cnt:R": 1, "cnt:L": -1}  # POINTER - 1
    qform, qb = geo.code(pointer, 1, variant)
    M = n + 1  # gate for is_cell: pos <= n + 1 and the token is a symbol
    units = [
        # phases: g2 = number, symbol one back, number two back; g0 = any other number; g3 = a state
        _u("g2", {spec0: -1, sym1: 1, spec2: -1}, 0, {}, 1, {"g2": 1, "g0": -1, "code": 1}),
        _u("g0", {spec0: -1}, 1, {}, 1, {"g0": 1, "code": 1}),
        _u("g3", {}, 1, {st0: 1, z0: 1}, 0, {"g3": 1, "code": 3}),
        _u("is_cell.a", {sym0: M, POS: -1}, n + 2 - M, {}, 1, {"is_cell": 1}),
        _u("is_cell.b", {sym0: M, POS: -1}, n + 1 - M, {}, 1, {"is_cell": -1}),
        _u("query", {}, 1, qform, qb, {"query": 1}),
        _u("val.cell", {}, 1, {m("symval", 0): 1}, 0, {"val": 1}),
        # the prompt's end (position n + 1): POINTER[1] = 1, [pos = n + 1] as a hat (B.3)
        *[_u(f"start.{i}", {POS: 1}, -(n + 1) + s, {}, 1, {"out_num": w, "out_isnum": w})
          for i, (s, w) in enumerate(((1, 1), (0, -2), (-1, 1)))],
        # g1 (a symbol after a number): POINTER[t] again
        *_emit_number("g1", {sym0: 1, spec1: -1}, 0, {m(NUM, 1): 1}, 0),
        # g4 (a direction): POINTER[t+1], or HALT after qZ
        *_emit_number("g4", {**direction, z1: -1}, 0, pointer, 1),
        _u("halt", {**direction, z1: 1}, -1, {}, 1, {f"out:{STOP}": 1}),
    ]
    if variant.key_at == "direction":
        units.append(_u("val.write", direction, 0, {m("symval", 3): 1}, 0, {"val": 1}))
    else:  # literal: the triple's second POINTER holds the key, W is one back
        units.append(_u("val.write", {spec0: -1, sym1: 1, spec2: -1}, 0, {m("symval", 1): 1}, 0, {"val": 1}))
    return FFNSpec(units, bias={"one": 1})


def _ffn2(geo: Geometry, variant: Variant) -> FFNSpec:
    """State[t] (B.20 memory: the state token 2 / 4 / 5 back at g0 / g2 / g3, 1 if none) and the key."""
    units = [
        _u(f"state.{g}", {g: 1}, 0, {m("stval", j): 1, m("st", j): -1}, 1, {"state": 1})
        for g, j in (("g0", 2), ("g2", 4), ("g3", 5))
    ]
    cell, cb = geo.code({POS: 1}, -1, variant)  # input cell pos - 1
    units.append(_u("key.cell", {"is_cell": 1}, 0, cell, cb, {"key": 1}))
    if variant.key_at == "direction":
        direction = {special_dim(t): 1 for t in MOVE_TOKEN.values()}
        wform, wb = geo.code({m(NUM, 2): 1}, 0, variant)
        units.append(_u("key.write", direction, 0, wform, wb, {"key": 1}))
    else:
        wform, wb = geo.code({m(NUM, 0): 1}, 0, variant)
        units.append(_u("key.write", {"g2": 1}, 0, wform, wb, {"key": 1}))
    return FFNSpec(units)


# ---- layer 4: MatchClose (B.16) and the transition table (B.4) ---------------------------------


def transition_table(mc: Machine) -> dict[tuple[int, int, int], dict[str, int]]:
    """(phase code, state, read) -> the emitted token's out dim: 1 = g0 (written symbol),
    2 = g2 (new state), 3 = g3 (direction).  ``---`` writes what it read, halts, moves N."""
    table: dict[tuple[int, int, int], dict[str, int]] = {}
    for q, s, tr in mc.transitions():
        write, nxt, move = (s, HALT, 0) if tr is None else (tr.write, tr.next_state, tr.move)
        table[(1, q, s)] = {f"out:{sym_token(write)}": 1}
        table[(2, q, s)] = {f"out:{state_token(nxt)}": 1}
        table[(3, q, s)] = {f"out:{MOVE_TOKEN[move]}": 1}
    return table


def table_ranges(mc: Machine) -> list[tuple[int, int]]:
    """Key box: code 0..3 (0 = no lookup), state 0..B (0 off-phase), read 0..S-1."""
    return [(0, 3), (0, mc.n_states), (0, mc.n_symbols - 1)]


def block_scale(geo: Geometry, variant: Variant) -> tuple[int, int]:
    """(N, c) for MatchClose's constants n^(4c+1), n^(2c+2), n with L <= N^c.

    "paper": N = the input length n (Thm 5.8 is stated for inputs of length n); the lemma
    needs N >= 2, so n <= 1 has none (erratum T58-E3).  "fixed": N = max(n, 2)."""
    N = geo.n if variant.scales == "paper" else max(geo.n, 2)
    if N < 2:
        raise PrecisionError(
            f"MatchClose (Lemma B.16) with the theorem's n = {geo.n}: its constants n^(4c+1), n^(2c+2), n "
            "need n >= 2 and positions <= n^c (erratum T58-E3); use the fixed scales")
    c = max(1, math.ceil(math.log(geo.max_len, N) - 1e-12))
    while N**c < geo.max_len:
        c += 1
    return N, c


def _block(geo: Geometry, variant: Variant, boost: int) -> AttentionBlock:
    N, c = block_scale(geo, variant)
    return match_close_block(["key"], ["query"], ["read"], ["val"], N, c=c, max_len=geo.max_len,
                             vmax=geo.vmax(variant), boost=boost)


def _layout(geo: Geometry, vocab: Vocabulary, block: AttentionBlock) -> Layout:
    lb = LayoutBuilder(vocab)
    for name, depth in DEPTH.items():
        lb.alloc_many(m(name, j) for j in range(depth + 1))
    lb.alloc_many(DIMS)
    lb.alloc_many(f"out:{t}" for t in emitted_specials(geo.machine))
    for dim in block.aux:
        if dim not in lb:
            lb.alloc(dim)
    return lb.build()


def emitted_specials(mc: Machine) -> list[str]:
    return ([sym_token(s) for s in mc.symbols] + [state_token(q) for q in mc.states] + [state_token(HALT)]
            + list(MOVE_TOKEN.values()) + [STOP])


def _unembed(geo: Geometry, vocab: Vocabulary) -> dict:
    out: dict = {i: {"out_num": 2 * i, "out_isnum": 1 - i * i} for i in range(geo.lo, geo.hi + 1)}
    emitted = set(emitted_specials(geo.machine))
    for t in vocab.specials:
        out[t] = {f"out:{t}": 1} if t in emitted else {"one": -1}
    return out


def precision_for(geo: Geometry, variant: Variant, d: int) -> tuple[int, int, tuple[int, int]]:
    """(boost, p, window): MatchClose's smallest boost with an exact-p window (paper scales:
    boost 1), and the smallest p in it that also holds every other value (positions, squares
    of positions, the lookup's code, the readout's i^2)."""
    make = lambda b: _block(geo, variant, b).budget(d)  # noqa: E731
    boost = 1 if variant.scales == "paper" else choose_boost(make)
    budget = make(boost)
    win = budget.window()
    if win is None:
        raise PrecisionError(
            f"MatchClose (Lemma B.16) at the theorem's n = {geo.n} (max_len {geo.max_len}) has no exact p "
            "with the paper's constants (erratum AB-2 / T58-E3); use the fixed scales")
    mc = geo.machine
    others = max(
        min_precision(max(geo.max_len**2, 4 * geo.hi**2 + 4)),
        lookup_precision(transition_table(mc), table_ranges(mc), out=None),
    )
    p = max(win[0], others + (others + 1) % 2)
    if p > win[1]:
        raise PrecisionError(f"tm-hybrid: the other values need p >= {p}, above MatchClose's window {win}")
    return boost, p, win


def build(machine: Machine | str, n: int, max_steps: int, p: int | None = None, variant: Variant = FIXED) -> Model:
    """Theorem 5.8's hybrid for ``machine`` on inputs of length ``n`` for up to ``max_steps``
    steps (see the module docstring).  ``p`` defaults to the declared (smallest exact) one; a p
    outside MatchClose's exact window raises PrecisionError naming the window."""
    geo = _check(machine, n, max_steps)
    mc = geo.machine
    vocab = vocabulary(geo)
    probe = _block(geo, variant, 1)
    layout = _layout(geo, vocab, probe)
    d = padded_layout(layout).d
    boost, p_decl, win = precision_for(geo, variant, d)
    block = _block(geo, variant, boost)
    if p is None:
        p = p_decl
    if isinstance(p, Precision):  # R(I, F): at least the declared R_p's bits each, hard at F
        require_precision(p, p_decl, f"tm-hybrid ({mc}, n = {n}, {max_steps} steps)")
    elif not p_decl <= check_p(p) <= win[1]:
        raise PrecisionError(f"tm-hybrid ({mc}, n = {n}, {max_steps} steps) is exact for p in [{p_decl}, {win[1]}], got p = {p}")
    resolve_p(block.budget(d), p)
    layers = [
        LayerSpec("linear_rnn", lu=_layer1_unit(mc, vocab), ffn=_ffn1(geo, variant),
                  name="R1 registers (B.20), pointer (B.21); phases, window tokens"),
        LayerSpec("linear_rnn", lu=None, ffn=_ffn2(geo, variant), name="R2 state (B.20 memory), key"),
        LayerSpec("linear_rnn", lu=None, ffn=block.ffn, name="R3 MatchClose g (B.16)"),
        LayerSpec("transformer", [block.head], None,
                  lookup_spec(["code", "state", "read"], transition_table(mc), ranges=table_ranges(mc), name="delta"),
                  "T MatchClose (B.16); transition lookup (B.4)"),
    ]
    N, c = block_scale(geo, variant)
    meta = {
        "construction": "tm-hybrid", "theorem": "5.8", "machine": mc.to_text(), "n": n, "max_steps": max_steps,
        "chain_bound": chain_bound_for(max_steps), "cot_steps": GROUP * max_steps, "pointer_range": [geo.lo, geo.hi],
        "match_close": {"n": N, "c": c, "boost": boost, "p_window": list(win), "vmax": geo.vmax(variant)},
        "variant": {"key_at": variant.key_at, "offset": variant.offset, "scales": variant.scales},
    }
    return assemble(arch="hybrid", p=p, layout=layout, vocab=vocab, layers=layers, max_len=geo.max_len,
                    unembed=_unembed(geo, vocab), meta=meta, declared=Precision(p_decl), declared_p=p_decl)


# ---- the runner protocol (proofs_check.tm_runners) ---------------------------------------------


def chain_bound_for(max_steps: int) -> int:
    """S_max groups of 5 tokens; the decoder then emits one more (HALT or the next POINTER)."""
    return GROUP * max_steps


def chain_bound(model: Model) -> int:
    return int(model.meta["chain_bound"])


def prompt(model: Model, tape: Sequence[int]) -> list[Token]:
    """S_in = <s>, TAPE[1,1], ..., TAPE[1,n] for a model built for n = len(tape)."""
    mc = parse_machine(model.meta["machine"])
    cells = mc.check_input(tape)
    if len(cells) != model.meta["n"]:
        raise InputError(f"this tm-hybrid model is built for inputs of {model.meta['n']} cells, got {len(cells)}")
    return ["<s>"] + [sym_token(s) for s in cells]


def _symbol(tok: Token) -> int:
    if not (isinstance(tok, str) and tok.startswith("s") and tok[1:].isdigit()):
        raise MachineError(f"expected a tape symbol token, got {tok!r}")
    return int(tok[1:])


def _state(tok: Token) -> int:
    if not (isinstance(tok, str) and len(tok) == 2 and tok[0] == "q" and tok[1] in LETTERS):
        raise MachineError(f"expected a state token, got {tok!r}")
    return HALT if tok[1] == "Z" else LETTERS.index(tok[1]) + 1


def read_back(model: Model, result) -> dict:
    """The run as the generated tokens tell it (Lemma B.31: a cell holds its last write):
    complete groups are steps; the tape is the input (the prompt) overwritten by each group's
    write; the span covers the input cells and every POINTER (the cells read)."""
    cells = {i: _symbol(t) for i, t in enumerate(result.prompt[1:], start=1)}
    gen = list(result.generated)
    halted = bool(gen) and gen[-1] == STOP
    body = gen[:-1] if halted else gen
    groups = [body[i:i + GROUP] for i in range(0, len(body) - len(body) % GROUP, GROUP)]
    state, head = 1, 1
    span = [1, len(cells)] if cells else [None, None]
    for g in groups:
        ptr, write, ptr2, nxt, move = g
        if not (isinstance(ptr, int) and ptr == ptr2 and ptr == head):
            raise MachineError(f"malformed group {g} (head {head})")
        cells[ptr] = _symbol(write)
        span = [ptr if span[0] is None else min(span[0], ptr), ptr if span[1] is None else max(span[1], ptr)]
        state, head = _state(nxt), ptr + TOKEN_MOVE[move]
    lo, hi = (1, 0) if span[0] is None else span
    tape = [cells.get(i, 0) for i in range(lo, hi + 1)]
    return {"halted": halted and state == HALT, "steps": len(groups), "state": state_letter(state), "head": head,
            "tape": tape, "tape_start": lo, "ones": sum(1 for v in cells.values() if v)}


def tm_hybrid(machine: str = "1RB1LB_1LA1RZ", n: int = 0, max_steps: int = 8, p: int | None = None) -> Model:
    """Thm 5.8 hybrid for a bbchallenge machine, input length n, up to max_steps steps."""
    return build(machine, n, max_steps, p)


CATALOG = {"tm-hybrid": tm_hybrid}
