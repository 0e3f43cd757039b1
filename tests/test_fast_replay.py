"""Replayed tokens (FastSession.append_replayed): the last layer computes only the column read.

The property: wherever the reference evaluates the whole sequence without an error (as it does
for tokens the model itself generated, the only tokens a Replay holds), a session that
appended a prefix as replayed gives the reference's next token after it, and after further
ordinary tokens.  The reference is constructions.evaluate_reference (every column, every
check); the fast path under test is fast_layers._final_column_layer.
"""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from constructions import fast_layers
from constructions.decode import Replay, chain_of_thought
from constructions.errors import ProofsCheckError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.istree_hybrid import istree_hybrid
from proofs_check.checks.istree_hybrid import hybrid_cot
from proofs_check.graphs import random_tree, shuffle_edges
from tests.random_models import drawn_spec, random_model, random_tokens

torch.set_num_threads(1)


@st.composite
def specs(draw):
    return drawn_spec(draw, p=draw(st.sampled_from((11, 61, 201))), scale_log2=draw(st.sampled_from((0, 0, 2))))


@settings(max_examples=40)
@given(specs(), st.integers(2, 9), st.integers(0, 3), st.integers(0, 1000))
def test_replayed_prefix_gives_the_reference_next_token(spec, replayed, more, tseed):
    model = random_model(spec)
    tokens = random_tokens(model, replayed + more, tseed)
    ref = ReferenceEvaluator()
    try:
        ref.forward(model, tokens)  # every position fine: tokens a decode could have made
        want = [ref.next_token(model, tokens[:k]) for k in range(replayed, replayed + more + 1)]
    except ProofsCheckError:
        assume(False)
    session = FastEvaluator().session(model, tokens[:1])
    session.append_replayed(tokens[1:replayed])
    got = [session.next_token()]
    for t in tokens[replayed:]:
        session.append([t])
        got.append(session.next_token())
    assert got == want


def test_a_replayed_hybrid_decode_is_the_uninterrupted_one_and_skips_the_queries(monkeypatch):
    """Thm 5.7 (a)'s hybrid (its one attention layer is the last): a Replay of a prefix of the
    chain takes the final-column pass (counted) and continues to the chain of the independent
    reference hybrid_cot."""
    n = 8
    model = istree_hybrid(n)
    rng = random.Random(3)
    g = shuffle_edges(rng, random_tree(rng, n))
    want = hybrid_cot(g)
    taken = []
    real = fast_layers._final_column_layer

    def counted(*args, **kwargs):
        out = real(*args, **kwargs)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(fast_layers, "_final_column_layer", counted)
    for cut in (3, 37, len(want) - 1):  # chunks of 2+ tokens (the last replayed one is appended alone)
        taken.clear()
        got = chain_of_thought(FastEvaluator().session(model, g.tokens()), len(want) + 5,
                               replay=Replay(want[:cut], max_chunk_entries=4000))
        assert got.generated == want
        assert taken and all(taken)  # every replayed chunk took the one-column last layer
