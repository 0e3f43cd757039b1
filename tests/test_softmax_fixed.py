"""constructions.softmax_fixed: certified fixed-point softmax == numerics.softmax_column.

The independent reference is ``numerics.softmax_column`` (arb ball arithmetic at growing
precision).  Every column the fixed-point path certifies must equal it exactly; the tests also
check that certification does happen (the bound is useful) and does not happen for entries
whose exact value is closer to a rounding midpoint than any plausible error (the bound is not
absurdly small).  Adversarial columns put one entry at a chosen distance from a midpoint by
solving for its score with arb; others: all-equal columns, single entries, gaps at and beyond
the far threshold, scores near the ends of the range of R_p.
"""
from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from flint import arb, ctx as flint_ctx
from hypothesis import given
from hypothesis import strategies as st

import constructions.evaluate_fast as ef
from constructions import softmax_fixed as sf
from constructions.numerics import Precision, softmax_column
from proofs_check.softmax_columns import midpoint_distance, near_midpoint_column  # noqa: F401 (used below and by other tests)

torch.set_num_threads(1)

PS = (101, 151, 201, 301)
DS = (1, 2, 3, 64, 100)


def fixed_columns(cols: list[list[int]], p: int, d: int, b: int = 22):
    """Run certified_softmax on Python-int score columns (units 2^-2F): [(certified?, values)]."""
    F = Precision(p).F
    T, n = max(len(c) for c in cols), len(cols)
    G = np.zeros((T, n), dtype=object)
    causal = torch.zeros((T, n), dtype=torch.bool)
    for k, c in enumerate(cols):
        top = max(c)
        for j, s in enumerate(c):
            G[j, k] = top - s
            causal[j, k] = True
    bits = max(int(v).bit_length() for v in G.flat) + 1
    digits = ef._ints_to_digits(G, b, ef.Limbs(b).count(bits), torch.device("cpu"))
    out = torch.zeros((ef.Limbs(b).count(F + 2) + 1, T, n), dtype=torch.int64)
    ok = sf.certified_softmax(digits, b, causal, d, F, 2 * F, out)
    vals = ef._digits_to_ints(out, b)
    return [(bool(ok[k]), [int(v) for v in vals[: len(c), k]]) for k, c in enumerate(cols)]


def check_columns(cols, p, d, b=22):
    """Certified columns equal the reference; returns how many certified."""
    F = Precision(p).F
    got = fixed_columns(cols, p, d, b)
    for col, (ok, vals) in zip(cols, got):
        if ok:
            assert vals == softmax_column(col, 2 * F, d, Precision(p)), (p, d, col)
    return [ok for ok, _ in got]


# ---- exactness of the building blocks ---------------------------------------------------------


