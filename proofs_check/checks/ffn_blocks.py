"""Checks of the FFN building blocks, Lemmas B.1-B.6 (Appendix B.1).

Each check draws the lemma's parameters and inputs that satisfy its preconditions, builds the
block at the precision its builder declares (``*_precision``), runs the reference evaluator on
a residual matrix (``forward_residual``: one Transformer layer with no heads, so the layer is
X + g(X)), and compares g = Z - X on *every* dimension exactly with the lemma's function,
computed here in plain Python with Fractions.  Overflow raises (the check fails), so passing
also shows that no value leaves R_p at the declared p.  Every check runs under both tie rules
and both matmul readings of numerics.Arithmetic.

Input conventions: ``pos`` holds k at position k, ``tok:<s>`` holds 1[k = 1]; ``num`` and
``w2`` hold unrelated values the block must ignore.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Mapping, Sequence

from hypothesis import strategies as st

from constructions import ffn_blocks as fb
from constructions.blocks import read_dims, residual_input
from proofs_check.evaluator_agreement import block_forward
from constructions.model import Model
from constructions.numerics import Arithmetic
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check

ARITHMETICS = [Arithmetic(tie, matmul) for tie in ("even", "away") for matmul in ("round_once", "round_products")]
arithmetics = st.sampled_from(ARITHMETICS)


# ---- shared helpers (also used by the RNN block checks) ---------------------------------------


def conventional_columns(values: Sequence[Mapping[str, int | Fraction]], extra: Sequence[Mapping[str, int | Fraction]] | None = None) -> list[dict]:
    """Columns with the appendix conventions: pos = k, tok:<s> = 1[k = 1], plus the block inputs."""
    cols = []
    for k, col in enumerate(values, start=1):
        c = {"pos": k, "tok:<s>": 1 if k == 1 else 0}
        if extra is not None:
            c.update(extra[k - 1])
        c.update(col)
        cols.append(c)
    return cols


def run_block(model: Model, columns: list[dict], arith: Arithmetic) -> dict[str, list[Fraction]]:
    """Run the model on the residual made of ``columns``; return Z - X per dimension.

    Raises (and so fails the property) on any overflow at the model's p."""
    X = residual_input(model, columns)
    result = block_forward(model, X, arith)  # reference, asserted bit-equal to the fast evaluator
    assert not result.saturations, f"saturated at {result.saturations}"
    names = list(model.layout.names)
    before = read_dims(model, X, names)
    after = read_dims(model, result.residual, names)
    return {dim: [z - x for x, z in zip(b, a)] for dim, b, a in zip(names, before, after)}


def assert_delta(delta: dict[str, list[Fraction]], expected: Mapping[str, list[Fraction]], context: str) -> None:
    """Every dim changes exactly as expected (dims not in ``expected`` must not change)."""
    for dim, got in delta.items():
        want = expected.get(dim, [Fraction(0)] * len(got))
        assert list(got) == list(want), (
            f"{context}: dim {dim!r}: got {[str(v) for v in got]}, expected {[str(v) for v in want]}")


def grid(bound: int | Fraction, frac: int) -> st.SearchStrategy:
    """Multiples of 2^-frac in [-bound, bound]."""
    top = math.floor(Fraction(bound) * (1 << frac))
    return st.integers(-top, top).map(lambda q: Fraction(q, 1 << frac))


def reference_round(x: Fraction, F: int, tie: str) -> Fraction:
    """ROUND(x, p) (A.2): the nearest multiple of 2^-F, ties per the rule (independent of numerics)."""
    y = Fraction(x) * (1 << F)
    lo = math.floor(y)
    rest = y - lo
    if rest < Fraction(1, 2):
        q = lo
    elif rest > Fraction(1, 2):
        q = lo + 1
    elif tie == "even":
        q = lo if lo % 2 == 0 else lo + 1
    else:
        q = lo + 1 if y > 0 else lo
    return Fraction(q, 1 << F)


def noise(n_cols: int) -> st.SearchStrategy:
    """Unrelated values in ``w2`` (a dim no block and no readout reads) that a block must ignore."""
    return st.lists(st.fixed_dictionaries({"w2": st.integers(-1, 1)}), min_size=n_cols, max_size=n_cols)


def declared_p(block_p: int, n_cols: int) -> int:
    """The builder's declared p for the block, raised if needed for the input conventions
    (pos = k up to n_cols; the models use a one-number vocabulary, n = 1)."""
    return fb.model_precision(block_p, 1, n_cols)


# ---- B.1 multiplication -----------------------------------------------------------------------


