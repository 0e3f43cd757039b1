"""Float modes (constructions.evaluate_float): the incremental and batched sessions against the
full recompute (``FastEvaluator(mode=...).forward``, one whole forward pass per prefix).

Tokens must be equal; logits agree to a few ulps of the dtype (sums over cached prefixes of
other shapes may round differently in the last bit; the module docstring says so).

``PROOFS_CHECK_DEVICE=cuda`` (benchmarks/device_check.py) runs the sessions on the GPU against
the CPU full recompute; without CUDA that setting skips this file, and says so.
"""
from __future__ import annotations

import os
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from constructions.decode import batch_session, chain_of_thought
from constructions.errors import TokenError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_float import FloatBatchSession, FloatSession, FloatWeights
from tests.random_models import ModelSpec, random_model, random_tokens

RTOL = {"float64": 1e-12, "float32": 1e-5}
DEVICE = os.environ.get("PROOFS_CHECK_DEVICE", "cpu")
if DEVICE != "cpu" and not torch.cuda.is_available():
    pytest.skip(f"PROOFS_CHECK_DEVICE={DEVICE} but torch.cuda.is_available() is False", allow_module_level=True)

specs = st.builds(
    ModelSpec,
    arch=st.sampled_from(["transformer", "linear_rnn", "hybrid"]),
    p=st.just(31),
    n_layers=st.integers(1, 2),
    n_heads=st.integers(1, 2),
    n_specials=st.just(4),
    max_len=st.just(12),
    seed=st.integers(0, 10_000),
)


def _close(a: list[float], b: list[float], mode: str) -> bool:
    return torch.allclose(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64),
                          rtol=RTOL[mode], atol=RTOL[mode])


@given(spec=specs, mode=st.sampled_from(["float64", "float32"]), plen=st.integers(1, 5), steps=st.integers(1, 6))
def test_session_equals_full_recompute(spec, mode, plen, steps):
    """Each next token of a FloatSession (cached K/V, carried state) is the argmax of a full
    forward over the prefix; its logits equal the full forward's to the dtype's precision."""
    model = random_model(spec)
    ev = FastEvaluator(mode=mode)
    session = FloatSession(FloatWeights.build(model, mode, DEVICE), random_tokens(model, plen, spec.seed))
    for _ in range(min(steps, model.max_len - plen + 1)):
        full = ev.forward(model, session.tokens)
        tok = session.next_token()
        assert tok == full.next_token
        assert _close(session.logits, full.logits, mode)
        session.append([tok])


@given(spec=specs, mode=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 1000))
def test_batch_session_equals_single_sessions(spec, mode, seed):
    """Ragged prompts, ragged appends (several tokens at once, as retrieval appends) and a
    changing active set: the batch gives each sequence the tokens its own session gives."""
    model = random_model(spec)
    rng = random.Random(seed)
    W = FloatWeights.build(model, mode, DEVICE)
    prompts = [random_tokens(model, rng.randint(1, 4), seed + k) for k in range(3)]
    bs = FloatBatchSession(W, prompts)
    singles = [FloatSession(W, p) for p in prompts]
    while True:
        active = [i for i in range(3) if len(bs.tokens(i)) < model.max_len and rng.random() < 0.8]
        if not active:
            break
        got = bs.next_tokens(active)
        for i, tok in zip(active, got):
            assert tok == singles[i].next_token()
            assert _close(bs.logits(i), singles[i].logits, mode)
            extra = [tok] + random_tokens(model, rng.randint(0, 2), rng.randrange(10**6))
            extra = extra[: model.max_len - len(bs.tokens(i))]
            bs.append(i, extra)
            singles[i].append(extra)
        assert all(bs.tokens(i) == singles[i].tokens for i in range(3))


@pytest.mark.parametrize("mode", ["float64", "float32", "bfloat16"])
def test_fast_session_float_mode_decodes_dfs_tour_as_recompute(mode):
    """Thm 4.7 at n = 6: FastEvaluator(mode).session (now incremental) generates the same chain
    as the old way, a full forward per prefix."""
    from constructions.dfs_transformer import cot_bound, dfs_transformer
    from proofs_check.graphs import random_tree

    model = dfs_transformer(6)
    g = random_tree(random.Random(3), 6)
    ev = FastEvaluator(mode=mode)  # CPU: the recompute is the reference

    class Recompute:
        def __init__(self, prompt):
            self.tokens = list(prompt)

        def append(self, toks):
            self.tokens.extend(toks)

        def next_token(self):
            return ev.next_token(model, self.tokens)

    fast = chain_of_thought(FastEvaluator(mode=mode, device=DEVICE).session(model, g.tokens()), cot_bound(6))
    slow = chain_of_thought(Recompute(g.tokens()), cot_bound(6))
    assert fast.generated == slow.generated


def test_float_batch_session_through_the_helper():
    model = random_model(ModelSpec("hybrid", 31, n_specials=4, max_len=10, seed=5))
    ev = FastEvaluator(mode="float64", device=DEVICE)
    bs = batch_session(ev, model, [random_tokens(model, 2, 1), random_tokens(model, 3, 2)])
    assert isinstance(bs, FloatBatchSession) and bs.size == 2
    assert bs.next_tokens([1, 0]) == [ev.next_token(model, bs.tokens(1)), ev.next_token(model, bs.tokens(0))]


def test_float_session_refuses_too_long_and_empty_sequences():
    model = random_model(ModelSpec("transformer", 31, n_specials=4, max_len=4, seed=1))
    W = FloatWeights.build(model, "float64", DEVICE)
    with pytest.raises(TokenError, match="empty"):
        FloatSession(W, []).next_token()
    s = FloatSession(W, random_tokens(model, 4, 0))
    s.next_token()
    s.append(random_tokens(model, 1, 1))
    with pytest.raises(TokenError, match="longer than"):
        s.next_token()
    with pytest.raises(TokenError, match="empty"):
        FastEvaluator(mode="float32").session(model, []).next_token()
