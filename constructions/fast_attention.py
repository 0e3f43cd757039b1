"""The fast evaluator's attention sublayer (Def 3.1): heads with their key/value cache.

The reference's matching function is ``evaluate_reference._Run.attention``: per head
``K = R(W_K X)``, ``Q = R(W_Q X)``, ``V = R(W_V X)``, exact scores ``K^T Q`` (range-checked),
``P[:, k] = R(softmax(scores[0..k, k] / sqrt(d)))`` (:mod:`constructions.fast_softmax`), head
output ``R(V P)``, heads summed in order with every partial sum range-checked.  A session keeps
each head's K and V (signed int64 digits, ``(L, rows, T)``, never Python ints) and appends the
new columns; the queries of the new columns see all cached keys (mask C: key j <= query k).
"""
from __future__ import annotations

import torch
from torch.nn.utils.rnn import pad_sequence

from .errors import Location
from .fast_compact import head_compact
from .fast_engine import _Engine, _PLayer
from .fast_limbs import _U, Limbs, _carry_floor, _shift_left_raw, _signed_to_float, _split_small
from .fast_products import _gemm
from .fast_softmax import _FLOAT_SCORES_MAX_F, _certify_float_scores, _float_scores_softmax, _scores_surely_in_range


def attention(eng: _Engine, layer: _PLayer, X, li, n_seq, lmax, lens, t0s, caches: list | None):
    """Sum of heads (Def 3.1); ``caches[s]``: sequence s's per-head [K_prev, V_prev] (sessions)
    or None; ``t0s[s]``: its positions before this pass."""
    names = eng.P.names
    d = X.shape[1]
    lay, valid = eng.layer_locs(n_seq, lmax, lens)
    total = None
    kqv = _stacked_kqv(eng, layer, X, li, lay, valid)
    for hi, head in enumerate(layer.heads, start=1):
        if kqv is not None:
            K, Q, V = kqv[3 * (hi - 1) : 3 * hi]
        else:
            K = eng.checked_affine(head.W_K, X, None, li, "attention.keys", hi, None, lay, valid)
            Q = eng.checked_affine(head.W_Q, X, None, li, "attention.queries", hi, None, lay, valid)
            V = eng.checked_affine(head.W_V, X, None, li, "attention.values", hi, list(names), lay, valid)
        if caches is not None and lmax == 1 and n_seq > 1 and _float_step(eng):
            pairs = [_extend_cache(caches[s], hi - 1, K[:, :, s : s + 1], V[:, :, s : s + 1]) for s in range(n_seq)]
            out = _decode_step_head(eng, [k for k, _ in pairs], Q, [v for _, v in pairs], li, hi, t0s)
            total = out if total is None else eng.add(total, out, li, "attention (sum of heads)", lay, valid)
            continue
        out = torch.zeros((eng.P.L, d, n_seq * lmax), dtype=torch.int64, device=eng.dev)
        for s in range(n_seq):
            n = lens[s]
            cols = slice(s * lmax, s * lmax + n)
            Ks, Qs, Vs = K[:, :, cols], Q[:, :, cols], V[:, :, cols]
            if caches is not None:
                Ks, Vs = _extend_cache(caches[s], hi - 1, Ks, Vs)
            Kf = caches[s][hi - 1].keys_float(eng.b, eng.F) if caches is not None else None
            out[:, :, cols] = head_one(eng, Ks, Qs, Vs, li, hi, s, t0s[s], Kf, head.v_rows)
        if total is None:
            total = out
        else:
            total = eng.add(total, out, li, "attention (sum of heads)", lay, valid)
    if total is None:
        total = torch.zeros((eng.P.L, d, n_seq * lmax), dtype=torch.int64, device=eng.dev)
    return total


def _stacked_kqv(eng: _Engine, layer: _PLayer, X, li, lay, valid) -> list[torch.Tensor] | None:
    """Every head's K, Q, V as one operator (round_once: each entry is rounded on its own, so
    the bits are the same) when no entry is out of range; None otherwise (then head by head, in
    the reference's order, for the right first overflow and saturation list)."""
    if layer.W_KQV is None or eng.arith.matmul != "round_once":
        return None
    out = eng.probe(lambda: eng.checked_affine(layer.W_KQV, X, None, li, "attention", None, None, lay, valid))
    if out is None:
        return None
    parts, r = [], 0
    for head in layer.heads:
        for W in (head.W_K, head.W_Q, head.W_V):
            parts.append(out[:, r : r + W.shape[1]])
            r += W.shape[1]
    return parts


