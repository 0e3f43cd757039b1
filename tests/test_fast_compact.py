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
    """Counts of causal entries candidate_entries or coarse_candidates left out, call by call."""
    seen: list[int] = []
    orig, orig_coarse = fc.candidate_entries, fc.coarse_candidates

    def spy(Sf, delta, causal, d, F, m_ref):
        cand = orig(Sf, delta, causal, d, F, m_ref)
        seen.append(int((causal & ~cand).sum()))
        return cand

    def spy_coarse(Sf, Kmax, Qf, causal, *rest):
        cand = orig_coarse(Sf, Kmax, Qf, causal, *rest)
        if cand is not None:
            seen.append(int((causal & ~cand).sum()))
        return cand

    monkeypatch.setattr(fc, "candidate_entries", spy)
    monkeypatch.setattr(fc, "coarse_candidates", spy_coarse)
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


# ---- exact float64 scores (fast_compact.exact_float_entries) ---------------------------------


def _signed_digits(v: int, b: int, L: int) -> list[int]:
    """Digits of one sign (the sign of v), |digit| < 2^b."""
    mag, sign = abs(v), (1 if v >= 0 else -1)
    return [sign * ((mag >> (b * k)) & ((1 << b) - 1)) for k in range(L)]


def _value(draw_int: int, bits: int, shift: int) -> int:
    """An integer with about ``bits`` significant bits, shifted left by ``shift``."""
    return draw_int % (1 << bits) << shift


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([12, 20, 24]), st.sampled_from([20, 50, 60]))
def test_lsb_exponent_and_float_digits_match_python_ints(seed, b, F):
    rng = random.Random(seed)
    L, rows, cols = 6, 3, 5
    vals = [[rng.choice([0, 1, -1]) * _value(rng.getrandbits(60), rng.randrange(1, 60), rng.randrange(0, 40))
             for _ in range(cols)] for _ in range(rows)]
    D = torch.tensor([[[_signed_digits(vals[r][c], b, L)[k] for c in range(cols)] for r in range(rows)]
                      for k in range(L)], dtype=torch.int64)
    got = fc._lsb_exponent(D, b, -F).tolist()
    for c in range(cols):
        nz = [vals[r][c] for r in range(rows) if vals[r][c]]
        want = min(((v & -v).bit_length() - 1 for v in nz), default=None)
        assert (got[c] == math.inf) if want is None else got[c] == want - F
    # canonical digits of exact integer floats against Python's floor division
    xs = [rng.choice([1, -1]) * _value(rng.getrandbits(53), 53, rng.randrange(0, 50)) for _ in range(8)]
    Ls = 9
    digits = fc._exact_float_digits(torch.tensor([float(x) for x in xs], dtype=torch.float64), b, Ls)
    for i, x in enumerate(xs):
        want = [(x >> (b * k)) & ((1 << b) - 1) for k in range(Ls - 1)] + [x >> (b * (Ls - 1))]
        assert digits[:, i].tolist() == want


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([46, 50, 54]), st.integers(1, 4))
def test_scores_called_exact_are_exact(seed, F, kdim):
    """Where exact_float_entries says so, the float64 GEMM of the float keys and queries is
    the exact integer score (Python ints); values straddle the 53-bit limit, and small
    dyadics, the constructions' case, are found exact."""
    from constructions.fast_limbs import _signed_to_float

    rng = random.Random(seed)
    b, L, T, n = 20, 6, 12, 3

    def rand_value() -> int:
        return rng.choice([0, 1, -1]) * _value(rng.getrandbits(60), rng.choice([3, 20, 30, 45, 52, 53, 54, 58]),
                                               rng.randrange(0, 40))

    K = [[rand_value() for _ in range(T)] for _ in range(kdim)]
    Q = [[rand_value() for _ in range(n)] for _ in range(kdim)]
    digits = lambda M, w: torch.tensor([[[_signed_digits(M[i][j], b, L)[k] for j in range(w)] for i in range(kdim)]
                                        for k in range(L)], dtype=torch.int64)
    Kd, Qd = digits(K, T), digits(Q, n)
    Kf = _signed_to_float(Kd, b, -F).T
    Sf, _, A = fc.float_scores(Kf, Qd, b, F, L)
    e = fc._lsb_exponent(Kd, b, -F).reshape(-1, 1) + fc._lsb_exponent(Qd, b, -F).reshape(1, -1)
    ok = fc.exact_float_entries(A, e, kdim, L)
    Ke, Qe = fc._lsb_exponent(Kd, b, -F), fc._lsb_exponent(Qd, b, -F)
    Ls = 9
    for j in range(T):
        for c in range(n):
            exact = sum(K[i][j] * Q[i][c] for i in range(kdim))  # the score times 2^(2F)
            if bool(ok[j, c]):
                assert Fraction(float(Sf[j, c])) * (1 << (2 * F)) == exact
            # the plan's own path: the entry as a one-candidate chunk, digits or None
            S = fc._float_exact_scores(Kf, Ke, Qd[:, :, c : c + 1], Qe[c : c + 1], torch.tensor([[j]]),
                                       torch.tensor([[True]]), b, F, L, Ls)
            if S is not None:
                want = [(exact >> (b * k)) & ((1 << b) - 1) for k in range(Ls - 1)] + [exact >> (b * (Ls - 1))]
                assert S[:, 0, 0].tolist() == want
    # small integer keys against the query 3/4: found exact (the constructions' case)
    Ks = digits([[rng.randrange(-1000, 1000) << F for _ in range(T)] for _ in range(kdim)], T)
    Qs = digits([[3 << (F - 2)] for _ in range(kdim)], 1)
    _, _, A2 = fc.float_scores(_signed_to_float(Ks, b, -F).T, Qs, b, F, L)
    e2 = fc._lsb_exponent(Ks, b, -F).reshape(-1, 1) + fc._lsb_exponent(Qs, b, -F).reshape(1, -1)
    assert bool(fc.exact_float_entries(A2, e2, kdim, L).all())


