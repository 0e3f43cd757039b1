"""The fast evaluator's round_products reading (every scalar product rounded to R_p): the int64
word path (:func:`evaluate_fast._round_products_word`) and the multi-limb path, each bit for bit
against plain Python (numerics.div_round per product) and against the reference evaluator."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions import fast_engine
from constructions.dfs_transformer import dfs_transformer
from constructions.errors import ProofsCheckError
from constructions.evaluate_fast import FastEvaluator, Limbs, _digits_to_ints, _ints_to_digits, _round_products_word
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.numerics import Arithmetic, Precision, div_round
from proofs_check.algorithms import algorithm1
from proofs_check.graphs import Graph
from tests.random_models import ModelSpec, random_model, random_tokens


def python_round_products(W, X, F, M, tie):
    """sum_j ROUND(W_ij X_jk / 2^F), each product clipped to +-M; and the clipped counts."""
    m, n, N = len(W), len(X), len(X[0]) if X else 0
    sums = [[0] * N for _ in range(m)]
    counts = [[0] * N for _ in range(m)]
    for i in range(m):
        for k in range(N):
            for j in range(n):
                q = div_round(W[i][j] * X[j][k], 1 << F, tie)
                if abs(q) > M:
                    counts[i][k] += 1
                    q = M if q > 0 else -M
                sums[i][k] += q
    return sums, counts


@given(st.sampled_from([3, 5, 11, 21, 31, 41, 51, 61]), st.sampled_from(["even", "away"]), st.integers(0, 10**6), st.booleans())
def test_word_path_equals_python(p, tie, seed, ties):
    prec = Precision(p)
    F, M = prec.F, prec.max_scaled
    rng = random.Random(seed)
    m, n, N = rng.randint(1, 4), rng.randint(1, 5), rng.randint(1, 4)
    if ties:  # W = k/2 (scaled k 2^(F-1)), X = small integers: odd k times odd x is a tie
        W = [[rng.randint(-3, 3) << (F - 1) for _ in range(n)] for _ in range(m)]
        X = [[rng.choice([-1, 1]) * (rng.randint(0, max(1, M // 4)) | 1) for _ in range(N)] for _ in range(n)]
        X = [[v if rng.random() < 0.5 else rng.randint(-3, 3) for v in r] for r in X]  # odd or small
    else:
        W = [[rng.randint(-M, M) for _ in range(n)] for _ in range(m)]
        X = [[rng.randint(-M, M) for _ in range(N)] for _ in range(n)]
    W = [[max(-M, min(M, v)) for v in r] for r in W]
    X = [[max(-M, min(M, v)) for v in r] for r in X]
    b = Limbs.for_inner_dim(64, p).b
    L = max(1, -(-(p - 1) // b))
    Wd = _ints_to_digits(np.array(W, dtype=object), b, L, torch.device("cpu"))
    Xd = _ints_to_digits(np.array(X, dtype=object), b, L, torch.device("cpu"))
    got = _round_products_word(Wd, Xd, b, F, M, tie)
    if p <= 51:  # one word (p <= 31) or two (products up to 2^100): the word path applies
        assert got is not None
    elif got is None:  # p = 61: n products of up to 2^60 could overflow the int64 sum
        return
    R, pc = got
    want_sums, want_counts = python_round_products(W, X, F, M, tie)
    assert _digits_to_ints(R, b).tolist() == want_sums
    assert pc.tolist() == want_counts


def test_word_path_two_word_products_and_refusal():
    """p = 61: (2^59 + 1)^2 / 2^30 is far beyond M: clipped to M and counted; p = 101: an operand
    of 2^70 does not fit a word, so the limb path is asked for (None)."""
    b = Limbs.for_inner_dim(64, 61).b
    big = np.array([[(1 << 59) + 1]], dtype=object)
    Wd = _ints_to_digits(big, b, 3, torch.device("cpu"))
    R, pc = _round_products_word(Wd, Wd, b, 30, (1 << 60) - 1, "even")
    assert _digits_to_ints(R, b).tolist() == [[(1 << 60) - 1]] and pc.tolist() == [[1]]
    b = Limbs.for_inner_dim(64, 101).b
    huge = _ints_to_digits(np.array([[1 << 70]], dtype=object), b, 5, torch.device("cpu"))
    assert _round_products_word(huge, huge, b, 50, (1 << 100) - 1, "even") is None


def outcome(ev, model, tokens):
    try:
        r = ev.forward(model, tokens)
    except ProofsCheckError as exc:
        return ("error", str(exc))
    return ([[int(v) for v in row] for row in r.residual], r.logits, r.saturations)


@pytest.mark.parametrize("limb_path", [False, True])
@given(
    st.sampled_from(["transformer", "linear_rnn", "hybrid"]), st.sampled_from([11, 21, 61]),
    st.sampled_from(["even", "away"]), st.sampled_from(["raise", "saturate"]), st.sampled_from([0, 3]),
    st.integers(0, 10**6),
)
def test_both_paths_equal_reference(limb_path, arch, p, tie, overflow, scale, seed):
    model = random_model(ModelSpec(arch, p, n_heads=2, fractional=0.5, scale_log2=scale, seed=seed))
    tokens = random_tokens(model, 5, seed)
    arith = Arithmetic(tie, "round_products", overflow)
    mp = pytest.MonkeyPatch()
    if limb_path:
        mp.setattr(fast_engine, "_round_products_word", lambda *a: None)
    try:
        assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)
    finally:
        mp.undo()


def test_dfs_transformer_round_products_bit_identical():
    """Thm 4.7's DFS Transformer at n = 4 (the issue's timing case) under round_products."""
    model = dfs_transformer(4)
    g = Graph.parse("1-2 2-3 3-4", 4)
    tokens = g.tokens() + algorithm1(g)[:3]
    arith = Arithmetic(matmul="round_products")
    a, b = ReferenceEvaluator(arith).forward(model, tokens), FastEvaluator(arith).forward(model, tokens)
    assert (a.residual == b.residual).all() and a.logits == b.logits and a.next_token == b.next_token


def test_word_path_at_large_p_with_small_products():
    """p = 201 (F = 100 > 63): small operands take the word path, where 2^F is no int64 and every
    product rounds to 0 (found by Hypothesis in the session test: `v & (2^F - 1)` overflowed)."""
    model = random_model(ModelSpec("transformer", 201, extra_dims=0, key_dim=1, ffn_width=0, density=0.3,
                                   fractional=0.3, seed=2))
    arith = Arithmetic("even", "round_products")
    for tokens in ([model.vocab.all_tokens()[0]], random_tokens(model, 6, 1)):
        assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)
