"""Split precision R(I, F) (issue #11, part 1): the needs helpers, assemble, both evaluators
on split formats (fast == reference, overflow locations, messages naming the format) and the
builders rebuilt for (I, F).

Expected answers come from hand computation (the helpers) or from the reference evaluator and
the plain-Python task answers (``Case.answer``), never from the code under test.
"""
from __future__ import annotations

import re
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions.blocks import FFNSpec, LayerSpec, Unit, assemble
from constructions.decode import RegexOracle
from constructions.errors import PrecisionError, PrecisionOverflow, WeightError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.ffn_blocks import declared_split, fold, join, min_precision, min_split_precision
from constructions.layout import LayoutBuilder
from constructions.numerics import Arithmetic, Precision
from constructions.vocab import Vocabulary
from proofs_check.precision import construction, run_sample
from tests.random_models import ModelSpec, drawn_spec, random_model, random_tokens
from tests.test_evaluate_fast import ariths, outcome

torch.set_num_threads(1)

SPLITS = ((8, 30), (30, 8), (20, 45), (60, 12))  # I < F and I > F


# ---- the needs helpers -------------------------------------------------------------------------


def test_min_split_precision_by_hand():
    # 2^I - 2^-F >= magnitude: 5 needs I = 3 (7.5 >= 5; 3.5 < 5); 1/8 needs F = 3
    assert (min_split_precision(5).I, min_split_precision(5).F) == (3, 1)
    assert (min_split_precision(5, 3).I, min_split_precision(5, 3).F) == (3, 3)
    assert (min_split_precision(Fraction(1, 8), 3).I, min_split_precision(Fraction(1, 8), 3).F) == (1, 3)
    assert min_split_precision(7, 1).I == 3 and min_split_precision(8, 1).I == 4  # 7.5 vs 8
    for mag, frac in ((5, 0), (1000, 2), (3, 9), (2**20, 4)):  # folding gives the R_p need back
        assert fold(min_split_precision(mag, frac)) == min_precision(mag, frac)


def test_join_and_fold():
    j = join(Precision.split(10, 2), Precision.split(3, 7), 9)  # 9 = R_9 = R(4, 4)
    assert (j.I, j.F) == (10, 7)
    assert fold(j) == 21 and fold(Precision(17)) == 17 and fold(Precision.split(2, 5)) == 11


def test_declared_split_of_a_predicate():
    def why_not(prec: Precision):  # F >= 4 and I >= F + 2, by hand: (6, 4)
        return None if prec.F >= 4 and prec.I >= prec.F + 2 else "no"
    d = declared_split(why_not)
    assert (d.I, d.F) == (6, 4)


# ---- assemble ----------------------------------------------------------------------------------


def _tiny(p, **kw):
    vocab = Vocabulary(4)
    lb = LayoutBuilder(vocab)
    out = lb.alloc("out")
    spec = FFNSpec([Unit("u", {}, 1, {"num": Fraction(1, 4)}, 0, {out: 1})])
    return assemble(arch="transformer", p=p, layout=lb.build(), vocab=vocab,
                    layers=[LayerSpec("transformer", ffn=spec)], max_len=4, **kw)


def test_assemble_records_the_format_and_the_declaration():
    m = _tiny(Precision.split(3, 5), declared=Precision.split(2, 2), declared_p=5)
    assert (m.p, m.frac, m.precision.I, m.precision.F) == (9, 5, 3, 5)
    assert m.meta["precision"] == "R(I=3, F=5)"
    assert m.meta["declared_precision"] == {"p": 5, "I": 2, "F": 2}
    assert "below_declared" not in m.meta
    assert _tiny(11).frac is None and _tiny(11).meta["precision"] == "R_11"
    low = _tiny(Precision.split(3, 2, below_declared_ok=True), declared=Precision.split(3, 4))
    assert low.meta["below_declared"] is True and low.meta["declared_precision"]["p"] == 9
    with pytest.raises(WeightError, match=r"R\(I=3, F=1\)"):  # 1/4 is not on the 2^-1 grid
        _tiny(Precision.split(3, 1))


# ---- both evaluators on R(I, F) --------------------------------------------------------------


