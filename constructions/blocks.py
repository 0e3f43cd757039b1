"""Composing constructions from their action on named residual dimensions.

A construction is written as *specs* in exact real numbers (ints and Fractions) keyed by
dimension names, never by indices:

* :class:`Unit`: one ReGLU hidden unit, ``out += ReLU(w1 . x + b1) * (w2 . x + b2)``;
* :class:`FFNSpec`: units plus an output bias (b3);
* :class:`HeadSpec`: key rows, query rows (same count) and value rows (output dim -> form);
* :class:`LinearUnitSpec`: rows of A and B of Def 3.5 (state dim -> form);
* :class:`LayerSpec`: one layer (Transformer or linear RNN) = heads or a linear unit, plus an FFN.

:func:`assemble` turns specs into a :class:`Model` at a given p, encoding every weight exactly
(a weight that is not in R_p raises :class:`WeightError` naming it: a builder that needs a
rounded constant must round it explicitly, e.g. with :func:`round_to_grid`).

The 1/sqrt(d) factor of Def 3.1 is compensated *exactly*: the assembled layout is padded with
unused dimensions (``"pad:0"``, ...) up to a perfect square d = s^2, and every query row of a
head with ``compensate_sqrt_d=True`` is multiplied by s, so softmax sees exactly the scores the
proof designed.  (Tracr never compensated this factor; see notes/architecture.md.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Literal, Mapping, Union

import numpy as np

from .errors import PrecisionError, WeightError
from .layout import Layout
from .model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros
from .numerics import Precision, div_round, to_fraction
from .vocab import Token, Vocabulary

Coef = Union[int, Fraction]
Form = Mapping[str, Coef]  # a linear form over the residual: dim name -> coefficient


@dataclass
class Unit:
    """One ReGLU hidden unit: contributes ReLU(w1.x + b1) * (w2.x + b2) * out[dim] to each dim."""

    name: str
    w1: Form
    b1: Coef
    w2: Form
    b2: Coef
    out: Form


@dataclass
class FFNSpec:
    units: list[Unit] = field(default_factory=list)
    bias: dict[str, Coef] = field(default_factory=dict)  # b3

    def __add__(self, other: "FFNSpec") -> "FFNSpec":
        bias = dict(self.bias)
        for k, v in other.bias.items():
            bias[k] = bias.get(k, 0) + v
        return FFNSpec(self.units + other.units, bias)

    @staticmethod
    def sum(specs: Iterable["FFNSpec"]) -> "FFNSpec":
        out = FFNSpec()
        for s in specs:
            out = out + s
        return out


@dataclass
class HeadSpec:
    """One attention head: scores = sum_r (keys[r] . x_k') (queries[r] . x_k)."""

    name: str
    keys: list[tuple[str, Form]]  # (key-row name, form)
    queries: list[Form]
    values: dict[str, Form]  # output dim -> form over the residual (rows of W_V)
    compensate_sqrt_d: bool = True

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.queries):
            raise WeightError(f"head {self.name!r}: {len(self.keys)} key rows but {len(self.queries)} query rows")


@dataclass
class LinearUnitSpec:
    """h[dim] = sum A[dim][dim'] h[dim'] + sum B[dim][dim'] x[dim'] (Def 3.5)."""

    A: dict[str, Form] = field(default_factory=dict)
    B: dict[str, Form] = field(default_factory=dict)

    def __add__(self, other: "LinearUnitSpec") -> "LinearUnitSpec":
        clash = (set(self.A) | set(self.B)) & (set(other.A) | set(other.B))
        if clash:
            raise WeightError(f"two linear units write the same state dims {sorted(clash)}")
        return LinearUnitSpec({**self.A, **other.A}, {**self.B, **other.B})


@dataclass
class LayerSpec:
    kind: Literal["transformer", "linear_rnn"]
    heads: list[HeadSpec] = field(default_factory=list)
    lu: LinearUnitSpec | None = None
    ffn: FFNSpec = field(default_factory=FFNSpec)
    name: str = ""


def round_to_grid(value: int | float | Fraction, p: "int | Precision") -> Fraction:
    """ROUND(value, p) as an exact Fraction (ties to even): for constants a proof rounds.
    ``p``: an odd p (R_p) or a Precision (R(I, F): the grid 2^-F)."""
    prec = Precision.of(p)
    frac = to_fraction(value)
    return Fraction(div_round(frac.numerator * prec.scale, frac.denominator, "even"), prec.scale)