@st.composite
def _mul_case(draw, max_n: int):
    M = draw(st.integers(1, max_n))
    frac = draw(st.integers(0, 3))
    coef = draw(st.sampled_from([1, -1, 2, -3]))
    pairs = draw(st.lists(st.tuples(grid(M, frac), grid(M, frac)), min_size=1, max_size=6))
    edges = [(M, M), (-M, M), (M, -M), (-M, -M), (0, -M), (-M, 0)]
    cols = edges + pairs
    return M, frac, coef, draw(arithmetics), cols, draw(noise(len(cols)))


def _check_multiplication_exact(case) -> None:
    M, frac, coef, arith, pairs, extra = case
    p = declared_p(fb.multiplication_precision(M, M, frac, frac, coef), len(pairs))
    model = fb.build_multiplication_model(n=1, p=p, bound=M, frac=frac, coef=coef, max_len=len(pairs))
    a, b, out = model.meta["inputs"] + model.meta["outputs"]
    delta = run_block(model, conventional_columns([{a: x, b: y} for x, y in pairs], extra), arith)
    assert_delta(delta, {out: [coef * x * y for x, y in pairs]}, f"B.1 p={p} coef={coef}")


@st.composite
def _mul_rounded_case(draw, max_n: int):
    M = draw(st.integers(1, max_n))
    n_cols = draw(st.integers(1, 6))
    p = declared_p(fb.multiplication_precision(M, M), n_cols)
    F = (p - 1) // 2
    pairs = draw(st.lists(st.tuples(grid(M, F), grid(M, F)), min_size=n_cols, max_size=n_cols))
    return M, p, draw(arithmetics), pairs


def _check_multiplication_rounded(case) -> None:
    M, p, arith, pairs = case
    model = fb.build_multiplication_model(n=1, p=p, bound=M, max_len=len(pairs))
    a, b, out = model.meta["inputs"] + model.meta["outputs"]
    delta = run_block(model, conventional_columns([{a: x, b: y} for x, y in pairs]), arith)
    F = (p - 1) // 2
    assert_delta(delta, {out: [reference_round(x * y, F, arith.tie) for x, y in pairs]}, f"B.1 rounded p={p}")


