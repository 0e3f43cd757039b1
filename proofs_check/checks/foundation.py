"""Foundation checks: p-bit arithmetic (Appendix A.2) and in-context retrieval (Def A.5, Sec 5.1).

Both compare the tool's runtime against references written here from the definitions:

* A.2: ROUND(x, p) as the nearest element of Eq. (5)'s R_p (two neighbouring grid points,
  compared in exact Fractions, tie rule applied by hand), and the softmax operator as the exact
  softmax(s / sqrt(d)) computed with mpmath at high precision, then rounded the same way;
* A.5: RETRIEVE as ``re.search(pattern, string).group(1)`` on the detokenized string before the
  last <StartSearch>, FAILED when nothing matches, for patterns built from the forms in the proof
  sketch of Thm 5.2 (Index, AR, c-gram retrieval, Counting), written literally as extracted from
  the paper and in token-separated variants.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

import mpmath
from hypothesis import strategies as st

from constructions.decode import END, FAILED, START, RegexOracle, retrieval_augmented, retrieve
from constructions.errors import PrecisionOverflow, RetrievalError, TokenError
from constructions.numerics import Arithmetic, Precision, softmax_column
from constructions.vocab import Vocabulary
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.softmax_columns import BAND, band_mismatches

BAND_COLUMNS = 30  # near-midpoint columns per drawn p (a drawn seed gives fresh columns)

# ---- A.2 references -------------------------------------------------------------------------------


def eq5_max(p: int) -> Fraction:
    """Largest magnitude of Eq. (5): every magnitude bit b_1..b_(p-1) set."""
    return sum((Fraction(2) ** ((p - 1) // 2 - i) for i in range(1, p)), Fraction(0))


def reference_round(x: Fraction, p: int, tie: str) -> Fraction | None:
    """Nearest multiple of 2^-(p-1)/2; None if it lies outside R_p (an overflow)."""
    u = Fraction(1, 2 ** ((p - 1) // 2))
    lo = math.floor(x / u) * u
    hi = lo + u
    if x - lo != hi - x:
        r = lo if x - lo < hi - x else hi
    elif tie == "even":
        r = lo if (lo / u).numerator % 2 == 0 else hi
    else:
        r = hi if x > 0 else lo
    return r if abs(r) <= eq5_max(p) else None


def reference_softmax(scores: list[int], shift: int, d: int, p: int, tie: str) -> list[Fraction]:
    """ROUND(softmax(s / 2^shift / sqrt(d)), p) via mpmath, with a guard against near-midpoints."""
    m = len(scores)
    if len(set(scores)) == 1:
        return [reference_round(Fraction(1, m), p, tie)] * m
    F = (p - 1) // 2
    work = 4 * F + 256
    while True:
        with mpmath.workprec(work):
            top = max(scores)
            e = [mpmath.exp(mpmath.mpf(s - top) / mpmath.mpf(2) ** shift / mpmath.sqrt(d)) for s in scores]
            total = mpmath.fsum(e)
            out, unsure = [], False
            for v in e:
                y = v / total
                if y < mpmath.mpf(2) ** -(F + 2):  # below a quarter ulp: nearest is 0
                    out.append(Fraction(0))
                    continue
                t = y * 2**F
                unsure |= abs(t - mpmath.floor(t) - mpmath.mpf(0.5)) < mpmath.mpf(2) ** (-work // 2)
                man, exp = y.man_exp
                out.append(reference_round(Fraction(int(man)) * Fraction(2) ** int(exp), p, tie))
        if not unsure:
            return out
        work *= 2
        if work > 1 << 16:
            raise AssertionError("mpmath reference could not separate a softmax entry from a midpoint")


@st.composite
def rounding_cases(draw) -> tuple[int, Fraction, str]:
    p = 2 * draw(st.integers(1, 150)) + 1  # 3..301
    F = (p - 1) // 2
    top = eq5_max(p)
    tie = draw(st.sampled_from(["even", "away"]))
    kind = draw(st.sampled_from(["random", "tie", "edge"]))
    if kind == "tie":
        k = draw(st.integers(-(2 ** (p - 1)), 2 ** (p - 1) - 1))
        x = Fraction(2 * k + 1, 2 ** (F + 1))
    elif kind == "edge":
        delta = Fraction(draw(st.integers(-4, 4)), 2 ** (F + 2))
        x = top + delta
    else:
        den = draw(st.integers(1, 2 ** (F + 8)))
        bound = int(top * den * 11 / 10) + 1
        x = Fraction(draw(st.integers(-bound, bound)), den)
    return p, x * draw(st.sampled_from([1, -1])), tie


@st.composite
def softmax_cases(draw) -> tuple[int, int, list[int], str]:
    if draw(st.integers(0, 7)) == 0:  # an all-equal column whose 1/m is an exact rounding tie
        p = draw(st.sampled_from([3, 5, 7]))
        m = 2 ** ((p - 1) // 2 + 1)  # 2^F / m = 1/2
        return p, draw(st.integers(1, 64)), [draw(st.integers(-100, 100))] * m, draw(st.sampled_from(["even", "away"]))
    p = draw(st.one_of(st.sampled_from([3, 5, 21, 201, 301]), st.integers(1, 150).map(lambda k: 2 * k + 1)))
    F = (p - 1) // 2
    bound = (2 ** (p - 1) - 1) * 2**F  # the evaluator's range check on exact scores
    lim = draw(st.sampled_from([min(bound, 8 * 2 ** (2 * F)), min(bound, 64 * F * 2 ** (2 * F)), bound]))
    m = draw(st.integers(1, 10))
    if draw(st.booleans()):
        scores = draw(st.lists(st.integers(-lim, lim), min_size=m, max_size=m))
    else:  # few distinct values: repeated scores and all-equal columns
        levels = draw(st.lists(st.integers(-lim, lim), min_size=1, max_size=2))
        scores = [draw(st.sampled_from(levels)) for _ in range(m)]
    return p, draw(st.integers(1, 64)), scores, draw(st.sampled_from(["even", "away"]))


def run_arithmetic(profile: Profile) -> CheckOutcome:
    stats = {"A.2 ties": 0, "A.2 overflows": 0, "A.2 softmax columns": 0, "A.2 near-midpoint columns (fast)": 0}

    def rounding(case: tuple[int, Fraction, str]) -> None:
        p, x, tie = case
        expected = reference_round(x, p, tie)
        prec = Precision(p)
        u = Fraction(1, 2 ** prec.F)
        if (x / u - Fraction(1, 2)).denominator == 1:
            stats["A.2 ties"] += 1
        try:
            got = prec.decode(prec.round_rational(x.numerator, x.denominator, arith=Arithmetic(tie=tie)))
        except PrecisionOverflow:
            stats["A.2 overflows"] += 1
            assert expected is None, f"ROUND({x}, {p}) raised an overflow; the reference gives {expected}"
            return
        assert got == expected, f"ROUND({x}, {p}, ties {tie}) = {got}, reference {expected}"

    def softmax(case: tuple[int, int, list[int], str]) -> None:
        p, d, scores, tie = case
        prec = Precision(p)
        stats["A.2 softmax columns"] += 1
        got = [prec.decode(q) for q in softmax_column(scores, 2 * prec.F, d, prec, tie)]
        want = reference_softmax(scores, 2 * prec.F, d, p, tie)
        assert got == want, f"softmax column {scores} (d={d}, p={p}, ties {tie}): {got} != {want}"

    def fast_band(case: tuple[int, int]) -> None:
        # the fast evaluator's certified softmax at the p the constructions use, on columns next
        # to a rounding midpoint, against the reference operator (proofs_check.softmax_columns)
        p, seed = case
        stats["A.2 near-midpoint columns (fast)"] += BAND_COLUMNS
        bad = band_mismatches(p, BAND_COLUMNS, seed)
        assert not bad, f"fast softmax near a midpoint at p = {p}: columns {bad} differ from the reference"

    many = 5 * profile.max_examples  # cheap cases: try more of them
    out = combine([
        property_check(rounding_cases(), rounding, profile, many),
        property_check(softmax_cases(), softmax, profile, many),
        property_check(st.tuples(st.sampled_from(BAND), st.integers(0, 2**16)), fast_band, profile,
                       max_examples=len(BAND), examples=[(p, 0) for p in BAND]),
    ])
    out.measured.update(stats)
    return out


# ---- A.5: retrieval -------------------------------------------------------------------------------------


def thm52_pattern(draw: Any, form: str, n: int, context: list) -> list:
    """Pattern tokens for the proof-sketch forms of Thm 5.2, whose detokenization is the regex.

    Literal forms are one token each (the paper's string as extracted); ``*_spaced`` forms split
    at the query numbers, so Detokenize puts spaces around them, as a model emitting the number
    tokens would."""
    # query numbers: mostly ones that occur in the context, so that many searches match
    present = sorted({t for t in context if isinstance(t, int)})
    num = st.one_of(st.sampled_from(present), st.integers(1, n)) if present else st.integers(1, n)

    def query_run(min_len: int, max_len: int) -> list[int]:
        """c - 1 query numbers: often a run of consecutive tokens of the context."""
        c = draw(st.integers(min_len, max_len))
        start = draw(st.integers(0, len(context)))
        run = context[start : start + c]
        if len(run) == c and all(isinstance(t, int) for t in run) and draw(st.booleans()):
            return run
        return draw(st.lists(num, min_size=c, max_size=c))
    if form == "index":  # ^(?:\S\s*){a}(\S), a = k - 1
        return [rf"^(?:\S\s*){{{draw(st.integers(0, 12))}}}(\S)"]
    if form == "index_tokens":  # the same, counting whole tokens
        return [rf"^(?:\S+\s+){{{draw(st.integers(0, 12))}}}(\S+)"]
    if form == "ar":  # \bq\b(\S+)\b
        return [rf"\b{draw(num)}\b(\S+)\b"]
    if form == "ar_spaced":
        return [r"\b", draw(num), r"\b(\S+)\b"]
    if form == "cgram":  # \bq_1 ... q_(c-1)\b(\S+)\b
        qs = query_run(2, 3)
        return [rf"\b{qs[0]}", *qs[1:-1], rf"{qs[-1]}\b(\S+)\b"]
    if form == "cgram_spaced":
        return [r"\b", *query_run(1, 3), r"\b(\S+)\b"]
    if form == "count":  # (\bv\b){k+1}
        return [rf"(\b{draw(num)}\b){{{draw(st.integers(1, 3))}}}"]
    if form == "count_spaced":
        return [r"(\b", draw(num), rf"\b)(?:.*?\b{draw(num)}\b){{{draw(st.integers(0, 2))}}}"]
    raise ValueError(form)


FORMS = ("index", "index_tokens", "ar", "ar_spaced", "cgram", "cgram_spaced", "count", "count_spaced")


@st.composite
def retrieval_cases(draw, max_n: int) -> tuple[Vocabulary, list, list]:
    n = draw(st.integers(2, max(2, min(max_n, 40))))
    number = st.integers(1, n)
    body = draw(st.lists(st.one_of(number, number, number, st.just("~")), min_size=0, max_size=24))
    context = ["<s>"] + body
    if draw(st.booleans()):  # an earlier, completed query: only the last <StartSearch> counts
        context += [START, r"(\S+)", END, draw(st.sampled_from([FAILED, 1, "~"]))] + draw(
            st.lists(st.integers(1, n), max_size=4)
        )
    pattern = thm52_pattern(draw, draw(st.sampled_from(FORMS)), n, context)
    extras = sorted({t for t in context + pattern if isinstance(t, str)} - set(Vocabulary(n).specials))
    return Vocabulary.with_extras(n, extras), context, pattern


class _Scripted:
    """A session that emits a fixed script (RETRIEVE needs only append / next_token / tokens)."""

    def __init__(self, prompt: list, script: list):
        self.tokens, self.script = list(prompt), list(script)

    def append(self, tokens) -> None:
        self.tokens.extend(tokens)

    def next_token(self):
        return self.script.pop(0)


def run_retrieval(profile: Profile) -> CheckOutcome:
    stats = {"A.5 matched": 0, "A.5 FAILED": 0, "A.5 result not a token": 0}
    oracle = RegexOracle(timeout_s=5.0)

    def body(case: tuple[Vocabulary, list, list]) -> None:
        vocab, context, pattern_tokens = case
        # the reference: Python's re on the space-joined words, written out directly
        pattern = " ".join(str(t) for t in pattern_tokens)
        string = " ".join(str(t) for t in context)
        m = re.search(pattern, string)
        if m is None or m.group(1) is None:
            expected: Any = [FAILED]
        else:
            try:
                expected = vocab.tokenize(m.group(1))
            except TokenError:
                expected = RetrievalError
        sequence = context + [START] + pattern_tokens + [END]
        if expected is RetrievalError:
            stats["A.5 result not a token"] += 1
            try:
                retrieve(sequence, vocab, oracle)
            except RetrievalError:
                return
            raise AssertionError(f"group(1) {m.group(1)!r} is not a token, yet RETRIEVE returned a result")
        stats["A.5 FAILED" if expected == [FAILED] else "A.5 matched"] += 1
        got_pattern, got = retrieve(sequence, vocab, oracle)
        assert got_pattern == pattern, f"RETRIEVE used pattern {got_pattern!r}, expected {pattern!r}"
        assert got == expected, f"re.search({pattern!r}, {string!r}): RETRIEVE gave {got}, expected {expected}"
        # the same through the decoding loop: the result is appended right after <EndSearch>
        res = retrieval_augmented(_Scripted(context, [START, *pattern_tokens, END, "YES"]), vocab, 64, oracle=oracle)
        assert res.sequence == sequence + expected + ["YES"], f"decode loop appended {res.sequence[len(sequence):]}"

    try:
        out = property_check(retrieval_cases(profile.max_n), body, profile, 5 * profile.max_examples)
    finally:
        oracle.close()
    out.measured.update(stats)
    return out


CHECKS: list[Check] = [
    Check(
        id="A.2",
        title="p-bit arithmetic (Appendix A.2)",
        claim=(
            "ROUND(x, p) is the nearest element of R_p (Eq. 5) under the chosen tie rule, with an overflow "
            "raised beyond the largest magnitude; the softmax operator equals the exact softmax(s / sqrt(d)) "
            "rounded to R_p (random rationals, exact ties and range limits at random odd p in 3..301; "
            "references: Fractions and mpmath); the fast evaluator's certified softmax equals that operator "
            "on columns 2^-3..2^-24 of a cell from a rounding midpoint at the p band 67..97 the constructions use"
        ),
        run=run_arithmetic,
    ),
    Check(
        id="A.5",
        title="In-context retrieval (Def A.5, Sec 5.1)",
        claim=(
            "RETRIEVE returns group(1) of Python's first re.search match of the pattern between the last "
            "<StartSearch> and <EndSearch> on the detokenized string before that <StartSearch>, and FAILED "
            "when there is none (random token contexts, patterns from the Thm 5.2 proof-sketch forms)"
        ),
        run=run_retrieval,
    ),
]
