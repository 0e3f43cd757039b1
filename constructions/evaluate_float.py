"""Float modes of the fast evaluator: the same weights decoded to reals, no R_p rounding.

``FastEvaluator(mode="float64" | "float32" | "bfloat16")`` runs Def 3.1-3.6 / 5.5 in that torch
dtype: embedding of A.3 (number in dim 0, one-hot special, position in the last dim),
attention ``softmax(K^T Q / sqrt(d))`` over the causal prefix (d = the residual width, as in the
exact path), linear units ``h_t = A h_{t-1} + B x_t`` from ``h_0 = 0``, the gated FFN
``W3 (relu(W1 y + b1) * (W2 y + b2)) + b3``, the readout ``U x_l`` (the explicit unembedding, or
A.3's tied one) and argmax with ties to the lowest token id.  A view of what real hardware
would do; nothing here is exact.

Everything runs through one batched layer step (:func:`_layer_step`) over ``B`` sequences with
cached state: per attention head the keys and values of every position evaluated so far, per
linear unit its last state.  A full recompute (:class:`_FloatRun`, what ``forward`` uses) is
that step applied to the whole prompt from an empty state; :class:`FloatSession` (one sequence)
and :class:`FloatBatchSession` (many, ragged, each with its own stop time) feed it only the
tokens appended since the last call, so a chain of L tokens costs L layer steps, not L forward
passes.  Every position's values depend only on earlier positions, so the incremental run
computes the same definitions; floating-point sums of different shapes may round differently
in the last bit (tests/test_evaluate_float.py compares tokens exactly and logits to a few ulps).

Memory: a cache holds ``key_dim + d`` numbers of the dtype per head per position (8 bytes each
in float64), the linear units ``d`` numbers per sequence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .errors import EvaluatorError
from .evaluate_reference import ForwardResult
from .model import FeedForward, Model, TransformerLayer
from .vocab import Token

FLOAT_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


# ---- weights as tensors ---------------------------------------------------------------------


@dataclass
class _FFFN:
    W1: torch.Tensor
    b1: torch.Tensor
    W2: torch.Tensor
    b2: torch.Tensor
    W3: torch.Tensor
    b3: torch.Tensor


@dataclass
class _FLayer:
    heads: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (W_K, W_Q, W_V); [] for a linear unit
    A: torch.Tensor | None
    B: torch.Tensor | None
    ffn: _FFFN

    @property
    def is_attention(self) -> bool:
        return self.A is None


@dataclass
class FloatWeights:
    """A model's weights as tensors of one float dtype on one device (converted once)."""

    model: Model
    mode: str
    dtype: torch.dtype
    device: torch.device
    layers: list[_FLayer]
    U: torch.Tensor  # |vocab| x d readout

    @staticmethod
    def build(model: Model, mode: str, device: str | torch.device = "cpu") -> "FloatWeights":
        if mode not in FLOAT_DTYPES:
            raise EvaluatorError(f"unknown float mode {mode!r}; use one of {', '.join(FLOAT_DTYPES)}")
        dtype, dev = FLOAT_DTYPES[mode], torch.device(device)
        scale = 2.0 ** -model.precision.F

        def w(arr: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(arr, dtype=object).astype(np.float64) * scale).to(dev, dtype)

        def ffn(f: FeedForward) -> _FFFN:
            return _FFFN(w(f.W1), w(f.b1).reshape(-1, 1), w(f.W2), w(f.b2).reshape(-1, 1), w(f.W3), w(f.b3).reshape(-1, 1))

        layers = []
        for layer in model.layers:
            if isinstance(layer, TransformerLayer):
                layers.append(_FLayer([(w(h.W_K), w(h.W_Q), w(h.W_V)) for h in layer.heads], None, None, ffn(layer.ffn)))
            else:
                layers.append(_FLayer([], w(layer.A), w(layer.B), ffn(layer.ffn)))
        U = w(model.unembed) if model.unembed is not None else _tied_readout(model).to(dev, dtype)
        return FloatWeights(model, mode, dtype, dev, layers, U)