def _mul_tie_examples() -> list:
    """Rounded-multiplication cases whose products sit exactly on a rounding tie (x y = (k + 1/2)
    2^-F for k = 0, 1, +-), under both tie rules: explicit, so that catching a tie-rule bug does
    not depend on what the derandomized draws happen to hit."""
    p = declared_p(fb.multiplication_precision(1, 1), 4)
    u = Fraction(1, 2 ** ((p - 1) // 2))
    pairs = [(Fraction(1, 2), u), (Fraction(3, 2), u), (Fraction(-1, 2), u), (Fraction(-3, 2), u)]
    return [(1, p, Arithmetic(tie=tie), pairs) for tie in ("even", "away")]


def run_b1(profile: Profile) -> CheckOutcome:
    return combine([
        property_check(_mul_case(profile.max_n), _check_multiplication_exact, profile),
        property_check(_mul_rounded_case(profile.max_n), _check_multiplication_rounded, profile,
                       examples=_mul_tie_examples()),
    ])


# ---- B.2 linear operations --------------------------------------------------------------------


@st.composite
def _linear_case(draw, max_n: int):
    m = draw(st.integers(1, 3))
    o = draw(st.integers(1, 3))
    fw = draw(st.integers(0, 2))
    frac = draw(st.integers(0, 2))
    M = draw(st.integers(1, max_n))
    ins = [f"x{j}" for j in range(m)]
    # an output may be a fresh dim or one of the inputs (g = Wx still; Z = X + g)
    outs = draw(st.lists(st.sampled_from([f"y{i}" for i in range(3)] + ins), min_size=o, max_size=o, unique=True))
    W = {out: draw(st.fixed_dictionaries({x: grid(4, fw) for x in ins})) for out in outs}
    offset = draw(st.fixed_dictionaries({}, optional={out: grid(4, fw) for out in outs}))
    cols = draw(st.lists(st.fixed_dictionaries({x: grid(M, frac) for x in ins}), min_size=1, max_size=6))
    cols = [{x: M for x in ins}, {x: -M for x in ins}] + cols
    return ins, outs, W, offset, M, frac, draw(arithmetics), cols


def _check_linear(case) -> None:
    ins, outs, W, offset, M, frac, arith, cols = case
    p = declared_p(fb.linear_precision(W, M, frac, offset), len(cols))
    spec = fb.linear_spec(W, offset=offset)
    model = fb.ffn_block_model(1, p, ins + [o for o in outs if o not in ins], spec, len(cols), {"block": "B.2"})
    delta = run_block(model, conventional_columns(cols), arith)
    expected = {o: [sum((W[o][x] * col[x] for x in ins), Fraction(0)) + offset.get(o, 0) for col in cols] for o in outs}
    assert_delta(delta, expected, f"B.2 p={p}")


def run_b2(profile: Profile) -> CheckOutcome:
    return property_check(_linear_case(profile.max_n), _check_linear, profile)


# ---- B.3 indicator ----------------------------------------------------------------------------


@st.composite
def _indicator_case(draw, max_n: int):
    B = draw(st.integers(-max_n, max_n))
    M = draw(st.integers(max(abs(B), 1), abs(B) + max_n))
    xs = draw(st.lists(st.integers(-M, M), min_size=1, max_size=6))
    edges = [x for x in (B - 1, B, B + 1, -M, M) if -M <= x <= M]
    cols = edges + xs
    return B, M, draw(arithmetics), cols, draw(noise(len(cols)))


def _check_indicator(case) -> None:
    B, M, arith, xs, extra = case
    p = declared_p(fb.indicator_precision(B, M), len(xs))
    model = fb.build_indicator_model(n=1, p=p, B=B, bound=M, max_len=len(xs))
    (x,), (out,) = model.meta["inputs"], model.meta["outputs"]
    delta = run_block(model, conventional_columns([{x: v} for v in xs], extra), arith)
    assert_delta(delta, {out: [Fraction(int(v == B)) for v in xs]}, f"B.3 B={B} p={p}")


def run_b3(profile: Profile) -> CheckOutcome:
    return property_check(_indicator_case(profile.max_n), _check_indicator, profile)


# ---- B.4 lookup table -------------------------------------------------------------------------


@st.composite
def _lookup_case(draw, max_n: int):
    k = draw(st.integers(1, 3))
    ranges = []
    for _ in range(k):
        lo = draw(st.integers(-max_n, max_n))
        ranges.append((lo, lo + draw(st.integers(0, 3))))
    box = [()]
    for lo, hi in ranges:
        box = [key + (c,) for key in box for c in range(lo, hi + 1)]
    multi = draw(st.booleans())
    value = (st.fixed_dictionaries({"out0": grid(16, 2), "out1": grid(16, 2)}) if multi else grid(16, 2))
    table = draw(st.dictionaries(st.sampled_from(box), value, min_size=1, max_size=12))
    queries = draw(st.lists(st.sampled_from(box), min_size=1, max_size=8))
    cols = [box[0], box[-1]] + list(table)[:4] + queries
    return ranges, table, multi, draw(arithmetics), cols


def _check_lookup(case) -> None:
    ranges, table, multi, arith, keys = case
    k = len(ranges)
    key_dims = [f"key{j}" for j in range(k)]
    outs = ["out0", "out1"] if multi else ["out0"]
    out = None if multi else "out0"
    p = declared_p(fb.lookup_precision(table, ranges, out=out), len(keys))
    spec = fb.lookup_spec(key_dims, table, out, ranges=ranges)
    model = fb.ffn_block_model(1, p, key_dims + outs, spec, len(keys), {"block": "B.4"})
    delta = run_block(model, conventional_columns([dict(zip(key_dims, key)) for key in keys]), arith)

    def value(key, o):
        v = table.get(key, 0)
        return Fraction(v.get(o, 0)) if isinstance(v, dict) else Fraction(v)

    assert_delta(delta, {o: [value(key, o) for key in keys] for o in outs}, f"B.4 ranges={ranges} p={p}")


def run_b4(profile: Profile) -> CheckOutcome:
    return property_check(_lookup_case(profile.max_n), _check_lookup, profile)


# ---- B.5 threshold / B.6 interval -------------------------------------------------------------

DENOMINATORS = [1, 2, 3, 5, 8, 10, 40]  # 3/10, 11/40, ... as in Lemma B.18's next() pieces


def _rational(max_abs: int) -> st.SearchStrategy:
    return st.sampled_from(DENOMINATORS).flatmap(
        lambda d: st.integers(-max_abs * d, max_abs * d).map(lambda a: Fraction(a, d)))


_eps = st.sampled_from([Fraction(1, e) for e in (1, 2, 3, 4, 5, 10, 16, 40)] + [Fraction(3, 2), Fraction(7, 10)])


def _grid_inputs(draw, lo_bound: Fraction, hi_bound: Fraction, F: int, in_domain, edges: list[Fraction]) -> list[Fraction]:
    lo, hi = math.ceil(lo_bound * (1 << F)), math.floor(hi_bound * (1 << F))
    xs = draw(st.lists(st.integers(lo, hi).map(lambda q: Fraction(q, 1 << F)).filter(in_domain), min_size=1, max_size=6))
    return [e for e in edges if lo_bound <= e <= hi_bound and in_domain(e)] + xs


def _floor_to(x: Fraction, F: int) -> Fraction:
    return Fraction(math.floor(x * (1 << F)), 1 << F)


def _ceil_to(x: Fraction, F: int) -> Fraction:
    return Fraction(math.ceil(x * (1 << F)), 1 << F)


@st.composite
def _threshold_case(draw, max_n: int):
    u = draw(_rational(max_n))
    eps = draw(_eps)
    M = math.ceil(abs(u) + eps) + draw(st.integers(0, max_n))
    p = declared_p(fb.threshold_precision(u, eps, M), 10)
    F = (p - 1) // 2

    def in_domain(x):
        return x <= u - eps or x >= u

    # edges: the last grid value of (-inf, u - eps], the first of [u, inf), the ends of the range
    edges = [_floor_to(u - eps, F), _ceil_to(u, F), Fraction(-M), Fraction(M)]
    xs = _grid_inputs(draw, Fraction(-M), Fraction(M), F, in_domain, edges)
    return u, eps, M, p, draw(arithmetics), xs


def _check_threshold(case) -> None:
    u, eps, M, p, arith, xs = case
    model = fb.build_threshold_model(n=1, p=p, u=u, eps=eps, bound=M, max_len=len(xs))
    (x,), (out,) = model.meta["inputs"], model.meta["outputs"]
    delta = run_block(model, conventional_columns([{x: v} for v in xs]), arith)
    assert_delta(delta, {out: [Fraction(int(v >= u)) for v in xs]}, f"B.5 u={u} eps={eps} p={p}")


def run_b5(profile: Profile) -> CheckOutcome:
    return property_check(_threshold_case(profile.max_n), _check_threshold, profile)


@st.composite
def _interval_case(draw, max_n: int):
    u = draw(_rational(max_n))
    v = u + draw(_rational(max_n).map(abs))
    eps = draw(_eps)
    M = math.ceil(max(abs(u), abs(v)) + eps) + draw(st.integers(0, max_n))
    p = declared_p(fb.interval_precision(u, v, eps, M), 12)
    F = (p - 1) // 2

    def in_domain(x):
        return x <= u - eps or u <= x <= v or x >= v + eps

    edges = [_floor_to(u - eps, F), _ceil_to(u, F), _floor_to(v, F), _ceil_to(v + eps, F), Fraction(-M), Fraction(M)]
    xs = _grid_inputs(draw, Fraction(-M), Fraction(M), F, in_domain, edges)
    return u, v, eps, M, p, draw(arithmetics), xs


def _check_interval(case) -> None:
    u, v, eps, M, p, arith, xs = case
    model = fb.build_interval_model(n=1, p=p, u=u, v=v, eps=eps, bound=M, max_len=len(xs))
    (x,), (out,) = model.meta["inputs"], model.meta["outputs"]
    delta = run_block(model, conventional_columns([{x: w} for w in xs]), arith)
    assert_delta(delta, {out: [Fraction(int(u <= w <= v)) for w in xs]}, f"B.6 u={u} v={v} eps={eps} p={p}")


def run_b6(profile: Profile) -> CheckOutcome:
    return property_check(_interval_case(profile.max_n), _check_interval, profile)


CHECKS: list[Check] = [
    Check("B.1", "Multiplication (Lemma B.1)",
          "A width-2 ReGLU FFN computes g(x)[out] = x_a * x_b for any input: exactly when the product is on "
          "the grid, ROUND(x_a x_b, p) otherwise (fixed W3 = [1, -1]; the printed h1 + h2 gives |x_a| x_b).", run_b1),
    Check("B.2", "Linear operations (Lemma B.2)",
          "A width-w ReGLU FFN with b1 = 1, W2 = W, W3 = I computes g(x) = W x exactly.", run_b2),
    Check("B.3", "Indicator (Lemma B.3)",
          "A width-4 ReGLU FFN computes g(x)[out] = 1[x_i = B] for integer x_i (fixed signs and dyadic "
          "constants 1/2, 1/2, 3/4, 1/4, scale 4).", run_b3),
    Check("B.4", "Lookup table (Lemma B.4)",
          "A ReGLU FFN of width 4 per entry computes the table's value at the integer key (x_i1..x_ik) "
          "(mixed-radix code over the key box, then one scaled indicator per entry).", run_b4),
    Check("B.5", "Threshold (Lemma B.5)",
          "A width-2 ReGLU FFN computes 1[x_i >= u] on x_i in (-inf, u - eps] u [u, inf).", run_b5),
    Check("B.6", "Interval (Lemma B.6)",
          "A width-4 ReGLU FFN computes 1[u <= x_i <= v] on x_i in (-inf, u - eps] u [u, v] u [v + eps, inf).",
          run_b6),
]
