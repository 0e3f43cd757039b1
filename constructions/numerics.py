"""R_p, the paper's p-bit fixed-point numbers (Appendix A.2), held exactly as scaled integers.

Eq. (5):  R_p = { (2 b_p - 1) * sum_{i=1}^{p-1} b_i 2^{(p-1)/2 - i} : b_i in {0, 1} }.

So a value is sign-and-magnitude with p - 1 magnitude bits, F = (p - 1)/2 of them fractional.
We store a value v as the Python int ``q = v * 2^F`` (exact for every p), with
``|q| <= 2^(p-1) - 1`` (symmetric range; the two zeros of Eq. (5) are the same number).

Every primitive operation is computed exactly and then rounded to the nearest R_p value
(A.2).  The paper names no tie rule; ours is a parameter of :class:`Arithmetic`:

* ``"even"`` (default): a value exactly half-way between two neighbours goes to the one whose
  scaled integer is even (IEEE-style, unbiased);
* ``"away"``: half-way values go away from zero.

A value beyond the largest magnitude raises :class:`PrecisionOverflow` (``overflow="raise"``,
the default) or, only when explicitly asked, saturates (``overflow="saturate"``), which the
evaluators then report as such.

Softmax is one operator: the exact softmax of the exact scores divided by sqrt(d), rounded to
R_p; the rounding is certified with arb ball arithmetic (python-flint) at growing working
precision, see :func:`softmax_column`.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Literal, Sequence

from flint import arb, ctx as _flint_ctx, fmpq

from .errors import Location, PrecisionError, PrecisionOverflow, WeightError

TieRule = Literal["even", "away"]
MatmulReading = Literal["round_once", "round_products"]
OverflowMode = Literal["raise", "saturate"]

MAX_P = 4097


def check_p(p: int) -> int:
    """Validate a precision: an odd integer >= 3 (A.2 assumes p odd)."""
    if isinstance(p, bool) or not isinstance(p, int):
        raise PrecisionError(f"p must be an odd integer >= 3, got {p!r}")
    if p < 3:
        raise PrecisionError(f"p = {p} is too small: R_p needs p >= 3 (a sign bit and p - 1 magnitude bits)")
    if p > MAX_P:  # before the parity test, which would suggest p + 1 > MAX_P
        raise PrecisionError(f"p = {p} is larger than this tool supports ({MAX_P}); use an odd p <= {MAX_P}")
    if p % 2 == 0:
        raise PrecisionError(
            f"p = {p} is even: the paper's R_p (Appendix A.2) has (p-1)/2 integer and (p-1)/2 "
            f"fractional bits, so p must be odd; try p = {p + 1}"
        )
    return p


def check_split(I: int, F: int) -> None:
    """Validate R(I, F): integers I >= 1 and F >= 1 with I + F + 1 <= MAX_P."""
    for name, v in (("I", I), ("F", F)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise PrecisionError(f"{name} (integer / fractional bits) must be an integer >= 1, got {v!r}")
        if v < 1:
            raise PrecisionError(f"R(I, F) needs I >= 1 and F >= 1 (got I = {I}, F = {F})")
    if I + F + 1 > MAX_P:
        raise PrecisionError(f"R(I={I}, F={F}) has {I + F + 1} bits; this tool supports at most {MAX_P}")


@dataclass(frozen=True)
class Arithmetic:
    """The semantic choices that A.2 leaves open. Defaults are justified in notes/numerics.md.

    tie:      rounding of exact half-way cases ("even" or "away").
    matmul:   "round_once"  - a matrix product is one operator: exact dot products, one
                              rounding per output entry (default);
              "round_products" - every scalar product is rounded to R_p, then the sums of
                              R_p values are exact (they are on the grid) and only checked
                              for overflow.
    overflow: "raise" (default) or "saturate" (exploration only; reported).
    """

    tie: TieRule = "even"
    matmul: MatmulReading = "round_once"
    overflow: OverflowMode = "raise"

    def __post_init__(self) -> None:
        if self.tie not in ("even", "away"):
            raise PrecisionError(f"unknown tie rule {self.tie!r}; use 'even' or 'away'")
        if self.matmul not in ("round_once", "round_products"):
            raise PrecisionError(f"unknown matmul reading {self.matmul!r}; use 'round_once' or 'round_products'")
        if self.overflow not in ("raise", "saturate"):
            raise PrecisionError(f"unknown overflow mode {self.overflow!r}; use 'raise' or 'saturate'")


def div_round(num: int, den: int, tie: TieRule = "even") -> int:
    """The integer nearest to num/den (den > 0), exact, with the given tie rule."""
    if den <= 0:
        raise ValueError("den must be positive")
    q, r = divmod(num, den)  # num = q*den + r, 0 <= r < den
    twice = 2 * r
    if twice < den:
        return q
    if twice > den:
        return q + 1
    if tie == "even":
        return q if q % 2 == 0 else q + 1
    return q + 1 if num > 0 else q  # away from zero


@dataclass(frozen=True)
class Precision:
    """A fixed-point format; values are scaled integers q = v * 2^F, |q| <= 2^(p-1) - 1.

    ``Precision(p)`` is the paper's R_p (p odd, I = F = (p-1)/2).  ``Precision.split(I, F)`` is
    R(I, F), beyond the paper: a sign bit, I integer and F fractional bits, p = I + F + 1 in all
    (any parity); R_p = R((p-1)/2, (p-1)/2).  Every operation of A.2 reads only F (the grid
    2^-F) and p (the range), so the evaluators run both kinds unchanged.

    ``below_declared_ok`` (not part of equality) asks builders to build at this format even
    where it is below what their proof declares (``ffn_blocks.require_precision``): for the
    precision frontier, which measures what a construction really needs.  Such a model records
    ``meta["below_declared"]``; it is exploration, not a construction the proof covers.
    """

    p: int
    frac: int | None = None
    below_declared_ok: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.frac is None:
            check_p(self.p)
        else:
            check_split(self.p - 1 - self.frac, self.frac)

    @staticmethod
    def split(I: int, F: int, below_declared_ok: bool = False) -> "Precision":
        """R(I, F): I integer and F fractional bits (validated by :func:`check_split`)."""
        check_split(I, F)
        return Precision(I + F + 1, None if I == F else F, below_declared_ok)

    @staticmethod
    def of(p: "int | Precision") -> "Precision":
        """A Precision from an odd p (R_p) or a Precision (returned as is)."""
        return p if isinstance(p, Precision) else Precision(p)

    @property
    def F(self) -> int:
        """Fractional bits: (p - 1)/2 for R_p, the given F for R(I, F)."""
        return (self.p - 1) // 2 if self.frac is None else self.frac

    @property
    def I(self) -> int:  # noqa: E743 - the paper-style name of the integer bits
        """Integer bits: p - 1 - F."""
        return self.p - 1 - self.F

    @property
    def symmetric(self) -> bool:
        """True for the paper's R_p (I = F)."""
        return self.I == self.F

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """``R_75`` or ``R(I=40, F=30)``: how messages name the format."""
        return f"R_{self.p}" if self.symmetric else f"R(I={self.I}, F={self.F})"

    @property
    def scale(self) -> int:
        return 1 << self.F

    @property
    def max_scaled(self) -> int:
        """Largest |q|: (2^(p-1) - 1)."""
        return (1 << (self.p - 1)) - 1

    @property
    def max_value(self) -> Fraction:
        return Fraction(self.max_scaled, self.scale)

    @property
    def max_integer(self) -> int:
        """Largest integer in Z_p, 2^F - 1 (A.2's Z_p)."""
        return self.max_scaled >> self.F

    # ---- rounding -------------------------------------------------------------------------
    def check(self, q: int, where: Location | str | None = None, arith: Arithmetic = Arithmetic()) -> int:
        """Range-check a scaled integer; raise or saturate on overflow."""
        if -self.max_scaled <= q <= self.max_scaled:
            return q
        if arith.overflow == "saturate":
            return self.max_scaled if q > 0 else -self.max_scaled
        raise PrecisionOverflow(self, Fraction(q, self.scale), where)

    def round_rational(
        self, num: int, den: int, where: Location | str | None = None, arith: Arithmetic = Arithmetic()
    ) -> int:
        """ROUND(num/den, p) as a scaled integer."""
        if den < 0:
            num, den = -num, -den
        return self.check(div_round(num * self.scale, den, arith.tie), where, arith)

    def round_scaled(self, q: int, extra_bits: int, where=None, arith: Arithmetic = Arithmetic()) -> int:
        """Round q / 2^(F + extra_bits) (a value on a finer grid) to R_p, as a scaled int."""
        if extra_bits == 0:
            return self.check(q, where, arith)
        return self.check(div_round(q, 1 << extra_bits, arith.tie), where, arith)

    def encode(self, value: int | float | Fraction | str, where=None, exact: bool = True) -> int:
        """A real number as a scaled int. With exact=True the value must lie in R_p already."""
        frac = to_fraction(value)
        num, den = frac.numerator * self.scale, frac.denominator
        if exact and num % den != 0:
            raise WeightError(
                f"{value!r} is not exactly representable in {self.label} (needs more than {self.F} "
                f"fractional bits){' at ' + str(where) if where else ''}; round it explicitly or raise p"
            )
        q = div_round(num, den, "even")
        if abs(q) > self.max_scaled:
            raise WeightError(
                f"{value!r} exceeds the range of {self.label} (largest magnitude {float(self.max_value):.6g})"
                f"{' at ' + str(where) if where else ''}; use a larger odd p"
            )
        return q

    def decode(self, q: int) -> Fraction:
        return Fraction(q, self.scale)

    def values(self) -> Iterator[Fraction]:
        """All of R_p, ascending (only sensible for small p)."""
        for q in range(-self.max_scaled, self.max_scaled + 1):
            yield Fraction(q, self.scale)


