"""The fast evaluator: the reference evaluator's exact semantics, vectorized in torch, batched.

Same bits as :mod:`constructions.evaluate_reference` (read its docstring and
notes/architecture.md for the semantics), for every p, both matmul readings, both tie rules and
both overflow modes; overflows raise the same :class:`PrecisionOverflow` at the same
:class:`Location` (the first one in the reference's evaluation order).

This module is the public facade (:class:`FastEvaluator`, :class:`FastSession`,
:class:`FastBatchSession`, ``MODES``); the exact path is split by stage, each module checkable
against the reference's matching function:

* :mod:`constructions.fast_limbs`: multi-limb int64 digit tensors, carries, A.2 rounding, the
  one-word path (p <= 61), conversions;
* :mod:`constructions.fast_products`: limb-split float64 GEMMs (round_once) and the
  round-each-product reading;
* :mod:`constructions.fast_softmax`: float-certified scores and softmax, fixed-point hand-off
  (:mod:`constructions.softmax_fixed`), arb fallback;
* :mod:`constructions.fast_engine`: prepared weights, overflow bookkeeping (``_Checker``),
  ``finish`` (round, range check, clip), affine maps, residual adds, ReGLU;
* :mod:`constructions.fast_embed`, :mod:`constructions.fast_attention` (heads with their KV
  cache), :mod:`constructions.fast_linear` (linear units with carried state),
  :mod:`constructions.fast_layers` (the layer stack, read-out);
* :mod:`constructions.fast_batch`: incremental decoding of one or many sequences.

Float modes
-----------
``mode="float64" | "float32" | "bfloat16"`` decodes the same weights to reals and runs the same
definitions in that torch dtype with no R_p rounding (softmax with 1/sqrt(d), argmax ties to the
lowest id): a view of what real hardware would do.  The residual is then a float tensor.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .errors import EvaluatorError, TokenError
from .evaluate_reference import ForwardResult
from .fast_batch import FastBatchSession, _SeqState, advance, read_each, read_next, resolve_device
from .fast_embed import embed_batch, input_matrix
from .fast_engine import _Checker, _Engine, _Prepared, _prepare  # noqa: F401 - re-exported
from .fast_layers import _argmax, _readout, _run_layers
from .fast_limbs import Limbs, _digits_to_ints, _ints_to_digits  # noqa: F401 - re-exported
from .fast_products import _round_products_word  # noqa: F401 - re-exported
from .fast_softmax import _FLOAT_SOFTMAX_ONLY_F, _certify, _float_softmax, softmax_column  # noqa: F401
from .model import Model, TransformerLayer
from .numerics import Arithmetic
from .evaluate_float import _FloatRun, float_batch_session, session_next_token
from .vocab import Token

MODES = ("exact", "float64", "float32", "bfloat16")


class FastEvaluator:
    """Exact (same bits as ReferenceEvaluator) batched evaluator in torch; see module docstring.

    ``forward(model, tokens, trace=False)``, ``next_token``, ``session(model, prompt)``,
    ``forward_batch(model, seqs)``, ``next_tokens(model, seqs)``, ``forward_residual(model, X)``,
    ``batch_session(model, prompts)``.  ``device``: ``"cpu"`` or an available ``"cuda[:k]"``.
    """

    name = "fast"

    def __init__(self, arith: Arithmetic = Arithmetic(), device: str | torch.device = "cpu", mode: str = "exact"):
        if mode not in MODES:
            raise EvaluatorError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        self.arith = arith
        self.device = resolve_device(device)
        self.mode = mode

    # ---- public API ----------------------------------------------------------------------------
    def forward(self, model: Model, tokens: Sequence[Token], trace: bool = False) -> ForwardResult:
        return self.forward_batch(model, [tokens], trace=trace)[0]

    def next_token(self, model: Model, tokens: Sequence[Token]) -> Token:
        return self._batch(model, [list(tokens)], trace=False, residual=False)[0].next_token

    def forward_batch(self, model: Model, batch: Sequence[Sequence[Token]], trace: bool = False) -> list[ForwardResult]:
        """Many sequences at once (ragged: right-padded, padding masked out)."""
        return self._batch(model, [list(t) for t in batch], trace=trace, residual=True)

    def next_tokens(self, model: Model, batch: Sequence[Sequence[Token]]) -> list[Token]:
        return [r.next_token for r in self._batch(model, [list(t) for t in batch], trace=False, residual=False)]

    def session(self, model: Model, prompt: Sequence[Token]) -> "FastSession":
        return FastSession(self, model, prompt)

    def batch_session(self, model: Model, prompts: Sequence[Sequence[Token]]) -> FastBatchSession:
        """Incremental decoding of many sequences at once (ragged prompts); see fast_batch
        (float modes: evaluate_float.FloatBatchSession)."""
        if self.mode != "exact":
            return float_batch_session(self, model, prompts)
        return FastBatchSession(self, model, prompts)

    def forward_residual(self, model: Model, X: np.ndarray, trace: bool = False, readout: bool = True) -> ForwardResult:
        """Layers on a given d x l input matrix (as ReferenceEvaluator.forward_residual);
        ``readout=False`` skips the logits (next_token None, logits [])."""
        if X.shape[0] != model.d or X.shape[1] < 1:
            raise TokenError(f"input matrix has shape {X.shape}, expected ({model.d}, l >= 1)")
        if X.shape[1] > model.max_len:
            raise TokenError(f"input of length {X.shape[1]} exceeds the model's max_len {model.max_len}")
        if self.mode != "exact":
            Xf = torch.from_numpy(np.asarray(X, dtype=object).astype(np.float64) * 2.0 ** -model.precision.F)
            res = _FloatRun(model, self.mode, self.device).run(Xf.to(self.device), trace, "input")
            return res if readout else ForwardResult(res.residual, [], None, [], res.trace)
        l = X.shape[1]
        prep = _prepare(model, self.arith, l, self.device)
        chk = _Checker(1, prep.prec, self.arith)
        eng = _Engine(prep, self.arith, chk)
        Xd = input_matrix(eng, np.asarray(X, dtype=object))
        return self._finish_batch(eng, chk, Xd, 1, l, [l], trace, True, [("input", Xd)] if trace else None, readout)[0]

    # ---- internals -----------------------------------------------------------------------------
    def _batch(self, model: Model, seqs: list[list[Token]], trace: bool, residual: bool) -> list[ForwardResult]:
        if not seqs:
            return []
        if self.mode != "exact":
            return _FloatRun(model, self.mode, self.device).forward_batch(seqs, trace)
        lmax = max(1, max(len(s) for s in seqs))
        prep = _prepare(model, self.arith, lmax, self.device)
        chk = _Checker(len(seqs), prep.prec, self.arith)
        eng = _Engine(prep, self.arith, chk)
        X, lens = embed_batch(eng, seqs, [0] * len(seqs), lmax)
        stages = [("embedding", X)] if trace else None
        return self._finish_batch(eng, chk, X, len(seqs), lmax, lens, trace, residual, stages)

    def _finish_batch(self, eng, chk, X, n_seq, lmax, lens, trace, residual, stages, readout=True):
        X = _run_layers(eng, X, n_seq, lmax, lens, [0] * n_seq, stages, None)
        prep = eng.P
        if not readout:
            chk.raise_first()
            full = _digits_to_ints(X, eng.b)
            traced = [(name, _digits_to_ints(T, eng.b)) for name, T in stages] if stages else []
            return [ForwardResult(full, [], None, list(chk.saturations[0]), traced)]
        idx = torch.tensor([s * lmax + lens[s] - 1 for s in range(n_seq)], device=eng.dev)
        logits = _readout(eng, X[:, :, idx], list(lens))
        chk.raise_first()
        results = []
        vocab = prep.model.vocab
        full = _digits_to_ints(X, eng.b) if residual else None
        traced = [(name, _digits_to_ints(T, eng.b)) for name, T in stages] if stages else []
        for s in range(n_seq):
            cols = slice(s * lmax, s * lmax + lens[s])
            lg = [int(v) for v in logits[:, s]]
            res = full[:, cols].copy() if residual else None
            tr = [(name, T[:, cols].copy()) for name, T in traced]
            results.append(ForwardResult(res, lg, vocab.token_of(_argmax(lg)), list(chk.saturations[s]), tr))
        return results


class FastSession:
    """Incremental decoding: cached keys/values per head, carried state per linear unit.

    Bit-equal to recomputing the prefix (ReferenceSession): every position's computation only
    depends on earlier positions.  After an error the session falls back to full recomputation,
    so it raises exactly what the reference raises for the whole sequence.  The exact step is
    :func:`fast_batch.advance` / :func:`fast_batch.read_next` on a batch of one."""

    def __init__(self, evaluator: FastEvaluator, model: Model, prompt: Sequence[Token]):
        self.evaluator = evaluator
        self.model = model
        self.tokens: list[Token] = [model.vocab.check(t) for t in prompt]
        self._seq = _SeqState(self.tokens)
        self._prep: _Prepared | None = None

    def cache_bytes(self) -> int:
        """Bytes of the KV caches and carried states (int64 digits; no Python ints per entry)."""
        return self._seq.cache_bytes()

    @property
    def _broken(self) -> bool:
        return self._seq.broken

    def append(self, tokens: Sequence[Token]) -> None:
        self.tokens.extend(self.model.vocab.check(t) for t in tokens)

    def append_replayed(self, tokens: Sequence[Token]) -> None:
        """Append tokens this model generated for this prompt in an earlier run (a checkpoint,
        ``constructions.decode.Replay``), up to the next :meth:`next_token`: the exact pass over
        them computes every column's keys, values and carried states but the last layer's
        queries, residual and FFN only at the last column, the one read (fast_layers.
        _final_column_layer).  The next token is the one ``append`` gives."""
        self.append(tokens)
        self._seq.replayed = len(self.tokens)

    def predictions(self, tokens: Sequence[Token]) -> list[Token] | None:
        """Append ``tokens`` and return the model's next token after each of them (the token
        :meth:`next_token` would give had the sequence ended there), from one exact pass over
        the new columns: what verifying a drafted chain needs (constructions.decode.
        drafted_chain_of_thought).  Bit-equal to appending them one at a time and asking
        :meth:`next_token` after each (every column's computation depends only on earlier
        positions).  None, with the tokens appended, where that pass cannot say (a float mode,
        the sequence beyond max_len, or an error at any new column, which may lie past a token
        the model would not have chosen): the caller then decodes step by step."""
        ev, model = self.evaluator, self.model
        t0 = len(self.tokens)
        usable = ev.mode == "exact" and not self._broken and tokens and 0 < t0 and t0 + len(tokens) <= model.max_len
        if usable and self._prep is None:
            self._prep = _prepare(model, ev.arith, model.max_len, ev.device)
        if usable and self._seq.done < t0:  # earlier tokens not yet run: their own pass first
            advance(self._prep, ev.arith, [self._seq])
        self.append(tokens)
        if not usable or self._broken:
            return None
        self._seq.keep_columns = True
        try:
            advance(self._prep, ev.arith, [self._seq])
        finally:
            self._seq.keep_columns = False
        if self._seq.broken:
            return None
        out = read_each(self._prep, ev.arith, self._seq, t0)
        self._seq.columns = None
        return out

    def next_token(self) -> Token:
        ev, model = self.evaluator, self.model
        n = len(self.tokens)
        if ev.mode != "exact":
            return session_next_token(self)
        if self._broken or n == 0 or n > model.max_len:
            return ev.next_token(model, self.tokens)
        if self._prep is None:
            self._prep = _prepare(model, ev.arith, model.max_len, ev.device)
        if self._seq.done < n:
            advance(self._prep, ev.arith, [self._seq])
            if self._seq.broken:
                return ev.next_token(model, self.tokens)
        token, err = read_next(self._prep, ev.arith, [self._seq])[0]
        if err is not None:
            raise err
        return token
