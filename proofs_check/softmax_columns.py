"""Softmax columns that sit next to a rounding midpoint, and the fast evaluator's softmax operator
on them: the cases where a certification error bound decides the rounding.

:func:`near_midpoint_column` builds a score column whose entry j has 2^F softmax_j a chosen distance
from k + 1/2 (solved with arb at 1200 bits); :func:`midpoint_distance` measures it back.
:func:`fast_softmax` runs ``evaluate_fast``'s softmax operator (certified float64, then fixed
point, then the exact fallback) on whole columns at precision p, the operator in isolation,
so that it can be compared entry by entry with ``numerics.softmax_column``, the reference
evaluator's own operator (check A.2, ``tests/test_softmax_band.py``).
"""
from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
from flint import arb, ctx as flint_ctx

#: odd p the IsTree / retrieval / TM builders declare for n <= 1024 (F = 33..48): float64 carries
#: only a few bits below a rounding cell there, so the certification bound decides
BAND: tuple[int, ...] = (67, 71, 77, 83, 89, 91, 97)


def midpoint_distance(col: list[int], j: int, F: int, d: int, bits: int = 800) -> float:
    """Upper bound of |frac(2^F softmax_j) - 1/2| (scores in units 2^-2F), arb at high precision."""
    old = flint_ctx.prec
    flint_ctx.prec = bits
    try:
        top = max(col)
        c = arb(d).rsqrt() / arb(2) ** (2 * F)
        e = [(arb(s - top) * c).exp() for s in col]
        v = e[j] * arb(2) ** F / sum(e[1:], e[0])
        return float(abs(v - v.floor() - arb(0.5)).upper())
    finally:
        flint_ctx.prec = old


def near_midpoint_column(rng: random.Random, F: int, d: int, m: int, j: int, delta: Fraction) -> list[int]:
    """A column whose entry j has 2^F softmax_j within about |delta| of (k + 1/2) + delta:
    the other scores are random (real values in [-3, 3]), s_j solved with arb and rounded to the
    2^-2F grid (rounding moves v_j by ~2^(F - 2F) = 2^-F, far below the delta used)."""
    one = 1 << (2 * F)
    col = [rng.randint(-3 * one, 3 * one) for _ in range(m)]
    old = flint_ctx.prec
    flint_ctx.prec = 1200
    try:
        sq = arb(d).sqrt()
        rest = sum(((arb(s) / arb(2) ** (2 * F)) / sq).exp() for i, s in enumerate(col) if i != j)
        lo, hi = 4, (1 << F) - 4  # a midpoint strictly inside (0, 2^F)
        k = rng.randint(lo, min(hi, 1 << rng.randint(3, F)))
        target = arb(k) + arb(0.5) + arb(delta.numerator) / arb(delta.denominator)
        e_j = target * rest / (arb(2) ** F - target)
        s_j = e_j.log() * sq * arb(2) ** (2 * F)
        col[j] = int(s_j.floor().unique_fmpz())
    finally:
        flint_ctx.prec = old
    return col


def _model(p: int):
    """The small model whose residual width d the columns and the engine share."""
    from .catalog import random_model

    return random_model(n=4, p=p, seed=3, layers=1, heads=1)


def band_columns(p: int, count: int, seed: int) -> tuple[list[list[int]], int]:
    """(columns, d): ``count`` columns at p, each with one entry 2^-3 .. 2^-24 of a cell from a
    midpoint, for the softmax's 1/sqrt(d) of the model :func:`fast_softmax` runs on."""
    F, d = (p - 1) // 2, _model(p).d
    rng = random.Random(seed * 1000 + p)
    cols = []
    for _ in range(count):
        m = rng.randint(2, 6)
        delta = Fraction(rng.choice((-1, 1)), 1 << rng.randint(3, 24))
        cols.append(near_midpoint_column(rng, F, d, m, rng.randrange(m), delta))
    return cols, d


def fast_softmax(p: int, cols: list[list[int]], tie: str = "even") -> np.ndarray:
    """ROUND(softmax) of each column (scores in units 2^-2F; column k in column k of the result)
    through the fast evaluator's softmax operator at p, on the model of :func:`band_columns`."""
    import torch

    import constructions.evaluate_fast as ef
    from constructions.numerics import Arithmetic

    model = _model(p)
    arith = Arithmetic(tie=tie)
    prep = ef._prepare(model, arith, len(cols), torch.device("cpu"))
    eng = ef._Engine(prep, arith, ef._Checker(1, prep.prec, arith))
    F = eng.F
    T = max(len(c) for c in cols)
    S = np.zeros((T, len(cols)), dtype=object)
    causal = torch.zeros((T, len(cols)), dtype=torch.bool)
    for k, col in enumerate(cols):
        S[: len(col), k] = col
        causal[: len(col), k] = True
    digits = ef._ints_to_digits(S, eng.b, ef.Limbs(eng.b).count(3 * F + 2), eng.dev)
    return ef._digits_to_ints(eng.softmax(digits, causal, model.d), eng.b)


def band_mismatches(p: int, count: int, seed: int = 0, tie: str = "even") -> list[int]:
    """Indices of the band columns at p whose fast softmax differs from ``numerics.softmax_column``."""
    from constructions.numerics import Precision, softmax_column

    cols, d = band_columns(p, count, seed)
    P = fast_softmax(p, cols, tie)
    prec = Precision(p)
    return [k for k, col in enumerate(cols)
            if [int(v) for v in P[: len(col), k]] != softmax_column(col, 2 * prec.F, d, prec, tie)]
