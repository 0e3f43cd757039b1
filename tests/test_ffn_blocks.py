"""FFN building blocks (Lemmas B.1-B.6): registered checks, errata counterexamples, errors, composition."""
from __future__ import annotations

from fractions import Fraction

import pytest

from constructions import ffn_blocks as fb
from constructions.blocks import FFNSpec
from constructions.errors import InputError, PrecisionError, PrecisionOverflow, WeightError
from constructions.numerics import Arithmetic
from proofs_check.checks import ffn_blocks as checks
from proofs_check.checks.ffn_blocks import conventional_columns, run_block
from proofs_check.registry import PROFILES

CI = PROFILES["ci"]
ARITH = Arithmetic()


def _g(model, columns, out):
    """g(x)[out] for each column (Z - X of the one-layer model)."""
    return run_block(model, conventional_columns(columns), ARITH)[out]


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.id)
def test_registered_check_passes_at_ci(check):
    outcome = check.run(CI)
    assert outcome.passed, outcome.detail
    assert outcome.cases >= CI.max_examples


def test_check_ids_are_the_papers():
    assert [c.id for c in checks.CHECKS] == ["B.1", "B.2", "B.3", "B.4", "B.5", "B.6"]


# ---- errata: the printed constructions fail on concrete inputs --------------------------------


def test_erratum_B1_E1_printed_w3_computes_abs_product():
    """Erratum B1-E1: W3 h = h1 + h2 gives |x_a| x_b; x_a = -2, x_b = 3 gives 6, not -6."""
    paper = fb.build_multiplication_model(n=1, p=fb.multiplication_precision(3, 3), bound=3, variant="paper", max_len=2)
    fixed = fb.build_multiplication_model(n=1, p=fb.multiplication_precision(3, 3), bound=3, max_len=2)
    cols = [{"mul:a": -2, "mul:b": 3}, {"mul:a": 2, "mul:b": 3}]
    assert _g(paper, cols, "mul:out") == [6, 6]
    assert _g(fixed, cols, "mul:out") == [-6, 6]


def test_b1_check_detects_the_printed_construction(monkeypatch):
    """The B.1 property fails when the builder is swapped for the printed version (the check can fail)."""
    real = fb.build_multiplication_model
    monkeypatch.setattr(fb, "build_multiplication_model", lambda *a, **k: real(*a, **{**k, "variant": "paper"}))
    outcome = checks.CHECKS[0].run(CI)
    assert not outcome.passed and "B.1" in outcome.detail


def test_erratum_B3_E1_printed_w3_signs_give_20_below_B():
    """Erratum B3-E1 (signs): W3 = 10[1 -1 -1 1] gives 20 for every x < B (here B = 1, x = 0)."""
    model = fb.build_indicator_model(n=1, p=21, B=1, bound=4, variant="paper", max_len=3)
    assert _g(model, [{"ind:x": 0}, {"ind:x": -3}, {"ind:x": 2}], "ind:out") == [20, 20, 0]


@pytest.mark.parametrize("p, at_B", [(9, Fraction(5, 4)), (11, Fraction(15, 16)), (21, Fraction(255, 256)),
                                     (41, Fraction(262145, 262144))])
def test_erratum_B3_E2_paper_constants_rounded_miss_one(p, at_B):
    """Erratum B3-E2 (constants): with the proof's own signs but 0.6, 0.4 rounded to R_p, x = B gives
    5 - 10 ROUND(0.4, p), never 1; x != B still gives 0 (ROUND(0.6) + ROUND(0.4) = 1)."""
    model = fb.build_indicator_model(n=1, p=p, B=2, bound=4, variant="paper-formula", max_len=3)
    got = _g(model, [{"ind:x": 1}, {"ind:x": 2}, {"ind:x": 3}], "ind:out")
    assert got == [0, at_B, 0]
    assert at_B == 5 - 10 * fb.round_to_grid(Fraction(2, 5), p) != 1


def test_b3_fixed_constants_are_dyadic_and_exact_at_small_p():
    p = fb.indicator_precision(0, 1)
    model = fb.build_indicator_model(n=1, p=p, B=0, bound=1, max_len=3)
    assert _g(model, [{"ind:x": -1}, {"ind:x": 0}, {"ind:x": 1}], "ind:out") == [0, 1, 0]
    assert all(fb.frac_bits(c) <= 2 for c in fb.INDICATOR_OFFSETS)
    with pytest.raises(InputError, match="not a dyadic"):
        fb.frac_bits(Fraction(3, 5))