class KVCache:
    """One head's keys and values for one sequence: signed int64 digits ``(L, rows, T)`` in
    buffers whose capacity doubles (appending a token copies nothing old, amortized O(1)), and
    the keys' float64 reals ``(T, kdim)`` (:func:`fast_limbs._signed_to_float`, filled lazily)
    for the float scores.  No Python ints per entry."""

    def __init__(self) -> None:
        self.K: torch.Tensor | None = None
        self.V: torch.Tensor | None = None
        self.Kf: torch.Tensor | None = None
        self.n = 0  # positions held
        self.nf = 0  # positions with their float keys computed

    def extend(self, K: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new columns; (all K, all V) as views."""
        t = K.shape[2]
        need = self.n + t
        if self.K is None or need > self.K.shape[2]:
            cap = max(need, 2 * (self.K.shape[2] if self.K is not None else 0), 16)
            self.K = _grow(self.K, self.n, K, cap)
            self.V = _grow(self.V, self.n, V, cap)
        self.K[:, :, self.n : need] = K
        self.V[:, :, self.n : need] = V
        self.n = need
        return self.K[:, :, :need], self.V[:, :, :need]

    def keys_float(self, b: int, F: int) -> torch.Tensor:
        """(T, kdim) float64 reals of the keys (K 2^-F), relative error <= (L - 1) u."""
        if self.Kf is None or self.Kf.shape[0] < self.K.shape[2]:
            Kf = torch.empty((self.K.shape[2], self.K.shape[1]), dtype=torch.float64, device=self.K.device)
            if self.Kf is not None:
                Kf[: self.nf] = self.Kf[: self.nf]
            self.Kf = Kf
        if self.nf < self.n:
            self.Kf[self.nf : self.n] = _signed_to_float(self.K[:, :, self.nf : self.n], b, -F).T
            self.nf = self.n
        return self.Kf[: self.n]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.K, self.V, self.Kf) if t is not None)


def _grow(old: torch.Tensor | None, n: int, like: torch.Tensor, cap: int) -> torch.Tensor:
    buf = torch.zeros(like.shape[:2] + (cap,), dtype=like.dtype, device=like.device)
    if old is not None and n:
        buf[:, :, :n] = old[:, :, :n]
    return buf


def _extend_cache(cache: list, h: int, K: torch.Tensor, V: torch.Tensor):
    """Append the new key/value columns of head h to a sequence's cache; (all K, all V)."""
    if cache[h] is None:
        cache[h] = KVCache()
    return cache[h].extend(K, V)


def head_one(eng: _Engine, K, Q, V, li, hi, s, t0, Kf=None, v_rows=None) -> torch.Tensor:
    """One head (Def 3.1) on sequence ``s``: keys/values at positions 1..T, queries at t0+1..t0+n
    (Location positions relative to t0: the checker adds it).  ``Kf``: the keys' float64 reals
    (a session's cache), ``v_rows``: the rows V can have non-zero (:mod:`fast_compact`)."""
    F, names = eng.F, eng.P.names
    T, n = K.shape[2], Q.shape[2]
    keypos = torch.arange(T, device=eng.dev).reshape(T, 1)
    qpos = (t0 + torch.arange(n, device=eng.dev)).reshape(1, n)
    causal = keypos <= qpos  # (T, n): key j is seen by query k iff j <= k (mask C)
    if eng.arith.matmul == "round_once" and F > _FLOAT_SCORES_MAX_F:
        if Kf is None:
            Kf = _signed_to_float(K, eng.b, -F).T
        if v_rows is None:
            v_rows = torch.arange(V.shape[1], device=eng.dev)
        out = head_compact(eng, K, Kf, Q, V, v_rows, causal, li, hi, s)
        if out is not None:
            return out
    P = _probabilities(eng, K, Q, causal, li, hi, s)
    Rv, pc = eng.affine(V, P, None)
    pv = eng.product_value([(V, P, lambda s, c: c)]) if pc is not None else None
    ones = torch.ones((1, 1, n), dtype=torch.bool, device=eng.dev)
    return eng.finish(
        Rv, eng.affine_shift, eng.M, eng.P.L, _one_seq, ones,
        lambda r, c: Location(li, "attention", hi, c + 1, names[r]), F, seq_base=s,
        pcount=pc, pvalue=pv,
    )


def _probabilities(eng: _Engine, K, Q, causal, li, hi, s) -> torch.Tensor:
    """P (L_P + 1, T, n): the rounded softmax of every query column, from float64-certified
    scores where they certify (round_once, F <= 45), else from the exact (range-checked) scores."""
    F, b = eng.F, eng.b
    T, n = causal.shape
    Kt = K.permute(0, 2, 1)  # (L, T, kdim)
    d_model = eng.P.model.d
    L_P = Limbs(b).count(F + 2)
    P = torch.zeros((L_P + 1, T, n), dtype=torch.int64, device=eng.dev)
    exact_cols = torch.arange(n, device=eng.dev)
    if eng.arith.matmul == "round_once" and F <= _FLOAT_SCORES_MAX_F:
        # float64 scores with a rigorous error bound: columns whose every score is surely in
        # range and whose softmax rounding certifies never need the exact scores
        ok, vals = _float_scores_softmax(K, Q, causal, d_model, F, b, eng.M)
        if bool(ok.all()):
            P = _split_small(vals, b, L_P + 1)
        elif bool(ok.any()):
            P[:, :, ok] = _split_small(vals[:, ok], b, L_P + 1)
        exact_cols = torch.nonzero(~ok).flatten()
    if exact_cols.numel():
        cols = exact_cols.tolist()
        Qc, cz = Q[:, :, exact_cols], causal[:, exact_cols]
        pc = pv = None
        L_S = Limbs(b).count(eng.P.prec.p - 1 + F + 2)  # scores: |S| <= M 2^F
        if eng.arith.matmul == "round_once":
            R = _gemm(Kt, Qc, b)  # exact scores, not rounded
            if _scores_surely_in_range(K, Qc, cz, F, b, eng.M):
                # no overflow to report: one carry pass gives the canonical digits
                Pc = eng.softmax(_carry_floor(R, b, L_S + 1), cz, d_model, canonical=True)
                if len(cols) == n:
                    P = Pc
                else:
                    P[:, :, exact_cols] = Pc
                R = None
        else:
            R, pc = eng.round_products(Kt, Qc)
            R = _shift_left_raw(R, F, b)
            pv = eng.product_value([(Kt, Qc, lambda s, c: c)])
        if R is not None:
            S = eng.finish(
                R, 0, eng.M << F, L_S, _one_seq, cz.unsqueeze(0),
                lambda r, c: Location(li, "attention.scores", hi, cols[c] + 1, f"key position {r + 1}"),
                2 * F, seq_base=s, pcount=pc, pvalue=pv,
            )
            P[:, :, exact_cols] = eng.softmax(S, cz, d_model)
    return P


def _one_seq(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(0)


def _float_step(eng: _Engine) -> bool:
    """Heads of a batched decode step can start from float64 scores (as _probabilities does)."""
    return eng.arith.matmul == "round_once" and eng.F <= _FLOAT_SCORES_MAX_F


def _decode_step_head(eng: _Engine, Ks, Q, Vs, li, hi, t0s) -> torch.Tensor:
    """One head for S sequences with one new query each (a batched decode step): keys and
    values right-padded to the longest cache, float64 scores by one batched GEMM with the error
    bound of :func:`fast_softmax._float_scores_softmax` (valid in any summation order), the
    certified columns' V P as one batched exact limb product (each sum of at most max_len digit
    products, exact in float64 as in :func:`fast_products._gemm`) and one finish; a sequence whose
    column does not certify takes :func:`head_one` alone (its P is zeroed here, so the batched
    finish records nothing for it and its errors come in its own order).  (L, d, S)."""
    F, b, L, dev = eng.F, eng.b, eng.P.L, eng.dev
    S, kdim = len(Ks), Q.shape[1]
    lengths = torch.tensor([k.shape[2] for k in Ks], device=dev)
    Kp = pad_sequence([k.permute(2, 0, 1) for k in Ks], batch_first=True)  # (S, Tmax, L, kdim)
    Vp = pad_sequence([v.permute(2, 0, 1) for v in Vs], batch_first=True)  # (S, Tmax, L, d)
    Tmax, d = Kp.shape[1], Vp.shape[3]
    Kf = _signed_to_float(Kp.permute(2, 0, 1, 3), b, -F)  # (S, Tmax, kdim)
    qf = _signed_to_float(Q, b, -F).T.unsqueeze(-1)  # (S, kdim, 1)
    Sf = torch.bmm(Kf, qf).squeeze(-1).T  # (Tmax, S)
    delta = torch.bmm(Kf.abs(), qf.abs()).squeeze(-1).T * (1.03 * (kdim + 2 * L) * _U)
    causal = torch.arange(Tmax, device=dev).reshape(-1, 1) < lengths.reshape(1, -1)
    ok, vals = _certify_float_scores(Sf, delta, causal, eng.P.model.d, F, eng.M)
    L_P = Limbs(b).count(F + 2)
    P = _split_small(torch.where(ok.unsqueeze(0), vals, torch.zeros_like(vals)), b, L_P + 1)  # (L_P+1, Tmax, S)
    C = torch.bmm(Vp.permute(0, 2, 3, 1).reshape(S, L * d, Tmax).to(torch.float64), P.permute(2, 1, 0).to(torch.float64))
    C = C.to(torch.int64).reshape(S, L, d, L_P + 1)
    R = torch.zeros((L + L_P, d, S), dtype=torch.int64, device=dev)
    for a in range(L):
        for c in range(L_P + 1):
            R[a + c] += C[:, a, :, c].T
    names = eng.P.names
    out = eng.finish(
        R, eng.affine_shift, eng.M, L, lambda t: t.permute(1, 0).unsqueeze(-1),
        torch.ones((S, 1, 1), dtype=torch.bool, device=dev),
        lambda r, c: Location(li, "attention", hi, c + 1, names[r]), F,
    )
    for s in torch.nonzero(~ok).flatten().tolist():
        out[:, :, s : s + 1] = head_one(eng, Ks[s], Q[:, :, s : s + 1], Vs[s], li, hi, s, t0s[s])
    return out