def padded_layout(layout: Layout) -> Layout:
    """Insert unused "pad:i" dims before "pos" until d is a perfect square."""
    d = layout.d
    s = math.isqrt(d)
    if s * s < d:
        s += 1
    pads = tuple(f"pad:{i}" for i in range(s * s - d))
    return Layout(layout.names[:-1] + pads + (layout.names[-1],))


def _row(prec: Precision, layout: Layout, form: Form, what: str, scale: int = 1) -> list[int]:
    row = [0] * layout.d
    for dim, coef in form.items():
        row[layout.index(dim)] += prec.encode(to_fraction(coef) * scale, where=f"{what}[{dim}]")
    return row


def _matrix(rows: list[list[int]], n_cols: int) -> np.ndarray:
    m = zeros(len(rows), n_cols)
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            m[i, j] = v
    return m


def _ffn(prec: Precision, layout: Layout, spec: FFNSpec, where: str) -> FeedForward:
    d = layout.d
    if not spec.units and not spec.bias:
        return FeedForward.empty(d)
    units = spec.units
    W1 = _matrix([_row(prec, layout, u.w1, f"{where}.{u.name}.w1") for u in units], d)
    W2 = _matrix([_row(prec, layout, u.w2, f"{where}.{u.name}.w2") for u in units], d)
    b1 = _matrix([[prec.encode(u.b1, where=f"{where}.{u.name}.b1")] for u in units], 1).reshape(-1) if units else zeros(0)
    b2 = _matrix([[prec.encode(u.b2, where=f"{where}.{u.name}.b2")] for u in units], 1).reshape(-1) if units else zeros(0)
    W3 = zeros(d, len(units))
    for j, u in enumerate(units):
        for dim, coef in u.out.items():
            W3[layout.index(dim), j] += prec.encode(coef, where=f"{where}.{u.name}.out[{dim}]")
    b3 = zeros(d)
    for dim, coef in spec.bias.items():
        b3[layout.index(dim)] = prec.encode(coef, where=f"{where}.bias[{dim}]")
    names = tuple(u.name for u in units)
    if len(set(names)) != len(names):
        raise WeightError(f"{where}: two FFN units share a name")
    return FeedForward(W1, b1, W2, b2, W3, b3, names)


def _head(prec: Precision, layout: Layout, spec: HeadSpec, where: str) -> AttentionHead:
    d = layout.d
    s = math.isqrt(d) if spec.compensate_sqrt_d else 1
    W_K = _matrix([_row(prec, layout, f, f"{where}.W_K.{name}") for name, f in spec.keys], d)
    W_Q = _matrix([_row(prec, layout, f, f"{where}.W_Q.{spec.keys[i][0]}", scale=s) for i, f in enumerate(spec.queries)], d)
    W_V = zeros(d, d)
    for dim, form in spec.values.items():
        for j, v in enumerate(_row(prec, layout, form, f"{where}.W_V.{dim}")):
            W_V[layout.index(dim), j] = v
    return AttentionHead(W_K, W_Q, W_V, spec.name, tuple(name for name, _ in spec.keys))


def _linear_unit(prec: Precision, layout: Layout, spec: LinearUnitSpec, where: str) -> tuple[np.ndarray, np.ndarray]:
    d = layout.d
    A, B = zeros(d, d), zeros(d, d)
    for target, mat, forms in (("A", A, spec.A), ("B", B, spec.B)):
        for dim, form in forms.items():
            for j, v in enumerate(_row(prec, layout, form, f"{where}.{target}.{dim}")):
                mat[layout.index(dim), j] = v
    return A, B


def assemble(
    *,
    arch: Literal["transformer", "linear_rnn", "hybrid"],
    p: "int | Precision",
    layout: Layout,
    vocab: Vocabulary,
    layers: list[LayerSpec],
    max_len: int,
    unembed: Mapping[Token, Form] | None = None,
    meta: dict | None = None,
    declared: "Precision | None" = None,
    declared_p: int | None = None,
) -> Model:
    """Encode specs at precision p (an odd p = R_p, or a Precision such as R(I, F)) into a
    validated :class:`Model` (layout padded to a square d).

    ``declared``: the smallest (I, F) the builder's proof needs, ``declared_p`` the symmetric p
    it builds by default (default: the smallest odd p covering ``declared``), both recorded as
    ``meta["declared_precision"]``; a ``below_declared_ok`` format below it gets
    ``meta["below_declared"] = True``.  ``meta["precision"]`` is the format's label."""
    prec = Precision.of(p)
    needs_square = any(h.compensate_sqrt_d for spec in layers for h in spec.heads)
    lay = padded_layout(layout) if needs_square else layout
    try:
        built, U = _encode(prec, lay, vocab, layers, unembed)
    except WeightError:
        if not prec.symmetric:  # an R_p keeps the WeightError's advice (a larger odd p)
            _refuse_int_bits(prec, lay, vocab, layers, unembed, (meta or {}).get("construction") or arch)
        raise
    return Model(arch, prec.p, lay, vocab, built, max_len, U, precision_meta(prec, declared, declared_p, meta), prec.frac).validate()


