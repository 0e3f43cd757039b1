"""FFN building blocks of Appendix B.1 (Lemmas B.1-B.6) as composable specs.

Every builder takes the *names* of the residual dimensions it reads and writes and returns an
:class:`~constructions.blocks.FFNSpec` (ReGLU units written in exact rationals), so a later
construction can put many blocks into the FFN of one layer (``FFNSpec.sum``) and
:func:`~constructions.blocks.assemble` encodes them at its p.  The ReGLU unit is Def 3.1's
footnote 4, ``ReLU(w1.x + b1) * (w2.x + b2)``: only the *first* factor goes through ReLU.

Each lemma has

* ``<block>_spec(...)``: the construction (with the smallest fix where the printed one fails,
  see notes/errata/ffn_rnn_blocks.md), and where the printed version differs,
  ``paper_<block>_spec(...)``: the construction exactly as printed, kept for the tests that
  demonstrate its failure;
* ``<block>_precision(...)``: the smallest odd p at which the construction is exact, derived
  from the proof: every weight must lie in R_p, every intermediate value (W1 x + b1,
  W2 x + b2, their product, every scalar product W3_ij G_j, the output) must stay within
  the largest magnitude 2^F - 2^-F (F = (p-1)/2), and every value the proof needs exactly must
  have at most F fractional bits;
* ``build_<block>_model(n, p, ...)``: a standalone one-layer Transformer with no heads (so
  the layer is ``X + g(X)``) for inspection; the dimension names are in ``model.meta``.

``CATALOG`` maps block names to the model builders (keyword arguments n, p, ...).

The g(x) stated by a lemma is ``Z - X`` for that model (the residual adds g to X).  The
declared precisions assume each output dim holds 0 in the layer's input (a fresh dim), except
Lemma B.2's, which also covers an output dim that is one of its inputs.  Unit names default to
the block and its output dim; pass ``name`` when two blocks of one kind write the same dim.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Mapping, Sequence, Union

from .blocks import Coef, FFNSpec, Form, LayerSpec, Unit, assemble, round_to_grid
from .errors import InputError, PrecisionError
from .layout import LayoutBuilder
from .model import Model
from .numerics import MAX_P, Precision, check_p, to_fraction
from .vocab import Vocabulary

Value = Union[Coef, Mapping[str, Coef]]  # a scalar (written to one out dim) or a form over out dims

# ---- precision helpers (shared with rnn_blocks) ------------------------------------------------


def frac_bits(value: int | Fraction) -> int:
    """Number of fractional binary digits of a dyadic rational (0 for an integer).

    A value that is not dyadic (e.g. 0.6) lies in no R_p; InputError says so."""
    frac = to_fraction(value)
    den = frac.denominator
    if den & (den - 1):
        raise InputError(
            f"{value!r} is not a dyadic rational (its denominator {den} is not a power of 2), so no "
            f"R_p holds it exactly; round it to the grid first (blocks.round_to_grid)"
        )
    return den.bit_length() - 1


def min_precision(magnitude: int | Fraction, frac: int = 0) -> int:
    """The smallest odd p such that R_p holds every multiple of 2^-frac of absolute value
    <= magnitude: F = (p-1)/2 >= frac and 2^F - 2^-F >= magnitude (A.2, Eq. 5)."""
    mag = abs(to_fraction(magnitude))
    F = max(1, int(frac))
    while Fraction((1 << (2 * F)) - 1, 1 << F) < mag:
        F += 1
    return 2 * F + 1


def min_split_precision(magnitude: int | Fraction, frac: int = 0) -> Precision:
    """The smallest R(I, F) holding every multiple of 2^-frac of absolute value <= magnitude:
    F = max(1, frac) and the smallest I >= 1 with 2^I - 2^-F >= magnitude (A.2's range, split).
    :func:`min_precision` is this need folded into one odd p (I = F)."""
    mag = abs(to_fraction(magnitude))
    F = max(1, int(frac))
    I = 1
    while Fraction((1 << (I + F)) - 1, 1 << F) < mag:
        I += 1
    return Precision.split(I, F)


def join(*needs: "int | Precision") -> Precision:
    """Componentwise max of several needs (an odd p means R_p): the format that meets them all."""
    precs = [Precision.of(x) for x in needs]
    return Precision.split(max(x.I for x in precs), max(x.F for x in precs))


def fold(need: "int | Precision") -> int:
    """The smallest odd p whose R_p meets ``need`` (I = F = the larger of its I and F)."""
    prec = Precision.of(need)
    return 2 * max(prec.I, prec.F) + 1


def require_precision(p: "int | Precision", needed: "int | Precision", what: str) -> "int | Precision":
    """Validate p (an odd int, or a Precision) and refuse a format below what a construction
    needs: fewer integer or fewer fractional bits than ``needed`` (an odd p means R_p).  A
    Precision with ``below_declared_ok`` passes anyway (the precision frontier's exploration).
    Returns p as given."""
    prec = Precision.of(check_p(p) if not isinstance(p, Precision) else p)
    need = Precision.of(needed)
    if (prec.I < need.I or prec.F < need.F) and not prec.below_declared_ok:
        if prec.symmetric and need.symmetric:
            hint = f"needs p >= {need.p} to be exact (got p = {prec.p}); build it with p = {need.p} or larger"
        else:
            hint = (f"needs at least {need.I} integer and {need.F} fractional bits to be exact (got "
                    f"{prec.label}); build it with R(I >= {need.I}, F >= {need.F})")
        raise PrecisionError(f"{what} {hint}")
    return p


def precision_or_declared(p: "int | Precision | None", needed: "int | Precision", what: str,
                          declared_p: int | None = None) -> "int | Precision":
    """A builder's p: its declared ``declared_p`` (default: ``needed`` folded into one odd p,
    :func:`fold`) when none is given, else ``p`` validated and refused below ``needed``
    (:func:`require_precision`; a split ``needed`` compares I and F apart)."""
    if p is None:
        return fold(needed) if declared_p is None else declared_p
    return require_precision(p, needed, what)


WhyNot = Callable[[Precision], "str | None"]  # a builder's test of a format: None, or why it fails


def int_bits_at(why_not: WhyNot, F: int) -> int:
    """The smallest I with ``why_not(R(I, F))`` None (PrecisionError if no I up to MAX_P has it)."""
    for I in range(1, MAX_P - F):
        if why_not(Precision.split(I, F)) is None:
            return I
    raise PrecisionError(f"no R(I, F = {F}) with at most {MAX_P} bits meets this construction's needs")


def declared_split(why_not: WhyNot) -> Precision:
    """Declared (I, F) of a builder whose needs are a predicate: the smallest F for which some I
    works (F's own needs: grid constants, rounded values), then the smallest I at that F."""
    for F in range(1, MAX_P // 2):
        if why_not(Precision.split(MAX_P - 1 - F, F)) is None:
            return Precision.split(int_bits_at(why_not, F), F)
    raise PrecisionError(f"no format with at most {MAX_P} bits meets this construction's needs")


def checked_format(p: "int | Precision | None", declared_p: int, why_not: WhyNot, what: str) -> "int | Precision":
    """A builder's format whose needs are a predicate: ``declared_p`` when p is None, else p
    (an odd p or a Precision) unless ``why_not(prec)`` gives a reason (and prec is not
    ``below_declared_ok``); the refusal names ``p >= declared_p`` for R_p and, for R(I, F), the
    (I, F) needed at those fractional bits (the integer need can grow with F)."""
    if p is None:
        return declared_p
    prec = Precision.of(p)
    why = why_not(prec)
    if why is not None and not prec.below_declared_ok:
        if prec.symmetric:
            wanted, got = f"p >= {declared_p}", f"p = {prec.p}"
        else:
            F0 = declared_split(why_not).F
            wanted, got = f"R(I >= {int_bits_at(why_not, max(F0, prec.F))}, F >= {F0})", prec.label
        raise PrecisionError(f"{what} needs {wanted} (got {got}): {why}")
    return p


def embedding_precision(n: int, max_len: int) -> int:
    """p that a standalone model needs for its own conventions, whatever the block: the position
    dim holds up to max_len (A.3: l w_d), and the tied readout W_E holds the numbers up to n."""
    return min_precision(max(n, max_len, 1))


def model_precision(block_p: int, n: int, max_len: int) -> int:
    """The p a standalone block model needs: the block's own p and the embedding's."""
    return max(block_p, embedding_precision(n, max_len))


def ceil_grid(value: int | Fraction, p: int) -> Fraction:
    """The smallest element of the 2^-F grid that is >= value."""
    F = Precision.of(p).F
    frac = to_fraction(value)
    return Fraction(-((-frac.numerator << F) // frac.denominator), 1 << F)


def floor_grid(value: int | Fraction, p: int) -> Fraction:
    """The largest element of the 2^-F grid that is <= value."""
    F = Precision.of(p).F
    frac = to_fraction(value)
    return Fraction((frac.numerator << F) // frac.denominator, 1 << F)


def _max_abs(values: Sequence[int | Fraction]) -> Fraction:
    return max((abs(to_fraction(v)) for v in values), default=Fraction(0))


def check_dims(*names: str) -> None:
    for name in names:
        if not isinstance(name, str) or not name:
            raise InputError(f"a residual dimension name must be a non-empty string, got {name!r}")


def _as_form(value: Value, out: str | None, what: str) -> dict[str, Fraction]:
    """A lookup/recite value as a form over output dims."""
    if isinstance(value, Mapping):
        form = {dim: to_fraction(c) for dim, c in value.items()}
    else:
        if out is None:
            raise InputError(f"{what}: a scalar value needs an output dimension `out`")
        form = {out: to_fraction(value)}
    for dim in form:
        check_dims(dim)
    return form


def ffn_block_model(
    n: int, p: int, dims: Sequence[str], spec: FFNSpec, max_len: int | None, meta: dict, *,
    block_p: int = 3, what: str = "this block",
) -> Model:
    """A standalone model of one Transformer layer with no heads and the given FFN (the layer
    computes X + g(X)), with the given dims allocated (for inspection and the checks).

    Refuses a p below max(block_p, embedding_precision(n, max_len)); max_len defaults to n."""
    layer = LayerSpec("transformer", heads=[], ffn=spec, name=meta.get("block", ""))
    return standalone_model("transformer", n, p, dims, [layer], max_len, meta, block_p=block_p, what=what)


def standalone_model(
    arch: str, n: int, p: int, dims: Sequence[str], layers: list[LayerSpec], max_len: int | None, meta: dict, *,
    block_p: int = 3, what: str = "this block",
) -> Model:
    """A standalone model of the given layers with the given dims allocated (numbers 1..n).

    Refuses a p below max(block_p, embedding_precision(n, max_len)); max_len defaults to n."""
    length = max_len if max_len is not None else max(n, 1)
    require_precision(p, model_precision(block_p, n, length), what)
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    for dim in dims:
        if dim not in lb:
            lb.alloc(dim)
    return assemble(arch=arch, p=p, layout=lb.build(), vocab=vocab, layers=layers, max_len=length, meta=meta)


# ---- Lemma B.1: multiplication ----------------------------------------------------------------


def multiplication_spec(a: str, b: str, out: str, *, coef: Coef = 1, name: str | None = None) -> FFNSpec:
    """Lemma B.1 (Multiplication), fixed: g(x)[out] = coef * x_a * x_b, width 2.

    Units (w2 = e_b, b1 = b2 = 0):  ReLU(x_a) * x_b  with output weight +coef,
                                     ReLU(-x_a) * x_b with output weight -coef,
    so g = coef * (ReLU(x_a) - ReLU(-x_a)) * x_b = coef * x_a * x_b for every real x.
    The paper prints W3 h = h1 + h2, which gives coef * |x_a| * x_b (erratum B1-E1).
    a == b is allowed (x_a^2, as Lemma B.13 uses for k^2).

    Preconditions: none on x; exact at p >= multiplication_precision(...) when |x_a| <= bound_a,
    |x_b| <= bound_b and the inputs have at most frac_a, frac_b fractional bits; with more
    fractional bits the result is ROUND(coef * x_a * x_b, p) (A.2: one product, one rounding)
    when coef = +-1.
    """
    check_dims(a, b, out)
    name = name or f"mul:{out}"
    return FFNSpec([
        Unit(f"{name}:pos", {a: 1}, 0, {b: 1}, 0, {out: coef}),
        Unit(f"{name}:neg", {a: -1}, 0, {b: 1}, 0, {out: -to_fraction(coef)}),
    ])


def paper_multiplication_spec(a: str, b: str, out: str, *, name: str | None = None) -> FFNSpec:
    """Lemma B.1 exactly as printed: W1 x = [x_a, -x_a], W2 x = [x_b, x_b], W3 h = h1 + h2.

    Under Def 3.1's ReGLU this computes |x_a| * x_b (and |x_a| * ReLU(x_b) under the proof's
    ``ReLU(W1 x) * ReLU(W2 x)``): wrong whenever x_a < 0.  Kept for the erratum test."""
    check_dims(a, b, out)
    name = name or f"mul-paper:{out}"
    return FFNSpec([
        Unit(f"{name}:pos", {a: 1}, 0, {b: 1}, 0, {out: 1}),
        Unit(f"{name}:neg", {a: -1}, 0, {b: 1}, 0, {out: 1}),
    ])


def multiplication_precision(bound_a: Coef, bound_b: Coef, frac_a: int = 0, frac_b: int = 0, coef: Coef = 1) -> int:
    """p for Lemma B.1 with |x_a| <= bound_a, |x_b| <= bound_b (frac_a, frac_b fractional bits).

    Intermediates: W1 x = +-x_a, W2 x = x_b, G = |x_a x_b|, W3 products |coef| |x_a x_b|;
    exactness needs frac_a + frac_b + frac_bits(coef) fractional bits."""
    ma, mb, c = abs(to_fraction(bound_a)), abs(to_fraction(bound_b)), abs(to_fraction(coef))
    magnitude = max(ma, mb, ma * mb, c * ma * mb, c)
    return min_precision(magnitude, frac_a + frac_b + frac_bits(coef))


def build_multiplication_model(
    n: int, p: int, *, bound: Coef | None = None, frac: int = 0, coef: Coef = 1,
    variant: str = "fixed", max_len: int | None = None,
) -> Model:
    """Lemma B.1 standalone: dims ``mul:a``, ``mul:b`` -> ``mul:out`` (inputs |x| <= bound, default n)."""
    bound = n if bound is None else bound
    block_p = multiplication_precision(bound, bound, frac, frac, coef) if variant == "fixed" else 3
    a, b, out = "mul:a", "mul:b", "mul:out"
    if variant == "fixed":
        spec = multiplication_spec(a, b, out, coef=coef)
    elif variant == "paper":
        spec = paper_multiplication_spec(a, b, out)
    else:
        raise InputError(f"unknown variant {variant!r}; use 'fixed' or 'paper'")
    meta = {"block": "B.1", "variant": variant, "inputs": [a, b], "outputs": [out], "bound": str(bound), "frac": frac}
    return ffn_block_model(n, p, [a, b, out], spec, max_len, meta, block_p=block_p, what="Lemma B.1 (multiplication)")


# ---- Lemma B.2: linear operations -------------------------------------------------------------


def linear_spec(rows: Mapping[str, Form], *, offset: Mapping[str, Coef] | None = None, name: str | None = None) -> FFNSpec:
    """Lemma B.2 (Linear operations): g(x)[o] = sum_j W[o][j] x_j (+ offset[o]), one unit per row.

    As printed: b1 = 1, W1 = 0, W2 = W, b2 = 0, W3 = I, b3 = 0 (the optional ``offset`` is b3,
    0 in the lemma).  Each unit is ReLU(1) * (W x)_o.  Exact at p >= linear_precision(...)."""
    name = name or "lin"
    units = []
    for o, form in rows.items():
        check_dims(o, *form)
        units.append(Unit(f"{name}:{o}", {}, 1, dict(form), 0, {o: 1}))
    return FFNSpec(units, dict(offset or {}))


def linear_precision(rows: Mapping[str, Form], bound: Coef, frac: int = 0, offset: Mapping[str, Coef] | None = None) -> int:
    """p for Lemma B.2 with inputs |x_j| <= bound having <= frac fractional bits.

    Intermediates: W2 x per row <= sum_j |W_oj| bound (+ |offset|), each product |W_oj| bound;
    the layer's output X_o + g_o adds up to one more bound (when an output dim is also an input);
    exactness needs frac + max frac_bits(W_oj) fractional bits."""
    m = abs(to_fraction(bound))
    offset = offset or {}
    coefs = [c for form in rows.values() for c in form.values()] + list(offset.values())
    magnitude = max([Fraction(1), _max_abs(coefs) * max(m, 1)] + [
        m + sum((abs(to_fraction(c)) * m for c in form.values()), Fraction(0)) + abs(to_fraction(offset.get(o, 0)))
        for o, form in rows.items()
    ])
    fb = max((frac_bits(c) for c in coefs), default=0)
    return min_precision(magnitude, frac + fb)


def build_linear_model(
    n: int, p: int, *, matrix: Sequence[Sequence[Coef]] = ((1, 1), (1, -1)), bound: Coef | None = None,
    frac: int = 0, max_len: int | None = None,
) -> Model:
    """Lemma B.2 standalone: inputs ``lin:in:j``, outputs ``lin:out:i`` = sum_j matrix[i][j] x_j."""
    bound = n if bound is None else bound
    if not matrix or any(len(r) != len(matrix[0]) for r in matrix):
        raise InputError("matrix must be a non-empty list of equal-length rows")
    ins = [f"lin:in:{j}" for j in range(len(matrix[0]))]
    outs = [f"lin:out:{i}" for i in range(len(matrix))]
    rows = {o: {ins[j]: c for j, c in enumerate(r) if c} for o, r in zip(outs, matrix)}
    meta = {"block": "B.2", "inputs": ins, "outputs": outs, "bound": str(bound), "frac": frac}
    return ffn_block_model(n, p, ins + outs, linear_spec(rows), max_len, meta,
                           block_p=linear_precision(rows, bound, frac), what="Lemma B.2 (linear operations)")


# ---- Lemma B.3: indicator ---------------------------------------------------------------------

# The fixed constants (errata B3-E1, B3-E2): the paper's 0.6 / 0.4 / 10 lie in no R_p; any offsets
# (1/2, 1/2, a, 1 - a) with scale c and c (a - 1/2) = 1 work, and a = 3/4, c = 4 are dyadic.
INDICATOR_OFFSETS: tuple[Fraction, Fraction, Fraction, Fraction] = (
    Fraction(1, 2), Fraction(1, 2), Fraction(3, 4), Fraction(1, 4))
INDICATOR_SCALE = 4
PAPER_INDICATOR_OFFSETS = (Fraction(1, 2), Fraction(1, 2), Fraction(3, 5), Fraction(2, 5))  # 0.5 0.5 0.6 0.4
PAPER_INDICATOR_SCALE = 10


def _indicator_units(
    s: Form, s_bias: Coef, code: int, out: Mapping[str, Fraction], name: str,
    offsets: Sequence[Fraction] = INDICATOR_OFFSETS, scale: Coef = INDICATOR_SCALE,
    signs: Sequence[int] = (1, -1, 1, -1),
) -> tuple[list[Unit], dict[str, Fraction]]:
    """Units and b3 of Lemma B.3's indicator of the integer t = s.x + s_bias being ``code``,
    written with weight out[o] to each output dim o:

      g = c [ReLU(t - code - o1) - ReLU(t - code + o2)] + c [ReLU(code - t - o3) - ReLU(code - t + o4)] + c
    """
    neg = {dim: -to_fraction(c) for dim, c in s.items()}
    sb = to_fraction(s_bias)
    pre = [
        (dict(s), sb - code - offsets[0]),
        (dict(s), sb - code + offsets[1]),
        (neg, code - sb - offsets[2]),
        (neg, code - sb + offsets[3]),
    ]
    units = [
        Unit(f"{name}:{i + 1}", w1, b1, {}, 1, {o: sign * to_fraction(scale) * v for o, v in out.items()})
        for i, ((w1, b1), sign) in enumerate(zip(pre, signs))
    ]
    return units, {o: to_fraction(scale) * v for o, v in out.items()}


def integer_hat(name: str, form: Form, bias: Coef, out: Form, gate: Form | None = None, gate_bias: Coef = 1) -> list[Unit]:
    """[z = 0] * (gate . x + gate_bias) written to ``out``, for an *integer* z = form . x + bias:
    the hat ReLU(z + 1) - 2 ReLU(z) + ReLU(z - 1) of Lemma B.3 in integer form (as in Lemma B.22's
    proof), three ReGLU units whose second factor is the gate (default: the constant 1).  Exact
    at any p that holds |z| + 1 and the gated value."""
    g = dict(gate or {})
    return [
        Unit(f"{name}:{tag}", dict(form), to_fraction(bias) + shift, g, gate_bias,
             {o: w * to_fraction(v) for o, v in out.items()})
        for tag, shift, w in (("+1", 1, 1), ("0", 0, -2), ("-1", -1, 1))
    ]


def indicator_spec(x: str, out: str, B: int, *, value: Coef = 1, name: str | None = None) -> FFNSpec:
    """Lemma B.3 (Indicator), fixed: g(x)[out] = value * 1[x_x = B] for integer x_x, width 4.

    Printed: b1 = [-B-0.5, -B+0.5, B-0.6, B+0.4], W1 x = [x, x, -x, -x], b2 = 1, W3 = 10[1 -1 -1 1],
    b3 = 10.  Fixed (errata B3-E1, B3-E2): W3 signs [1 -1 1 -1] (as the proof's own formula), and the
    non-dyadic 0.6 / 0.4 / 10 replaced by 3/4, 1/4, 4 (ROUND(0.4, p) != 0.4 at every p, so the
    printed constants give 5 - 10 ROUND(0.4, p) != 1 at x = B).
    Preconditions: x_x an integer, B an integer.  Exact at p >= indicator_precision(B, bound)."""
    check_dims(x, out)
    if isinstance(B, bool) or not isinstance(B, int):
        raise InputError(f"Lemma B.3 needs an integer constant B, got {B!r}")
    units, bias = _indicator_units({x: 1}, 0, B, {out: to_fraction(value)}, name or f"ind:{out}")
    return FFNSpec(units, bias)


def paper_indicator_spec(x: str, out: str, B: int, p: int, *, w3: str = "printed", name: str | None = None) -> FFNSpec:
    """Lemma B.3 as printed, with its constants rounded to R_p (what a p-bit model holds).

    w3="printed": W3 = 10 [1 -1 -1 1] as printed (gives 20 for x < B even in exact arithmetic);
    w3="formula": W3 = 10 [1 -1 1 -1], the signs of the proof's own expansion (correct in exact
    arithmetic, but 0.6 / 0.4 round: 5 - 10 ROUND(0.4, p) at x = B)."""
    check_dims(x, out)
    signs = {"printed": (1, -1, -1, 1), "formula": (1, -1, 1, -1)}
    if w3 not in signs:
        raise InputError(f"unknown w3 reading {w3!r}; use 'printed' or 'formula'")
    # The biases B - 0.6 and B + 0.4 are rounded as constants (B integer, so ROUND(B - 0.6) = B - ROUND(0.6)).
    offsets = tuple(round_to_grid(o, p) for o in PAPER_INDICATOR_OFFSETS)
    units, bias = _indicator_units({x: 1}, 0, B, {out: Fraction(1)}, name or f"ind-paper:{out}",
                                   offsets, PAPER_INDICATOR_SCALE, signs[w3])
    return FFNSpec(units, bias)


def indicator_precision(B: int, bound: Coef, value: Coef = 1) -> int:
    """p for Lemma B.3 (fixed) with integer inputs |x| <= bound.

    Intermediates: W1 x + b1 <= |x - B| + 3/4 <= bound + |B| + 1, W3 products 4 |value| times
    that, b3 = 4 value; constants 1/2, 3/4, 1/4 need 2 fractional bits."""
    m = abs(to_fraction(bound)) + abs(B) + 1
    v = abs(to_fraction(value))
    return min_precision(max(m, INDICATOR_SCALE * max(v, 1) * m), 2 + frac_bits(value))


def build_indicator_model(
    n: int, p: int, *, B: int = 1, bound: Coef | None = None, variant: str = "fixed", max_len: int | None = None,
) -> Model:
    """Lemma B.3 standalone: ``ind:x`` -> ``ind:out`` = 1[x = B] (integer inputs |x| <= bound, default n).

    variant "paper" / "paper-formula": the printed construction with ROUND'ed constants."""
    bound = n if bound is None else bound
    x, out = "ind:x", "ind:out"
    if variant == "fixed":
        block_p = indicator_precision(B, bound)
        spec = indicator_spec(x, out, B)
    elif variant in ("paper", "paper-formula"):
        Precision.of(p)  # validates an odd p or takes R(I, F)
        block_p = 3
        spec = paper_indicator_spec(x, out, B, p, w3="printed" if variant == "paper" else "formula")
    else:
        raise InputError(f"unknown variant {variant!r}; use 'fixed', 'paper' or 'paper-formula'")
    meta = {"block": "B.3", "variant": variant, "inputs": [x], "outputs": [out], "B": B, "bound": str(bound)}
    return ffn_block_model(n, p, [x, out], spec, max_len, meta, block_p=block_p, what="Lemma B.3 (indicator)")


# ---- Lemma B.4: lookup table ------------------------------------------------------------------


def _key_ranges(table: Mapping[tuple[int, ...], Value], k: int, ranges: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]]:
    for key in table:
        if not isinstance(key, tuple) or len(key) != k or any(isinstance(c, bool) or not isinstance(c, int) for c in key):
            raise InputError(f"lookup key {key!r} is not a tuple of {k} integers")
    if ranges is None:
        if not table:
            raise InputError("an empty lookup table needs explicit key ranges")
        ranges = [(min(key[j] for key in table), max(key[j] for key in table)) for j in range(k)]
    ranges = [(int(lo), int(hi)) for lo, hi in ranges]
    if len(ranges) != k or any(lo > hi for lo, hi in ranges):
        raise InputError(f"key ranges {ranges} must be {k} pairs (lo, hi) with lo <= hi")
    for key in table:
        if any(not lo <= c <= hi for c, (lo, hi) in zip(key, ranges)):
            raise InputError(f"lookup key {key!r} lies outside the key ranges {ranges}")
    return ranges


def lookup_code(ranges: Sequence[tuple[int, int]]) -> tuple[list[int], int]:
    """Mixed-radix weights w_j = prod_{i<j} (hi_i - lo_i + 1) and the offset -sum w_j lo_j:
    code(x) = sum_j w_j (x_j - lo_j) is a bijection from the key box onto 0..N-1."""
    weights, w = [], 1
    for lo, hi in ranges:
        weights.append(w)
        w *= hi - lo + 1
    return weights, -sum(wj * lo for wj, (lo, _) in zip(weights, ranges))


def lookup_spec(
    keys: Sequence[str], table: Mapping[tuple[int, ...], Value], out: str | None = None, *,
    ranges: Sequence[tuple[int, int]] | None = None, name: str | None = None,
) -> FFNSpec:
    """Lemma B.4 (Lookup table): g(x) = table[(x_keys[0], ..., x_keys[k-1])] (0 for keys not in
    the table), width 4 per non-zero entry (<= 4 B^k).

    As the proof: one linear code of the key, then one scaled indicator (Lemma B.3, fixed) per
    entry; the code feeds W1 directly, so it is one layer.  The code is mixed radix over the key
    box ``ranges`` (lo_j <= x_j <= hi_j, default: the table's own key box): the printed
    x_1 + B x_2 + ... is injective only for keys in {0..B-1} (erratum B4-E1).
    A value is a scalar (written to ``out``) or a form {out dim: value}.
    Preconditions: integer inputs inside the key box (for one key, any integer input)."""
    check_dims(*keys)
    if len(set(keys)) != len(keys):
        raise InputError(f"lookup key dimensions {list(keys)} must be distinct")
    ranges = _key_ranges(table, len(keys), ranges)
    weights, offset = lookup_code(ranges)
    s = {dim: w for dim, w in zip(keys, weights)}
    name = name or f"lut:{'/'.join(keys)}"
    spec = FFNSpec()
    for key, value in table.items():
        form = {o: v for o, v in _as_form(value, out, f"lookup[{key}]").items() if v != 0}
        if not form:
            continue
        code = sum(w * (c - lo) for w, c, (lo, _) in zip(weights, key, ranges))
        units, bias = _indicator_units(s, offset, code, form, f"{name}:{'_'.join(map(str, key))}")
        spec = spec + FFNSpec(units, bias)
    return spec


def paper_lookup_spec(keys: Sequence[str], table: Mapping[tuple[int, ...], Coef], out: str, B: int, *, name: str | None = None) -> FFNSpec:
    """Lemma B.4 as printed: code x_1 + B x_2 + ... + B^(k-1) x_k (no key offset), then indicators.

    Collides when keys range over {0..B} (e.g. B = 2: (2, 0) and (0, 1) both code 2)."""
    check_dims(out, *keys)
    s = {dim: B**j for j, dim in enumerate(keys)}
    spec = FFNSpec()
    for key, value in table.items():
        if value == 0:
            continue
        code = sum(B**j * c for j, c in enumerate(key))
        units, bias = _indicator_units(s, 0, code, {out: to_fraction(value)},
                                       f"{name or 'lut-paper'}:{'_'.join(map(str, key))}")
        spec = spec + FFNSpec(units, bias)
    return spec


def lookup_precision(
    table: Mapping[tuple[int, ...], Value], ranges: Sequence[tuple[int, int]] | None = None, *,
    out: str | None = "out", input_bounds: Sequence[int] | None = None,
) -> int:
    """p for Lemma B.4.  With N = prod (hi_j - lo_j + 1) and inputs |x_j| <= input_bounds[j]
    (default: the key box; only a one-key lookup may take inputs outside it):
    W1 x + b1 <= N + 1 plus the code's reach outside the box, the bias |offset| + N + 1,
    products w_j |x_j|, W3 products 4 |v| (N + 1), b3 = 4 sum_keys v per output dim;
    fractional bits 2 + those of the values."""
    k = len(next(iter(table))) if table else len(ranges or [])
    ranges = _key_ranges(table, k, ranges)
    weights, offset = lookup_code(ranges)
    N = math.prod(hi - lo + 1 for lo, hi in ranges)
    bounds = list(input_bounds) if input_bounds is not None else [max(abs(lo), abs(hi)) for lo, hi in ranges]
    code_reach = sum(w * b for w, b in zip(weights, bounds)) + abs(offset)
    forms = [_as_form(v, out, "lookup") for v in table.values()]
    vals = [v for f in forms for v in f.values()]
    per_out: dict[str, Fraction] = {}
    for f in forms:
        for o, v in f.items():
            per_out[o] = per_out.get(o, Fraction(0)) + INDICATOR_SCALE * abs(v)
    reach = code_reach + N + 1
    magnitude = max([Fraction(reach), INDICATOR_SCALE * _max_abs(vals) * reach] + list(per_out.values()))
    fb = max((frac_bits(v) for v in vals), default=0)
    return min_precision(magnitude, 2 + fb)


def _default_table(B: int, k: int) -> dict[tuple[int, ...], int]:
    """A deterministic demo table on {0..B-1}^k: value = 1 + (sum of digits mod B)."""
    keys = [()]
    for _ in range(k):
        keys = [key + (c,) for key in keys for c in range(B)]
    return {key: 1 + sum(key) % B for key in keys}


def build_lookup_model(
    n: int, p: int, *, B: int = 3, k: int = 2, table: Mapping[tuple[int, ...], Coef] | None = None,
    ranges: Sequence[tuple[int, int]] | None = None, max_len: int | None = None,
) -> Model:
    """Lemma B.4 standalone: keys ``lut:key:0..k-1`` -> ``lut:out`` (default table on {0..B-1}^k)."""
    if table is None:
        table = _default_table(B, k)
        ranges = ranges or [(0, B - 1)] * k
    k = len(next(iter(table)))
    keys = [f"lut:key:{j}" for j in range(k)]
    out = "lut:out"
    spec = lookup_spec(keys, table, out, ranges=ranges)
    meta = {"block": "B.4", "inputs": keys, "outputs": [out], "entries": len(table)}
    return ffn_block_model(n, p, keys + [out], spec, max_len, meta,
                           block_p=lookup_precision(table, ranges, out=out), what="Lemma B.4 (lookup table)")


# ---- Lemma B.5: threshold ---------------------------------------------------------------------


def threshold_step(eps: Coef) -> Fraction:
    """The step the construction uses: the largest power of two <= min(eps, 1).

    A smaller step only widens the domain (-inf, u - eps] u [u, inf), and a power of two makes
    2 / step and step / 2 exact in R_p."""
    e = to_fraction(eps)
    if e <= 0:
        raise InputError(f"Lemma B.5/B.6 needs eps > 0, got {eps!r}")
    e = min(e, Fraction(1))
    j = 0
    while Fraction(1, 1 << j) > e:
        j += 1
    return Fraction(1, 1 << j)


def _threshold_units(x: str, out: str, u_grid: Fraction, step: Fraction, sign: int, name: str) -> list[Unit]:
    """ReLU(x - u + step) - ReLU(x - u + step/2), times 2/step: 0 for x <= u - step, 1 for x >= u - step/2."""
    w = sign * 2 / step
    return [
        Unit(f"{name}:1", {x: 1}, -u_grid + step, {}, 1, {out: w}),
        Unit(f"{name}:2", {x: 1}, -u_grid + step / 2, {}, 1, {out: -w}),
    ]


def threshold_spec(x: str, out: str, u: Coef, eps: Coef, p: int, *, name: str | None = None) -> FFNSpec:
    """Lemma B.5 (Threshold), fixed: g(x)[out] = 1[x_x >= u] for x_x in (-inf, u-eps] u [u, inf), width 2.

    Printed: b1 = [-u+eps, -u+eps/2], W1 x = [x, x], b2 = 1, W3 = (2/eps)[1 -1 -1 1] (4 entries
    for 2 units) and the result formula (2/eps)(ReLU(x-u-eps) - ReLU(x-u+0.5)) (erratum B5-E1).
    Built: the printed b1 with W3 = (2/eps)[1 -1].  For u, eps not in R_p the builder uses
    u' = the smallest grid value >= u and eps' = threshold_step(eps) <= eps: on grid inputs,
    x <= u - eps implies x <= u' - eps' and x >= u implies x >= u', so the claim for (u', eps')
    implies the claim for (u, eps).  The printed claim "x > u" is read as 1[x >= u] (= 1[x > u - eps]
    on the domain; at x = u the construction gives 1).
    Exact for every input in R_p with |x| <= bound at p >= threshold_precision(u, eps, bound)."""
    check_dims(x, out)
    Precision.of(p)  # validates an odd p or takes R(I, F)
    step = threshold_step(eps)
    if step / 2 < Fraction(1, Precision.of(p).scale):
        raise PrecisionError(
            f"Lemma B.5 with eps = {eps} needs eps/2 on the grid: p >= {2 * (frac_bits(step) + 1) + 1} (got {p})")
    return FFNSpec(_threshold_units(x, out, ceil_grid(u, p), step, 1, name or f"thr:{out}"))


def paper_threshold_spec(x: str, out: str, u: Coef, eps: Coef, *, name: str | None = None) -> FFNSpec:
    """Lemma B.5's printed result formula g = (2/eps)(ReLU(x-u-eps) - ReLU(x-u+0.5)): biases
    -u-eps, -u+0.5 and W3 = (2/eps)[1 -1].  Gives -1 at x = u = 0, eps = 1 (erratum B5-E1)."""
    check_dims(x, out)
    u, e = to_fraction(u), to_fraction(eps)
    w = 2 / e
    name = name or f"thr-paper:{out}"
    return FFNSpec([
        Unit(f"{name}:1", {x: 1}, -u - e, {}, 1, {out: w}),
        Unit(f"{name}:2", {x: 1}, -u + Fraction(1, 2), {}, 1, {out: -w}),
    ])


def threshold_precision(u: Coef, eps: Coef, bound: Coef) -> int:
    """p for Lemma B.5 with inputs |x| <= bound: step = threshold_step(eps) needs step/2 on the
    grid; W1 x + b1 <= bound + |u| + 2 (u' <= u + 1), W3 = 2/step, W3 products
    (2/step)(bound + |u| + 2)."""
    step = threshold_step(eps)
    reach = abs(to_fraction(bound)) + abs(to_fraction(u)) + 2
    return min_precision(2 / step * reach, frac_bits(step) + 1)


def build_threshold_model(
    n: int, p: int, *, u: Coef = Fraction(1, 2), eps: Coef = Fraction(1, 4), bound: Coef | None = None,
    variant: str = "fixed", max_len: int | None = None,
) -> Model:
    """Lemma B.5 standalone: ``thr:x`` -> ``thr:out`` = 1[x >= u] off (u - eps, u) (|x| <= bound, default n)."""
    bound = n if bound is None else bound
    x, out = "thr:x", "thr:out"
    if variant == "fixed":
        block_p = threshold_precision(u, eps, bound)
        require_precision(p, block_p, "Lemma B.5 (threshold)")
        spec = threshold_spec(x, out, u, eps, p)
    elif variant == "paper":
        Precision.of(p)  # validates an odd p or takes R(I, F)
        block_p = 3
        spec = paper_threshold_spec(x, out, u, eps)
    else:
        raise InputError(f"unknown variant {variant!r}; use 'fixed' or 'paper'")
    meta = {"block": "B.5", "variant": variant, "inputs": [x], "outputs": [out], "u": str(u), "eps": str(eps), "bound": str(bound)}
    return ffn_block_model(n, p, [x, out], spec, max_len, meta, block_p=block_p, what="Lemma B.5 (threshold)")


# ---- Lemma B.6: interval ----------------------------------------------------------------------


def interval_spec(x: str, out: str, u: Coef, v: Coef, eps: Coef, p: int, *, name: str | None = None) -> FFNSpec:
    """Lemma B.6 (Interval): g(x)[out] = 1[u <= x_x <= v] for x_x in (-inf, u-eps] u [u, v] u [v+eps, inf),
    width 4: threshold(u) - threshold(v + eps), as the proof says.  (The printed domain ends with
    [v, inf]; the proof's own construction needs [v + eps, inf): erratum B6-E1.)
    Grid adjustment as Lemma B.5: u' = ceil to grid, v' = floor to grid, eps' = threshold_step(eps),
    second threshold at v' + eps' (0 for grid x <= v, 1 for x >= v + eps).
    Preconditions: u <= v.  Exact for |x| <= bound at p >= interval_precision(u, v, eps, bound)."""
    check_dims(x, out)
    Precision.of(p)  # validates an odd p or takes R(I, F)
    if to_fraction(u) > to_fraction(v):
        raise InputError(f"Lemma B.6 needs u <= v, got u = {u}, v = {v}")
    step = threshold_step(eps)
    if step / 2 < Fraction(1, Precision.of(p).scale):
        raise PrecisionError(
            f"Lemma B.6 with eps = {eps} needs eps/2 on the grid: p >= {2 * (frac_bits(step) + 1) + 1} (got {p})")
    name = name or f"int:{out}"
    lower = _threshold_units(x, out, ceil_grid(u, p), step, 1, f"{name}:lo")
    upper = _threshold_units(x, out, floor_grid(v, p) + step, step, -1, f"{name}:hi")
    return FFNSpec(lower + upper)


def interval_precision(u: Coef, v: Coef, eps: Coef, bound: Coef) -> int:
    """p for Lemma B.6: the larger of the two thresholds' needs (u and v + eps)."""
    step = threshold_step(eps)
    return max(threshold_precision(u, eps, bound), threshold_precision(abs(to_fraction(v)) + step, eps, bound))


def build_interval_model(
    n: int, p: int, *, u: Coef = 1, v: Coef = 2, eps: Coef = Fraction(1, 2), bound: Coef | None = None,
    max_len: int | None = None,
) -> Model:
    """Lemma B.6 standalone: ``int:x`` -> ``int:out`` = 1[u <= x <= v] (|x| <= bound, default n)."""
    bound = n if bound is None else bound
    block_p = interval_precision(u, v, eps, bound)
    require_precision(p, block_p, "Lemma B.6 (interval)")
    x, out = "int:x", "int:out"
    meta = {"block": "B.6", "inputs": [x], "outputs": [out], "u": str(u), "v": str(v), "eps": str(eps), "bound": str(bound)}
    return ffn_block_model(n, p, [x, out], interval_spec(x, out, u, v, eps, p), max_len, meta,
                           block_p=block_p, what="Lemma B.6 (interval)")


CATALOG: dict[str, Callable[..., Model]] = {
    "multiplication": build_multiplication_model,
    "linear": build_linear_model,
    "indicator": build_indicator_model,
    "lookup": build_lookup_model,
    "threshold": build_threshold_model,
    "interval": build_interval_model,
}
