"""Linear-RNN building blocks of Appendix B.3 (Lemmas B.20-B.23) as composable specs.

A linear unit (Def 3.5) is ``h_t = A h_(t-1) + B X_t`` with h_0 = 0, and the layer outputs
``Y = X + h``, ``Z = Y + g(Y)``: the state lives in residual dimensions (fresh ones, zero in the
layer's input, so Y holds the state), and the FFN g of a layer runs *after* its linear unit.

Builders take dimension names and return:

* :class:`~constructions.blocks.LinearUnitSpec` (Lemmas B.20, B.21): rows of A and B keyed by
  the state dims they write; several units combine with ``+`` (disjoint state dims);
* :class:`RNNBlock` (Lemma B.22): a linear unit plus the FFN that must run in an *earlier*
  layer (``ffn_before``) because the unit accumulates what that FFN wrote;
* :class:`~constructions.blocks.FFNSpec` (Lemma B.23, an FFN only).

``<block>_precision(...)`` gives the smallest odd p at which a block is exact (derived from the
largest value it holds and the fractional bits it needs), ``build_<block>_model(n, p, ...)`` a
standalone ``linear_rnn`` model for inspection (dimension names in ``model.meta``), and
``CATALOG`` maps block names to those model builders.

Conventions of the checks (Appendix B.2): the position dim ``pos`` holds k at position k and
``tok:<s>`` holds 1[k = 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from .blocks import Coef, FFNSpec, LayerSpec, LinearUnitSpec, Unit
from .errors import InputError
from .ffn_blocks import Value, check_dims, lookup_precision, lookup_spec, min_precision, standalone_model
from .layout import POS
from .model import Model
from .numerics import to_fraction


@dataclass
class RNNBlock:
    """A linear unit plus the FFN work it relies on.

    ``ffn_before`` goes into the FFN of a layer *before* the one holding ``lu`` (Def 3.5 runs a
    layer's FFN after its linear unit); ``state`` lists the dims ``lu`` writes, ``scratch`` the
    dims ``ffn_before`` writes."""

    lu: LinearUnitSpec
    ffn_before: FFNSpec = field(default_factory=FFNSpec)
    state: tuple[str, ...] = ()
    scratch: tuple[str, ...] = ()


def _distinct(names: Sequence[str], what: str) -> None:
    check_dims(*names)
    if len(set(names)) != len(names):
        raise InputError(f"{what}: dimension names must be distinct, got {list(names)}")


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {value!r}")
    return value


def grid_names(prefix: str, rows: int, sources: Sequence[str]) -> list[list[str]]:
    """Names ``{prefix}:{source}@{j}`` for j in 0..rows-1 (row j, column = source)."""
    return [[f"{prefix}:{s}@{j}" for s in sources] for j in range(rows)]


# ---- Lemma B.20: recent input memorising ------------------------------------------------------


def recent_input_spec(sources: Sequence[str], memory: Sequence[Sequence[str]]) -> LinearUnitSpec:
    """Lemma B.20 (Recent input memorizing): memory[j][c] holds x_(t-j)[sources[c]] at step t
    (0 when t - j < 1), for j = 0..k-1: the C dims of the last k inputs, state C k.

    A shift register: memory[0] <- B x_t, memory[j] <- A memory[j-1].  The paper prints the
    first block as x_(t-1); a linear unit sees x_t (Def 3.5: h_t = A h_(t-1) + B x_t), so the
    first block is the current input (erratum B20-E1).  Exact at every p (weights 1, values copied)."""
    _distinct(list(sources), "Lemma B.20 sources")
    k = len(memory)
    _positive_int(k, "Lemma B.20 memory length k")
    flat = [dim for row in memory for dim in row]
    _distinct(flat, "Lemma B.20 memory")
    if any(len(row) != len(sources) for row in memory):
        raise InputError("Lemma B.20: every memory row needs one dimension per source")
    if set(flat) & set(sources):
        raise InputError("Lemma B.20: memory dims must differ from the source dims")
    A = {memory[j][c]: {memory[j - 1][c]: 1} for j in range(1, k) for c in range(len(sources))}
    B = {memory[0][c]: {src: 1} for c, src in enumerate(sources)}
    return LinearUnitSpec(A, B)


def recent_input_precision(bound: Coef = 1, frac: int = 0) -> int:
    """p for Lemma B.20: the state holds input values (|x| <= bound, frac fractional bits)."""
    return min_precision(max(abs(to_fraction(bound)), 1), frac)


# ---- Lemma B.21: summation --------------------------------------------------------------------


def prefix_sum_spec(x: str, out: str) -> LinearUnitSpec:
    """Lemma B.21's printed construction h_t = [x_(t,1) + h_(t-1,1), ...]: out = sum_(s<=t) x_s[x].

    This is the running sum of *all* inputs (what Thms 5.3/5.7 use: a counter, the length of
    a stack), equal to the lemma's "sum of the last k inputs" only for t <= k (erratum B21-E1)."""
    _distinct([x, out], "Lemma B.21")
    return LinearUnitSpec({out: {out: 1}}, {out: {x: 1}})


def window_sum_spec(x: str, out: str, memory: Sequence[str]) -> LinearUnitSpec:
    """Lemma B.21 as stated: out = sum_(t-k < s <= t) x_s[x], k = len(memory) (fix, erratum B21-E1).

    memory[j] holds x_(t-j) (Lemma B.20, C = 1); the sum drops the input leaving the window:
    out_t = out_(t-1) + x_t - memory[k-1]_(t-1)  (memory[k-1]_(t-1) = x_(t-k), 0 when t <= k).
    State k + 1 dims."""
    _distinct([x, out, *memory], "Lemma B.21 (window)")
    k = _positive_int(len(memory), "Lemma B.21 window k")
    mem = recent_input_spec([x], [[m] for m in memory])
    total = LinearUnitSpec({out: {out: 1, memory[k - 1]: -1}}, {out: {x: 1}})
    return mem + total


def summation_precision(bound: Coef, length: int, window: int | None = None, frac: int = 0) -> int:
    """p for Lemma B.21 with |x| <= bound: the sum reaches min(length, k) * bound (prefix sum:
    length * bound over a sequence of ``length``); the window form's one affine step
    out + x - old also stays within that."""
    n_terms = length if window is None else min(window, length)
    return min_precision(max(n_terms, 1) * max(abs(to_fraction(bound)), 1), frac)


# ---- Lemma B.22: special position memorising --------------------------------------------------


def special_position_spec(
    sources: Sequence[str], k: int, scratch: Sequence[Sequence[str]], memory: Sequence[Sequence[str]], *,
    pos: str = POS, name: str | None = None,
) -> RNNBlock:
    """Lemma B.22 (Special position memorizing): memory[j-1][c] holds x_j[sources[c]] once t >= j
    (0 before), for positions j = 1..k.

    Two parts (B.1/B.3-style FFN, then B.21's summation), in two layers:
    * ``ffn_before`` (width C (k+1)): scratch[j-1][c] = x[sources[c]] * 1[pos = j], from units
      ReLU(m - pos) * x_c for m = 1..k+1 and, for integer pos >= 1,
      1[pos = j] = ReLU(j+1-pos) - 2 ReLU(j-pos) + ReLU(j-1-pos) (the m = 0 term vanishes);
    * ``lu``: memory += scratch (prefix sum), which keeps x_j from position j on.
    Preconditions: pos an integer >= 1 (X_(d,t) = t)."""
    _positive_int(k, "Lemma B.22 k")
    _distinct(list(sources), "Lemma B.22 sources")
    C = len(sources)
    if len(scratch) != k or len(memory) != k or any(len(r) != C for r in [*scratch, *memory]):
        raise InputError(f"Lemma B.22: scratch and memory need {k} rows of {C} dims each")
    flat_scratch = [d for row in scratch for d in row]
    flat_memory = [d for row in memory for d in row]
    _distinct(flat_scratch + flat_memory + list(sources) + [pos], "Lemma B.22")
    name = name or "spm"
    units = []
    for c, src in enumerate(sources):
        for m in range(1, k + 2):
            # unit ReLU(m - pos) * x_c feeds 1[pos = j] for j = m - 1 (+1), j = m (-2), j = m + 1 (+1)
            out = {}
            for j, w in ((m - 1, 1), (m, -2), (m + 1, 1)):
                if 1 <= j <= k:
                    out[scratch[j - 1][c]] = w
            units.append(Unit(f"{name}:{src}:{m}", {pos: -1}, m, {src: 1}, 0, out))
    lu = LinearUnitSpec(
        {memory[j][c]: {memory[j][c]: 1} for j in range(k) for c in range(C)},
        {memory[j][c]: {scratch[j][c]: 1} for j in range(k) for c in range(C)},
    )
    return RNNBlock(lu, FFNSpec(units), tuple(flat_memory), tuple(flat_scratch))


def special_position_precision(k: int, bound: Coef, max_len: int, frac: int = 0) -> int:
    """p for Lemma B.22 with |x| <= bound, positions <= max_len: W1 x + b1 = m - pos reaches
    max(max_len, k + 1), G = ReLU(m - pos) x_c <= (k + 1) bound (only m > pos survive), W3
    products 2 (k + 1) bound; scratch and memory hold input values."""
    m = max(abs(to_fraction(bound)), 1)
    return min_precision(max(max_len, k + 1, 2 * (k + 1) * m), frac)


# ---- Lemma B.23: reciting a fixed sequence ----------------------------------------------------


def recite_spec(values: Mapping[int, Value], out: str | None = None, *, pos: str = POS, name: str | None = None) -> FFNSpec:
    """Lemma B.23 (Recite fixed sequence): g(x) = values[x_pos] at the positions l_1..l_k given,
    0 at every other integer position; width 4 k.

    "A direct consequence of Lemma B.4": a one-key lookup table on the position (a one-key code
    is injective on all integers, so any position is a valid input).  ``pos`` may name any
    integer counter dim (e.g. a position relative to a marker).  A value is a scalar (to
    ``out``) or a form {dim: value} (e.g. a token's embedding)."""
    if not values:
        raise InputError("Lemma B.23 needs at least one position")
    for l in values:
        if isinstance(l, bool) or not isinstance(l, int):
            raise InputError(f"Lemma B.23 positions must be integers, got {l!r}")
    lo, hi = min(values), max(values)
    return lookup_spec([pos], {(l,): v for l, v in values.items()}, out, ranges=[(lo, hi)], name=name or f"recite:{pos}")


def recite_precision(values: Mapping[int, Value], max_len: int, out: str | None = "out") -> int:
    """p for Lemma B.23: Lemma B.4's precision with the position input reaching max_len."""
    lo, hi = min(values), max(values)
    return lookup_precision({(l,): v for l, v in values.items()}, [(lo, hi)], out=out,
                            input_bounds=[max(max_len, abs(lo), abs(hi))])


# ---- standalone models ------------------------------------------------------------------------


def rnn_block_model(
    n: int, p: int, dims: Sequence[str], layers: list[LayerSpec], max_len: int | None, meta: dict, *,
    block_p: int = 3, what: str = "this block",
) -> Model:
    """A standalone ``linear_rnn`` model of the given layers with the given dims allocated."""
    return standalone_model("linear_rnn", n, p, dims, layers, max_len, meta, block_p=block_p, what=what)


def _sources(C: int) -> list[str]:
    return [f"in:{c}" for c in range(1, _positive_int(C, "C") + 1)]


def build_recent_input_model(
    n: int, p: int, *, k: int = 2, C: int = 1, bound: Coef | None = None, frac: int = 0, max_len: int | None = None,
) -> Model:
    """Lemma B.20 standalone: sources ``in:1..C``, memory ``mem:in:c@j`` (= x_(t-j))."""
    _positive_int(k, "k")
    bound = n if bound is None else bound
    sources = _sources(C)
    memory = grid_names("mem", k, sources)
    lu = recent_input_spec(sources, memory)
    meta = {"block": "B.20", "inputs": sources, "memory": memory, "k": k, "C": C}
    return rnn_block_model(n, p, sources + [d for r in memory for d in r],
                           [LayerSpec("linear_rnn", lu=lu, name="B.20")], max_len, meta,
                           block_p=recent_input_precision(bound, frac), what="Lemma B.20 (recent input memorizing)")


def build_summation_model(
    n: int, p: int, *, window: int | None = None, bound: Coef | None = None, frac: int = 0, max_len: int | None = None,
) -> Model:
    """Lemma B.21 standalone: ``in:1`` -> ``sum`` (prefix sum if window is None, else the last
    ``window`` inputs, with memory ``win:in:1@j``)."""
    bound = n if bound is None else bound
    length = max_len if max_len is not None else max(n, 1)
    x, out = "in:1", "sum"
    if window is None:
        lu, memory = prefix_sum_spec(x, out), []
    else:
        memory = [row[0] for row in grid_names("win", _positive_int(window, "window"), [x])]
        lu = window_sum_spec(x, out, memory)
    meta = {"block": "B.21", "inputs": [x], "outputs": [out], "memory": memory, "window": window}
    return rnn_block_model(n, p, [x, out, *memory], [LayerSpec("linear_rnn", lu=lu, name="B.21")], length, meta,
                           block_p=summation_precision(bound, length, window, frac), what="Lemma B.21 (summation)")


def build_special_position_model(
    n: int, p: int, *, k: int = 2, C: int = 1, bound: Coef | None = None, frac: int = 0, max_len: int | None = None,
) -> Model:
    """Lemma B.22 standalone, two linear-RNN layers: layer 1 (no linear unit) FFN writes
    ``spm-z:in:c@j``, layer 2's linear unit keeps ``spm:in:c@j`` = x_(j+1)[in:c]."""
    _positive_int(k, "k")
    bound = n if bound is None else bound
    length = max_len if max_len is not None else max(n, 1)
    sources = _sources(C)
    scratch, memory = grid_names("spm-z", k, sources), grid_names("spm", k, sources)
    block = special_position_spec(sources, k, scratch, memory)
    layers = [LayerSpec("linear_rnn", lu=None, ffn=block.ffn_before, name="B.22 gate"),
              LayerSpec("linear_rnn", lu=block.lu, name="B.22 keep")]
    meta = {"block": "B.22", "inputs": sources, "scratch": scratch, "memory": memory, "k": k, "C": C}
    return rnn_block_model(n, p, sources + list(block.scratch) + list(block.state), layers, length, meta,
                           block_p=special_position_precision(k, bound, length, frac),
                           what="Lemma B.22 (special position memorizing)")


def build_recite_model(
    n: int, p: int, *, values: Mapping[int, Coef] | None = None, max_len: int | None = None,
) -> Model:
    """Lemma B.23 standalone: ``recite:out`` = values[position] (default: 1, 2, ..., n at positions 1..n)."""
    values = dict(values) if values is not None else {l: l for l in range(1, n + 1)}
    length = max_len if max_len is not None else max(n, max(values))
    out = "recite:out"
    layers = [LayerSpec("linear_rnn", lu=None, ffn=recite_spec(values, out), name="B.23")]
    meta = {"block": "B.23", "inputs": [POS], "outputs": [out], "positions": sorted(values)}
    return rnn_block_model(n, p, [out], layers, length, meta,
                           block_p=recite_precision(values, length, out), what="Lemma B.23 (recite fixed sequence)")


CATALOG: dict[str, Callable[..., Model]] = {
    "recent-input": build_recent_input_model,
    "summation": build_summation_model,
    "special-position": build_special_position_model,
    "recite": build_recite_model,
}