def _tied_readout(model: Model) -> torch.Tensor:
    """A.3's tied readout: row of a number token reads dim 0, row of a special its one-hot dim."""
    vocab = model.vocab
    U = torch.zeros((len(vocab), model.d), dtype=torch.float64)
    for tid, tok in enumerate(vocab.all_tokens()):
        if isinstance(tok, int):
            U[tid, 0] = float(tok)
        else:
            U[tid, 1 + vocab.special_rank(tok)] = 1.0
    return U


def float_embed(model: Model, tokens: Sequence[Token], start: int) -> torch.Tensor:
    """d x m float64 embedding (A.3) of tokens at positions start + 1, ..., start + m."""
    vocab, d = model.vocab, model.d
    X = torch.zeros((d, len(tokens)), dtype=torch.float64)
    for j, tok in enumerate(tokens):
        vocab.check(tok)
        if isinstance(tok, int):
            X[0, j] = float(tok)
        else:
            X[1 + vocab.special_rank(tok), j] = 1.0
        X[d - 1, j] = float(start + j + 1)
    return X


# ---- cached state and the batched layer step -------------------------------------------------


@dataclass
class _State:
    """B sequences: per attention layer and head the K / V cache ([B, rows, cap]), per linear
    unit the last state ([B, d]); ``done[b]`` = positions of sequence b evaluated so far."""

    W: FloatWeights
    size: int
    cap: int = 0
    done: list[int] = field(default_factory=list)
    kv: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    h: dict[int, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.done = [0] * self.size
        for li, layer in enumerate(self.W.layers):
            if not layer.is_attention:
                self.h[li] = torch.zeros((self.size, self.W.model.d), dtype=self.W.dtype, device=self.W.device)

    def reserve(self, need: int) -> None:
        """Grow every K / V cache to hold ``need`` positions (doubling, at most max_len)."""
        if need <= self.cap:
            return
        cap = min(max(need, 2 * self.cap, 16), max(need, self.W.model.max_len))
        for li, layer in enumerate(self.W.layers):
            for hi, (WK, _, WV) in enumerate(layer.heads):
                old = self.kv.get((li, hi))
                new = tuple(torch.zeros((self.size, rows, cap), dtype=self.W.dtype, device=self.W.device)
                            for rows in (WK.shape[0], WV.shape[0]))
                if old is not None:
                    new[0][:, :, : self.cap] = old[0]
                    new[1][:, :, : self.cap] = old[1]
                self.kv[(li, hi)] = new
        self.cap = cap


@dataclass(frozen=True)
class _Step:
    """Which sequences a layer step runs on: ``rows`` (indices into the state), their new-token
    counts ``m`` (padded to ``M`` columns), and their start offsets ``t0`` (= done)."""

    rows: torch.Tensor
    m: torch.Tensor
    t0: torch.Tensor
    M: int
    whole: bool = False  # rows are 0, 1, ..., size - 1 (every sequence of the state, in order)

    def valid(self) -> torch.Tensor:
        """[|rows|, M] mask of real (not padding) columns."""
        return torch.arange(self.M, device=self.m.device)[None, :] < self.m[:, None]


def _rows(cache: torch.Tensor, s: _Step, length: int) -> torch.Tensor:
    """The step's sequences' first ``length`` cached positions (a view when they are all of them)."""
    if s.whole:
        return cache[:, :, :length]
    return cache[s.rows, :, :length]


def _attention(st: _State, li: int, layer: _FLayer, X: torch.Tensor, s: _Step) -> torch.Tensor:
    """Def 3.3 with cached keys / values: X [A, d, M] -> sum over heads of V softmax(K^T Q / sqrt(d))."""
    d = st.W.model.d
    valid = s.valid()
    a_idx, j_idx = valid.nonzero(as_tuple=True)
    pos = s.t0[a_idx] + j_idx
    length = int((s.t0 + s.m).max())
    keys = torch.arange(length, device=X.device)[None, :, None]
    allowed = keys <= (s.t0[:, None, None] + torch.arange(s.M, device=X.device)[None, None, :])
    mixed = torch.zeros_like(X)
    for hi, (WK, WQ, WV) in enumerate(layer.heads):
        Kc, Vc = st.kv[(li, hi)]
        K, Q, V = WK @ X, WQ @ X, WV @ X
        Kc[s.rows[a_idx], :, pos] = K[a_idx, :, j_idx]
        Vc[s.rows[a_idx], :, pos] = V[a_idx, :, j_idx]
        Ks, Vs = _rows(Kc, s, length), _rows(Vc, s, length)
        scores = (Ks.transpose(1, 2) @ Q) / math.sqrt(d)
        P = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=1)
        mixed = mixed + Vs @ P
    return mixed


