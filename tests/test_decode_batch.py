"""Batched decoding drivers (constructions.decode): ``chain_of_thought_batch`` and
``retrieval_augmented_batch`` give every sequence the DecodeResult the single-sequence drivers
give it.  Independent reference: the single drivers on ReferenceEvaluator sessions (and on
scripted sessions for retrieval), one sequence at a time."""
from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from constructions.decode import (
    RegexOracle,
    SequentialBatchSession,
    batch_session,
    chain_of_thought,
    chain_of_thought_batch,
    retrieval_augmented,
    retrieval_augmented_batch,
)
from constructions.errors import InputError, ProofsCheckError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.vocab import Vocabulary
from tests.random_models import ModelSpec, random_model, random_tokens
from tests.test_decode import ScriptedSession

specs = st.builds(
    ModelSpec,
    arch=st.sampled_from(["transformer", "linear_rnn", "hybrid"]),
    p=st.just(31),
    n_specials=st.sampled_from([4, 7]),  # 7: <StartSearch> / <EndSearch> / FAILED can be emitted
    max_len=st.just(14),
    integer_only=st.just(True),
    seed=st.integers(0, 10_000),
)


def _single(decode, prompts):
    """Per prompt: the single driver's result (``decode(i, prompt)``), or the type of what it raised."""
    out = []
    for i, p in enumerate(prompts):
        try:
            out.append(decode(i, p))
        except ProofsCheckError as exc:
            out.append(type(exc))
    return out


def _check(batch, singles):
    if any(isinstance(s, type) for s in singles):  # one sequence raises: the batch raises
        with pytest.raises(ProofsCheckError):
            batch()
    else:
        assert batch() == singles


@given(spec=specs, sizes=st.lists(st.integers(1, 4), min_size=1, max_size=4), steps=st.integers(0, 8),
       stop=st.sampled_from(["YES NO", "numbers"]))
def test_chain_of_thought_batch_equals_single(spec, sizes, steps, stop):
    model = random_model(spec)
    ev = ReferenceEvaluator()
    prompts = [random_tokens(model, k, spec.seed + i) for i, k in enumerate(sizes)]
    answers = {"YES", "NO"} if stop == "YES NO" else (lambda t: isinstance(t, int) and t % 2 == 0)
    per_seq = [steps + i for i in range(len(prompts))]
    singles = _single(lambda i, p: chain_of_thought(ev.session(model, p), per_seq[i], answers), prompts)
    _check(lambda: chain_of_thought_batch(batch_session(ev, model, prompts), per_seq, answers), singles)


@given(spec=specs, sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3), steps=st.integers(0, 8))
def test_retrieval_augmented_batch_equals_single(spec, sizes, steps):
    model = random_model(spec)
    ev = ReferenceEvaluator()
    prompts = [random_tokens(model, k, spec.seed + i) for i, k in enumerate(sizes)]
    with RegexOracle() as oracle:
        singles = _single(lambda i, p: retrieval_augmented(ev.session(model, p), model.vocab, steps, oracle=oracle), prompts)
        bs = SequentialBatchSession([ev.session(model, p) for p in prompts])
        _check(lambda: retrieval_augmented_batch(bs, model.vocab, steps, oracle=oracle), singles)


S, E = "<StartSearch>", "<EndSearch>"


@given(seed=st.integers(0, 10_000))
def test_retrieval_batch_on_scripted_sessions(seed):
    """Scripts with searches that match, fail, and YES inside a query: each sequence keeps its
    own retrievals and stop time."""
    rng = random.Random(seed)
    vocab = Vocabulary(9)
    prompts = [[rng.randint(1, 9) for _ in range(rng.randint(2, 6))] for _ in range(3)]
    pool = [S, "(", ")", E, "YES", "NO", 1, 2, 3, "~"]
    scripts = [[rng.choice(pool) for _ in range(12)] for _ in range(3)]
    # patterns with unbalanced parentheses raise RetrievalError in both drivers alike
    with RegexOracle() as oracle:
        singles = _single(lambda i, p: retrieval_augmented(ScriptedSession(p, scripts[i]), vocab, 10,
                                                        oracle=oracle), prompts)
        bs = SequentialBatchSession([ScriptedSession(p, s) for p, s in zip(prompts, scripts)])
        _check(lambda: retrieval_augmented_batch(bs, vocab, 10, oracle=oracle), singles)


def test_batch_drivers_on_the_dfs_transformer_fast_and_float():
    """Two graphs in one batch through the exact fast evaluator and float64: each tour is
    Algorithm 1's (proofs_check.algorithms), as the single driver's."""
    from constructions.dfs_transformer import cot_bound, dfs_transformer
    from proofs_check.algorithms import cot_algorithm1
    from proofs_check.graphs import random_tree
    from proofs_check.istree_claims import random_path

    model = dfs_transformer(6)
    graphs = [random_tree(random.Random(1), 6), random_path(random.Random(2), 6)]
    for ev in (FastEvaluator(), FastEvaluator(mode="float64")):
        res = chain_of_thought_batch(batch_session(ev, model, [g.tokens() for g in graphs]), cot_bound(6))
        assert [r.generated for r in res] == [cot_algorithm1(g) for g in graphs]


def test_max_steps_list_must_match_the_batch():
    ev = ReferenceEvaluator()
    model = random_model(ModelSpec("transformer", 31, n_specials=4, seed=2))
    bs = batch_session(ev, model, [random_tokens(model, 2, 0)])
    with pytest.raises(InputError, match="entries"):
        chain_of_thought_batch(bs, [1, 2])
