"""The step-by-step linear-RNN state equals the reference evaluator's whole-sequence pass."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from constructions.errors import PrecisionOverflow, WeightError
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.numerics import Arithmetic
from constructions.recurrent_state import initial_state, next_token, step
from random_models import ModelSpec, random_model, random_tokens


@given(
    p=st.sampled_from([11, 21, 61]),
    layers=st.integers(1, 2),
    length=st.integers(1, 10),
    seed=st.integers(0, 10**6),
    matmul=st.sampled_from(["round_once", "round_products"]),
)
def test_stepping_matches_the_reference_pass(p, layers, length, seed, matmul):
    model = random_model(ModelSpec("linear_rnn", p, n_layers=layers, seed=seed, fractional=0.3))
    tokens = random_tokens(model, length, seed)
    arith = Arithmetic(matmul=matmul)
    try:
        want = ReferenceEvaluator(arith).forward(model, tokens)
    except PrecisionOverflow:
        # the same operations overflow; which one is reported first may differ, since the
        # whole-sequence pass finishes a sublayer at every position before the next sublayer
        with pytest.raises(PrecisionOverflow):
            s = initial_state(model)
            for t in tokens:
                s = step(model, s, t, arith)
            next_token(model, s, arith)
        return
    s = initial_state(model)
    for t in tokens:
        s = step(model, s, t, arith)
    assert s.last == tuple(int(v) for v in want.residual[:, -1])
    assert next_token(model, s, arith) == want.next_token
    assert s.position == len(tokens)


def test_only_linear_rnns_have_this_state():
    model = random_model(ModelSpec("transformer", 21))
    with pytest.raises(WeightError):
        initial_state(model)