def test_the_hybrid_decode_takes_exact_float_scores(monkeypatch):
    """Thm 5.7 (a) at n = 8 (compact heads): the chain of the independent reference hybrid_cot,
    with (counted) chunks whose score digits came from exact float scores."""
    from constructions.istree_hybrid import istree_hybrid
    from proofs_check.checks.istree_hybrid import hybrid_cot
    from proofs_check.graphs import shuffle_edges

    used = []
    real = fc._exact_float_digits
    monkeypatch.setattr(fc, "_exact_float_digits", lambda *a: used.append(1) or real(*a))
    n = 8
    rng = random.Random(4)
    g = shuffle_edges(rng, random_tree(rng, n))
    want = hybrid_cot(g)
    res = chain_of_thought(FastEvaluator().session(istree_hybrid(n), g.tokens()), len(want) + 5)
    assert res.generated == want and used


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from([0, 8, 20]))
def test_coarse_candidates_leave_out_only_far_entries(seed, kdim, F):
    """Every causal entry coarse_candidates leaves out is far: its exact score (Python ints)
    is more than G = sqrt(d) ((F + 66) ln 2 + ln m) below the column's exact maximum; some
    scores are put just inside and just outside G of the maximum, where the float bound
    decides; the maximum itself is always a candidate."""
    from constructions.fast_limbs import _signed_to_float

    rng = random.Random(seed)
    b, L, T, n, d = 20, 6, 16, 3, 9
    G = math.sqrt(d) * ((F + fc._FAR_BITS) * math.log(2.0) + math.log(T))
    big = rng.choice([10, 30, 45])  # key magnitudes 2^big: the float keys round for big = 45
    Q = [[rng.choice([1, 2, 3]) << F for _ in range(n)] for _ in range(kdim)]
    K = [[rng.randrange(-(1 << big), 1 << big) for _ in range(T)] for _ in range(kdim)]
    for c in range(n):  # key 0 scores near G below key 1 in column c (first dimension only moved)
        if rng.random() < 0.7:
            gap = int(G * (1 << (2 * F)) * rng.choice([0.999, 1.001, 1.0, 1.2])) // max(1, Q[0][c])
            K[0][0] = K[0][1] - gap - rng.randrange(0, 3)
    digits = lambda M, w: torch.tensor([[[_signed_digits(M[i][j], b, L)[k] for j in range(w)] for i in range(kdim)]
                                        for k in range(L)], dtype=torch.int64)
    Kd, Qd = digits(K, T), digits(Q, n)
    Kf = _signed_to_float(Kd, b, -F).T
    Qf = _signed_to_float(Qd, b, -F)
    causal = torch.tensor([[rng.random() < 0.8 or j == 0 for _ in range(n)] for j in range(T)])
    Kmax = float(Kf.abs().amax())
    got = fc.coarse_candidates(Kf @ Qf, Kmax, Qf, causal, L, d, F, 1 << 200, T)
    if got is None:  # the bound too coarse here: the per-entry path decides (nothing to check)
        return
    assert not bool((got & ~causal).any())
    for c in range(n):
        exact = [sum(K[i][j] * Q[i][c] for i in range(kdim)) for j in range(T)]
        rows = [j for j in range(T) if bool(causal[j, c])]
        top = max(exact[j] for j in rows)
        for j in rows:
            if exact[j] == top:
                assert bool(got[j, c])
            if not bool(got[j, c]):
                assert Fraction(top - exact[j], 1 << (2 * F)) > Fraction(G)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from([0, 8, 20]), st.sampled_from([0.999, 1.0, 1.001, 1.5]))
