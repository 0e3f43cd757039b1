"""FastEvaluator(device="cuda") gives the CPU's bits (issue 10, 2 / part A 4): the limb-split
float64 GEMMs, the certified softmax with its exact fallback, rounding and overflow detection all
on the device.  Skipped, with the reason, where torch sees no CUDA device (CI, this machine)."""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.dfs_transformer import dfs_transformer
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.graphs import Graph
from tests.random_models import random_model, random_tokens
from tests.test_evaluate_fast import ariths, outcome, specs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CUDA equivalences need a GPU")


@settings(max_examples=40, deadline=None)
@given(specs(), ariths, st.integers(1, 8), st.integers(0, 1000))
def test_cuda_equals_cpu_and_reference(spec, arith, length, tseed):
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    gpu = outcome(FastEvaluator(arith, device="cuda"), model, tokens)
    assert gpu == outcome(FastEvaluator(arith), model, tokens)
    assert gpu == outcome(ReferenceEvaluator(arith), model, tokens)


@settings(max_examples=15, deadline=None)
@given(specs(scales=(3, 5)), ariths, st.integers(2, 6), st.integers(0, 1000))
def test_cuda_overflows_same_location(spec, arith, length, tseed):
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    assert outcome(FastEvaluator(arith, device="cuda"), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)


def test_cuda_batch_session_equals_cpu_on_dfs_chains():
    model = dfs_transformer(8)
    rng = random.Random(3)
    graphs = [Graph.parse(" ".join(f"{i}-{rng.randrange(1, i)}" for i in range(2, 9))) for _ in range(6)]
    want = [chain_of_thought(FastEvaluator().session(model, g.tokens()), 40).generated for g in graphs]
    batch = FastEvaluator(device="cuda").batch_session(model, [g.tokens() for g in graphs])
    got = [[] for _ in graphs]
    for _ in range(max(map(len, want))):
        active = [i for i in range(len(graphs)) if len(got[i]) < len(want[i])]
        for i, tok in zip(active, batch.next_tokens(active)):
            got[i].append(tok)
            batch.append(i, [tok])
    assert got == want


def test_cuda_session_p201():
    """Large p (fixed-point softmax, multi-limb path) on the device."""
    from tests.random_models import ModelSpec

    model = random_model(ModelSpec("hybrid", 201, n_heads=2, fractional=0.3, seed=11, max_len=24))
    tokens = random_tokens(model, 12, 5)
    s_gpu = FastEvaluator(device="cuda").session(model, tokens[:4])
    s_cpu = FastEvaluator().session(model, tokens[:4])
    for k in range(4, 12, 3):
        s_gpu.append(tokens[k : k + 3])
        s_cpu.append(tokens[k : k + 3])
        assert s_gpu.next_token() == s_cpu.next_token()


def test_cuda_key_blocks_equal_cpu(monkeypatch):
    """The key blocks (constructions.fast_key_blocks) forced on from the first key, blocks of 2:
    the DFS Transformer's chain at p = 101 on the device equals the CPU's and Algorithm 1's."""
    import constructions.fast_key_blocks as fkb
    from constructions.dfs_transformer import cot_bound
    from proofs_check.algorithms import cot_algorithm1
    from proofs_check.graphs import random_tree

    monkeypatch.setattr(fkb, "MIN_KEYS", 0)
    monkeypatch.setattr(fkb, "BLOCK", 2)
    n = 6
    model, g = dfs_transformer(n, p=101), random_tree(random.Random(5), n)
    gpu = chain_of_thought(FastEvaluator(device="cuda").session(model, g.tokens()), cot_bound(n))
    cpu = chain_of_thought(FastEvaluator().session(model, g.tokens()), cot_bound(n))
    assert gpu.generated == cpu.generated == cot_algorithm1(g)
