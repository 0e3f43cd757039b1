"""Random small models of all three architectures, for evaluator tests and benchmarks.

Weights are random R_p values (scaled ints) drawn from a seeded numpy generator: mostly zero,
otherwise a small dyadic value (+-1, +-1/2, +-1/4, +-3/4, +-2) or, with ``fractional`` > 0, a
random value on the full 2^-F grid (so the rounding rules are exercised).  ``scale`` multiplies
every weight (a power of two, so values stay on the grid): large scales provoke overflows.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import random

import numpy as np
from hypothesis import strategies as st

from constructions.layout import LayoutBuilder
from constructions.model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer, int_array
from constructions.numerics import Precision
from constructions.vocab import PAPER_SPECIALS, Vocabulary

SMALL = (1, -1, Fraction(1, 2), Fraction(-1, 2), Fraction(1, 4), Fraction(-1, 4), Fraction(3, 4), Fraction(-3, 4), 2, -2)


@dataclass(frozen=True)
class ModelSpec:
    arch: str  # transformer | linear_rnn | hybrid
    p: int
    extra_dims: int = 2
    n_layers: int = 1
    n_heads: int = 1
    key_dim: int = 2
    ffn_width: int = 2
    n: int = 5  # numbers 1..n
    n_specials: int = 2  # a prefix of the paper's specials
    density: float = 0.4
    fractional: float = 0.2
    scale_log2: int = 0  # every weight times 2^scale_log2 (clipped to R_p)
    max_len: int = 16
    seed: int = 0
    untied: bool = False
    integer_only: bool = False  # only the integer values of SMALL (no rounding ever needed)
    frac: int | None = None  # fractional bits of R(I, F) (None: R_p); p = I + F + 1 then


def drawn_spec(draw, p: int, frac: int | None = None, scale_log2: int = 0, max_extra_dims: int = 4,
               max_key_dim: int = 3, **fixed) -> ModelSpec:
    """A ModelSpec with the shape fields (architecture, layers, heads, widths, density, seed,
    tying) drawn by a Hypothesis ``draw`` and the precision given: the one shape strategy of
    the evaluator-equivalence tests (``fixed``: fields set by the caller instead)."""
    return ModelSpec(
        arch=draw(st.sampled_from(["transformer", "linear_rnn", "hybrid"])),
        p=p, frac=frac,
        extra_dims=draw(st.integers(0, max_extra_dims)),
        n_layers=draw(st.integers(1, 2)),
        n_heads=draw(st.integers(1, 2)),
        key_dim=draw(st.integers(1, max_key_dim)),
        ffn_width=draw(st.integers(0, 3)),
        density=draw(st.sampled_from([0.3, 0.6])),
        fractional=draw(st.sampled_from([0.0, 0.3])),
        scale_log2=scale_log2,
        seed=draw(st.integers(0, 10**6)),
        untied=draw(st.booleans()),
        **fixed,
    )


def random_model(spec: ModelSpec) -> Model:
    prec = Precision(spec.p, spec.frac)
    rng = random.Random(spec.seed)
    vocab = Vocabulary(spec.n, PAPER_SPECIALS[: spec.n_specials])
    lb = LayoutBuilder(vocab)
    for i in range(spec.extra_dims):
        lb.alloc(f"x{i}")
    layout = lb.build()
    d = layout.d

    def weight() -> int:
        if rng.random() >= spec.density:
            return 0
        if rng.random() < spec.fractional:
            q = rng.randint(-(1 << prec.F), 1 << prec.F)
        else:
            pool = [v for v in SMALL if not isinstance(v, Fraction)] if spec.integer_only else SMALL
            v = pool[rng.randrange(len(pool))]
            q = int(Fraction(v) * prec.scale)
        if spec.scale_log2 >= 0:
            q <<= spec.scale_log2
        else:
            q = q >> -spec.scale_log2 if q >= 0 else -((-q) >> -spec.scale_log2)
        return max(-prec.max_scaled, min(prec.max_scaled, q))

    def mat(*shape: int) -> np.ndarray:
        return int_array(np.array([weight() for _ in range(int(np.prod(shape)))], dtype=object).reshape(shape))

    def ffn() -> FeedForward:
        w = spec.ffn_width
        return FeedForward(mat(w, d), mat(w), mat(w, d), mat(w), mat(d, w), mat(d),
                           tuple(f"h{i}" for i in range(w)) if w % 2 == 0 else ())

    def transformer() -> TransformerLayer:
        heads = [AttentionHead(mat(spec.key_dim, d), mat(spec.key_dim, d), mat(d, d), f"head{h}")
                 for h in range(spec.n_heads)]
        return TransformerLayer(heads, ffn())

    def rnn() -> LinearRNNLayer:
        return LinearRNNLayer(mat(d, d), mat(d, d), ffn())

    if spec.arch == "transformer":
        layers = [transformer() for _ in range(spec.n_layers)]
    elif spec.arch == "linear_rnn":
        layers = [rnn() for _ in range(spec.n_layers)]
    else:
        layers = [rnn() for _ in range(max(0, spec.n_layers - 1))] + [transformer()]
    unembed = mat(len(vocab), d) if spec.untied else None
    return Model(spec.arch, spec.p, layout, vocab, layers, spec.max_len, unembed, frac=spec.frac).validate()


def random_tokens(model: Model, length: int, seed: int) -> list:
    rng = random.Random(seed)
    toks = model.vocab.all_tokens()
    return [toks[rng.randrange(len(toks))] for _ in range(length)]
