"""Attention building blocks of Appendix B.2: Defs B.7-B.12, Lemmas B.13-B.19.

Each lemma's block is "1 feedforward block g and 1 attention block A with 1 head", computing
A(g(X) + X).  A builder here returns an :class:`AttentionBlock` holding

* ``ffn``: the FFNSpec of g (the auxiliary dims the scores need: the constant ``"one"``,
  ``"pos_sq"`` = k^2, squares ``"sq:<dim>"`` of matched values (Lemma B.1), and for MatchNext
  the ``next`` approximation of Lemma B.18);
* ``head``: the HeadSpec of the one head A (scores designed exactly as in the proofs; assemble
  compensates 1/sqrt(d), so softmax sees exactly these scores);
* ``pre_ffns``: FFN layers needed *before* g (only the cubic ``next`` variant, see below);
* ``budget(d)``: the :class:`PrecisionBudget` derived from the proof: the largest magnitude any
  intermediate takes (scores times the sqrt(d) query factor included) and the smallest score
  gap, hence the window of odd p for which the block is exact.

g *overwrites* its auxiliary dims (out = target - current value), so g(X) + X holds exactly
1, k^2, x^2, ... whatever X held there ("(g(X)+X)_(d-1,k) = k^2" in the proofs); placing the
same aux units twice is therefore harmless (use :func:`merge_ffns` to drop duplicates).

Standalone models (``build_*_model``) are two layers in the runtime of Def 3.1 (attention then
FFN): layer 1 has no head and FFN g, layer 2 has the head and an empty FFN.

Scales.  The paper's constants: COPY/COUNT lambda = n; Match* lambda_4 = n^(4c+1) (non-match
penalty), lambda_2 = n^(2c+2) (default position 1), lambda_1 = n (position preference);
MatchNext n^(4A+3), n^(4A+2), n^(4A+1).  Every score is multiplied by ``boost`` (a power of
two, default 1 = the paper's constants).  Hard attention at p bits needs every losing score
to trail the winner by more than (F+1) ln 2 + ln(l-1), F = (p-1)/2, while all values stay
below 2^F: for small n no p satisfies both with boost 1 (see notes/precision/attention_blocks.md
and notes/errata/attention_blocks.md); the standalone builders then pick the smallest boost
that has a feasible p.

Deviations from the printed text (each an erratum with a test, see the errata file):
Def B.7 reads position 0 for k <= s (the block copies position 1); Match-family blocks need
a non-zero query value (position 1 carries the forced 0); MatchNearest breaks ties toward the
later position (target shifted by +1/4); MatchNext defaults to position 1 only when nothing
matches; the cubic piece of ``next`` needs x^2 from an earlier layer, so the one-FFN block uses
x - x^2 (as B.19's proof does).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Literal, Sequence

from .blocks import FFNSpec, HeadSpec, LayerSpec, Unit, assemble, padded_layout, round_to_grid
from .errors import InputError, PrecisionError
from .layout import POS, LayoutBuilder, special_dim
from .model import Model
from .numerics import MAX_P, Precision, check_p
from .vocab import Vocabulary

ONE = "one"
POS_SQ = "pos_sq"
BOS = special_dim("<s>")  # X_(3,k) = 1[k = 1]

NextVariant = Literal["quadratic", "cubic"]


def sq(dim: str) -> str:
    """Name of the dim holding dim's square (Lemma B.1)."""
    return f"sq:{dim}"


# ---- feedforward pieces (g) -----------------------------------------------------------------


def set_one_ffn() -> FFNSpec:
    """g_one = 1 - x_one, so (g(X) + X)_one = 1 (the constant dim of the proofs)."""
    return FFNSpec([Unit("aux:one", {}, 1, {ONE: -1}, 1, {ONE: 1})])


def set_square_ffn(src: str, dst: str | None = None) -> FFNSpec:
    """(g(X) + X)_dst = ROUND(x_src^2): Lemma B.1 with ReGLU, ReLU(x) x - ReLU(-x) x = x^2,
    plus a reset unit ReLU(1) * (-x_dst) so the dim is overwritten."""
    dst = dst or sq(src)
    return FFNSpec(
        [
            Unit(f"aux:{dst}:+", {src: 1}, 0, {src: 1}, 0, {dst: 1}),
            Unit(f"aux:{dst}:-", {src: -1}, 0, {src: 1}, 0, {dst: -1}),
            Unit(f"aux:{dst}:reset", {}, 1, {dst: -1}, 0, {dst: 1}),
        ]
    )


def set_pos_sq_ffn() -> FFNSpec:
    """(g(X) + X)_pos_sq = k^2 (X_(d,k) = k)."""
    return set_square_ffn(POS, POS_SQ)


def merge_ffns(*specs: FFNSpec) -> FFNSpec:
    """Sum of FFN specs, keeping one copy of units that are identical (same name and weights)."""
    units: dict[str, Unit] = {}
    out = FFNSpec()
    for spec in specs:
        for u in spec.units:
            if u.name in units:
                if units[u.name] != u:
                    raise InputError(f"two different FFN units are both named {u.name!r}; rename one")
                continue
            units[u.name] = u
            out.units.append(u)
        for k, v in spec.bias.items():
            out.bias[k] = out.bias.get(k, 0) + v
    return out


# Breakpoints of the piecewise `next` approximation (Lemma B.18), chosen dyadic inside the
# intervals where the printed function "can be arbitrary": [11/40, 3/10], [7/20, 2/5], [3/5, 2/3].
NEXT_BREAKS: tuple[Fraction, ...] = (
    Fraction(9, 32), Fraction(19, 64),  # quadratic/cubic piece -> 1/4
    Fraction(23, 64), Fraction(25, 64),  # 1/4 -> 1/3
    Fraction(5, 8), Fraction(41, 64),  # 1/3 -> 1/2
)


# Fractional bits the weights of next~ need (t1^3 = 729/32768 for the cubic piece; t1^2 and the
# quadratic bend for x - x^2): below these p the FFN is not representable.
NEXT_MIN_P: dict[str, int] = {"quadratic": 21, "cubic": 31}