@st.composite
def split_specs(draw, scales=(0, 0, 2, -2, 8)):
    I, F = draw(st.sampled_from(SPLITS))
    # a large scale only where the integer part has room for it; a small negative one otherwise
    scale = draw(st.sampled_from(scales)) * (I > F) + draw(st.sampled_from((0, 0, -2))) * (I <= F)
    return drawn_spec(draw, p=I + F + 1, frac=F, scale_log2=scale, max_extra_dims=3, max_key_dim=2)


@settings(max_examples=40)
@given(split_specs(), ariths, st.integers(1, 6), st.integers(0, 1000))
def test_fast_equals_reference_on_split_formats(spec, arith, length, tseed):
    model = random_model(spec)
    assert not model.precision.symmetric
    tokens = random_tokens(model, length, tseed)
    assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)


@settings(max_examples=15)
@given(split_specs(scales=(16, 24, 40)), st.sampled_from(["round_once", "round_products"]),
       st.integers(2, 5), st.integers(0, 1000))
def test_split_overflow_same_location_and_named_format(spec, matmul, length, tseed):
    """Large weights in R(I > F): same Location (raise) and same clipping (saturate) in both."""
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    for mode in ("raise", "saturate"):
        arith = Arithmetic("even", matmul, mode)
        fast, ref = outcome(FastEvaluator(arith), model, tokens), outcome(ReferenceEvaluator(arith), model, tokens)
        assert fast == ref
        if fast[0] == "error" and fast[1] == "PrecisionOverflow":
            assert model.precision.label in fast[3]


def test_overflow_message_names_the_split_format():
    spec = ModelSpec("transformer", 30 + 8 + 1, frac=8, extra_dims=2, scale_log2=28, density=0.9, seed=3)
    model = random_model(spec)
    with pytest.raises(PrecisionOverflow, match=r"overflow in R\(I=30, F=8\) at .*2\^-8; use more integer bits"):
        ReferenceEvaluator().forward(model, random_tokens(model, 4, 1))
    with pytest.raises(PrecisionOverflow, match=r"R\(I=30, F=8\)"):
        FastEvaluator().forward(model, random_tokens(model, 4, 1))
    assert "overflow in R_11 " in str(PrecisionOverflow(Precision(11), 5, "x"))  # R_p wording kept
    with pytest.raises(WeightError, match=r"exceeds the range of R\(I=8, F=30\)"):
        Precision.split(8, 30).encode(1000)


# ---- builders rebuilt for (I, F) ---------------------------------------------------------------

# n, and the families of proofs_check.precision's table cheap enough for CI at that n
FAMILIES = [("index-transformer", 8), ("count-hybrid", 8), ("cgram-transformer", 8), ("ar-rag-rnn", 8),
            ("count-rag-rnn", 8), ("istree-rag-rnn", 4), ("dfs-transformer", 4), ("istree-binary-hybrid", 4)]


@pytest.fixture(scope="module")
def oracle():
    with RegexOracle() as o:
        yield o


def _correct(con, model, n, oracle, k=3) -> list[str]:
    return [o.short() for o in run_sample(con, model, con.cases(n, k), "exact", oracle) if not o.correct]


@pytest.mark.parametrize("name,n", FAMILIES, ids=[f"{a}-n{b}" for a, b in FAMILIES])
def test_builder_at_its_declared_split_is_exact(name, n, oracle):
    con = construction(name)
    default = con.build(n)
    dec = default.meta["declared_precision"]
    assert default.frac is None and dec["p"] == default.p and default.meta["precision"] == f"R_{default.p}"
    assert 2 * max(dec["I"], dec["F"]) + 1 <= dec["p"]  # the split need never exceeds the declared R_p
    split = Precision.split(dec["I"], dec["F"])
    model = con.build(n, split)
    assert (model.precision.I, model.precision.F) == (dec["I"], dec["F"]) and "below_declared" not in model.meta
    assert _correct(con, model, n, oracle) == []
    more_I = con.build(n, Precision.split(dec["I"] + 5, dec["F"]))
    assert _correct(con, more_I, n, oracle) == []