def _linear_unit(st: _State, li: int, layer: _FLayer, X: torch.Tensor, s: _Step) -> torch.Tensor:
    """Def 5.5 with carried state: h_t = A h_{t-1} + B x_t, column t of the output is h_t."""
    BX = layer.B @ X
    h = st.h[li][s.rows]
    valid = s.valid()
    cols = []
    for t in range(s.M):
        hn = (layer.A @ h.unsqueeze(-1)).squeeze(-1) + BX[:, :, t]
        h = torch.where(valid[:, t : t + 1], hn, h)
        cols.append(hn)
    st.h[li][s.rows] = h
    return torch.stack(cols, dim=2)


def _ffn(f: _FFFN, Y: torch.Tensor) -> torch.Tensor:
    return Y + f.W3 @ (torch.relu(f.W1 @ Y + f.b1) * (f.W2 @ Y + f.b2)) + f.b3


def _layer_step(st: _State, li: int, layer: _FLayer, X: torch.Tensor, s: _Step) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer on the new columns: (after the mixing sublayer, after the FFN)."""
    mix = _attention(st, li, layer, X, s) if layer.is_attention else _linear_unit(st, li, layer, X, s)
    Y = X + mix
    return Y, _ffn(layer.ffn, Y)


def _run_step(st: _State, X: torch.Tensor, s: _Step, stages: list | None) -> torch.Tensor:
    """All layers on X [A, d, M] (the new columns of the sequences ``s.rows``); updates the state."""
    st.reserve(int((s.t0 + s.m).max()))
    for li, layer in enumerate(st.W.layers):
        Y, X = _layer_step(st, li, layer, X, s)
        if stages is not None:
            sub = "attention" if layer.is_attention else "linear_unit"
            stages += [(f"layer {li + 1} after {sub}", Y[0]), (f"layer {li + 1} after ffn", X[0])]
    for r, m in zip(s.rows.tolist(), s.m.tolist()):
        st.done[r] += m
    return X


def _logits(W: FloatWeights, last: torch.Tensor) -> tuple[list[list[float]], list[Token]]:
    """Readout of last columns [A, d]: per sequence the logits and the argmax token (lowest id on ties)."""
    L = (W.U @ last.T).T
    best = torch.argmax(L.float() if W.dtype == torch.bfloat16 else L, dim=1).tolist()
    return [[float(v) for v in row] for row in L], [W.model.vocab.token_of(b) for b in best]


# ---- full recompute (forward) ----------------------------------------------------------------


class _FloatRun:
    """Def 3.1-3.6 / 5.5 in a torch float dtype on one whole sequence (``forward``)."""

    def __init__(self, model: Model, mode: str, device: torch.device):
        self.model = model
        self.W = FloatWeights.build(model, mode, device)
        self.dtype = self.W.dtype
        self.device = self.W.device

    def forward(self, tokens: Sequence[Token], trace: bool) -> ForwardResult:
        tokens = list(tokens)
        self.model.check_length(len(tokens))
        return self.run(float_embed(self.model, tokens, 0).to(self.device, self.dtype), trace, "embedding")

    def forward_batch(self, seqs: Sequence[Sequence[Token]], trace: bool) -> list[ForwardResult]:
        return [self.forward(s, trace) for s in seqs]

    def run(self, X: torch.Tensor, trace: bool, first: str) -> ForwardResult:
        X = X.to(self.device, self.dtype)
        l = X.shape[1]
        st = _State(self.W, 1)
        one = torch.tensor([l], device=self.device)
        step = _Step(torch.tensor([0], device=self.device), one, torch.zeros_like(one), l, True)
        stages = [(first, X)] if trace else None
        out = _run_step(st, X.unsqueeze(0), step, stages)[0]
        logits, best = _logits(self.W, out[:, -1].unsqueeze(0))
        return ForwardResult(out, logits[0], best[0], [], stages or [])


# ---- incremental sessions --------------------------------------------------------------------


class FloatBatchSession:
    """Many sequences decoded together (the BatchSession protocol of constructions.decode):
    ragged prompts, each sequence advanced only when listed in ``next_tokens(active)``."""

    def __init__(self, weights: FloatWeights, prompts: Sequence[Sequence[Token]]):
        self.W = weights
        self.model = weights.model
        self._tokens: list[list[Token]] = [[self.model.vocab.check(t) for t in p] for p in prompts]
        self.size = len(self._tokens)
        self._state = _State(weights, self.size)
        self._last = torch.zeros((self.size, self.model.d), dtype=weights.dtype, device=weights.device)
        self._logits: list[list[float]] = [[] for _ in range(self.size)]

    def append(self, i: int, tokens: Sequence[Token]) -> None:
        self._tokens[i].extend(self.model.vocab.check(t) for t in tokens)

    def tokens(self, i: int) -> list[Token]:
        return self._tokens[i]

    def logits(self, i: int) -> list[float]:
        """The logits behind sequence i's last next token."""
        return self._logits[i]

    def next_tokens(self, active: Sequence[int]) -> list[Token]:
        active = list(active)
        if not active:
            return []
        for i in active:
            self.model.check_length(len(self._tokens[i]))  # TokenError, as forward raises
        pending = [i for i in active if len(self._tokens[i]) > self._state.done[i]]
        if pending:
            self._advance(pending)
        rows = torch.tensor(active, device=self.W.device)
        logits, best = _logits(self.W, self._last[rows])
        for i, lg in zip(active, logits):
            self._logits[i] = lg
        return best

    def _advance(self, pending: list[int]) -> None:
        done = self._state.done
        news = [self._tokens[i][done[i]:] for i in pending]
        M = max(len(t) for t in news)
        X = torch.zeros((len(pending), self.model.d, M), dtype=torch.float64)
        for a, (i, toks) in enumerate(zip(pending, news)):
            X[a, :, : len(toks)] = float_embed(self.model, toks, done[i])
        dev = self.W.device
        m = torch.tensor([len(t) for t in news], device=dev)
        rows = torch.tensor(pending, device=dev)
        step = _Step(rows, m, torch.tensor([done[i] for i in pending], device=dev), M, pending == list(range(self.size)))
        out = _run_step(self._state, X.to(dev, self.W.dtype), step, None)
        self._last[rows] = out[torch.arange(len(pending), device=dev), :, m - 1]