def next_approx_ffn(x: str, out: str, p: int, variant: NextVariant = "quadratic", x_sq: str | None = None) -> FFNSpec:
    """(g(X) + X)_out = next~(x_x) of Lemma B.18, one ReGLU layer:

        next~(x) = 1/2 (x >= 2/3),  1/3 (2/5 < x < 3/5),  1/4 (3/10 < x < 7/20),
                   poly(x) (0 <= x <= 11/40),   arbitrary (continuous, linear) in between,

    poly(x) = x - x^2 + x^3 as printed in B.18 (``variant="cubic"``; one ReGLU layer computes
    only piecewise-quadratic functions of its inputs, so this needs x^2 in dim ``x_sq`` from an
    earlier layer), or x - x^2 as used in B.19's proof (``"quadratic"``, one layer from x alone).
    1/3 is not in R_p: it is ROUND(1/3, p).  Construction: the base unit ReLU(x) * poly(x)/x,
    then for each transition between dyadic breakpoints t_a < t_b a unit ReLU(x - t_a) * (...)
    that turns the current piece into the line to the next constant, and ReLU(x - t_b) * (-slope)
    that flattens it (every piece vanishes at its breakpoint, so the sum is exact).
    """
    if variant not in ("quadratic", "cubic"):
        raise InputError(f"unknown next variant {variant!r}; use 'quadratic' or 'cubic'")
    if variant == "cubic" and not x_sq:
        raise InputError("the cubic next approximation needs x_sq, a dim holding x^2 from an earlier layer")
    t1, t2, t3, t4, t5, t6 = NEXT_BREAKS
    third = round_to_grid(Fraction(1, 3), p)
    quarter, half = Fraction(1, 4), Fraction(1, 2)
    if variant == "quadratic":
        base = Unit(f"next:{out}:poly", {x: 1}, 0, {x: -1}, 1, {out: 1})  # ReLU(x)(1 - x)
        q_t1 = t1 - t1**2
    else:
        base = Unit(f"next:{out}:poly", {x: 1}, 0, {x: -1, x_sq: 1}, 1, {out: 1})  # ReLU(x)(1 - x + x^2)
        q_t1 = t1 - t1**2 + t1**3
    s1 = (quarter - q_t1) / (t2 - t1)
    if variant == "quadratic":
        # line - (x - x^2) = (x - t1)(x + s1 - 1 + t1)
        bend = Unit(f"next:{out}:bend1", {x: 1}, -t1, {x: 1}, s1 - 1 + t1, {out: 1})
    else:
        # line - (x - x^2 + x^3) = (x - t1)(-x^2 + (1 - t1) x + s1 - 1 + t1 - t1^2)
        bend = Unit(f"next:{out}:bend1", {x: 1}, -t1, {x_sq: -1, x: 1 - t1}, s1 - 1 + t1 - t1**2, {out: 1})
    s2 = (third - quarter) / (t4 - t3)
    s3 = (half - third) / (t6 - t5)
    units = [
        base,
        bend,
        Unit(f"next:{out}:flat1", {x: 1}, -t2, {}, -s1, {out: 1}),
        Unit(f"next:{out}:bend2", {x: 1}, -t3, {}, s2, {out: 1}),
        Unit(f"next:{out}:flat2", {x: 1}, -t4, {}, -s2, {out: 1}),
        Unit(f"next:{out}:bend3", {x: 1}, -t5, {}, s3, {out: 1}),
        Unit(f"next:{out}:flat3", {x: 1}, -t6, {}, -s3, {out: 1}),
        Unit(f"next:{out}:reset", {}, 1, {out: -1}, 0, {out: 1}),
    ]
    return FFNSpec(units)


def next_approx_exact(x: Fraction, p: int, variant: NextVariant = "quadratic") -> Fraction:
    """The real function next~ that :func:`next_approx_ffn` encodes (before any rounding)."""
    t1, t2, t3, t4, t5, t6 = NEXT_BREAKS
    third = round_to_grid(Fraction(1, 3), p)
    poly = (lambda v: v - v * v) if variant == "quadratic" else (lambda v: v - v * v + v**3)
    quarter, half = Fraction(1, 4), Fraction(1, 2)
    if x <= t1:
        return poly(x) if x >= 0 else Fraction(0)
    if x <= t2:
        return poly(t1) + (quarter - poly(t1)) * (x - t1) / (t2 - t1)
    if x <= t3:
        return quarter
    if x <= t4:
        return quarter + (third - quarter) * (x - t3) / (t4 - t3)
    if x <= t5:
        return third
    if x <= t6:
        return third + (half - third) * (x - t5) / (t6 - t5)
    return half


# ---- precision ------------------------------------------------------------------------------

LN2_UP = Fraction(6931472, 10**7)  # > ln 2


def _ln_up(m: int) -> Fraction:
    """A rational upper bound of ln m (m >= 1)."""
    return Fraction(0) if m <= 1 else Fraction(math.log(m)) + Fraction(1, 10**9)


@dataclass(frozen=True)
class PrecisionBudget:
    """What a block needs from p, derived from its proof.

    magnitudes: name -> largest |value| of that intermediate (queries carry the sqrt(d)
                factor assemble puts on them, scores too);
    gap(F):     smallest score gap between the winning key and any other key of a column
                (for COUNT: between the zero-score keys and the others);
    max_len:    longest column (number of keys);
    min_p:      a lower bound the lemma assumes on its own (Def B.12: p > 10 A log2 n).
    Exact iff  max|value| <= (2^(2F) - 1) / 2^F  and  gap > (F+1) ln 2 + ln(max_len - 1):
    then every losing softmax entry is < 2^-(F+1) in total, so it rounds to 0 and the winner
    (or, for COUNT, ROUND(1/(m+1))) rounds exactly.
    """

    block: str
    magnitudes: dict[str, Fraction]
    gap: Callable[[int], Fraction]
    max_len: int
    min_p: int = 3

    @property
    def magnitude(self) -> Fraction:
        return max(self.magnitudes.values())

    def fits(self, p: "int | Precision") -> bool:
        """Every intermediate within the range of R_p (or R(I, F): 2^I - 2^-F)."""
        return self.magnitude <= Precision.of(p).max_value

    def hard(self, p: "int | Precision") -> bool:
        """The score gap beats the bar (F+1) ln 2 + ln(l-1): reads only the fractional bits F."""
        F = Precision.of(p).F
        return self.gap(F) > (F + 1) * LN2_UP + _ln_up(self.max_len - 1)

    def feasible(self, p: "int | Precision") -> bool:
        return Precision.of(p).p >= self.min_p and self.fits(p) and self.hard(p)

    def min_int_bits(self, F: int) -> int:
        """The smallest I whose R(I, F) holds every intermediate (the block's integer-bits need)."""
        I = 1
        while not self.fits(Precision.split(I, F)):
            I += 1
        return I

    def p_min_magnitude(self) -> int:
        """Smallest odd p whose range holds every intermediate (and min_p)."""
        p = max(3, self.min_p + (self.min_p + 1) % 2)
        F = max(1, self.magnitude.__ceil__().bit_length())
        p = max(p, 2 * F + 1)
        while p > 3 and self.fits(p - 2) and p - 2 >= self.min_p:
            p -= 2
        while not self.fits(p):
            p += 2
        return p

    def window(self) -> tuple[int, int] | None:
        """The odd p in [p_lo, p_hi] for which the block is exact, or None if there is none."""
        return _window(self)


