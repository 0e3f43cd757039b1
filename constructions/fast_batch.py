"""Incremental exact decoding of one or many sequences: :class:`FastBatchSession` (issue 10).

Each sequence keeps its own cache (:mod:`fast_attention`: per head K and V as int64 digits;
:mod:`fast_linear`: the carried h of each linear unit) and the count of tokens already run.
:func:`advance` runs one exact pass over the *new* tokens of many sequences at once (ragged:
right-padded, each with its own position offset), :func:`read_next` the read-out of their last
columns in one batched operator.  Every position's computation depends only on earlier ones
and each sequence's columns only on its own, so each sequence gets bit-exactly what a
:class:`evaluate_fast.FastSession` on it alone (and the ReferenceEvaluator on its whole prefix)
gives.

Errors: a sequence whose pass records an error (overflow in raise mode, bad token) is marked
*broken* and from then on recomputed from scratch by ``FastEvaluator.next_token`` (which raises
exactly what the reference raises for it).  :meth:`FastBatchSession.next_tokens` computes every
active sequence (so the others advance), then raises the error of the first failing sequence in
the order of ``active``, the exception the sequence alone would raise, with ``.sequence = i`` and
a note naming i; the other sequences' progress is kept, so the caller can drop i and go on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import torch

from .errors import EvaluatorError, ProofsCheckError
from .fast_embed import embed_batch
from .fast_engine import _Checker, _Engine, _Prepared, _prepare
from .fast_layers import _argmax, _readout, _run_layers
from .model import Model
from .numerics import Arithmetic
from .vocab import Token

if TYPE_CHECKING:
    from .evaluate_fast import FastEvaluator

_MAX_BATCH = 512  # sequences per exact pass (bounds the padded activations)


def resolve_device(device) -> torch.device:
    """The engine's torch device: ``"cpu"`` or an available CUDA device, else EvaluatorError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise EvaluatorError(f"unknown device {device!r}: use 'cpu' or 'cuda' ({err})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EvaluatorError("device 'cuda' asked for, but torch sees no CUDA device here: use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EvaluatorError(f"no CUDA device {dev.index} (torch sees {torch.cuda.device_count()}): use 'cuda:0'")
    elif dev.type != "cpu":
        raise EvaluatorError(f"device {str(dev)!r} is not supported by the exact fast evaluator: use 'cpu' or 'cuda'")
    return dev


@dataclass
class _SeqState:
    """One sequence of a session: its tokens, how many were run, its caches, its last column."""

    tokens: list[Token]
    done: int = 0
    caches: dict = field(default_factory=dict)
    last: torch.Tensor | None = None  # (L, d, 1) signed digits of the last residual column
    broken: bool = False
    replayed: int = 0  # tokens[:replayed] were appended as replayed (FastSession.append_replayed)
    keep_columns: bool = False  # the next pass keeps every new column (FastSession.predictions)
    columns: torch.Tensor | None = None  # (L, d, new) signed digits of the last pass's columns

    def cache_bytes(self) -> int:
        """Bytes held by this sequence's caches (int64 digit tensors: keys, values, states)."""
        total = 0
        for entry in self.caches.values():
            if isinstance(entry, list):  # an attention layer's per-head KVCache
                total += sum(kv.nbytes() for kv in entry if kv is not None)
            else:  # a linear unit's carried h
                total += entry.numel() * entry.element_size()
        return total


def advance(prep: _Prepared, arith: Arithmetic, seqs: list[_SeqState]) -> None:
    """One exact pass over every given sequence's new tokens (each has some); a sequence whose
    pass records an error, or all of them if the pass raises, is marked broken."""
    news = [st.tokens[st.done :] for st in seqs]
    t0s = [st.done for st in seqs]
    chk = _Checker(len(seqs), prep.prec, arith, t0s)
    eng = _Engine(prep, arith, chk)
    eng.small_ints = eng.dev.type == "cpu"
    m = max(len(new) for new in news)
    # a lone sequence whose new tokens are all replayed: only the last column is read
    final_only = len(seqs) == 1 and m > 1 and seqs[0].replayed >= len(seqs[0].tokens)
    try:
        X, lens = embed_batch(eng, news, t0s, m)
        X = _run_layers(eng, X, len(seqs), m, lens, t0s, None, [st.caches for st in seqs], final_only)
    except ProofsCheckError:
        for st in seqs:
            st.broken = True
        return
    for s, st in enumerate(seqs):
        if chk.errors[s] is not None:
            st.broken = True
            continue
        st.done = len(st.tokens)
        st.last = X if final_only else X[:, :, s * m + lens[s] - 1 : s * m + lens[s]]
        st.columns = X[:, :, s * m : s * m + lens[s]] if st.keep_columns and not final_only else None


