"""R_p arithmetic (Appendix A.2, Eq. (5)) against independent Fraction / mpmath references.

The references here are written from the definitions, not from constructions.numerics:

* R_p is Eq. (5): {(2 b_p - 1) * sum_{i=1}^{p-1} b_i 2^((p-1)/2 - i)}; for small p we enumerate it
  bit by bit; in general its elements are the multiples of u = 2^-(p-1)/2 up to the largest
  magnitude sum_{i=1}^{p-1} 2^((p-1)/2 - i);
* ROUND(x, p) is the nearest element; we take the two neighbouring grid points of x and
  compare distances in exact Fractions, applying the tie rule by hand;
* softmax is computed with mpmath at high working precision and rounded with the same
  Fraction reference.
"""
from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import mpmath
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from constructions.errors import PrecisionError, PrecisionOverflow, ProofsCheckError, WeightError
from constructions.numerics import Arithmetic, MAX_P, Precision, check_p, div_round, softmax_column

# ---- the references ---------------------------------------------------------------------------


def eq5_max(p: int) -> Fraction:
    """Largest magnitude in R_p: all magnitude bits b_1..b_(p-1) set in Eq. (5)."""
    return sum((Fraction(2) ** ((p - 1) // 2 - i) for i in range(1, p)), Fraction(0))


def eq5_set(p: int) -> list[Fraction]:
    """R_p enumerated literally from Eq. (5) (small p only)."""
    values = set()
    for bits in itertools.product((0, 1), repeat=p):
        b_p, mag_bits = bits[-1], bits[:-1]
        mag = sum((Fraction(2) ** ((p - 1) // 2 - i) for i, b in enumerate(mag_bits, start=1) if b), Fraction(0))
        values.add((2 * b_p - 1) * mag)
    return sorted(values)


def ulp(p: int) -> Fraction:
    return Fraction(1, 2 ** ((p - 1) // 2))


def ref_round(x: Fraction, p: int, tie: str) -> Fraction | None:
    """ROUND(x, p); None when the nearest grid point of the unbounded grid lies outside R_p."""
    u = ulp(p)
    lo = math.floor(x / u) * u
    hi = lo + u
    if x - lo < hi - x:
        r = lo
    elif hi - x < x - lo:
        r = hi
    elif tie == "even":
        r = lo if (lo / u).numerator % 2 == 0 else hi
    else:
        r = hi if x > 0 else lo  # away from zero (x = 0 is never a tie)
    return r if abs(r) <= eq5_max(p) else None


def ref_nearest_in_set(x: Fraction, values: list[Fraction], tie: str) -> Fraction:
    """Argmin over the enumerated R_p; a tie between two elements is broken by hand."""
    best = min(abs(v - x) for v in values)
    cands = [v for v in values if abs(v - x) == best]
    if len(cands) == 1:
        return cands[0]
    lo, hi = sorted(cands)
    if tie == "even":
        return lo if (lo / ulp_of_set(values)).numerator % 2 == 0 else hi
    return hi if x > 0 else lo


def ulp_of_set(values: list[Fraction]) -> Fraction:
    return min(b - a for a, b in zip(values, values[1:]))


def mp_to_fraction(y: mpmath.mpf) -> Fraction:
    man, exp = y.man_exp
    return Fraction(int(man)) * Fraction(2) ** int(exp)


def ref_softmax(scores: list[int], shift: int, d: int, p: int, tie: str) -> list[Fraction]:
    """ROUND(softmax(s / 2^shift / sqrt(d)), p) with mpmath, guarded against near-midpoints."""
    m = len(scores)
    if all(s == scores[0] for s in scores):
        return [ref_round(Fraction(1, m), p, tie)] * m
    F = (p - 1) // 2
    tiny = Fraction(1, 2 ** (F + 2))  # far below the half-ulp 2^-(F+1): rounds to 0
    prec = 4 * F + 256
    while True:
        with mpmath.workprec(prec):
            smax = max(scores)
            z = [mpmath.mpf(s - smax) / mpmath.mpf(2) ** shift / mpmath.sqrt(d) for s in scores]
            e = [mpmath.exp(v) for v in z]
            total = mpmath.fsum(e)
            ys = [v / total for v in e]
            out, unsure = [], False
            for y in ys:
                if y < mpmath.mpf(tiny.numerator) / tiny.denominator:
                    out.append(Fraction(0))
                    continue
                t = y * 2**F
                if abs(t - mpmath.floor(t) - mpmath.mpf(0.5)) < mpmath.mpf(2) ** (-prec // 2):
                    unsure = True  # too close to a rounding midpoint for this working precision
                out.append(ref_round(mp_to_fraction(y), p, tie))
        if not unsure:
            return out
        prec *= 2
        assert prec < 1 << 16, "reference softmax hit a midpoint (impossible for unequal scores)"


# ---- strategies --------------------------------------------------------------------------------

odd_p = st.integers(1, 150).map(lambda k: 2 * k + 1)  # 3..301
small_odd_p = st.sampled_from([3, 5, 7, 9])
ties = st.sampled_from(["even", "away"])


@st.composite
def rational_in_range(draw, p: int) -> Fraction:
    """A rational within about 1.1 times the range of R_p, with denominators finer than the grid."""
    F = (p - 1) // 2
    extra = draw(st.integers(0, 12))
    den = draw(st.one_of(st.just(2 ** (F + extra)), st.integers(1, 2 ** (F + extra))))
    bound = int(eq5_max(p) * 11 / 10 * den) + 2
    num = draw(st.integers(-bound, bound))
    return Fraction(num, den)


@st.composite
def tie_point(draw, p: int) -> Fraction:
    """An exact midpoint (2k + 1) / 2^(F+1) between two grid points, inside the range."""
    F = (p - 1) // 2
    top = (2 ** (p - 1) - 1) - 1  # k + 1 <= max_scaled
    k = draw(st.integers(-top - 1, top))
    return Fraction(2 * k + 1, 2 ** (F + 1))


def implementation(x: Fraction, p: int, tie: str, overflow: str = "raise") -> Fraction:
    prec = Precision(p)
    q = prec.round_rational(x.numerator, x.denominator, arith=Arithmetic(tie=tie, overflow=overflow))
    return prec.decode(q)


# ---- R_p itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [3, 5, 7, 9, 11])
def test_grid_is_eq5(p):
    assert list(Precision(p).values()) == eq5_set(p)
    assert Precision(p).max_value == eq5_max(p)


@given(small_odd_p.flatmap(lambda p: st.tuples(st.just(p), rational_in_range(p))), ties)
def test_round_small_p_matches_enumerated_set(pair, tie):
    """For small p the rounding is the argmin over Eq. (5)'s set (saturate = literal nearest)."""
    p, x = pair
    expected = ref_nearest_in_set(x, eq5_set(p), tie)
    assert implementation(x, p, tie, overflow="saturate") == expected
    if ref_round(x, p, tie) is not None:
        assert implementation(x, p, tie) == expected


@given(odd_p.flatmap(lambda p: st.tuples(st.just(p), rational_in_range(p))), ties)
def test_round_matches_fraction_reference(pair, tie):
    p, x = pair
    expected = ref_round(x, p, tie)
    if expected is None:
        with pytest.raises(PrecisionOverflow):
            implementation(x, p, tie)
    else:
        assert implementation(x, p, tie) == expected
        assert implementation(-x, p, tie) == ref_round(-x, p, tie)


@given(odd_p.flatmap(lambda p: st.tuples(st.just(p), tie_point(p))))
def test_exact_ties_both_rules(pair):
    p, x = pair
    u = ulp(p)
    lo, hi = x - u / 2, x + u / 2
    even = implementation(x, p, "even")
    away = implementation(x, p, "away")
    assert even == ref_round(x, p, "even") and even in (lo, hi)
    assert (even / u).numerator % 2 == 0
    assert away == ref_round(x, p, "away") and abs(away) == max(abs(lo), abs(hi))


@given(odd_p, ties, st.sampled_from([1, -1]))
def test_range_limits(p, tie, sign):
    u, top = ulp(p), eq5_max(p)
    # the largest magnitude is representable, and so is anything that rounds to it
    assert implementation(sign * top, p, tie) == sign * top
    assert implementation(sign * (top + u / 4), p, tie) == sign * top
    # at half an ulp above the largest magnitude (a tie) and beyond: overflow, never wrap
    for beyond in (top + u / 2, top + u, 2 * top, top + Fraction(3, 5) * u):
        with pytest.raises(PrecisionOverflow) as info:
            implementation(sign * beyond, p, tie)
        assert info.value.p == p
        # the saturating mode returns the literal nearest element of R_p: the largest magnitude
        assert implementation(sign * beyond, p, tie, overflow="saturate") == sign * top


def test_overflow_is_a_proofscheck_error_with_location():
    from constructions.errors import Location

    with pytest.raises(ProofsCheckError, match="layer 2, ffn, position 3, dim 'x'"):
        Precision(3).round_rational(8, 1, where=Location(2, "ffn", None, 3, "x"))


# ---- div_round ----------------------------------------------------------------------------------


@given(st.integers(-(10**30), 10**30), st.integers(1, 10**12), ties)
@example(5, 2, "even")
@example(-5, 2, "even")
@example(7, 2, "away")
@example(-7, 2, "away")
def test_div_round(num, den, tie):
    x = Fraction(num, den)
    lo = math.floor(x)
    if x - lo < Fraction(1, 2):
        expected = lo
    elif x - lo > Fraction(1, 2):
        expected = lo + 1
    elif tie == "even":
        expected = lo if lo % 2 == 0 else lo + 1
    else:
        expected = lo + 1 if x > 0 else lo
    assert div_round(num, den, tie) == expected


def test_div_round_rejects_nonpositive_denominator():
    with pytest.raises(ValueError):
        div_round(1, 0)
    with pytest.raises(ValueError):
        div_round(1, -3)


# ---- encode -------------------------------------------------------------------------------------


@given(odd_p.flatmap(lambda p: st.tuples(st.just(p), st.integers(-(2 ** (p - 1) - 1), 2 ** (p - 1) - 1))))
def test_encode_exact_values(pair):
    p, q = pair
    prec = Precision(p)
    x = Fraction(q, 2 ** ((p - 1) // 2))
    assert prec.encode(x) == q
    assert prec.encode(str(x)) == q
    if abs(q).bit_length() <= 52:  # exactly a float
        assert prec.encode(float(x)) == q
    assert prec.decode(prec.encode(x)) == x


@given(odd_p.flatmap(lambda p: st.tuples(st.just(p), rational_in_range(p))))
def test_encode_inexact(pair):
    p, x = pair
    prec = Precision(p)
    expected = ref_round(x, p, "even")
    on_grid = (x / ulp(p)).denominator == 1
    if not on_grid:
        with pytest.raises(WeightError, match="not exactly representable"):
            prec.encode(x)
    if expected is None:
        with pytest.raises(WeightError, match="exceeds the range"):
            prec.encode(x, exact=False)
    else:
        assert prec.decode(prec.encode(x, exact=False)) == expected


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "nan", "inf", "x", None, [1]])
def test_encode_rejects_non_finite(bad):
    with pytest.raises(WeightError):
        Precision(11).encode(bad)
    with pytest.raises(WeightError):
        Precision(11).encode(bad, exact=False)


# ---- check_p ------------------------------------------------------------------------------------


@given(st.integers(-50, 2 * MAX_P))
def test_check_p(p):
    if p >= 3 and p % 2 == 1 and p <= MAX_P:
        assert check_p(p) == p
        assert Precision(p).F == (p - 1) // 2
    else:
        with pytest.raises(PrecisionError):
            check_p(p)
        with pytest.raises(PrecisionError):
            Precision(p)


@pytest.mark.parametrize("bad", [3.0, "3", True, None, Fraction(3)])
def test_check_p_non_int(bad):
    with pytest.raises(PrecisionError, match="odd integer"):
        check_p(bad)


def test_even_p_message_suggests_odd():
    with pytest.raises(PrecisionError, match="try p = 9"):
        check_p(8)


# ---- softmax ------------------------------------------------------------------------------------


@st.composite
def score_columns(draw):
    """(p, d, scores) with scores on the 2^-2F grid, within the range check of the evaluator."""
    p = draw(st.one_of(st.sampled_from([3, 5, 11, 21, 201, 301]), odd_p))
    F = (p - 1) // 2
    d = draw(st.integers(1, 64))
    m = draw(st.integers(1, 12))
    bound = (2 ** (p - 1) - 1) * 2**F  # |score| <= max value, on the fine grid
    kind = draw(st.sampled_from(["small", "moderate", "huge", "equal", "two-level"]))
    if kind == "equal":
        s = draw(st.integers(-bound, bound))
        return p, d, [s] * m
    if kind == "small":  # gaps of a few units: every entry matters
        lim = min(bound, 6 * 2 ** (2 * F))
    elif kind == "moderate":
        lim = min(bound, (F + 4) * 8 * 2 ** (2 * F))
    else:
        lim = bound
    if kind == "two-level":
        a, b = draw(st.integers(-lim if lim < bound else -bound, bound)), draw(st.integers(-bound, bound))
        return p, d, [draw(st.sampled_from([a, b])) for _ in range(m)]
    return p, d, draw(st.lists(st.integers(-lim, lim), min_size=m, max_size=m))


@given(score_columns(), ties)
@example((3, 1, [0, 0, 0, 0]), "even")
@example((3, 1, [0, 0, 0, 0]), "away")
@example((301, 7, [0, 1, 2, 3, 4]), "even")
@example((201, 64, [-(2**300), 2**300, 0]), "even")
def test_softmax_column_matches_mpmath(case, tie):
    p, d, scores = case
    F = (p - 1) // 2
    prec = Precision(p)
    got = [prec.decode(q) for q in softmax_column(scores, 2 * F, d, prec, tie)]
    assert got == ref_softmax(scores, 2 * F, d, p, tie)


@pytest.mark.parametrize(
    "p, m, tie, expected",
    [
        (3, 4, "even", Fraction(0)),  # 1/4 is half-way between 0 and 1/2: even -> 0
        (3, 4, "away", Fraction(1, 2)),
        (3, 3, "even", Fraction(1, 2)),  # 1/3 is nearer 1/2 than 0
        (3, 1, "even", Fraction(1)),
        (5, 8, "even", Fraction(0)),  # 1/8 between 0 and 1/4
        (5, 8, "away", Fraction(1, 4)),
    ],
)
def test_softmax_all_equal_exact_ties(p, m, tie, expected):
    prec = Precision(p)
    out = softmax_column([17] * m, 2 * prec.F, 5, prec, tie)
    assert [prec.decode(q) for q in out] == [expected] * m


def test_plain_float64_softmax_misrounds_at_p101():
    """Why softmax is certified: IEEE float64 (53 bits) cannot round to 50 fractional bits.

    Seeded random columns; the certified operator is the reference (itself checked against
    mpmath above).  At least one float64 entry must disagree, or certification would be moot."""
    prec = Precision(101)
    F, rng = prec.F, random.Random(101)
    disagreements = 0
    for _ in range(40):
        scores = [rng.randint(-(4 << (2 * F)), 4 << (2 * F)) for _ in range(6)]
        exact = softmax_column(scores, 2 * F, 4, prec)
        zs = [s / float(1 << (2 * F)) / 2.0 for s in scores]
        top = max(zs)
        es = [math.exp(z - top) for z in zs]
        total = sum(es)
        floats = [round(e / total * (1 << F)) for e in es]
        disagreements += sum(a != b for a, b in zip(exact, floats))
    assert disagreements > 0


# ---- R(I, F): split precision (issue #11) ----------------------------------------------------


def test_split_precision_has_its_own_grid_and_range():
    from constructions.numerics import Precision

    r = Precision.split(3, 6)  # 3 integer bits, 6 fractional bits
    assert (r.p, r.I, r.F, r.scale) == (10, 3, 6, 64)
    assert r.max_scaled == 2**9 - 1 and r.max_integer == 7
    assert r.label == "R(I=3, F=6)" and not r.symmetric
    assert r.encode("1/64") == 1
    with pytest.raises(WeightError):
        r.encode("1/128")  # below the grid
    with pytest.raises(WeightError):
        r.encode(8)  # beyond 2^3 - 2^-6
    assert Precision.split(4, 4) == Precision(9) and Precision(9).label == "R_9"


@pytest.mark.parametrize("I,F", [(0, 5), (5, 0), (2.0, 3), (True, 3), (3000, 3000)])
def test_split_precision_refuses_bad_bit_counts(I, F):
    from constructions.numerics import Precision

    with pytest.raises(PrecisionError):
        Precision.split(I, F)


def test_require_precision_compares_integer_and_fractional_bits_apart():
    from constructions.ffn_blocks import require_precision
    from constructions.numerics import Precision

    assert require_precision(Precision.split(9, 4), Precision.split(9, 4), "b") == Precision.split(9, 4)
    for short in (Precision.split(8, 40), Precision.split(40, 3)):
        with pytest.raises(PrecisionError, match="integer and .* fractional bits"):
            require_precision(short, Precision.split(9, 4), "b")
    explore = Precision.split(2, 2, below_declared_ok=True)
    assert require_precision(explore, 41, "b") is explore