def test_erratum_B4_E1_paper_radix_collides_on_keys_up_to_B():
    """Note B.4: the printed code x_1 + B x_2 collides for keys in {0..B}: (2, 0) and (0, 1) both code 2."""
    table = {(2, 0): 5, (0, 1): 7}
    spec = fb.paper_lookup_spec(["k0", "k1"], table, "out", B=2)
    p = fb.lookup_precision(table, [(0, 2), (0, 2)])
    model = fb.ffn_block_model(1, p, ["k0", "k1", "out"], spec, 2, {})
    assert _g(model, [{"k0": 2, "k1": 0}, {"k0": 0, "k1": 1}], "out") == [12, 12]
    fixed = fb.ffn_block_model(1, p, ["k0", "k1", "out"], fb.lookup_spec(["k0", "k1"], table, "out", ranges=[(0, 2), (0, 2)]), 2, {})
    assert _g(fixed, [{"k0": 2, "k1": 0}, {"k0": 0, "k1": 1}], "out") == [5, 7]


def test_erratum_B5_E1_printed_result_formula_fails():
    """Erratum B5-E1: g = (2/eps)(ReLU(x-u-eps) - ReLU(x-u+0.5)) with u = 0, eps = 1 gives -1 at x = 0 and -3 at x = 2."""
    model = fb.build_threshold_model(n=1, p=11, u=0, eps=1, bound=4, variant="paper", max_len=3)
    assert _g(model, [{"thr:x": -1}, {"thr:x": 0}, {"thr:x": 2}], "thr:out") == [0, -1, -3]


def test_erratum_B5_E2_value_at_u_is_one():
    """The printed claim 'x > u' would be 0 at x = u; the construction (and any continuous one with
    the printed gap) gives 1 there, so the function is 1[x >= u]."""
    p = fb.threshold_precision(Fraction(1, 2), Fraction(1, 4), 2)
    model = fb.build_threshold_model(n=1, p=p, u=Fraction(1, 2), eps=Fraction(1, 4), bound=2, max_len=3)
    assert _g(model, [{"thr:x": Fraction(1, 4)}, {"thr:x": Fraction(1, 2)}, {"thr:x": 2}], "thr:out") == [0, 1, 1]


def test_b5_non_dyadic_constants_are_adjusted_on_the_grid():
    """u = 11/40, eps = 1/10 (Lemma B.18's kind of constant): u' = ceil to grid, eps' = 1/16."""
    u, eps = Fraction(11, 40), Fraction(1, 10)
    p = fb.model_precision(fb.threshold_precision(u, eps, 1), 1, 4)
    F = (p - 1) // 2
    below = Fraction((int((u - eps) * 2**F)), 2**F)  # the last grid value <= u - eps (positive here)
    above = fb.ceil_grid(u, p)
    model = fb.build_threshold_model(n=1, p=p, u=u, eps=eps, bound=1, max_len=4)
    assert _g(model, [{"thr:x": below}, {"thr:x": above}, {"thr:x": 0}, {"thr:x": 1}], "thr:out") == [0, 1, 0, 1]
    assert fb.threshold_step(eps) == Fraction(1, 16)


def test_erratum_B6_E1_printed_domain_counterexample():
    """Erratum B6-E1: the printed domain ends with [v, inf]; x = v + eps/4 lies there, is not in [u, v],
    and the proof's construction (threshold at v + eps) gives 1/2."""
    p = fb.interval_precision(0, 1, 1, 4)
    model = fb.build_interval_model(n=1, p=p, u=0, v=1, eps=1, bound=4, max_len=4)
    got = _g(model, [{"int:x": Fraction(5, 4)}, {"int:x": 1}, {"int:x": 2}, {"int:x": -1}], "int:out")
    assert got == [Fraction(1, 2), 1, 0, 0]


# ---- precision declarations ------------------------------------------------------------------


def test_declared_p_is_needed_for_multiplication():
    """At p - 2 the product of the largest inputs overflows (the declaration is not slack)."""
    M = 20
    p = fb.multiplication_precision(M, M)
    low = fb.ffn_block_model(1, p - 2, ["a", "b", "o"], fb.multiplication_spec("a", "b", "o"), 1, {})
    with pytest.raises(PrecisionOverflow, match="ffn"):
        _g(low, [{"a": M, "b": M}], "o")
    ok = fb.ffn_block_model(1, p, ["a", "b", "o"], fb.multiplication_spec("a", "b", "o"), 1, {})
    assert _g(ok, [{"a": M, "b": -M}], "o") == [-M * M]