def test_scores_in_range_proves_only_true_ranges(seed, kdim, F, where):
    """scores_in_range says "in range" only when every causal exact score (Python ints) has
    |s| <= M 2^-F, the limit M put just around the largest one; on Match-like keys (pos,
    -pos^2) it proves ranges that |K|^T |Q| cannot (the terms cancel)."""
    from constructions.fast_limbs import _signed_to_float

    rng = random.Random(seed)
    b, L, T, n = 20, 6, 12, 3
    match = kdim >= 2 and rng.random() < 0.5
    if match:
        K = [[j << 10 for j in range(T)], [-(j * j) << 10 for j in range(T)]] + \
            [[0] * T for _ in range(kdim - 2)]  # score (t^2 - (j - t)^2) 2^10: cancelling terms
        Q = [[2 * rng.randrange(T // 2, T) << F for _ in range(n)], [1 << F] * n] + [[0] * n for _ in range(kdim - 2)]
    else:
        K = [[rng.randrange(-(1 << 45), 1 << 45) for _ in range(T)] for _ in range(kdim)]
        Q = [[rng.randrange(-(1 << 30), 1 << 30) for _ in range(n)] for _ in range(kdim)]
    digits = lambda M, w: torch.tensor([[[_signed_digits(M[i][j], b, L)[k] for j in range(w)] for i in range(kdim)]
                                        for k in range(L)], dtype=torch.int64)
    Kf = _signed_to_float(digits(K, T), b, -F).T
    Qf = _signed_to_float(digits(Q, n), b, -F)
    causal = torch.tensor([[rng.random() < 0.8 or j == 0 for _ in range(n)] for j in range(T)])
    exact = [abs(Fraction(sum(K[i][j] * Q[i][c] for i in range(kdim)), 1 << (2 * F)))
             for j in range(T) for c in range(n) if bool(causal[j, c])]
    M = max(1, int(max(exact) * (1 << F) * Fraction(where)))  # the limit M 2^-F near the largest |s|
    delta = (Kf.abs() @ Qf.abs()) * fc._score_error_factor(kdim, L)
    ok = fc.scores_in_range(Kf @ Qf, delta, causal, F, M)
    if ok:
        assert max(exact) <= Fraction(M, 1 << F)
    if match and where == 1.5:
        A = torch.where(causal, Kf.abs() @ Qf.abs(), torch.zeros_like(delta))
        assert float(A.amax()) > M * 2.0**-F  # |K|^T |Q| cannot prove this range
        assert ok