@given(st.integers(0, (1 << 300) - 1), st.integers(-40, 300), st.integers(1, 36), st.sampled_from([8, 13, 22, 24]))
def test_field_and_high_zero(g, lo, w, b):
    digits = ef._ints_to_digits(np.array([g], dtype=object), b, ef.Limbs(b).count(301), torch.device("cpu"))
    got = int(sf._field(digits, b, lo, w)[0])
    want = (g >> lo if lo >= 0 else g << -lo) & ((1 << w) - 1)
    assert got == want
    k0 = max(0, lo // b)
    assert int(sf._field(digits[k0:], b, lo, w, k0)[0]) == want
    pos = max(0, lo)
    assert bool(sf._high_zero(digits, b, pos)[0]) == (g >> pos == 0)


@pytest.mark.parametrize("p,d", [(101, 3), (201, 64), (201, 1), (301, 100)])
def test_exp_error_within_bound(p, d):
    """|E~ - exp(-y / sqrt(d))| <= eps_E for random gaps and gaps whose bits are all ones
    (every limb at its maximum), measured exactly against arb."""
    F = Precision(p).F
    shift = 2 * F
    P = sf.plan(F, d, shift, 16)
    rng = random.Random(p * 1000 + d)
    gaps = [0, 1, (P.N0 << shift) - 1, ((P.N0 - 1) << shift) | ((1 << shift) - 1)]
    gaps += [rng.randrange(P.N0 << shift) for _ in range(40)]
    gaps += [(rng.randrange(P.N0) << shift) | ((1 << shift) - 1 - rng.randrange(1 << 20)) for _ in range(10)]
    b = 22
    G = ef._ints_to_digits(np.array(gaps, dtype=object), b, ef.Limbs(b).count(shift + 40), torch.device("cpu"))
    E = sf._exp_limbs(P, G, b, (P.T0, P.T1, P.T2))
    vals = sf._to_ints(E)  # units u = 2^(-24 L)
    flint_ctx.prec, old = 24 * P.L + 200, flint_ctx.prec
    try:
        worst = 0.0
        for g, v in zip(gaps, vals):
            exact = (-(arb(g) / arb(2) ** shift) * arb(d).rsqrt()).exp()
            diff = abs(arb(v) / arb(2) ** (24 * P.L) - exact)
            assert diff < P.eps_E, (g, float(diff), P.eps_E)
            worst = max(worst, float(diff.upper()))
    finally:
        flint_ctx.prec = old
    assert worst > P.eps_E / 2**20  # the bound is not wildly pessimistic (errors are real)


# ---- columns against the reference --------------------------------------------------------------


@given(
    st.sampled_from(PS),
    st.sampled_from(DS),
    st.lists(st.tuples(st.integers(1, 12), st.sampled_from([0, 1, 10, 1000])), min_size=1, max_size=6),
    st.integers(0, 10**6),
    st.sampled_from([9, 22, 24]),
)
def test_random_columns_equal_reference(p, d, shapes, seed, b):
    F = Precision(p).F
    rng = random.Random(seed)
    cols = [[rng.randint(-(sc << (2 * F)), sc << (2 * F)) for _ in range(m)] for m, sc in shapes]
    ok = check_columns(cols, p, d, b)
    assert all(ok)  # soft random columns are ~2^30 error bounds away from a midpoint


@pytest.mark.parametrize("p", PS)
def test_structured_columns(p):
    """Single entries, all-equal columns (exact 1/m), ties between two maxima, gaps just below /
    above the far threshold N0, huge gaps, scores at the ends of the range of R_p."""
    F = Precision(p).F
    d = 64
    one = 1 << (2 * F)
    N0 = sf.plan(F, d, 2 * F, 16).N0
    edge = ((1 << (p - 1)) - 1) << F  # |scores| <= M 2^F in units 2^-2F
    cols = [
        [5 * one],
        [-(one // 9)] * 7,
        [3, 3, 3],
        [one, one, 0, -one],
        [0, -(N0 * one) + 1, -(N0 * one), -(N0 * one) - 1, -one],
        [0, -(N0 * one) + 1],
        [0, -(1 << (2 * F + 40))],
        [edge, -edge, edge - one, edge - (N0 + 1) * one],
        [-edge, -edge + 1, -edge + (one >> 3)],
    ]
    ok = check_columns(cols, p, d)
    assert ok[0] and ok[3] and ok[4] and ok[6] and ok[7]


@pytest.mark.parametrize("p", PS)
def test_near_midpoint_columns(p):
    """Entries at distance delta of a rounding midpoint (both sides, max entry and others):
    certified ones equal the reference; delta ~2^-120 never certifies (the bound is not absurd);
    delta ~2^-16 always does (the bound is useful)."""
    F = Precision(p).F
    rng = random.Random(p)
    for d in (3, 64):
        cases = []
        for e in (F + 20, 70, 40, 32, 28, 24, 16):
            for sign in (1, -1):
                m = rng.randint(2, 6)
                j = rng.randrange(m)
                col = near_midpoint_column(rng, F, d, m, j, Fraction(sign, 1 << e))
                cases.append((col, j, midpoint_distance(col, j, F, d), e))
        ok = check_columns([c for c, _, _, _ in cases], p, d)
        for (col, j, dist, e), certified in zip(cases, ok):
            assert 2.0 ** -(e + 2) < dist < 2.0 ** -(e - 2) or e > F, (e, dist)
            if dist < 2.0**-60:
                assert not certified, (p, d, e, dist)
            if dist > 2.0**-17:
                assert certified, (p, d, e, dist)


def test_plan_declines_what_it_cannot_hold():
    assert sf.plan(4000, 64, 8000, 16) is None  # would need more than 32 products per column
    assert sf.plan(100, 64, 200, 1 << 28) is None