def weight_int_bits(model: Model) -> int:
    """The integer bits I that the largest |weight| of ``model`` needs (at its F): the smallest
    I >= 1 with max |q| <= 2^(I + F) - 1."""
    top = max((abs(int(v)) for mat in model.all_weights().values() for v in mat.reshape(-1)), default=0)
    return max(1, (top.bit_length() - model.precision.F))


def _refuse_int_bits(prec: Precision, lay: Layout, vocab: Vocabulary, layers: list[LayerSpec],
                     unembed: Mapping[Token, Form] | None, what: str) -> None:
    """A weight did not fit the split ``prec``: if the weights are on its grid (F) but too large for its I,
    refuse with a PrecisionError naming the I they need at this F (builders whose constants grow
    with F, e.g. a hard-attention gap, are asked for R(I, F) with too few I even when
    ``below_declared_ok`` lets them build below their proof's bound; the frontier's I axis at an
    ample F).  Returns (the caller re-raises the WeightError) when the weights need more F."""
    from .numerics import MAX_P

    wide = Precision.split(MAX_P - 1 - prec.F, prec.F)
    try:
        built, U = _encode(wide, lay, vocab, layers, unembed)
    except WeightError:
        return
    need = weight_int_bits(Model("probe", wide.p, lay, vocab, built, 1, U, {}, wide.frac))
    raise PrecisionError(
        f"{what}: its weights need I >= {need} integer bits at F = {prec.F} fractional bits, got {prec.label}; "
        f"build it with R(I >= {need}, F = {prec.F}) (its constants may grow with F: fewer fractional bits can need fewer integer bits)")


def _encode(prec: Precision, lay: Layout, vocab: Vocabulary, layers: list[LayerSpec],
            unembed: Mapping[Token, Form] | None) -> tuple[list, np.ndarray | None]:
    """Every layer's weights and the unembedding encoded at ``prec`` (WeightError on one that is not in it)."""
    built = []
    for li, spec in enumerate(layers, start=1):
        where = f"layer{li}" + (f"({spec.name})" if spec.name else "")
        ffn = _ffn(prec, lay, spec.ffn, f"{where}.ffn")
        if spec.kind == "transformer":
            heads = [_head(prec, lay, h, f"{where}.{h.name or 'head'}") for h in spec.heads]
            built.append(TransformerLayer(heads, ffn, spec.name))
        else:
            A, B = _linear_unit(prec, lay, spec.lu or LinearUnitSpec(), f"{where}.lu")
            built.append(LinearRNNLayer(A, B, ffn, spec.name))
    U = None
    if unembed is not None:
        U = zeros(len(vocab), lay.d)
        for tok, form in unembed.items():
            row = _row(prec, lay, form, f"unembed[{tok}]")
            for j, v in enumerate(row):
                U[vocab.id_of(tok), j] = v
    return built, U


def precision_meta(prec: Precision, declared: "Precision | None", declared_p: int | None, meta: dict | None) -> dict:
    """``meta`` plus the format's label, the declared (I, F) and whether ``prec`` is below it."""
    out = dict(meta or {})
    out["precision"] = prec.label
    if declared is not None:
        p_decl = 2 * max(declared.I, declared.F) + 1 if declared_p is None else declared_p
        out["declared_precision"] = {"p": p_decl, "I": declared.I, "F": declared.F}
        if prec.I < declared.I or prec.F < declared.F:
            out["below_declared"] = True
    return out


def residual_input(model: Model, columns: list[Mapping[str, int | Fraction]]) -> np.ndarray:
    """A d x l input matrix (scaled ints) from per-position {dim: value}; for block checks."""
    prec = model.precision
    X = zeros(model.d, len(columns))
    for k, col in enumerate(columns):
        for dim, v in col.items():
            X[model.layout.index(dim), k] = prec.encode(v, where=f"input[{dim}, position {k + 1}]")
    return X


def read_dims(model: Model, X: np.ndarray, dims: Iterable[str]) -> list[list[Fraction]]:
    """Decode named rows of a residual matrix: result[i][k] = value of dims[i] at position k+1."""
    prec = model.precision
    return [[prec.decode(int(v)) for v in X[model.layout.index(dim)]] for dim in dims]
