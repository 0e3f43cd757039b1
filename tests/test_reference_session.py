"""The reference evaluator's incremental decoding (ReferenceSession with a cached PrefixState)
against full recomputation of the whole prefix (``ReferenceEvaluator.forward``), token by token:
the next token (or the error, with its Location and message) and the last position's residual."""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.dfs_transformer import dfs_transformer
from constructions.errors import ProofsCheckError
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.algorithms import algorithm1
from proofs_check.graphs import YES, Graph
from tests.random_models import ModelSpec, random_model, random_tokens
from tests.test_evaluate_fast import ariths  # every reading of A.2, both overflow modes


@st.composite
def specs(draw):
    return ModelSpec(
        arch=draw(st.sampled_from(["transformer", "linear_rnn", "hybrid"])),
        p=draw(st.sampled_from([11, 61])),
        extra_dims=draw(st.integers(0, 3)),
        n_layers=draw(st.integers(1, 2)),
        n_heads=draw(st.integers(1, 2)),
        ffn_width=draw(st.integers(0, 2)),
        fractional=draw(st.sampled_from([0.0, 0.3])),
        scale_log2=draw(st.sampled_from([0, 0, 3])),  # 3: overflows happen
        seed=draw(st.integers(0, 10**6)),
        untied=draw(st.booleans()),
    )


def full(ref: ReferenceEvaluator, model, tokens):
    try:
        r = ref.forward(model, tokens)
    except ProofsCheckError as exc:
        return ("error", str(exc))
    return (r.next_token, [int(v) for v in r.residual[:, -1]])


def incremental(session):
    try:
        tok = session.next_token()
    except ProofsCheckError as exc:
        return ("error", str(exc))
    return (tok, [int(v) for v in session.residual()[:, 0]])


@given(specs(), ariths, st.integers(1, 3), st.lists(st.integers(1, 3), min_size=1, max_size=3), st.integers(0, 1000))
def test_session_equals_full_recomputation(spec, arith, prompt_len, chunks, tseed):
    model = random_model(spec)
    tokens = random_tokens(model, prompt_len + sum(chunks), tseed)
    ref = ReferenceEvaluator(arith)
    session = ref.session(model, tokens[:prompt_len])
    upto = prompt_len
    for step in [0] + chunks:
        if step:
            session.append(tokens[upto : upto + step])
            upto += step
        assert incremental(session) == full(ref, model, tokens[:upto])
        assert session.tokens == tokens[:upto]


def test_session_after_an_error_keeps_raising_the_recomputation_error():
    """An overflowing step leaves the cached state as it was: asking again raises the same."""
    model = random_model(ModelSpec("transformer", 11, scale_log2=4, seed=3, density=0.8))
    ref = ReferenceEvaluator()
    tokens = random_tokens(model, 6, 1)
    expected = full(ref, model, tokens)
    assert expected[0] == "error"
    session = ref.session(model, tokens)
    assert incremental(session) == expected == incremental(session)


def test_dfs_chain_every_token_and_final_residual():
    """Thm 4.7's DFS Transformer (n = 3) decodes its whole chain of thought incrementally: every
    generated token equals the full recomputation's, and so does the final residual column."""
    model = dfs_transformer(3)
    g = Graph.parse("1-2 2-3", 3)
    ref = ReferenceEvaluator()
    session = ref.session(model, g.tokens())
    out = chain_of_thought(session, 2 * g.n).generated
    assert out == [*algorithm1(g), YES]
    tokens = list(session.tokens)
    for i in range(len(g.tokens()), len(tokens)):  # every generated token, recomputed in full
        assert ref.next_token(model, tokens[:i]) == tokens[i]
    last = ref.forward(model, tokens).residual[:, -1]
    assert np.array_equal(session.residual()[:, 0], last)


def test_recompute_mode_is_the_plain_way():
    model = random_model(ModelSpec("hybrid", 61, n_layers=2, seed=5))
    tokens = random_tokens(model, 5, 2)
    ref = ReferenceEvaluator()
    a, b = ref.session(model, tokens), ref.session(model, tokens, recompute=True)
    assert a.next_token() == b.next_token() == ref.next_token(model, tokens)
    assert np.array_equal(a.residual(), b.residual())