def _window(b: PrecisionBudget) -> tuple[int, int] | None:
    """Scan odd p upward from the smallest p whose range holds every value.  The gap is constant
    (or, for MatchNext, grows only while 2^-F slack shrinks), while the hard-attention bar grows
    with F, so the feasible p form one interval; a miss over 100 further bits means none."""
    p0 = b.p_min_magnitude()
    lo = next((p for p in range(p0, min(MAX_P, p0 + 200) + 1, 2) if b.hard(p)), None)
    if lo is None:
        return None
    hi = lo
    while hi + 2 <= MAX_P and b.feasible(hi + 2):
        hi += 2
    return lo, hi


def sqrt_factor(d: int) -> int:
    """The factor assemble puts on queries: s with s^2 = d padded to a perfect square."""
    s = math.isqrt(d)
    return s if s * s == d else s + 1


def choose_boost(budget_of: Callable[[int], PrecisionBudget], max_boost_bits: int = 64) -> int:
    """Smallest boost 2^b (b >= 0) for which the block has a feasible p."""
    probe = budget_of(1)
    if probe.gap(MAX_P // 2) <= 0:
        raise PrecisionError(
            f"{probe.block}: at this n the score levels of the proof do not separate (smallest gap "
            f"{probe.gap(MAX_P // 2)} <= 0), so no boost or p helps; the lemma needs a larger n"
        )
    for b in range(max_boost_bits + 1):
        if budget_of(1 << b).window() is not None:
            return 1 << b
    raise PrecisionError("no boost up to 2^64 makes this block exact at any supported p")


def resolve_p(budget: PrecisionBudget, p: int | None, strict: bool = True) -> int:
    """The declared p (smallest feasible) or a checked user p."""
    win = budget.window()
    if p is None:
        if win is None:
            raise PrecisionError(
                f"{budget.block}: no p makes this block exact (values need p >= {budget.p_min_magnitude()}, "
                f"but the score gap {float(budget.gap(budget.p_min_magnitude() // 2)):.4g} is then too small "
                "for hard attention); use a larger boost"
            )
        return win[0]
    if isinstance(p, Precision):  # R(I, F): range from I, hard attention from F
        if strict and not p.below_declared_ok and not budget.feasible(p):
            raise PrecisionError(
                f"{budget.block} is not exact in {p.label}: values need {budget.min_int_bits(p.F)} integer bits "
                f"and hard attention needs F with gap > (F+1) ln 2 + ln(l-1) ({'met' if budget.hard(p) else 'not met'}); "
                "pass a format with more integer or fewer fractional bits, or a larger boost")
        return p
    check_p(p)
    if strict and (win is None or not win[0] <= p <= win[1]):
        where = "no p" if win is None else f"p in [{win[0]}, {win[1]}]"
        raise PrecisionError(
            f"{budget.block} is exact only for {where}, got p = {p}: below the window values overflow, above it "
            "softmax at p bits is no longer hard (losing entries stop rounding to 0); pass a p in the window"
        )
    return p


# ---- blocks -----------------------------------------------------------------------------------


@dataclass
class AttentionBlock:
    """One lemma's block: g (``ffn``), the head A, and its precision budget."""

    name: str
    ffn: FFNSpec
    head: HeadSpec
    reads: list[str]  # dims of X the block depends on
    writes: list[str]  # dims the head writes (A(.) is zero elsewhere)
    aux: list[str]  # dims g overwrites (must be allocated; their input is ignored)
    budget_of_d: Callable[[int], PrecisionBudget]
    pre_ffns: list[FFNSpec] = field(default_factory=list)
    boost: int = 1

    def budget(self, d: int) -> PrecisionBudget:
        return self.budget_of_d(d)


def _check_sets(**sets: Sequence[str]) -> None:
    for name, dims in sets.items():
        if len(dims) == 0:
            raise InputError(f"index set {name} is empty; give at least one dimension name")
        if len(set(dims)) != len(dims):
            raise InputError(f"index set {name} repeats a dimension: {list(dims)}")


def _check_sizes(n: int, c: int, max_len: int | None, boost: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise InputError(f"n must be an integer >= 2, got {n!r}")
    if not isinstance(c, int) or c < 1:
        raise InputError(f"c must be a positive integer, got {c!r}")
    if not isinstance(boost, int) or boost < 1 or boost & (boost - 1):
        raise InputError(f"boost must be a power of two >= 1, got {boost!r}")
    L = n**c if max_len is None else max_len
    if not isinstance(L, int) or L < 1:
        raise InputError(f"max_len must be a positive integer, got {max_len!r}")
    if L > n**c:
        raise InputError(f"max_len = {L} exceeds n^c = {n**c}: the lemmas assume positions k <= n^c")
    return L


# COPY (Def B.7, Lemma B.13) ------------------------------------------------------------------


def copy_budget(n: int, s: int, max_len: int, d: int, boost: int = 1) -> PrecisionBudget:
    """Scores -lambda (k - s - k')^2, lambda = boost * n, 1 <= k' <= k <= L = max_len:
    -s <= k - s - k' <= L - 1 - s and 1 - s <= k - s <= L - s (all attained for some k, k').
    Gap: lambda (integer distances; for k <= s the winner is k' = 1 and the gap is >= 3 lambda)."""
    lam, sd, L = boost * n, sqrt_factor(d), max_len
    dist = max(s, L - 1 - s)
    q = max(abs(1 - s), abs(L - s))
    mags = {
        "key lambda*k'^2": Fraction(lam * L**2),
        "query sqrt(d)*(k-s)^2": Fraction(sd * q**2),
        "query sqrt(d)*2(k-s)": Fraction(sd * 2 * q),
        "score sqrt(d)*lambda*(k-s-k')^2": Fraction(sd * lam * dist**2),
        "pos_sq": Fraction(L**2),
    }
    return PrecisionBudget("COPY (Lemma B.13)", mags, lambda F: Fraction(lam), max_len)


def copy_block(s: int, src: Sequence[str], dst: Sequence[str], n: int, *, c: int = 1, max_len: int | None = None, boost: int = 1) -> AttentionBlock:
    """COPY[s, I1=src, I2=dst] (Lemma B.13): A(X')_(dst,k) = X_(src, max(k-s, 1)), 0 elsewhere.

    W_K X'_k' = lambda [1, k', k'^2],  W_Q X'_k = [-(k-s)^2, 2(k-s), -1]:
    score = -lambda (k - s - k')^2, lambda = n (times boost).  W_V copies src -> dst.
    """
    _check_sets(src=src, dst=dst)
    if len(src) != len(dst):
        raise InputError(f"COPY needs |I1| = |I2|, got {len(src)} and {len(dst)}")
    if not isinstance(s, int) or s < 0:
        raise InputError(f"COPY's shift s must be a non-negative integer, got {s!r}")
    L = _check_sizes(n, c, max_len, boost)
    lam = boost * n
    head = HeadSpec(
        f"copy[s={s}]",
        keys=[("one", {ONE: lam}), ("pos", {POS: lam}), ("pos_sq", {POS_SQ: lam})],
        queries=[{POS_SQ: -1, POS: 2 * s, ONE: -(s * s)}, {POS: 2, ONE: -2 * s}, {ONE: -1}],
        values={b: {a: 1} for a, b in zip(src, dst)},
    )
    ffn = merge_ffns(set_one_ffn(), set_pos_sq_ffn())
    return AttentionBlock(
        "copy", ffn, head, reads=list(src) + [POS], writes=list(dst), aux=[ONE, POS_SQ],
        budget_of_d=lambda d: copy_budget(n, s, L, d, boost), boost=boost,
    )


# COUNT (Def B.8, Lemma B.14) -----------------------------------------------------------------


def count_budget(n: int, width: int, vmax: int, max_len: int, d: int, boost: int = 1) -> PrecisionBudget:
    """Scores -lambda sum (X1 - X2)^2 + lambda 1[k'=1] sum X2^2, |X| <= vmax, lambda = boost*n."""
    lam, sd, V, I = boost * n, sqrt_factor(d), vmax, width
    mags = {
        "key lambda*X1^2": Fraction(lam * V * V),
        "key 2*lambda*X1": Fraction(2 * lam * V),
        "query sqrt(d)*sum X2^2": Fraction(sd * I * V * V),
        "score sqrt(d)*lambda*sum (X1-X2)^2": Fraction(sd * lam * I * 4 * V * V),
        "sq": Fraction(V * V),
        "pos_sq": Fraction(max_len**2),
    }
    return PrecisionBudget("COUNT (Lemma B.14)", mags, lambda F: Fraction(lam), max_len)


def count_block(keys: Sequence[str], queries: Sequence[str], out: str, n: int, *, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int = 1) -> AttentionBlock:
    """COUNT[I1=keys, I2=queries, i=out] (Lemma B.14): A(X')_(out,k) = ROUND(1/(m_k + 1), p),
    m_k = #{h <= k : X_(I1,h) = X_(I2,k)}; needs X_(3,k) = 1[k=1], X_(I1,1) = 0, X_(I2,k) != 0,
    integer values with |X| <= vmax (default n).

    W_K X'_k' = lambda [2 X1, -X1^2, (1[k'=1] - 1)],  W_Q X'_k = [X2, 1, sum X2^2]:
    score = -lambda sum (X1 - X2)^2 + lambda 1[k'=1] sum X2^2; W_V: out <- X_(3,.) = 1[k'=1].
    """
    _check_sets(keys=keys, queries=queries)
    if len(keys) != len(queries):
        raise InputError(f"COUNT needs |I1| = |I2|, got {len(keys)} and {len(queries)}")
    L = _check_sizes(n, c, max_len, boost)
    V = n if vmax is None else vmax
    lam = boost * n
    krows, qrows = [], []
    for j, (a, b) in enumerate(zip(keys, queries)):
        krows += [(f"cross{j}", {a: 2 * lam}), (f"keysq{j}", {sq(a): -lam})]
        qrows += [{b: 1}, {ONE: 1}]
    krows.append(("querysq", {ONE: -lam, BOS: lam}))
    qrows.append({sq(b): 1 for b in queries})
    head = HeadSpec("count", krows, qrows, {out: {BOS: 1}})
    ffn = merge_ffns(set_one_ffn(), *[set_square_ffn(v) for v in list(keys) + list(queries)])
    return AttentionBlock(
        "count", ffn, head, reads=list(keys) + list(queries) + [BOS], writes=[out],
        aux=[ONE] + [sq(v) for v in list(keys) + list(queries)],
        budget_of_d=lambda d: count_budget(n, len(keys), V, L, d, boost), boost=boost,
    )


# Match, MatchClose, MatchNearest (Defs B.9-B.11, Lemmas B.15-B.17) ------------------------------

MatchKind = Literal["match", "match-close", "match-nearest"]


def _match_scales(n: int, c: int, boost: int) -> tuple[int, int, int]:
    """(lambda_4, lambda_2, lambda_1) = boost * (n^(4c+1), n^(2c+2), n)."""
    return boost * n ** (4 * c + 1), boost * n ** (2 * c + 2), boost * n


def hard_bar_gap(F: int, max_len: int) -> int:
    """The smallest integer score gap G > (F+1) ln 2 + ln(max_len - 1), the hard-attention bar of
    :meth:`PrecisionBudget.hard` at F fractional bits (the same rational upper bounds of the logs)."""
    return math.floor((F + 1) * LN2_UP + _ln_up(max_len - 1)) + 1


def tight_match_scales(kind: "MatchKind", max_len: int, F: int, tie_shift: bool = True) -> tuple[int, int, int]:
    """Tightened constants (issue #11, beyond the paper): the smallest (lambda_4, lambda_2,
    lambda_1) for which every score gap of :func:`match_budget` reaches the hard-attention bar
    at F fractional bits (G = :func:`hard_bar_gap`), instead of the lemmas' n^(4c+1), n^(2c+2), n:
    lambda_1 the smallest with the among-matches gap (5 lambda_1, lambda_1 or lambda_1 / 2) >= G,
    lambda_2 = lambda_1 L'^2 + G (match vs default), lambda_4 = lambda_2 + G (non-match vs the
    rest).  The block is then hard at every F' <= F; its values grow like G L'^2 V^2, not n^(4c+1) V^2."""
    G = hard_bar_gap(F, max_len)
    Lp = max_len + 1 if kind == "match-nearest" else max_len
    per = {"match": Fraction(5), "match-close": Fraction(1), "match-nearest": Fraction(1, 2) if tie_shift else Fraction(1)}[kind]
    l1 = max(1, math.ceil(G / per))
    l2 = l1 * Lp * Lp + G
    return l2 + G, l2, l1


def match_budget(kind: MatchKind, n: int, c: int, width: int, vmax: int, max_len: int, d: int, boost: int = 1, tie_shift: bool = True,
                 scales: tuple[int, int, int] | None = None) -> PrecisionBudget:
    """Budget of Lemmas B.15-B.17 (values |X1|, |X2| <= vmax; MatchNearest targets in [0, max_len]).

    Gaps: first vs later match 5 lambda_1 (B.15: lambda_1 (k2^2 - k1^2), k1 >= 2);
    last vs earlier lambda_1 (B.16); nearest: lambda_1 / 2 with the +1/4 tie shift, lambda_1
    without (B.17); match vs default lambda_2 - lambda_1 L'^2; non-match vs the rest
    lambda_4 - max(lambda_2, lambda_1 L'^2), L' the largest position distance.  ``scales``:
    explicit (lambda_4, lambda_2, lambda_1) (:func:`tight_match_scales`) instead of the lemmas'.
    """
    l4, l2, l1 = _match_scales(n, c, boost) if scales is None else scales
    sd, V, I, L = sqrt_factor(d), vmax, width, max_len
    Lp = L + 1 if kind == "match-nearest" else L
    pos_term = 2 * l1 * Lp * Lp
    mags = {
        "key lambda4*X1^2": Fraction(l4 * V * V),
        "key 2*lambda4*X1": Fraction(2 * l4 * V),
        "key lambda1*k'^2": Fraction(l1 * L * L),
        "key lambda2": Fraction(l2),
        "query sqrt(d)*sum X2^2": Fraction(sd * I * V * V),
        "query sqrt(d)*(pos or target)^2": Fraction(sd * 2 * Lp * Lp),
        "score sqrt(d)*(lambda4 sum (X1-X2)^2 + lambda1 dist^2 + lambda2)": Fraction(sd * (l4 * I * 4 * V * V + pos_term + l2)),
        "sq": Fraction(max(V * V, Lp * Lp)),
    }
    among = {"match": 5 * l1, "match-close": l1, "match-nearest": Fraction(l1, 2) if tie_shift else Fraction(l1)}[kind]
    g = min(Fraction(among), Fraction(l2 - l1 * Lp * Lp), Fraction(l4 - max(l2, l1 * Lp * Lp)))
    title = {"match": "Match (Lemma B.15)", "match-close": "MatchClose (Lemma B.16)", "match-nearest": "MatchNearest (Lemma B.17)"}[kind]
    return PrecisionBudget(title, mags, lambda F: g, max_len)


def _match_common_rows(keys: Sequence[str], queries: Sequence[str], l4: int) -> tuple[list, list]:
    """-lambda_4 sum (X1 - X2)^2 + 1[k'=1] lambda_4 sum X2^2, as key/query rows."""
    krows, qrows = [], []
    for j, (a, b) in enumerate(zip(keys, queries)):
        krows += [(f"cross{j}", {a: 2 * l4}), (f"keysq{j}", {sq(a): -l4})]
        qrows += [{b: 1}, {ONE: 1}]
    krows.append(("querysq", {ONE: -l4, BOS: l4}))
    qrows.append({sq(b): 1 for b in queries})
    return krows, qrows


def _match_like_block(kind: MatchKind, keys, queries, outs, vals, n, c, max_len, vmax, boost, target=None, tie_shift=True,
                      scales: tuple[int, int, int] | None = None) -> AttentionBlock:
    _check_sets(I1=keys, I2=queries, I3=outs, I4=vals)
    if len(keys) != len(queries) or len(outs) != len(vals):
        raise InputError(f"{kind} needs |I1| = |I2| and |I3| = |I4|")
    if len(keys) > 10:
        raise InputError("the lemmas allow |I1| = |I2| <= 10")
    L = _check_sizes(n, c, max_len, boost)
    V = n if vmax is None else vmax
    l4, l2, l1 = _match_scales(n, c, boost) if scales is None else scales
    krows, qrows = _match_common_rows(keys, queries, l4)
    aux = [ONE, POS_SQ] + [sq(v) for v in list(keys) + list(queries)]
    ffns = [set_one_ffn(), set_pos_sq_ffn()] + [set_square_ffn(v) for v in list(keys) + list(queries)]
    reads = list(keys) + list(queries) + list(vals) + [BOS, POS]
    if kind == "match":
        # - lambda_1 k'^2 + 1[k'=1] (lambda_1 - lambda_2)
        krows += [("pos_sq", {POS_SQ: -l1}), ("bos", {BOS: l1 - l2})]
        qrows += [{ONE: 1}, {ONE: 1}]
    elif kind == "match-close":
        # - lambda_1 (k - k')^2 + 1[k'=1] (lambda_1 (k-1)^2 - lambda_2)
        krows += [("one", {ONE: -l1}), ("pos", {POS: 2 * l1}), ("pos_sq", {POS_SQ: -l1}), ("bos_dist", {BOS: l1}), ("bos", {BOS: -l2})]
        qrows += [{POS_SQ: 1}, {POS: 1}, {ONE: 1}, {POS_SQ: 1, POS: -2, ONE: 1}, {ONE: 1}]
    else:
        # - lambda_1 (t - k')^2 + 1[k'=1] (lambda_1 (t-1)^2 - lambda_2), t = X_(i,k) (+ 1/4)
        h = Fraction(1, 4) if tie_shift else Fraction(0)
        t2 = {sq(target): 1, target: 2 * h, ONE: h * h}  # t^2
        krows += [("one", {ONE: -l1}), ("pos", {POS: 2 * l1}), ("pos_sq", {POS_SQ: -l1}), ("bos_dist", {BOS: l1}), ("bos", {BOS: -l2})]
        # (t - 1)^2 = t^2 - 2t + 1
        qrows += [t2, {target: 1, ONE: h}, {ONE: 1}, {**t2, target: t2[target] - 2, ONE: h * h - 2 * h + 1}, {ONE: 1}]
        aux.append(sq(target))
        ffns.append(set_square_ffn(target))
        reads.append(target)
    head = HeadSpec(kind, krows, qrows, {o: {v: 1} for o, v in zip(outs, vals)})
    return AttentionBlock(
        kind, merge_ffns(*ffns), head, reads=reads, writes=list(outs), aux=aux,
        budget_of_d=lambda d: match_budget(kind, n, c, len(keys), V, L, d, boost, tie_shift, scales), boost=boost,
    )


def match_block(keys: Sequence[str], queries: Sequence[str], outs: Sequence[str], vals: Sequence[str], n: int, *, c: int = 1, max_len: int | None = None, vmax: int | None = None, boost: int = 1,
                scales: tuple[int, int, int] | None = None) -> AttentionBlock:
    """Match[I1=keys, I2=queries, I3=outs, I4=vals] (Lemma B.15): A(X')_(I3,k) = X_(I4,k*),
    k* = the first h <= k with X_(I1,h) = X_(I2,k), else 1.  Needs X_(3,k) = 1[k=1],
    X_(I1,1) = 0, X_(I2,k) != 0, integers |X| <= vmax (default n), k <= max_len <= n^c.

    score = -n^(4c+1) sum (X1 - X2)^2 - n k'^2 + 1[k'=1](n^(4c+1) sum X2^2 + n - n^(2c+2)).
    ``scales``: (lambda_4, lambda_2, lambda_1) in place of the lemma's (the tightened variant,
    :func:`tight_match_scales`; ``boost`` is then ignored).
    """
    return _match_like_block("match", keys, queries, outs, vals, n, c, max_len, vmax, boost, scales=scales)


def match_close_block(keys: Sequence[str], queries: Sequence[str], outs: Sequence[str], vals: Sequence[str], n: int, *, c: int = 1, max_len: int | None = None, vmax: int | None = None, boost: int = 1) -> AttentionBlock:
    """MatchClose (Lemma B.16): as Match but k* = the *last* h <= k with a match, else 1.

    score = -n^(4c+1) sum (X1 - X2)^2 - n (k - k')^2 + 1[k'=1](n^(4c+1) sum X2^2 + n (k-1)^2 - n^(2c+2)).
    """
    return _match_like_block("match-close", keys, queries, outs, vals, n, c, max_len, vmax, boost)


def match_nearest_block(keys: Sequence[str], queries: Sequence[str], outs: Sequence[str], vals: Sequence[str], target: str, n: int, *, c: int = 1, max_len: int | None = None, vmax: int | None = None, boost: int = 1, tie_shift: bool = True) -> AttentionBlock:
    """MatchNearest[I1, I2, I3, I4, i=target] (Lemma B.17): k* = the match h nearest to
    t = X_(i,k) (an integer in [0, max_len]); on a tie (h = t - e and t + e) the later one
    (erratum B17-E1: Def B.11 leaves ties open; the printed score splits attention between them).

    score = -n^(4c+1) sum (X1 - X2)^2 - n (t' - k')^2 + 1[k'=1](n^(4c+1) sum X2^2 + n (t'-1)^2 - n^(2c+2)),
    t' = t + 1/4 (tie_shift=True, the fix) or t' = t (tie_shift=False, as printed).
    """
    return _match_like_block("match-nearest", keys, queries, outs, vals, n, c, max_len, vmax, boost, target=target, tie_shift=tie_shift)


# MatchNext (Def B.12, Lemmas B.18, B.19) ------------------------------------------------------


def next_error_bound(m: int, variant: NextVariant) -> Fraction:
    """|next~(1/m) - 1/(m+1)| in exact arithmetic: 0 for m <= 3 (constant pieces; the ROUND(1/3)
    error is counted with the rounding), else 1/(m^2(m+1)) for x - x^2, 1/(m^3(m+1)) for the cubic."""
    if m <= 3:
        return Fraction(0)
    return Fraction(1, m * m * (m + 1)) if variant == "quadratic" else Fraction(1, m**3 * (m + 1))


def _pair_sq_gap(j: int, F: int, variant: NextVariant) -> Fraction:
    """Lower bound of |y_j - y_(j+1)| |y_j + y_(j+1) - 2t| (0 if a factor may vanish)."""
    delta = Fraction(1, 1 << F)
    rho = 10 * delta  # rounding of x, of the 8 units of next~ and of its output, and of 1/3
    dj = Fraction(1, j * (j + 1))
    err = max(next_error_bound(j - 1, variant) if j >= 2 else Fraction(0), next_error_bound(j, variant))
    a, b = dj - delta, dj - 2 * delta - 2 * err - 2 * rho
    return a * b if a > 0 and b > 0 else Fraction(0)


@functools.lru_cache(maxsize=4096)
def _match_next_min_sq_gap(N: int, F: int, variant: NextVariant) -> Fraction:
    """min over adjacent candidate pairs (j, j+1), 1 <= j < N, of :func:`_pair_sq_gap`.

    For j >= 5 both factors D_j - delta and D_j (1 - 2 e_j / D_j) - 2 delta - 2 rho decrease in j
    (D_j = 1/(j(j+1)) and e_j / D_j = (j+1)/(j-1)^2, resp. (j+1)/(j-1)^3, both decrease), so the
    minimum over j >= 5 is at j = N - 1 (a factor <= 0 there gives 0, the safe answer)."""
    js = set(range(1, min(N, 8))) | ({N - 1} if N >= 2 else set())
    return min((_pair_sq_gap(j, F, variant) for j in js), default=Fraction(1))


def match_next_budget(n: int, A: int, width: int, vmax: int, max_len: int, d: int, boost: int = 1, variant: NextVariant = "quadratic") -> PrecisionBudget:
    """Budget of Lemma B.18: scales lambda_6 = n^(4A+3), lambda_2 = n^(4A+2), lambda_a = n^(4A+1).

    Among matches the score is -lambda_a (y^2 - 2 t y) = -lambda_a ((y - t)^2 - t^2), so the gap
    is lambda_a times the gap of squared distances.  For adjacent candidates y_j = ROUND(1/j),
    y_(j+1) it is |y_j - y_(j+1)| |y_j + y_(j+1) - 2t| >= (D_j - delta)(D_j - 2 delta - 2 e - 2 rho),
    D_j = 1/(j(j+1)), delta = 2^-F, e the next~ error at the two targets 1/j, 1/(j+1), rho the
    rounding slack of t (a contiguous S makes the nearest two candidates adjacent).  Match vs
    default: lambda_2 - 2 lambda_a; non-match vs the rest: lambda_6 - lambda_2 - 2 lambda_a.
    Def B.12 assumes p > 10 A log2 n.
    """
    N = n**A
    if N > 1 << 14:
        raise InputError(f"n^A = {N} counting values is beyond what this tool tabulates (2^14)")
    l6, l2, la = boost * n ** (4 * A + 3), boost * n ** (4 * A + 2), boost * n ** (4 * A + 1)
    sd, V, I = sqrt_factor(d), vmax, width
    mags = {
        "key lambda6*X1^2": Fraction(l6 * V * V),
        "key 2*lambda6*X1": Fraction(2 * l6 * V),
        "key lambda2": Fraction(l2),
        "key 2*lambda_a*X_a": Fraction(2 * la),
        "query sqrt(d)*sum X2^2": Fraction(sd * I * V * V),
        "score sqrt(d)*(lambda6 sum (X1-X2)^2 + lambda2 + 2 lambda_a)": Fraction(sd * (l6 * I * 4 * V * V + l2 + 2 * la)),
        "sq": Fraction(max(V * V, max_len**2)),
    }

    def gap(F: int) -> Fraction:
        return min(la * _match_next_min_sq_gap(N, F, variant), Fraction(l2 - 2 * la), Fraction(l6 - l2 - 2 * la))

    min_p = max(math.floor(10 * A * math.log2(n)) + 1, NEXT_MIN_P[variant])
    return PrecisionBudget(f"MatchNext (Lemma B.18, next~ {variant})", mags, gap, max_len, min_p)


def match_next_block(keys: Sequence[str], queries: Sequence[str], outs: Sequence[str], vals: Sequence[str], a: str, n: int, p: int, *, A: int = 1, c: int = 1, max_len: int | None = None, vmax: int | None = None, boost: int = 1, variant: NextVariant = "quadratic", next_dim: str | None = None) -> AttentionBlock:
    """MatchNext[I1, I2, I3, I4, a] (Lemma B.18): k* = argmin over matches h <= k of
    |X_(a,h) - next(X_(a,k))|, or 1 if nothing matches (erratum B12-E1: Def B.12 also lets position 1
    compete).  X_(a,.) in ROUND(1/[n^A], p) u {0}, distinct and contiguous per query (Def B.12).

    g computes t = next~(X_(a,k)) into ``next_dim`` (Lemma B.18's piecewise function; see
    :func:`next_approx_ffn`) and the squares; the head scores
        -n^(4A+3) sum (X1 - X2)^2 - n^(4A+1) (X_(a,k')^2 - 2 t X_(a,k')) + 1[k'=1](n^(4A+3) sum X2^2 - n^(4A+2)),
    i.e. the printed -n^(4A+1) (t - X_(a,k'))^2 without its column constant -n^(4A+1) t^2
    (softmax is shift invariant, so this is exact, and it spares a layer to square t).
    ``variant="cubic"`` adds ``pre_ffns`` computing X_a^2 first (two FFN layers).
    """
    _check_sets(I1=keys, I2=queries, I3=outs, I4=vals)
    if len(keys) != len(queries) or len(outs) != len(vals):
        raise InputError("MatchNext needs |I1| = |I2| and |I3| = |I4|")
    if not isinstance(A, int) or A < 1:
        raise InputError(f"A must be a positive integer, got {A!r}")
    L = _check_sizes(n, c, max_len, boost)
    V = n if vmax is None else vmax
    nxt = next_dim or f"next:{a}"
    l6, l2, la = boost * n ** (4 * A + 3), boost * n ** (4 * A + 2), boost * n ** (4 * A + 1)
    krows, qrows = _match_common_rows(keys, queries, l6)
    krows += [("cnt_sq", {sq(a): -la}), ("cnt", {a: 2 * la}), ("bos", {BOS: -l2})]
    qrows += [{ONE: 1}, {nxt: 1}, {ONE: 1}]
    head = HeadSpec("match-next", krows, qrows, {o: {v: 1} for o, v in zip(outs, vals)})
    sq_ffns = [set_square_ffn(v) for v in list(keys) + list(queries)]
    pre: list[FFNSpec] = []
    if variant == "cubic":
        pre = [set_square_ffn(a)]
        g = merge_ffns(set_one_ffn(), *sq_ffns, next_approx_ffn(a, nxt, p, "cubic", sq(a)))
    else:
        g = merge_ffns(set_one_ffn(), *sq_ffns, set_square_ffn(a), next_approx_ffn(a, nxt, p, "quadratic"))
    return AttentionBlock(
        "match-next", g, head, reads=list(keys) + list(queries) + list(vals) + [a, BOS], writes=list(outs),
        aux=[ONE, sq(a), nxt] + [sq(v) for v in list(keys) + list(queries)],
        budget_of_d=lambda d: match_next_budget(n, A, len(keys), V, L, d, boost, variant),
        pre_ffns=pre, boost=boost,
    )


# ---- standalone models --------------------------------------------------------------------------


def _layout_for(n: int, dims: Sequence[str]):
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    for dim in dims:
        if dim not in lb:
            lb.alloc(dim)
    return vocab, lb.build()


def standalone_model(block: AttentionBlock, vocab: Vocabulary, layout, p: int, max_len: int, meta: dict) -> Model:
    """[pre-FFN layers,] layer (no head, FFN g), layer (the head, empty FFN)."""
    layers = [LayerSpec("transformer", ffn=f, name=f"pre{i + 1}") for i, f in enumerate(block.pre_ffns)]
    layers += [LayerSpec("transformer", ffn=block.ffn, name="g"), LayerSpec("transformer", heads=[block.head], name="A")]
    return assemble(arch="transformer", p=p, layout=layout, vocab=vocab, layers=layers, max_len=max_len, meta=meta)


def _finish(make: Callable[[int, int], AttentionBlock], name: str, n: int, p: int | None, boost: int | None, dims: Sequence[str], L: int, strict: bool, params: dict) -> Model:
    """Pick the boost (paper's constants when feasible) and p, then assemble the standalone model.
    make(boost, p) builds the block (p only matters for MatchNext's ROUND(1/3))."""
    probe = make(boost or 1, p or 3)
    vocab, layout = _layout_for(n, list(dims) + probe.writes + probe.aux)
    d = padded_layout(layout).d
    if boost is None:
        boost = choose_boost(lambda b: make(b, 3).budget(d))
    budget = make(boost, 3).budget(d)
    p = resolve_p(budget, p, strict)
    block = make(boost, p)
    win = budget.window()
    meta = {"block": name, "params": params, "boost": boost, "paper_constants": boost == 1, "p_window": win, "budget_magnitude": str(budget.magnitude)}
    return standalone_model(block, vocab, layout, p, L, meta)


def build_copy_model(n: int, p: int | None = None, *, s: int = 1, width: int = 1, c: int = 1, max_len: int | None = None, boost: int | None = None, strict: bool = True) -> Model:
    """COPY[s, src:*, dst:*] as a standalone model (Lemma B.13)."""
    L = _check_sizes(n, c, max_len, boost or 1)
    src, dst = [f"src:{j}" for j in range(width)], [f"dst:{j}" for j in range(width)]
    return _finish(lambda b, q: copy_block(s, src, dst, n, c=c, max_len=L, boost=b), "copy", n, p, boost, src + dst, L, strict, {"s": s, "width": width, "c": c})


def build_count_model(n: int, p: int | None = None, *, width: int = 1, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int | None = None, strict: bool = True) -> Model:
    """COUNT[key:*, query:*, count] as a standalone model (Lemma B.14)."""
    L = _check_sizes(n, c, max_len, boost or 1)
    keys, queries = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
    return _finish(lambda b, q: count_block(keys, queries, "count", n, vmax=vmax, c=c, max_len=L, boost=b), "count", n, p, boost, keys + queries, L, strict, {"width": width, "vmax": vmax or n, "c": c})


def _match_dims(width: int, vwidth: int) -> tuple[list[str], list[str], list[str], list[str]]:
    return ([f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)], [f"out:{j}" for j in range(vwidth)], [f"val:{j}" for j in range(vwidth)])


def build_match_model(n: int, p: int | None = None, *, width: int = 1, vwidth: int = 1, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int | None = None, strict: bool = True) -> Model:
    """Match[key:*, query:*, out:*, val:*] as a standalone model (Lemma B.15)."""
    L = _check_sizes(n, c, max_len, boost or 1)
    I1, I2, I3, I4 = _match_dims(width, vwidth)
    return _finish(lambda b, q: match_block(I1, I2, I3, I4, n, c=c, max_len=L, vmax=vmax, boost=b), "match", n, p, boost, I1 + I2 + I4, L, strict, {"width": width, "vwidth": vwidth, "vmax": vmax or n, "c": c})


def build_match_close_model(n: int, p: int | None = None, *, width: int = 1, vwidth: int = 1, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int | None = None, strict: bool = True) -> Model:
    """MatchClose[key:*, query:*, out:*, val:*] as a standalone model (Lemma B.16)."""
    L = _check_sizes(n, c, max_len, boost or 1)
    I1, I2, I3, I4 = _match_dims(width, vwidth)
    return _finish(lambda b, q: match_close_block(I1, I2, I3, I4, n, c=c, max_len=L, vmax=vmax, boost=b), "match-close", n, p, boost, I1 + I2 + I4, L, strict, {"width": width, "vwidth": vwidth, "vmax": vmax or n, "c": c})


def build_match_nearest_model(n: int, p: int | None = None, *, width: int = 1, vwidth: int = 1, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int | None = None, tie_shift: bool = True, strict: bool = True) -> Model:
    """MatchNearest[key:*, query:*, out:*, val:*, target] as a standalone model (Lemma B.17)."""
    L = _check_sizes(n, c, max_len, boost or 1)
    I1, I2, I3, I4 = _match_dims(width, vwidth)
    return _finish(
        lambda b, q: match_nearest_block(I1, I2, I3, I4, "target", n, c=c, max_len=L, vmax=vmax, boost=b, tie_shift=tie_shift),
        "match-nearest", n, p, boost, I1 + I2 + I4 + ["target"], L, strict,
        {"width": width, "vwidth": vwidth, "vmax": vmax or n, "c": c, "tie_shift": tie_shift},
    )


def build_match_next_model(n: int, p: int | None = None, *, A: int = 1, width: int = 1, vwidth: int = 1, vmax: int | None = None, c: int = 1, max_len: int | None = None, boost: int | None = None, variant: NextVariant = "quadratic", strict: bool = True) -> Model:
    """MatchNext[key:*, query:*, out:*, val:*, cnt] as a standalone model (Lemma B.18);
    the next~ value of each position is left in dim ``next:cnt``."""
    L = _check_sizes(n, c, max_len, boost or 1)
    I1, I2, I3, I4 = _match_dims(width, vwidth)
    return _finish(
        lambda b, q: match_next_block(I1, I2, I3, I4, "cnt", n, q, A=A, c=c, max_len=L, vmax=vmax, boost=b, variant=variant),
        "match-next", n, p, boost, I1 + I2 + I4 + ["cnt"], L, strict,
        {"A": A, "width": width, "vwidth": vwidth, "vmax": vmax or n, "c": c, "variant": variant},
    )


def build_next_approx_model(n: int, p: int, *, A: int = 1, variant: NextVariant = "cubic", max_len: int | None = None) -> Model:
    """Lemma B.18's next~ alone (for Lemma B.19): x in dim ``x``, next~(x) in ``next:x``.
    The cubic variant is two FFN layers (x^2 first); the quadratic one is one."""
    L = max_len or n**A
    vocab, layout = _layout_for(n, ["x", sq("x"), "next:x", ONE])
    if variant == "cubic":
        layers = [LayerSpec("transformer", ffn=set_square_ffn("x"), name="square"), LayerSpec("transformer", ffn=next_approx_ffn("x", "next:x", p, "cubic", sq("x")), name="next")]
    else:
        layers = [LayerSpec("transformer", ffn=next_approx_ffn("x", "next:x", p, "quadratic"), name="next")]
    return assemble(arch="transformer", p=p, layout=layout, vocab=vocab, layers=layers, max_len=L, meta={"block": "next~", "variant": variant, "A": A})


CATALOG: dict[str, Callable[..., Model]] = {
    "copy": build_copy_model,
    "count": build_count_model,
    "match": build_match_model,
    "match-close": build_match_close_model,
    "match-nearest": build_match_nearest_model,
    "match-next": build_match_next_model,
}
