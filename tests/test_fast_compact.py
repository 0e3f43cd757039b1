"""Compacted heads (constructions.fast_compact, issue 10): at large F the fast evaluator proves
most keys of a column far from float64 scores and computes exact scores, softmax and V P on the
others only.  Checked against the reference evaluator on hard-attention chains at F > 45 (where
the path runs, with keys really left out), and the far test itself against exact rationals."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import constructions.fast_compact as fc
from constructions.decode import chain_of_thought
from constructions.dfs_transformer import cot_bound, dfs_transformer
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.algorithms import cot_algorithm1
from proofs_check.graphs import random_tree

torch.set_num_threads(1)


def _spy_left_out(monkeypatch) -> list[int]:
    """Counts of causal entries candidate_entries left out, call by call."""
    seen: list[int] = []
    orig = fc.candidate_entries

    def spy(Sf, delta, causal, d, F, m_ref):
        cand = orig(Sf, delta, causal, d, F, m_ref)
        seen.append(int((causal & ~cand).sum()))
        return cand

    monkeypatch.setattr(fc, "candidate_entries", spy)
    return seen


def test_dfs_chain_at_p101_equals_reference(monkeypatch):
    """Thm 4.7's DFS Transformer at n = 6 built at p = 101 (F = 50 > 45: the compacted path):
    the session's whole chain is Algorithm 1's, and every step's logits equal the reference's."""
    left_out = _spy_left_out(monkeypatch)
    n = 6
    model, g = dfs_transformer(n, p=101), random_tree(random.Random(3), n)
    res = chain_of_thought(FastEvaluator().session(model, g.tokens()), cot_bound(n))
    assert res.generated == cot_algorithm1(g)
    assert sum(left_out) > 0  # keys were really proven far and skipped
    ref, fast = ReferenceEvaluator(), FastEvaluator()
    toks = list(g.tokens())
    for tok in res.generated[:6]:
        assert fast.forward(model, toks).logits == ref.forward(model, toks).logits
        toks.append(tok)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([46, 50, 54]), st.integers(1, 40), st.integers(0, 5000))
def test_far_entries_are_far(seed, F, T, extra):
    """Every entry candidate_entries leaves out has exp((s_j - s_max) / sqrt(d)) < 2^-(F+66) /
    m_ref (m_ref >= the column's length, as for the head's longest column) for the exact scores (checked with rationals; ln bounds with a 1e-12 margin), whatever the
    float scores' error within delta."""
    rng = random.Random(seed)
    d = rng.choice([4, 16, 64])
    exact = [Fraction(rng.randrange(-10**6, 10**6), 1 << rng.randrange(0, 8)) * rng.choice([1, 1000]) for _ in range(T)]
    delta = [Fraction(rng.randrange(0, 100), 1000) for _ in range(T)]
    # float scores anywhere inside the error bound
    Sf = torch.tensor([[float(s + dl * Fraction(rng.randrange(-100, 101), 100))] for s, dl in zip(exact, delta)], dtype=torch.float64)
    dt = torch.tensor([[float(dl)] for dl in delta], dtype=torch.float64)
    causal = torch.ones((T, 1), dtype=torch.bool)
    m_ref = T + extra
    cand = fc.candidate_entries(Sf, dt, causal, d, F, m_ref)
    smax = max(exact)
    limit = (F + 66) * math.log(2) + math.log(m_ref)
    for j in range(T):
        if not bool(cand[j, 0]):
            assert float(smax - exact[j]) / math.sqrt(d) > limit * (1 - 1e-12)
    assert bool(cand[max(range(T), key=lambda j: exact[j]), 0])  # the maximum is always kept
