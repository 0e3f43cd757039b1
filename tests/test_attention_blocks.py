"""Attention building blocks (App B.2): registered checks, errata counterexamples, bad input.

Each erratum test builds the block as printed (or at the paper's constants) and asserts a
concrete counterexample; see notes/errata/attention_blocks.md.
"""
from __future__ import annotations

from fractions import Fraction

import pytest

from constructions.attention_blocks import (
    CATALOG, build_copy_model, build_count_model, build_match_model, build_match_nearest_model,
    build_match_next_model, copy_budget, count_budget, match_budget, match_next_budget,
)
from constructions.blocks import padded_layout, read_dims, residual_input
from constructions.errors import InputError, PrecisionError, PrecisionOverflow, WeightError
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.checks import attention_blocks as chk
from proofs_check.registry import PROFILES


def run(model, cols):
    """Output residual of the standalone block on columns {dim: value} (missing dims = 0)."""
    full = [{d: c.get(d, 0) for d in model.layout.names} for c in cols]
    Z = ReferenceEvaluator().forward_residual(model, residual_input(model, full)).residual
    return dict(zip(model.layout.names, read_dims(model, Z, model.layout.names)))


def base(l):
    return [{"pos": k, "tok:<s>": int(k == 1)} for k in range(1, l + 1)]


# ---- the registered checks -------------------------------------------------------------------


@pytest.mark.parametrize("check", chk.CHECKS, ids=lambda c: c.id)
def test_registered_check_passes(check):
    outcome = check.run(PROFILES["ci"])
    assert outcome.passed, outcome.detail
    assert outcome.cases > 0


def test_catalog_names_and_declared_p():
    assert set(CATALOG) == {"copy", "count", "match", "match-close", "match-nearest", "match-next"}
    for name, build in CATALOG.items():
        model = build(n=64, max_len=8)
        lo, hi = model.meta["p_window"]
        assert model.p == lo <= hi, name
        assert model.n_heads() == 1 and len(model.layers) == 2, name


# ---- errata: counterexamples to the printed text ---------------------------------------------


def test_erratum_B7_E1_copy_reads_position_one_for_k_le_s():
    """Def B.7 asks for X_(I1, max(k-s, 0)); position 0 does not exist. The block copies position 1."""
    model = build_copy_model(16, s=3, max_len=5)
    cols = base(5)
    for k, c in enumerate(cols, start=1):
        c["src:0"] = 10 * k
    out = run(model, cols)["dst:0"]
    assert out == [10, 10, 10, 10, 20]  # k = 1..4 -> position max(k-3, 1) = 1; k = 5 -> 2


def test_erratum_B13_E1_paper_constants_infeasible_for_small_n():
    """COPY with the paper's scale lambda = n at n = 8: no p is exact.  At the smallest p whose
    range holds the scores, the gap n = 8 is below (F+1) ln 2 and the copy leaks."""
    d = padded_layout(build_copy_model(8, max_len=8).layout).d
    budget = copy_budget(8, 1, 8, d, boost=1)
    assert budget.window() is None
    p = budget.p_min_magnitude()
    model = build_copy_model(8, p, s=1, max_len=8, boost=1, strict=False)
    cols = base(8)
    for k, c in enumerate(cols, start=1):
        c["src:0"] = 100 * k
    out = run(model, cols)["dst:0"]
    assert out[7] != 700  # Def B.7: position 7's value; the soft attention mixes in 600 and 800
    # the fix: the smallest power-of-two boost with a feasible p (here 2), exact
    fixed = build_copy_model(8, s=1, max_len=8)
    assert fixed.meta["boost"] == 2 and run(fixed, cols)["dst:0"][7] == 700
    # below the window the scores overflow
    with pytest.raises((PrecisionOverflow, WeightError)):
        run(build_copy_model(8, p - 2, s=1, max_len=8, boost=1, strict=False), cols)


@pytest.mark.parametrize("name,n", [("copy", 8), ("count", 8), ("match-close", 16), ("match-nearest", 64), ("match-next", 16)])
def test_paper_constants_window_empty_for_every_block(name, n):
    d = 25
    budget = {
        "copy": lambda: copy_budget(n, 1, n, d),
        "count": lambda: count_budget(n, 1, n, n, d),
        "match-close": lambda: match_budget("match-close", n, 1, 1, n, n, d),
        "match-nearest": lambda: match_budget("match-nearest", n, 1, 1, n, n, d),
        "match-next": lambda: match_next_budget(n, 1, 1, n, n, d),
    }[name]()
    assert budget.window() is None
    assert CATALOG[name](n=n).meta["boost"] > 1


def test_window_top_is_real():
    """Above the window softmax at p bits is no longer hard: COPY n = 16 at p = 45 leaks (the
    window's top, 37, comes from a sufficient condition: 39..43 still happen to be exact here)."""
    model = build_copy_model(16, s=1, max_len=16)
    lo, hi = model.meta["p_window"]
    assert (lo, hi) == (29, 37)
    cols = base(16)
    for k, c in enumerate(cols, start=1):
        c["src:0"] = 1000 * (k % 2)  # the target (position 15) holds 1000, its neighbours 0
    assert run(build_copy_model(16, hi, s=1, max_len=16), cols)["dst:0"][15] == 1000
    for p in (45, 49):
        assert run(build_copy_model(16, p, s=1, max_len=16, strict=False), cols)["dst:0"][15] == Fraction(524287875, 524288)
    with pytest.raises(PrecisionError, match="window"):
        build_copy_model(16, 45, s=1, max_len=16)