class FloatSession:
    """One sequence (the Session protocol: ``tokens``, ``append``, ``next_token``)."""

    def __init__(self, weights: FloatWeights, prompt: Sequence[Token]):
        self._batch = FloatBatchSession(weights, [prompt])
        self.tokens: list[Token] = self._batch.tokens(0)

    def append(self, tokens: Sequence[Token]) -> None:
        self._batch.append(0, tokens)

    def next_token(self) -> Token:
        return self._batch.next_tokens([0])[0]

    @property
    def logits(self) -> list[float]:
        return self._batch.logits(0)


def float_batch_session(evaluator, model: Model, prompts: Sequence[Sequence[Token]]) -> FloatBatchSession:
    """A batch session for a FastEvaluator in a float mode."""
    return FloatBatchSession(FloatWeights.build(model, evaluator.mode, evaluator.device), prompts)


def session_next_token(owner) -> Token:
    """``FastSession.next_token`` in a float mode: a :class:`FloatSession` kept on the owner
    follows the owner's token list (restarted if that list is not an extension of what it saw)."""
    fs: FloatSession | None = owner.__dict__.get("_float_session")
    if fs is None or len(owner.tokens) < len(fs.tokens):  # sessions only grow; anything else restarts
        fs = FloatSession(FloatWeights.build(owner.model, owner.evaluator.mode, owner.evaluator.device), [])
        owner._float_session = fs
    fs.append(owner.tokens[len(fs.tokens):])
    return fs.next_token()