def test_builders_refuse_too_small_p():
    with pytest.raises(PrecisionError, match=r"needs p >= \d+"):
        fb.build_multiplication_model(n=4, p=fb.multiplication_precision(4, 4) - 2)
    with pytest.raises(PrecisionError, match="needs p >="):
        fb.build_indicator_model(n=4, p=5, B=3)
    with pytest.raises(PrecisionError, match="eps/2 on the grid"):
        fb.threshold_spec("x", "o", 0, Fraction(1, 64), 5)
    with pytest.raises(PrecisionError, match="even"):
        fb.build_lookup_model(n=4, p=30)


def test_min_precision():
    assert fb.min_precision(1) == 3  # R_3 = {0, +-0.5, +-1, +-1.5}
    assert fb.min_precision(Fraction(3, 2)) == 3
    assert fb.min_precision(2) == 5
    assert fb.min_precision(1, frac=3) == 7


# ---- bad input --------------------------------------------------------------------------------


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(InputError, match="integer constant B"):
        fb.indicator_spec("x", "o", Fraction(1, 2))
    with pytest.raises(InputError, match="u <= v"):
        fb.interval_spec("x", "o", 2, 1, Fraction(1, 2), 11)
    with pytest.raises(InputError, match="eps > 0"):
        fb.threshold_spec("x", "o", 0, 0, 11)
    with pytest.raises(InputError, match="outside the key ranges"):
        fb.lookup_spec(["k"], {(5,): 1}, "o", ranges=[(0, 3)])
    with pytest.raises(InputError, match="tuple of 2 integers"):
        fb.lookup_spec(["k0", "k1"], {(1,): 1}, "o")
    with pytest.raises(InputError, match="needs an output dimension"):
        fb.lookup_spec(["k"], {(1,): 1}, None)
    with pytest.raises(InputError, match="unknown variant"):
        fb.build_multiplication_model(n=2, p=11, variant="nope")
    with pytest.raises(WeightError):  # 10 does not fit in R_7
        fb.build_indicator_model(n=1, p=7, B=1, bound=1, variant="paper", max_len=1)


# ---- catalog and composition ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(fb.CATALOG))
def test_catalog_builds_standalone_models(name):
    model = fb.CATALOG[name](n=8, p=31)
    assert model.arch == "transformer" and len(model.layers) == 1 and not model.layers[0].heads
    assert model.meta["block"].startswith("B.")
    assert model.layers[0].ffn.width > 0


def test_blocks_compose_in_one_ffn():
    """Several blocks in one layer (as later constructions do): product, indicator, threshold, interval."""
    p = 31
    spec = FFNSpec.sum([
        fb.multiplication_spec("x", "y", "xy"),
        fb.multiplication_spec("x", "x", "x2"),
        fb.indicator_spec("x", "is3", 3),
        fb.threshold_spec("y", "ypos", Fraction(1, 2), Fraction(1, 2), p),
        fb.interval_spec("x", "x_in", 2, 4, Fraction(1, 2), p),
        fb.linear_spec({"lin": {"x": 2, "y": -1}}, offset={"lin": 1}),
        fb.lookup_spec(["x", "y"], {(3, 1): 9, (1, 0): -2}, "lut", ranges=[(0, 4), (0, 1)]),
    ])
    dims = ["x", "y", "xy", "x2", "is3", "ypos", "x_in", "lin", "lut"]
    model = fb.ffn_block_model(1, p, dims, spec, 4, {})
    cols = [{"x": 3, "y": 1}, {"x": 1, "y": 0}, {"x": 4, "y": 1}, {"x": 0, "y": 0}]
    delta = run_block(model, conventional_columns(cols), ARITH)
    assert delta["xy"] == [3, 0, 4, 0]
    assert delta["x2"] == [9, 1, 16, 0]
    assert delta["is3"] == [1, 0, 0, 0]
    assert delta["ypos"] == [1, 0, 1, 0]
    assert delta["x_in"] == [1, 0, 1, 0]
    assert delta["lin"] == [6, 3, 8, 1]
    assert delta["lut"] == [9, -2, 0, 0]
    assert delta["x"] == [0, 0, 0, 0] and delta["y"] == [0, 0, 0, 0]
