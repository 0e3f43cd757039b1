"""FastBatchSession (issue 10, part A 3): many sequences decoded incrementally at once, each
bit-equal to a FastSession on it alone and to the reference evaluator on its whole prefix;
ragged prompts, different stop times, retrieval-style appends, an overflow in one sequence.
Also the long-chain session (DFS Transformer, whole chain vs ReferenceSession) and the device
errors of FastEvaluator."""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.dfs_transformer import dfs_transformer
from constructions.errors import EvaluatorError, ProofsCheckError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.graphs import Graph
from tests.random_models import ModelSpec, random_model, random_tokens
from tests.test_evaluate_fast import ariths, specs

torch.set_num_threads(1)


def ref_next(ref: ReferenceEvaluator, model, prefix):
    """The reference's answer for a whole prefix: the next token or (error class, message)."""
    try:
        return ref.next_token(model, prefix)
    except ProofsCheckError as exc:
        return ("error", type(exc).__name__, str(exc))


def session_next(session):
    try:
        return session.next_token()
    except ProofsCheckError as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=25, deadline=None)
@given(specs(scales=(0, 0, 3)), ariths, st.lists(st.integers(1, 4), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=5), st.integers(0, 1000))
def test_batch_session_equals_single_sessions_and_reference(spec, arith, prompt_lens, steps, tseed):
    """Each step: one sequence gets 0-3 appended tokens (retrieval-style), a varying subset is
    active (sequences stop and resume), and every active sequence that got a token is fed it
    (decoding: passes of one new column per sequence, the batched decode step); next_tokens
    equals, sequence by sequence, a FastSession fed the same tokens and the reference on the
    whole prefix; an error is the first failing active sequence's, with its index."""
    model = random_model(spec)
    size = len(prompt_lens)
    extras = [random_tokens(model, 12, tseed + 100 + i) for i in range(size)]
    seqs = [random_tokens(model, n, tseed + i) for i, n in enumerate(prompt_lens)]
    fast, ref = FastEvaluator(arith), ReferenceEvaluator(arith)
    batch = fast.batch_session(model, seqs)
    singles = [fast.session(model, s) for s in seqs]
    assert batch.size == size
    for k, (extra, skip) in enumerate(steps):
        i = k % size
        if extra:
            more, extras[i] = extras[i][:extra], extras[i][extra:]
            for target in (batch.append, lambda _i, t: singles[_i].append(t)):
                target(i, more)
            seqs[i] = seqs[i] + more
        active = [j for j in range(size) if j != skip] or [0]
        want = [session_next(singles[j]) for j in active]
        assert want == [ref_next(ref, model, seqs[j]) for j in active]
        try:
            got = batch.next_tokens(active)
        except ProofsCheckError as exc:
            pos = next(n for n, w in enumerate(want) if isinstance(w, tuple))
            assert ("error", type(exc).__name__, str(exc)) == want[pos]
            assert exc.sequence == active[pos]
            continue
        assert got == want
        for j, tok in zip(active, got):
            assert batch.tokens(j) == seqs[j]
            if len(seqs[j]) < model.max_len:
                batch.append(j, [tok])
                singles[j].append([tok])
                seqs[j] = seqs[j] + [tok]


def test_overflow_in_one_sequence_names_it_and_spares_the_others():
    """Prompts of 2, 10, 3 tokens on a model that overflows on some prefixes: the error raised is
    the first failing sequence's in the order asked, and the others still decode."""
    model = random_model(ModelSpec("hybrid", 11, n_layers=1, scale_log2=1, seed=4, max_len=24))
    fast, ref = FastEvaluator(), ReferenceEvaluator()
    prompts = [random_tokens(model, n, 7 + n) for n in (2, 10, 3)]
    wants = [ref_next(ref, model, p) for p in prompts]
    failing = [i for i, w in enumerate(wants) if isinstance(w, tuple)]
    assert failing == [1, 2]  # the reference fails on the longer two (this model, these prompts)
    batch = fast.batch_session(model, prompts)
    with pytest.raises(ProofsCheckError) as info:
        batch.next_tokens([2, 1, 0])
    first = next(i for i in (2, 1, 0) if i in failing)
    assert info.value.sequence == first and str(info.value) == wants[first][2]
    rest = [i for i in (0, 1, 2) if i not in failing]
    assert batch.next_tokens(rest) == [wants[i] for i in rest]


def test_batch_session_index_errors():
    model = random_model(ModelSpec("transformer", 11, seed=1))
    batch = FastEvaluator().batch_session(model, [[1], [2, 1]])
    for bad in (2, -1, True, "0"):
        with pytest.raises(EvaluatorError, match="sequence index"):
            batch.next_tokens([bad])


def _tree(n: int, seed: int) -> Graph:
    rng = random.Random(seed)
    return Graph.parse(" ".join(f"{i}-{rng.randrange(1, i)}" for i in range(2, n + 1)))


def test_dfs_chain_batched_equals_reference_sessions():
    """The DFS Transformer (Thm 4.7) at n = 8: three random trees and a path, decoded as one
    batch; every sequence's whole chain equals the ReferenceSession chain token for token."""
    model = dfs_transformer(8)
    graphs = [_tree(8, s) for s in (1, 2, 3)] + [Graph.parse(" ".join(f"{i}-{i + 1}" for i in range(1, 8)))]
    ref = ReferenceEvaluator()
    want = [chain_of_thought(ref.session(model, g.tokens()), 40).generated for g in graphs]
    batch = FastEvaluator().batch_session(model, [g.tokens() for g in graphs])
    done = [False] * len(graphs)
    got = [[] for _ in graphs]
    while not all(done):
        active = [i for i, d in enumerate(done) if not d]
        for i, tok in zip(active, batch.next_tokens(active)):
            got[i].append(tok)
            batch.append(i, [tok])
            done[i] = len(got[i]) == len(want[i])
    assert got == want


def test_dfs_long_chain_session_equals_reference_session():
    """n = 16: the whole chain of a FastSession (KV caches over ~60 positions) equals the
    ReferenceSession's."""
    model = dfs_transformer(16)
    g = _tree(16, 4)
    want = chain_of_thought(ReferenceEvaluator().session(model, g.tokens()), 80)
    got = chain_of_thought(FastEvaluator().session(model, g.tokens()), 80)
    assert got.generated == want.generated and got.answer == want.answer


@pytest.mark.parametrize("device", ["meta", "mps", "nonsense"])
def test_unsupported_device_is_a_clear_error(device):
    with pytest.raises(EvaluatorError, match="device"):
        FastEvaluator(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the error case cannot occur")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(EvaluatorError, match="CUDA"):
        FastEvaluator(device="cuda")