def read_next(prep: _Prepared, arith: Arithmetic, seqs: list[_SeqState]) -> list[tuple[Token | None, ProofsCheckError | None]]:
    """The next token of each (advanced) sequence, or the read-out's error for it."""
    chk = _Checker(len(seqs), prep.prec, arith)
    eng = _Engine(prep, arith, chk)
    eng.small_ints = eng.dev.type == "cpu"
    logits = _readout(eng, torch.cat([st.last for st in seqs], dim=2), [st.done for st in seqs])
    out = []
    for s in range(len(seqs)):
        if chk.errors[s] is not None:
            out.append((None, chk.errors[s]))
            continue
        lg = [int(v) for v in logits[:, s]]
        out.append((prep.model.vocab.token_of(_argmax(lg)), None))
    return out


def read_each(prep: _Prepared, arith: Arithmetic, st: _SeqState, t0: int) -> list[Token] | None:
    """The next token after each column of ``st``'s last pass (kept by ``keep_columns``; the
    pass began at position ``t0``): the read-out of every column in one operator, each column
    checked as :func:`read_next` checks the last one.  None if any column's read-out records
    an error (the caller decodes step by step, which meets the error where it arises)."""
    cols = st.columns
    chk = _Checker(cols.shape[2], prep.prec, arith)
    eng = _Engine(prep, arith, chk)
    eng.small_ints = eng.dev.type == "cpu"
    logits = _readout(eng, cols, [t0 + j + 1 for j in range(cols.shape[2])])
    if any(e is not None for e in chk.errors):
        return None
    vocab = prep.model.vocab
    return [vocab.token_of(_argmax([int(v) for v in logits[:, j]])) for j in range(cols.shape[2])]


class FastBatchSession:
    """``size``, ``append(i, tokens)``, ``next_tokens(active)``, ``tokens(i)`` (the BatchSession
    protocol of constructions.decode); see the module docstring for the error rule."""

    def __init__(self, evaluator: "FastEvaluator", model: Model, prompts: Sequence[Sequence[Token]]):
        self.evaluator = evaluator
        self.model = model
        self._seqs = [_SeqState([model.vocab.check(t) for t in prompt]) for prompt in prompts]
        self.size = len(self._seqs)
        self._prep: _Prepared | None = None

    def _seq(self, i: int) -> _SeqState:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.size:
            raise EvaluatorError(f"sequence index {i!r} is not in 0..{self.size - 1} of this batch session")
        return self._seqs[i]

    def append(self, i: int, tokens: Sequence[Token]) -> None:
        self._seq(i).tokens.extend(self.model.vocab.check(t) for t in tokens)

    def tokens(self, i: int) -> list[Token]:
        return list(self._seq(i).tokens)

    def next_tokens(self, active: Sequence[int]) -> list[Token]:
        ev, model = self.evaluator, self.model
        seqs = [self._seq(i) for i in active]
        fast = [st for st in seqs if ev.mode == "exact" and not st.broken and 0 < len(st.tokens) <= model.max_len]
        if fast and self._prep is None:
            self._prep = _prepare(model, ev.arith, model.max_len, ev.device)
        todo = [st for st in fast if st.done < len(st.tokens)]
        for k in range(0, len(todo), _MAX_BATCH):
            advance(self._prep, ev.arith, todo[k : k + _MAX_BATCH])
        ready = [st for st in fast if not st.broken]
        read = dict(zip(map(id, ready), read_next(self._prep, ev.arith, ready))) if ready else {}
        out: list[Token] = []
        first: ProofsCheckError | None = None
        for i, st in zip(active, seqs):
            token, err = read.get(id(st), (None, None))
            if id(st) not in read:
                try:
                    token = ev.next_token(model, st.tokens)
                except ProofsCheckError as e:
                    err = e
            if err is not None and first is None:
                err.sequence = i
                err.add_note(f"(sequence {i} of the batch session)")
                first = err
            out.append(token)
        if first is not None:
            raise first
        return out