def to_fraction(value: int | float | Fraction | str) -> Fraction:
    """Exact rational of a weight; NaN and infinities are refused."""
    if isinstance(value, bool):
        return Fraction(int(value))
    if isinstance(value, float) and not math.isfinite(value):
        raise WeightError(f"weight {value!r} is not finite; R_p holds only finite values")
    try:
        frac = Fraction(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise WeightError(f"weight {value!r} is not a finite real number") from exc
    return frac


# ---- certified softmax ----------------------------------------------------------------------


@contextlib.contextmanager
def _working_precision(bits: int) -> Iterator[None]:
    old = _flint_ctx.prec
    _flint_ctx.prec = bits
    try:
        yield
    finally:
        _flint_ctx.prec = old


def far_gap_threshold(score_shift: int, d: int, F: int) -> int:
    """The integer G such that a gap ``smax - s`` (integers, real gap / 2^score_shift) is *far*
    iff gap > G: far means (F + 2) ln 2 < gap / sqrt(d), tested with a rational lower bound of
    ln 2 (0.693147): (gap / 2^shift)^2 > (F+2)^2 (693147 / 10^6)^2 d, i.e. in integers
    gap^2 > N := floor((F+2)^2 693147^2 d 2^(2 shift) / 10^12), i.e. gap > isqrt(N) (gap^2
    is an integer, so gap^2 > x iff gap^2 > floor(x); and gap^2 > N iff gap > isqrt(N)).
    Far entries are below 2^-(F+2) and round to 0 (see softmax_column)."""
    rhs = (F + 2) ** 2 * 693147**2 * d << (2 * score_shift)
    return math.isqrt(rhs // 10**12)


def softmax_column(
    scores: Sequence[int], score_shift: int, d: int, prec: Precision, tie: TieRule = "even"
) -> list[int]:
    """ROUND(softmax(s / sqrt(d)), p) for one (already masked) column, as scaled ints.

    ``scores`` are exact integers; the real score of entry j is ``scores[j] / 2^score_shift``
    (products of two R_p values live on the 2^-2F grid, so ``score_shift = 2F``).

    Exactness argument: if all scores are equal every entry is 1/m exactly and is rounded as a
    rational (this is the only case where a tie can occur).  Otherwise every entry is
    transcendental (Lindemann-Weierstrass: a sum of exponentials of distinct algebraic numbers
    is never rational), so no entry sits exactly on a rounding midpoint and the loop below,
    which raises the working precision until the arb enclosure of 2^F * softmax_j + 1/2 has a
    unique floor, terminates.  Entries whose score is more than (F + 2) ln 2 below the maximum
    are below 2^-(F+2) and round to 0.
    """
    m = len(scores)
    if m == 0:
        return []
    smax = max(scores)
    if all(s == smax for s in scores):
        q = div_round(prec.scale, m, tie)
        return [q] * m
    F = prec.F
    # entries certainly far below the maximum round to 0; they still count in the denominator.
    far_gap = far_gap_threshold(score_shift, d, F)
    far = [smax - s > far_gap for s in scores]
    work = 2 * F + 64 + m.bit_length()
    while True:
        with _working_precision(work):
            inv_sqrt_d = arb(d).rsqrt()
            den = arb(fmpq(1, 1 << score_shift)) * inv_sqrt_d
            exps = [((arb(s - smax)) * den).exp() for s in scores]
            total = sum(exps[1:], exps[0])
            out: list[int] = []
            ok = True
            half = arb(fmpq(1, 2))
            for e, is_far in zip(exps, far):
                if is_far:
                    out.append(0)
                    continue
                t = (e / total) * (1 << F) + half
                q = t.floor().unique_fmpz()
                if q is None:
                    ok = False
                    break
                out.append(int(q))
        if ok:
            return out
        work *= 2
        if work > 1 << 20:  # pragma: no cover - would contradict the transcendence argument
            raise PrecisionError("softmax rounding could not be certified (working precision exhausted)")
