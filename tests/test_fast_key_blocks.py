"""Key blocks (constructions.fast_key_blocks, issue 10): whole blocks of a long cache proven far
from their boxes.  The far test against exact integer scores, the session's incremental boxes
against boxes from scratch, and whole chains with the blocks forced on (tiny blocks from the
first key) against Algorithm 1, the circuit evaluator and the reference evaluator."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import constructions.fast_compact as fc
import constructions.fast_key_blocks as fkb
from constructions.decode import chain_of_thought
from constructions.dfs_transformer import cot_bound, dfs_transformer
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.fast_limbs import _signed_to_float
from proofs_check.algorithms import cot_algorithm1
from proofs_check.graphs import random_tree

torch.set_num_threads(1)

_B, _L = 20, 6  # limb bits and limbs of the digit tensors below


def _digits(M: list[list[int]], w: int) -> torch.Tensor:
    """Signed digits (L, rows, w) of the integer matrix M (one sign per entry)."""
    def one(v: int, k: int) -> int:
        return (1 if v >= 0 else -1) * ((abs(v) >> (_B * k)) & ((1 << _B) - 1))
    return torch.tensor([[[one(M[i][j], k) for j in range(w)] for i in range(len(M))] for k in range(_L)],
                        dtype=torch.int64)


def _match_keys(rng: random.Random, T: int, kdim: int, big: int) -> list[list[int]]:
    """Keys like a Match head's (pos, -pos^2, ...) scaled, with noise in the other dimensions."""
    s = rng.choice([1, 3, 1 << big])
    rows = [[s * j for j in range(T)], [-s * j * j for j in range(T)]]
    rows += [[rng.randrange(-(1 << big), 1 << big) for _ in range(T)] for _ in range(kdim - 2)]
    return rows[:kdim] if kdim >= 2 else [[rng.randrange(-(1 << big), 1 << big) for _ in range(T)]]


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 4), st.sampled_from([0, 8, 20]), st.sampled_from([2, 4, 8]))
def test_kept_keys_leave_out_only_far_entries(seed, kdim, F, block):
    """Every causal entry kept_keys leaves out is far: its exact score (Python ints) is more than
    G = sqrt(d) ((F + 66) ln 2 + ln m) below the column's exact maximum; the maximum is kept, and
    nothing outside the causal mask is."""
    rng = random.Random(seed)
    T, n, d, m_ref = rng.randrange(block, 60), 4, 9, 64
    G = math.sqrt(d) * ((F + fc._FAR_BITS) * math.log(2.0) + math.log(m_ref))
    big = rng.choice([6, 20, 45])  # 45: the float keys round
    K = _match_keys(rng, T, kdim, big) if rng.random() < 0.5 else \
        [[rng.randrange(-(1 << big), 1 << big) for _ in range(T)] for _ in range(kdim)]
    Q = [[rng.choice([-1, 1]) * rng.randrange(0, 1 << rng.choice([2, 12, 30])) << F for _ in range(n)]
         for _ in range(kdim)]
    if kdim >= 2 and rng.random() < 0.5:  # a Match query: 2 target pos against -pos^2 (scaled)
        for c in range(n):
            Q[0][c], Q[1][c] = 2 * rng.randrange(0, T) << (F + 4), 1 << (F + 4)
    qpos = torch.tensor([rng.randrange(0, T) for _ in range(n)])
    if T >= 2 * block and rng.random() < 0.7:  # column 0: block 0 scores about G below the top
        top = (T // block) * block - 1  # the top key ends the last whole block
        for i in range(kdim):
            Q[i][0] = (1 << F) if i == 0 else 0
        K[0][top] = max(K[0]) + 1
        gap = math.ceil(G * rng.choice([0.9, 0.999, 1.001, 1.1]) * (1 << F))
        for j in range(block):
            K[0][j] = K[0][top] - gap
        qpos[0] = T - 1
    Kd, Qd = _digits(K, T), _digits(Q, n)
    Kf = _signed_to_float(Kd, _B, -F).T
    Qf = _signed_to_float(Qd, _B, -F)
    got = fkb.kept_keys(Kf, fkb.block_boxes(Kf, block), Qf, qpos, _L, d, F, 1 << 300, fc._far_exponent(F, m_ref))
    if got is None:  # every block kept somewhere: the per-entry path decides (nothing left out)
        return
    rows, mask = got
    assert rows.tolist() == sorted(set(rows.tolist()))
    for c in range(n):
        exact = [sum(K[i][j] * Q[i][c] for i in range(kdim)) for j in range(T)]
        causal = range(int(qpos[c]) + 1)
        kept = {int(r) for r, k in zip(rows, mask[:, c]) if bool(k)}
        assert kept <= set(causal)
        top = max(exact[j] for j in causal)
        for j in causal:
            if exact[j] == top:
                assert j in kept
            if j not in kept:
                assert Fraction(top - exact[j], 1 << (2 * F)) > Fraction(G)


def test_match_keys_are_pruned_by_blocks():
    """A Match head's keys (pos, -pos^2) at hard-attention scale: most blocks are far, the
    target's block is kept (the test above could otherwise pass by keeping everything)."""
    T, F, block = 4096, 20, 64
    K = [[j for j in range(T)], [-j * j for j in range(T)]]
    targets = [5, 1000, 4000]
    Q = [[(2 * t) << (F + 12) for t in targets], [1 << (F + 12) for _ in targets]]
    Kf = _signed_to_float(_digits(K, T), _B, -F).T
    Qf = _signed_to_float(_digits(Q, len(targets)), _B, -F)
    qpos = torch.tensor([T - 1] * len(targets))
    rows, mask = fkb.kept_keys(Kf, fkb.block_boxes(Kf, block), Qf, qpos, _L, 16, F, 1 << 300, fc._far_exponent(F, T))
    for c, t in enumerate(targets):
        kept = rows[mask[:, c]]
        assert bool((kept == t).any()) and kept.numel() < T // 4  # about 2 sqrt(2 block t) kept


def test_box_cache_matches_boxes_from_scratch():
    rng = random.Random(0)
    cache = fkb.BoxCache(block=4)
    Kf = torch.tensor([[rng.uniform(-5, 5) for _ in range(3)] for _ in range(40)], dtype=torch.float64)
    rows = Kf.tolist()
    for T in (3, 4, 9, 17, 17, 40):
        got = cache.boxes(Kf[:T])
        blocks = [rows[4 * i : 4 * i + 4] for i in range(T // 4)]  # the whole blocks, plain Python
        assert got.lo.tolist() == [[min(col) for col in zip(*bl)] for bl in blocks]
        assert got.hi.tolist() == [[max(col) for col in zip(*bl)] for bl in blocks]
        assert got.block == 4


def _blocks_everywhere(monkeypatch) -> list[int]:
    """Blocks of 2 keys from the first key on; the number of calls that left blocks out."""
    monkeypatch.setattr(fkb, "MIN_KEYS", 0)
    monkeypatch.setattr(fkb, "BLOCK", 2)
    pruned: list[int] = []
    orig = fc.kept_keys

    def spy(*args):
        out = orig(*args)
        pruned.append(out is not None)
        return out

    monkeypatch.setattr(fc, "kept_keys", spy)
    return pruned


def test_dfs_chain_with_key_blocks_equals_reference(monkeypatch):
    """Thm 4.7's DFS Transformer at p = 101 with the key blocks forced on: Algorithm 1's chain,
    and the first steps' logits equal the reference evaluator's."""
    pruned = _blocks_everywhere(monkeypatch)
    n = 6
    model, g = dfs_transformer(n, p=101), random_tree(random.Random(5), n)
    res = chain_of_thought(FastEvaluator().session(model, g.tokens()), cot_bound(n))
    assert res.generated == cot_algorithm1(g)
    assert any(pruned)
    ref, fast = ReferenceEvaluator(), FastEvaluator()
    toks = list(g.tokens())
    for tok in res.generated[:4]:
        assert fast.forward(model, toks).logits == ref.forward(model, toks).logits
        toks.append(tok)


def test_circuit_chain_with_key_blocks_equals_circuit_evaluator(monkeypatch):
    """Thm 4.8's Transformer (the parity automaton, n = 4) with the key blocks forced on, drafted
    and step by step: every gate value and RNN output equal to the circuit evaluator's."""
    from proofs_check.automata import named_circuit
    from constructions.circuit_transformer import circuit_transformer
    from proofs_check.circuit_runners import simulation_record

    pruned = _blocks_everywhere(monkeypatch)
    c, n = named_circuit("parity"), 4
    model = circuit_transformer(c, n, n)
    rnn_prompt = [c.alphabet[k % len(c.alphabet)] for k in (1, 0, 1, 1)]
    for drafted in (True, False):
        assert simulation_record(c, model, rnn_prompt, n, FastEvaluator(), drafted=drafted)["equal"]
    assert any(pruned)