@pytest.mark.parametrize("name,n", [("index-transformer", 8), ("count-hybrid", 8), ("ar-rag-rnn", 8), ("dfs-transformer", 4)])
def test_builder_refuses_below_its_split_unless_asked(name, n):
    """Below the declared I: refused; with below_declared_ok built and marked, unless a weight
    itself leaves the range (dfs: its query scales need the declared I), a PrecisionError naming
    the I its weights need (test_weights_too_large_for_I_are_refused_naming_the_I below)."""
    con = construction(name)
    dec = con.build(n).meta["declared_precision"]
    with pytest.raises(PrecisionError, match=r"I >= |integer bits"):
        con.build(n, Precision.split(dec["I"] - 1, dec["F"]))
    low_format = Precision.split(dec["I"] - 1, dec["F"], below_declared_ok=True)
    if name == "dfs-transformer":
        with pytest.raises(PrecisionError, match=rf"weights need I >= {dec['I']} integer bits at F = {dec['F']} .*got {re.escape(low_format.label)}"):
            con.build(n, low_format)
        return
    low = con.build(n, low_format)
    assert low.meta["below_declared"] is True and low.precision.I == dec["I"] - 1


def _largest_weight(model) -> Fraction:
    return max(Fraction(abs(int(v)), 1 << model.precision.F) for m in model.all_weights().values() for v in m.reshape(-1))


@pytest.mark.parametrize("name,n,F", [("dfs-transformer", 6, 23), ("dfs-transformer", 8, 24)])
def test_weights_too_large_for_I_are_refused_naming_the_I(name, n, F):
    """dfs-transformer's constants grow with F (its hard-attention gap), so at an ample F a
    below_declared_ok R(I, F) with too few I cannot hold its weights: refused up front with a
    PrecisionError naming the smallest I that holds them (not a WeightError mid-build).  The I
    named is tight: at it the model builds and its largest weight needs it (is above 2^(I-1))."""
    con = construction(name)
    with pytest.raises(PrecisionError, match=r"weights need I >= (\d+) integer bits") as info:
        con.build(n, Precision.split(4, F, below_declared_ok=True))
    need = int(re.search(r"I >= (\d+)", str(info.value)).group(1))
    model = con.build(n, Precision.split(need, F, below_declared_ok=True))
    top = _largest_weight(model)
    assert Fraction(1 << (need - 1)) - Fraction(1, 1 << F) < top <= Fraction(1 << need) - Fraction(1, 1 << F)
    with pytest.raises(PrecisionError, match=rf"weights need I >= {need} "):
        con.build(n, Precision.split(need - 1, F, below_declared_ok=True))


def test_weights_off_the_grid_stay_a_weight_error_and_r_p_keeps_its_advice():
    """The refusal is for too few integer bits only: a weight that needs more F is still the
    WeightError naming it, and an R_p too small keeps the WeightError's advice (a larger odd p)."""
    with pytest.raises(WeightError, match="not exactly representable"):
        construction("dfs-transformer").build(6, Precision.split(40, 2, below_declared_ok=True))
    with pytest.raises(WeightError, match="use a larger odd p"):
        construction("dfs-transformer").build(6, Precision.split(10, 10, below_declared_ok=True))


def test_symmetric_p_below_a_split_need_names_the_p():
    with pytest.raises(PrecisionError, match=r"needs p >= 21 .*got p = 19"):
        construction("istree-rag-rnn").build(8, 19)


# ---- model file version 2 ----------------------------------------------------------------------


def test_model_file_round_trip_of_a_split_model(tmp_path):
    from constructions.modelfile import load_model, save_model

    model = random_model(ModelSpec("hybrid", 30 + 8 + 1, frac=8, n_layers=2, fractional=0.3, seed=4))
    save_model(model, tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    assert (back.p, back.frac, back.precision.label) == (39, 8, "R(I=30, F=8)")
    tokens = random_tokens(model, 5, 2)
    assert outcome(ReferenceEvaluator(), back, tokens) == outcome(ReferenceEvaluator(), model, tokens)


def test_version_1_file_loads_as_r_p():
    from constructions.modelfile import load_model

    model = load_model("tests/conformance/limbs_p101.safetensors")  # a checked-in version-1 file
    assert model.frac is None and model.precision.label == "R_101" and model.precision.F == 50
