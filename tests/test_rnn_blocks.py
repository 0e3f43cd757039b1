"""Linear-RNN building blocks (Lemmas B.20-B.23): registered checks, errata, errors, composition."""
from __future__ import annotations

from fractions import Fraction

import pytest

from constructions import rnn_blocks as rb
from constructions.blocks import LayerSpec
from constructions.errors import InputError, PrecisionError
from constructions.numerics import Arithmetic
from proofs_check.checks import rnn_blocks as checks
from proofs_check.checks.ffn_blocks import conventional_columns, run_block
from proofs_check.registry import PROFILES

CI = PROFILES["ci"]
ARITH = Arithmetic()


def _run(model, seq):
    return run_block(model, conventional_columns(seq), ARITH)


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.id)
def test_registered_check_passes_at_ci(check):
    outcome = check.run(CI)
    assert outcome.passed, outcome.detail
    assert outcome.cases >= CI.max_examples


def test_check_ids_are_the_papers():
    assert [c.id for c in checks.CHECKS] == ["B.20", "B.21", "B.22", "B.23"]


# ---- errata ---------------------------------------------------------------------------------


def test_erratum_B20_E1_first_block_is_current_input():
    """Erratum B20-E1: a linear unit writes B x_t, so the first memory block holds x_t (7 at t = 2),
    not the printed x_(t-1) (5); the k blocks hold x_t, ..., x_(t-k+1)."""
    model = rb.build_recent_input_model(n=1, p=11, k=2, C=1, bound=8, max_len=3)
    (first,), (second,) = model.meta["memory"]
    delta = _run(model, [{"in:1": 5}, {"in:1": 7}, {"in:1": 1}])
    assert delta[first] == [5, 7, 1]
    assert delta[second] == [0, 5, 7]


def test_erratum_B21_E1_printed_construction_is_a_running_sum():
    """Erratum B21-E1: the printed h_t = [x_t + h_(t-1), ...] sums all inputs: with k = 1 and inputs
    (1, 1, 1) it holds 2 at t = 2, while the sum of the last k = 1 inputs is 1."""
    printed = rb.build_summation_model(n=1, p=11, window=None, bound=1, max_len=3)
    fixed = rb.build_summation_model(n=1, p=11, window=1, bound=1, max_len=3)
    seq = [{"in:1": 1}] * 3
    assert _run(printed, seq)["sum"] == [1, 2, 3]
    assert _run(fixed, seq)["sum"] == [1, 1, 1]


def test_erratum_B22_E1_gate_in_the_same_layer_as_the_unit_is_too_late():
    """Def 3.5 runs a layer's FFN after its linear unit: with the gating FFN in the same layer as the
    summing unit, the unit sums the (still zero) scratch dims and the memory stays 0; the builder's
    two-layer placement (ffn_before in an earlier layer) keeps x_1."""
    sources, scratch, memory = ["in:1"], [["z"]], [["m"]]
    block = rb.special_position_spec(sources, 1, scratch, memory)
    dims = ["in:1", "z", "m"]
    one_layer = rb.rnn_block_model(1, 11, dims, [LayerSpec("linear_rnn", lu=block.lu, ffn=block.ffn_before)], 3, {})
    two_layers = rb.rnn_block_model(1, 11, dims, [LayerSpec("linear_rnn", ffn=block.ffn_before),
                                                  LayerSpec("linear_rnn", lu=block.lu)], 3, {})
    seq = [{"in:1": 3}, {"in:1": 2}, {"in:1": 1}]
    assert _run(one_layer, seq)["m"] == [0, 0, 0]
    assert _run(two_layers, seq)["m"] == [3, 3, 3]


# ---- precision and errors ---------------------------------------------------------------------


def test_builders_refuse_too_small_p():
    with pytest.raises(PrecisionError, match="Lemma B.21"):
        rb.build_summation_model(n=1, p=rb.summation_precision(4, 16) - 2, bound=4, max_len=16)
    with pytest.raises(PrecisionError, match="Lemma B.23"):
        rb.build_recite_model(n=1, p=5, values={1: 3, 2: 1}, max_len=4)


def test_summation_declared_p_holds_the_extreme_sum():
    L, M = 16, 4
    p = rb.summation_precision(M, L)
    model = rb.build_summation_model(n=1, p=p, bound=M, max_len=L)
    assert _run(model, [{"in:1": M}] * L)["sum"][-1] == L * M


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(InputError, match="differ from the source"):
        rb.recent_input_spec(["a"], [["a"]])
    with pytest.raises(InputError, match="one dimension per source"):
        rb.recent_input_spec(["a", "b"], [["m"]])
    with pytest.raises(InputError, match="positive integer"):
        rb.recent_input_spec(["a"], [])
    with pytest.raises(InputError, match="2 rows"):
        rb.special_position_spec(["a"], 2, [["z"]], [["m"]])
    with pytest.raises(InputError, match="integers"):
        rb.recite_spec({Fraction(1, 2): 1}, "o")
    with pytest.raises(InputError, match="at least one position"):
        rb.recite_spec({}, "o")
    with pytest.raises(InputError, match="distinct"):
        rb.window_sum_spec("x", "s", ["m", "m"])


# ---- catalog and composition ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(rb.CATALOG))
def test_catalog_builds_standalone_models(name):
    model = rb.CATALOG[name](n=8, p=31)
    assert model.arch == "linear_rnn"
    assert model.meta["block"].startswith("B.")


def test_blocks_compose_in_one_layer():
    """Recent-input memory, a running sum and a recited sequence in one linear-RNN layer."""
    lu = rb.recent_input_spec(["in:1"], [["prev0"], ["prev1"]]) + rb.prefix_sum_spec("in:1", "count")
    ffn = rb.recite_spec({1: 4, 3: 2}, "say")
    dims = ["in:1", "prev0", "prev1", "count", "say"]
    model = rb.rnn_block_model(1, 15, dims, [LayerSpec("linear_rnn", lu=lu, ffn=ffn)], 4, {})
    delta = _run(model, [{"in:1": 1}, {"in:1": 0}, {"in:1": 1}, {"in:1": 1}])
    assert delta["prev0"] == [1, 0, 1, 1]
    assert delta["prev1"] == [0, 1, 0, 1]
    assert delta["count"] == [1, 1, 2, 3]
    assert delta["say"] == [4, 0, 2, 0]


def test_recite_can_emit_a_token_embedding():
    """A recite value may be a form over dims (e.g. the one-hot embedding of a special token)."""
    ffn = rb.recite_spec({2: {"tok:<StartSearch>": 1}, 3: {"num": 5}})
    model = rb.rnn_block_model(5, 15, [], [LayerSpec("linear_rnn", ffn=ffn)], 3, {})
    delta = _run(model, [{}, {}, {}])
    assert delta["tok:<StartSearch>"] == [0, 1, 0]
    assert delta["num"] == [0, 0, 5]