def test_erratum_B14_E1_values_in_zp_overflow():
    """Def B.8 allows any X in Z_p, but the scores square the values: X = 2^F - 1 overflows."""
    model = build_count_model(16, max_len=4)
    big = model.precision.max_integer
    cols = base(3)
    cols[1].update({"key:0": big, "query:0": 1})
    cols[2].update({"key:0": 1, "query:0": big})
    for c in cols:
        c.setdefault("query:0", 1)
    with pytest.raises(PrecisionOverflow):
        run(model, cols)


def test_erratum_B14_E2_printed_key_row_sign_loses_the_sink():
    """A reading of Lemma B.14's key row (a mangled formula).  Printed: n (1 + 1[k'=1]) against
    the query's -sum X2^2, i.e. -n (1 + 1[k'=1]) sum X2^2: position 1 (<s>, X_(I1,1) = 0) scores
    -2n sum X2^2 and loses to every match, so COUNT writes about 0 instead of 1/(m+1).  The
    derivation printed right after it ("... + n 1[k'=1] sum X2^2", maximum 0 at k' = 1) needs
    n (1 - 1[k'=1]); under that reading the lemma holds (what the block builds)."""
    model = build_count_model(16, max_len=4)
    cols = base(4)
    for c, key in zip(cols, [0, 3, 5, 3]):
        c.update({"key:0": key, "query:0": 3})
    expected = chk.round_p(Fraction(1, 3), model.p)  # position 4: m = 2 matches (positions 2, 4)
    assert run(model, cols)["count"][3] == expected
    head = model.layers[1].heads[0]
    row, col = head.key_names.index("querysq"), model.layout.index("tok:<s>")
    assert head.W_K[row, col] > 0  # our key row: lambda (1[k'=1] - 1)
    head.W_K[row, col] = -head.W_K[row, col]  # the printed sign: -lambda (1 + 1[k'=1])
    assert run(model, cols)["count"][3] == 0


def test_erratum_B15_E1_zero_query_matches_position_one():
    """Def B.9 counts h = 1 (X_(I1,1) = 0) as a match of a zero query; the block never does."""
    model = build_match_model(16, max_len=4)
    cols = base(3)
    for k, c in enumerate(cols, start=1):
        c.update({"key:0": 0, "query:0": 0, "val:0": 10 * k})
    literal = chk.matches([{"key:0": Fraction(c["key:0"]), "query:0": Fraction(c["query:0"])} for c in cols], 3, ["key:0"], ["query:0"])
    assert min(literal) == 1  # the printed Definition: k* = 1
    assert run(model, cols)["out:0"][2] == 20  # the block: the first match at h >= 2


def test_erratum_B17_E1_ties_split_attention():
    """Def B.11's argmin has ties (h = t - 1 and t + 1); the printed score splits the head."""
    cols = base(6)
    keys = [0, 2, 9, 2, 9, 2]
    for k, c in enumerate(cols, start=1):
        c.update({"key:0": keys[k - 1], "query:0": 2, "val:0": 16 * k, "target": 3})
    literal = build_match_nearest_model(16, max_len=8, tie_shift=False, boost=2)
    got = run(literal, cols)["out:0"][5]
    assert got not in (32, 64) and got == 48  # matches at 2 and 4 (distance 1 from t = 3): average
    fixed = build_match_nearest_model(16, max_len=8)
    assert run(fixed, cols)["out:0"][5] == 64  # the later one


def test_erratum_B12_E1_position_one_competes():
    """Def B.12 takes the argmin over matches u {1}: with S = {1} and x = 1/2 (next = 1/3),
    position 1 (counting value 0, distance 1/3) beats the match (distance 2/3).  The block
    (like Defs B.9-B.11) falls back to position 1 only when nothing matches."""
    model = build_match_next_model(16, max_len=4)
    half = chk.round_p(Fraction(1, 2), model.p)
    cols = base(3)
    cols[0].update({"key:0": 0, "cnt": 0, "query:0": 5, "val:0": 111})
    cols[1].update({"key:0": 5, "cnt": 1, "query:0": 5, "val:0": 222})
    cols[2].update({"key:0": 7, "cnt": half, "query:0": 5, "val:0": 333})
    t = chk.next_exact(half)
    assert abs(0 - t) < abs(1 - t)  # the printed Definition: k* = 1
    assert run(model, cols)["out:0"][2] == 222


def test_erratum_B19_E1_quadratic_next_violates_bound():
    """One ReGLU layer computes only piecewise-quadratic functions of x, so B.18's cubic piece
    x - x^2 + x^3 needs x^2 from an earlier layer.  The one-layer x - x^2 (B.19's proof) misses
    the bound at x = 1/4: |(1/4 - 1/16) - 1/5| = 1/80 > 1/125 = next^3."""
    n, A, p = 16, 1, 41
    bad = chk.b19_violations(n, A, p, "quadratic")
    assert any(x == Fraction(1, 4) for x, _, _ in bad)
    assert not chk.b19_violations(n, A, p, "cubic")
    assert not chk.b19_violations(n, A, p, "quadratic", const=Fraction(25, 16))


# ---- bad input --------------------------------------------------------------------------------


def test_bad_input_errors():
    with pytest.raises(InputError):
        build_copy_model(1)
    with pytest.raises(InputError):
        build_match_model(8, max_len=9)  # positions beyond n^c
    with pytest.raises(PrecisionError):
        build_copy_model(16, 32)  # even p
    with pytest.raises(PrecisionError, match="larger n"):
        build_match_next_model(2)
    from constructions.attention_blocks import copy_block, match_block

    with pytest.raises(InputError):
        copy_block(1, ["a", "b"], ["c"], 16)
    with pytest.raises(InputError):
        match_block(["a"], ["b"], ["c"], ["c", "d"], 16)
    with pytest.raises(InputError):
        copy_block(-1, ["a"], ["b"], 16)
