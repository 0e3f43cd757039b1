"""The fast evaluator's exact engine: prepared weights, overflow bookkeeping, affine maps with
their rounding and range check (``finish``), the residual adds and the ReGLU feed-forward.

One :class:`_Engine` is one exact batched pass (or the incremental part of a session) over
:class:`_Prepared` weights; its operators are the reference's (:mod:`evaluate_reference`,
``_Run``): ``finish`` is ``_Run.round``/``_Run.check`` on many entries at once, ``checked_affine``
is ``_Run.affine``, ``feed_forward`` is ``_Run.ffn``.  Overflows are recorded by a
:class:`_Checker` per sequence, in the reference's evaluation order, at the same
:class:`Location`; positions in a pass are relative to the pass's first column and the checker
adds each sequence's offset (``t0s``: tokens already processed by a session).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable

import numpy as np
import torch

from .errors import EvaluatorError, Location, PrecisionOverflow, ProofsCheckError
from .evaluate_reference import _Run, tied_unembed
from .fast_limbs import (
    _CHUNK, _MAX_LIMBS, Limbs, _add_raw, _const_digits, _digits_to_ints, _finish_word, _gt_const,
    _finish_ints, _ints_to_digits, _round_raw, _signed, _split_small, _trim,
)
from .fast_products import _elementwise_product, _gemm, _round_products_limbs, _round_products_word
from .fast_softmax import exact_softmax
from .model import FeedForward, Model, TransformerLayer
from .numerics import Arithmetic, Precision, div_round

class _Checker:
    """Range checks of one batched pass.

    Raise mode: the first overflow of each sequence (in the reference's evaluation order) is
    recorded and the pass goes on with the value clipped; :meth:`raise_first` raises the error of
    the lowest-index failing sequence, as one-by-one evaluation would.  Saturate mode: each
    sequence's saturation list, in the reference's order.  ``t0s``: per sequence, the positions
    before this pass (a Location's position from ``loc`` is relative to the pass).
    """

    def __init__(self, n_seq: int, prec: Precision, arith: Arithmetic, t0s: list[int] | None = None):
        self.prec = prec
        self.arith = arith
        self.t0s = t0s
        self.errors: list[ProofsCheckError | None] = [None] * n_seq
        self.saturations: list[list[str]] = [[] for _ in range(n_seq)]

    def record(
        self,
        over: torch.Tensor,
        loc: Callable[[int, int], Location],
        value: Callable[[int, int, int], Fraction],
        seq_base: int = 0,
    ) -> None:
        """``over``: (n_seq, rows, positions) bool, in the reference's order of every operator:
        position by position, and within a position row by row.  ``loc(row, position_index)``;
        ``value(seq, row, pos)``.  Each clipped entry is listed once."""
        if not bool(over.any()):
            return
        idx = torch.nonzero(over).cpu().tolist()
        per_seq: dict[int, list[tuple[int, int]]] = {}
        for s, r, c in idx:
            per_seq.setdefault(s + seq_base, []).append((r, c))
        for s, entries in per_seq.items():
            entries.sort(key=lambda rc: (rc[1], rc[0]))
            if self.arith.overflow == "raise":
                if self.errors[s] is None:
                    r, c = entries[0]
                    self.errors[s] = PrecisionOverflow(self.prec, value(s, r, c), self.at(s, loc(r, c)))
            else:
                self.saturations[s].extend(str(self.at(s, loc(r, c))) for r, c in entries)

    def at(self, s: int, where: Location) -> Location:
        """``where`` with sequence s's position offset added."""
        if not self.t0s or not self.t0s[s] or where.position is None:
            return where
        return replace(where, position=where.position + self.t0s[s])

    def fail(self, s: int, err: ProofsCheckError) -> None:
        if self.errors[s] is None:
            self.errors[s] = err

    def raise_first(self) -> None:
        for err in self.errors:
            if err is not None:
                raise err


_SMALL_ENTRIES = 512  # at most this many entries: _finish_ints (CPU decode steps)


@dataclass
class _PFFN:
    W1: torch.Tensor
    b1: torch.Tensor  # bias times 2^F (round_once) or bias (round_products), signed digits (L, w, 1)
    W2: torch.Tensor
    b2: torch.Tensor
    W3: torch.Tensor
    b3: torch.Tensor
    hidden: list[str]
    W12: torch.Tensor | None = None  # W1 over W2 (rows), b1 over b2: H1 and H2 in one operator
    b12: torch.Tensor | None = None



@dataclass
class _PHead:
    W_K: torch.Tensor
    W_Q: torch.Tensor
    W_V: torch.Tensor
    v_rows: torch.Tensor | None = None  # rows of W_V with a non-zero entry (other V rows are 0)



@dataclass
class _PLayer:
    kind: str
    ffn: _PFFN
    heads: list[_PHead] = field(default_factory=list)
    A: torch.Tensor | None = None
    B: torch.Tensor | None = None
    W_KQV: torch.Tensor | None = None  # every head's W_K, W_Q, W_V stacked (rows), in order



@dataclass
class _Prepared:
    model: Model
    prec: Precision
    limbs: Limbs
    L: int  # limbs of an R_p value
    layers: list[_PLayer]
    U: torch.Tensor  # output matrix; tied W_E rows out of range are clipped (see unembed_over)
    unembed_over: list[tuple[str, Fraction]]  # tied W_E: (token, value) of each out-of-range row
    names: tuple[str, ...]
    token_names: list[str]
    device: torch.device
    gemm_cache: dict = field(default_factory=dict)  # weights' GEMM operands, kept across passes


class _Engine:
    """One exact batched pass (or the incremental part of a session) over prepared weights."""

    def __init__(self, prep: _Prepared, arith: Arithmetic, checker: _Checker):
        self.P = prep
        self.arith = arith
        self.chk = checker
        self.b = prep.limbs.b
        self.F = prep.prec.F
        self.M = prep.prec.max_scaled
        self.dev = prep.device
        self._gemm_cache = prep.gemm_cache
        self.small_ints = False  # decode steps on the CPU: finish few entries in Python ints

    def finish(
        self,
        R: torch.Tensor,
        shift: int,
        bound: int,
        L_out: int,
        layout: Callable[[torch.Tensor], torch.Tensor],
        valid: torch.Tensor,
        loc: Callable[[int, int], Location],
        denom_bits: int,
        seq_base: int = 0,
        pcount: torch.Tensor | None = None,
        pvalue: Callable[[int, int, int], Fraction] | None = None,
    ) -> torch.Tensor:
        """Raw digits -> rounded (by 2^shift), range-checked signed digits with L_out limbs.

        ``layout`` maps an entry-shaped tensor to (n_seq, rows, positions) for the checker;
        ``valid`` (broadcastable to that) masks padding and masked scores; the exception's
        value is q / 2^denom_bits (F for R_p values, 2F for scores); ``seq_base`` offsets the
        sequence index (a single sequence of a batch).  ``pcount``: out-of-range rounded
        products per entry (round_products), checked before the entry's sum at the same
        Location; ``pvalue(s, row, position)`` gives the first such product's value."""
        if pcount is not None and not bool(pcount.any()):
            pcount = None
        if self.small_ints and pcount is None and R[0].numel() <= _SMALL_ENTRIES:
            q = _finish_ints(R, shift, bound, self.b, L_out, self.arith.tie)
            if q is not None:
                return q
        word = _finish_word(R, shift, bound, self.b, self.arith.tie) if bound < (1 << 61) and shift <= 56 else None
        if word is not None:
            q, over = word
            if bool(over.any()) or pcount is not None:
                over3 = layout(over) & valid
                b = self.b

                def value_w(s: int, r: int, c: int) -> Fraction:
                    v = 0
                    for k in range(R.shape[0] - 1, -1, -1):
                        v = (v << b) + int(layout(R[k])[s - seq_base, r, c])
                    v = div_round(v, 1 << shift, self.arith.tie) if shift else v
                    return Fraction(v, 1 << denom_bits)

                self._record(over3, valid, layout, loc, value_w, seq_base, pcount, pvalue)
                q = torch.where(over, torch.where(q < 0, -bound, bound), q)
            neg = q < 0
            return _signed(neg, _split_small(q.abs(), self.b, L_out))
        # limb path, in column chunks that stay in cache (several times faster than whole-tensor
        # passes on large activations); the magnitudes are recomputed only to report overflows
        b, shape = self.b, tuple(R.shape[1:])
        E = R[0].numel()
        flat = R.reshape(R.shape[0], E)
        out = torch.empty((L_out, E), dtype=torch.int64, device=R.device)
        over = torch.empty((E,), dtype=torch.bool, device=R.device)
        sat = None
        for s0 in range(0, E, _CHUNK):
            neg, mag = _round_raw(flat[:, s0 : s0 + _CHUNK], shift, b, self.arith.tie)
            ov = _gt_const(mag, bound, b)
            over[s0 : s0 + _CHUNK] = ov
            if bool(ov.any()):
                if sat is None:
                    sat = _const_digits(bound, b, mag.shape[0], mag)
                mag = torch.where(ov.unsqueeze(0), sat, mag)
            out[:, s0 : s0 + _CHUNK] = _signed(neg, _trim(mag, L_out))
        over = over.reshape(shape)
        if bool(over.any()) or pcount is not None:
            over3 = layout(over) & valid
            neg, mag = _round_raw(R, shift, b, self.arith.tie)

            def value(s: int, r: int, c: int) -> Fraction:
                q = 0
                for k in range(mag.shape[0] - 1, -1, -1):
                    q = (q << b) + int(layout(mag[k])[s - seq_base, r, c])
                return Fraction(-q if bool(layout(neg)[s - seq_base, r, c]) else q, 1 << denom_bits)

            self._record(over3, valid, layout, loc, value, seq_base, pcount, pvalue)
        return out.reshape((L_out,) + shape)

    def _record(self, over3, valid, layout, loc, value, seq_base, pcount, pvalue):
        if pcount is None:
            self.chk.record(over3, loc, value, seq_base)
            return
        pc3 = layout(pcount) * valid

        def first_value(s: int, r: int, c: int) -> Fraction:
            if int(pc3[s - seq_base, r, c]) > 0:
                return pvalue(s - seq_base, r, c)
            return value(s, r, c)

        self.chk.record((pc3 > 0) | over3, loc, first_value, seq_base)

    def affine(self, W: torch.Tensor, X: torch.Tensor, bias: torch.Tensor | None, reuse: bool = False):
        """Raw digits of W X (+ bias) per the matmul reading, ready for finish(shift=...), and
        (round_products) the number of out-of-range rounded products per entry (or None).
        ``reuse``: W is a weight (keep its GEMM operand for the next pass or step)."""
        pc = None
        if self.arith.matmul == "round_once":
            R = _gemm(W, X, self.b, self._gemm_cache if reuse else None)
        else:
            R, pc = self.round_products(W, X)
        if bias is not None:
            R = _add_raw(R, bias)
        return R, pc

    def product_value(self, pairs):
        """For an exception message: the first out-of-range rounded product of the entry
        (s, row i, position c), scanning sum_j W_ij X_j,col over the (W, X, col_of(s, c)) digit
        triples in the reference's order."""
        return _product_value(pairs, self.b, self.F, self.M, self.arith.tie)

    @property
    def affine_shift(self) -> int:
        return self.F if self.arith.matmul == "round_once" else 0

    def round_products(self, W: torch.Tensor, X: torch.Tensor):
        """Raw digits of sum_j ROUND(W_ij X_jk / 2^F), each scalar product rounded and
        range-checked (clipped when out of range), and the count of out-of-range products.
        Operands whose products fit one int64 word take :func:`_round_products_word`; the
        others the multi-limb path below (same bits)."""
        m, n, N = W.shape[1], W.shape[2], X.shape[2]
        pc = torch.zeros((m, N), dtype=torch.int64, device=X.device)
        if n == 0 or m == 0 or N == 0:
            return torch.zeros((1, m, N), dtype=torch.int64, device=X.device), pc
        word = _round_products_word(W, X, self.b, self.F, self.M, self.arith.tie)
        if word is not None:
            return word
        return _round_products_limbs(W, X, self.b, self.F, self.M, self.arith.tie, self.P.L, pc)

    def layer_locs(self, n_seq: int, lmax: int, lens: list[int]):
        """Helpers: reshape (rows, n_seq*lmax) -> (n_seq, rows, lmax) and the validity mask."""
        valid_cols = torch.zeros((n_seq, lmax), dtype=torch.bool, device=self.dev)
        for s, n in enumerate(lens):
            valid_cols[s, :n] = True

        def lay(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(t.shape[0], n_seq, lmax).permute(1, 0, 2)

        return lay, valid_cols.unsqueeze(1)

    def add(self, A: torch.Tensor, B: torch.Tensor, li, sub: str, lay, valid) -> torch.Tensor:
        names = self.P.names
        R = _add_raw(A, B)
        return self.finish(
            R, 0, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, sub, None, c + 1, names[r]), self.F,
        )

    def checked_affine(self, W, X, bias, li, sub, head, rows, lay, valid) -> torch.Tensor:
        R, pc = self.affine(W, X, bias, reuse=True)
        lmax = valid.shape[-1]
        pv = self.product_value([(W, X, lambda s, c: s * lmax + c)]) if pc is not None else None
        return self.finish(
            R, self.affine_shift, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, sub, head, c + 1, rows[r] if rows else str(r)), self.F,
            pcount=pc, pvalue=pv,
        )

    def feed_forward(self, ffn: _PFFN, Y, li, lay, valid) -> torch.Tensor:
        hidden = ffn.hidden or None
        H12 = None
        if ffn.W12 is not None and self.arith.matmul == "round_once":  # one operator, same bits
            H12 = self.probe(lambda: self.checked_affine(ffn.W12, Y, ffn.b12, li, "ffn.W12", None, None, lay, valid))
        if H12 is not None:
            H1, H2 = H12[:, : ffn.W1.shape[1]], H12[:, ffn.W1.shape[1] :]
        else:
            H1 = self.checked_affine(ffn.W1, Y, ffn.b1, li, "ffn.W1", None, hidden, lay, valid)
            H2 = self.checked_affine(ffn.W2, Y, ffn.b2, li, "ffn.W2", None, hidden, lay, valid)
        relu = torch.where((H1 < 0).any(0, keepdim=True), torch.zeros_like(H1), H1)
        R = _elementwise_product(relu, H2)
        G = self.finish(
            R, self.F, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, "ffn.product", None, c + 1, hidden[r] if hidden else str(r)), self.F,
        )
        return self.checked_affine(ffn.W3, G, ffn.b3, li, "ffn.W3", None, list(self.P.names), lay, valid)

    def probe(self, compute: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        """``compute()`` under a scratch checker: its result when it recorded nothing (no entry
        was out of range, so nothing was clipped), else None (the caller then recomputes in the
        reference's order with the real checker, so errors and saturations come out the same)."""
        real = self.chk
        self.chk = _Checker(len(real.errors), real.prec, real.arith, real.t0s)
        try:
            out = compute()
        finally:
            scratch, self.chk = self.chk, real
        if any(e is not None for e in scratch.errors) or any(scratch.saturations):
            return None
        return out

    def softmax(self, S: torch.Tensor, causal: torch.Tensor, d: int, canonical: bool = False) -> torch.Tensor:
        """:func:`fast_softmax.exact_softmax` at this pass's precision and tie rule."""
        return exact_softmax(S, causal, d, self.P.prec, self.b, self.arith.tie, canonical)


def _product_value(pairs, b: int, F: int, M: int, tie: str):
    """``_Engine.product_value``'s function of (s, i, c)."""

    def value(s: int, i: int, c: int) -> Fraction:
        for W, X, col_of in pairs:
            w = _digits_to_ints(W[:, i, :], b)
            x = _digits_to_ints(X[:, :, col_of(s, c)], b)
            for j in range(len(w)):
                q = div_round(int(w[j]) * int(x[j]), 1 << F, tie)
                if abs(q) > M:
                    return Fraction(q, 1 << F)
        raise EvaluatorError("internal: no out-of-range product found")

    return value


def _prepare(model: Model, arith: Arithmetic, seq_len: int, device: torch.device) -> _Prepared:
    """Weights as signed digits; the limb width from the largest inner dimension of the pass."""
    prec = model.precision
    F = prec.F
    d = model.d
    inner = [d, seq_len, 1]
    for layer in model.layers:
        inner.append(layer.ffn.width)
        if isinstance(layer, TransformerLayer):
            inner += [h.W_K.shape[0] for h in layer.heads]
    limbs = Limbs.for_inner_dim(max(inner), model.p)
    V = prec.p - 1  # bits of a value's magnitude (2F in R_p; I + F in R(I, F))
    need = limbs.count(V + F + 2) + limbs.count(V) + 63 // limbs.b + 4
    if need > _MAX_LIMBS:
        raise EvaluatorError(
            f"FastEvaluator cannot hold {prec.label} exactly: attention scores need {need} limbs of "
            f"{limbs.b} bits and its int64 carry sums allow {_MAX_LIMBS}; use p <= "
            f"{(2 * _MAX_LIMBS * limbs.b) // 5} or the ReferenceEvaluator"
        )
    L = limbs.count(V)
    b = limbs.b

    def dig(arr: np.ndarray, bits: int = V) -> torch.Tensor:
        return _ints_to_digits(np.asarray(arr, dtype=object), b, limbs.count(bits), device)

    def bias(vec: np.ndarray) -> torch.Tensor:
        vec = np.asarray(vec, dtype=object).reshape(-1, 1)
        if arith.matmul == "round_once":
            return dig(vec * (1 << F) if vec.size else vec, V + F + 1)
        return dig(vec)

    def ffn(f: FeedForward) -> _PFFN:
        W1, b1, W2, b2 = dig(f.W1), bias(f.b1), dig(f.W2), bias(f.b2)
        W12 = torch.cat([W1, W2], dim=1) if W1.shape[1] else None
        return _PFFN(W1, b1, W2, b2, dig(f.W3), bias(f.b3), list(f.hidden_names), W12, torch.cat([b1, b2], dim=1))

    layers = []
    for layer in model.layers:
        if isinstance(layer, TransformerLayer):
            heads = [_PHead(dig(h.W_K), dig(h.W_Q), dig(h.W_V)) for h in layer.heads]
            for h in heads:
                h.v_rows = torch.nonzero((h.W_V != 0).any(0).any(1)).flatten()
            kqv = torch.cat([w for h in heads for w in (h.W_K, h.W_Q, h.W_V)], dim=1) if heads else None
            layers.append(_PLayer("transformer", ffn(layer.ffn), heads, W_KQV=kqv))
        else:
            layers.append(_PLayer("linear_rnn", ffn(layer.ffn), A=dig(layer.A), B=dig(layer.B)))
    over: list[tuple[str, Fraction]] = []
    if model.unembed is not None:
        U = dig(model.unembed)
    else:  # checked (raise / saturate) per sequence at its last position, in _readout
        U = dig(tied_unembed(model, _Run(model, Arithmetic(arith.tie, arith.matmul, "saturate"))))
        over = [(str(t), Fraction(t)) for t in model.vocab.all_tokens()
                if isinstance(t, int) and abs(t * prec.scale) > prec.max_scaled]
    return _Prepared(
        model, prec, limbs, L, layers, U, over, tuple(model.layout.names),
        [str(t) for t in model.vocab.all_tokens()], device,
    )
