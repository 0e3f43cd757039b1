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
from .fast_compact import antidiagonal_sums, exact_scores, finish_head, head_compact, plan_head, score_limbs, softmax_plans
from .fast_engine import _Engine, _PLayer
from . import fast_key_blocks
from .fast_key_blocks import BoxCache, KeyBoxes
from .fast_limbs import Limbs, _score_error_factor, _score_limit, _carry_floor, _lsb_exponent, _shift_left_raw, _signed_to_float, _split_small
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
    if kqv is not None and n_seq == 1 and lens[0] == lmax and eng.arith.matmul == "round_once":
        return _compact_layer(eng, layer, kqv, li, lens[0], t0s[0], caches, lay, valid)
    for hi, head in enumerate(layer.heads, start=1):
        if kqv is not None:
            K, Q, V = kqv[3 * (hi - 1) : 3 * hi]
        else:
            K = eng.checked_affine(head.W_K, X, None, li, "attention.keys", hi, None, lay, valid)
            Q = eng.checked_affine(head.W_Q, X, None, li, "attention.queries", hi, None, lay, valid)
            V = eng.checked_affine(head.W_V, X, None, li, "attention.values", hi, list(names), lay, valid)
        if _float_step(eng):
            Ks, Kfs, Vs = _sequence_kv(eng, K, V, head.v_rows, hi - 1, n_seq, lmax, lens, caches)
            out = _batched_head(eng, Ks, Kfs, Q, Vs, head.v_rows, li, hi, t0s, lmax, lens, lay, valid)
            total = out if total is None else eng.add(total, out, li, "attention (sum of heads)", lay, valid)
            continue
        out = torch.zeros((eng.P.L, d, n_seq * lmax), dtype=torch.int64, device=eng.dev)
        for s in range(n_seq):
            n = lens[s]
            cols = slice(s * lmax, s * lmax + n)
            Ks, Qs, Vs = K[:, :, cols], Q[:, :, cols], V[:, head.v_rows][:, :, cols]
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


def _compact_layer(eng: _Engine, layer: _PLayer, kqv, li, n, t0, caches, lay, valid, q0: int = 0) -> torch.Tensor:
    """Sum of heads for one sequence (a session pass or a full pass; round_once, any F), every
    head on compacted columns (:mod:`fast_compact`; cheaper than float-certified dense columns
    even at F <= 45, where the exact softmax of the few candidates mostly certifies in float64): all heads' candidate keys and exact scores first, their softmax side by side
    (:func:`fast_compact.softmax_plans`: nothing is range-checked before the head outputs),
    then each head's output and the running sum in the reference's order.  A head whose scores
    may be out of range takes :func:`head_one` (the dense path, range-checked) in its turn.
    ``q0``: the keys and values of all n new columns join the cache, but only the queries of
    columns q0..n-1 are computed (``fast_layers._final_column_layer``); the result has n - q0 columns."""
    F, d = eng.F, eng.P.model.d
    nq = n - q0
    work = []
    for hi, head in enumerate(layer.heads, start=1):
        K, Q, V = kqv[3 * (hi - 1) : 3 * hi]
        Ks, Vs = K[:, :, :n], V[:, head.v_rows][:, :, :n]
        Ke = boxes = None
        if caches is not None:
            Ks, Vs = _extend_cache(caches[0], hi - 1, Ks, Vs)
            Kf = caches[0][hi - 1].keys_float(eng.b, F)
            Ke = caches[0][hi - 1].keys_lsb(eng.b, F)
            boxes = caches[0][hi - 1].key_boxes(eng.b, F)
        else:
            Kf = _signed_to_float(Ks, eng.b, -F).T
        qpos = t0 + q0 + torch.arange(nq, device=eng.dev)
        work.append((hi, head, Ks, Q[:, :, q0:n], Vs, Kf, plan_head(eng, Ks, Kf, Q[:, :, q0:n], qpos, Ke, boxes)))
    softmax_plans(eng, [w[-1] for w in work if w[-1] is not None])
    total = None
    for hi, head, Ks, Qs, Vs, Kf, plan in work:
        if plan is not None:
            out = finish_head(eng, plan, Vs, head.v_rows, li, hi, 0)
        else:
            out = head_one(eng, Ks, Qs, Vs, li, hi, 0, t0 + q0, Kf, head.v_rows)
        total = out if total is None else eng.add(total, out, li, "attention (sum of heads)", lay, valid)
    if total is None:
        total = torch.zeros((eng.P.L, d, nq), dtype=torch.int64, device=eng.dev)
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
    buffers whose capacity doubles (appending a token copies nothing old, amortized O(1)); of
    the values only the rows W_V can make non-zero (``_PHead.v_rows``; the others are 0); and
    the keys' float64 reals ``(T, kdim)`` (:func:`fast_limbs._signed_to_float`, filled lazily)
    for the float scores.  No Python ints per entry."""

    def __init__(self) -> None:
        self.K: torch.Tensor | None = None
        self.V: torch.Tensor | None = None
        self.Kf: torch.Tensor | None = None
        self.Ke: torch.Tensor | None = None  # each key's lowest set bit exponent (keys_lsb)
        self.n = 0  # positions held
        self.nf = 0  # positions with their float keys computed
        self.ne = 0  # positions with their low bit exponents computed
        self.boxes = BoxCache()  # the whole key blocks' boxes (fast_key_blocks), filled lazily

    def extend(self, K: torch.Tensor, V: torch.Tensor, Kf: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new columns (``Kf``: their float keys, (t, kdim), if already computed);
        (all K, all V) as views."""
        t = K.shape[2]
        need = self.n + t
        if self.K is None or need > self.K.shape[2]:
            cap = max(need, 2 * (self.K.shape[2] if self.K is not None else 0), 16)
            self.K = _grow(self.K, self.n, K, cap)
            self.V = _grow(self.V, self.n, V, cap)
        self.K[:, :, self.n : need] = K
        self.V[:, :, self.n : need] = V
        if Kf is not None and self.nf == self.n:
            self._grow_float()
            self.Kf[self.n : need] = Kf
            self.nf = need
        self.n = need
        return self.K[:, :, :need], self.V[:, :, :need]

    def _per_key(self, buf: torch.Tensor | None, done: int, tail: tuple[int, ...]) -> torch.Tensor:
        """``buf`` (float64, one row per key position) grown to the keys' capacity, its first
        ``done`` rows kept."""
        if buf is not None and buf.shape[0] >= self.K.shape[2]:
            return buf
        out = torch.empty((self.K.shape[2],) + tail, dtype=torch.float64, device=self.K.device)
        if buf is not None:
            out[:done] = buf[:done]
        return out

    def _grow_float(self) -> None:
        self.Kf = self._per_key(self.Kf, self.nf, (self.K.shape[1],))

    def keys_float(self, b: int, F: int) -> torch.Tensor:
        """(T, kdim) float64 reals of the keys (K 2^-F), relative error <= (L - 1) u."""
        self._grow_float()
        if self.nf < self.n:
            self.Kf[self.nf : self.n] = _signed_to_float(self.K[:, :, self.nf : self.n], b, -F).T
            self.nf = self.n
        return self.Kf[: self.n]

    def keys_lsb(self, b: int, F: int) -> torch.Tensor:
        """(T,) the exponent of each key's lowest set bit (``fast_limbs._lsb_exponent``; for
        ``fast_compact.exact_float_entries``), filled lazily like the float keys."""
        self.Ke = self._per_key(self.Ke, self.ne, ())
        if self.ne < self.n:
            self.Ke[self.ne : self.n] = _lsb_exponent(self.K[:, :, self.ne : self.n], b, -F)
            self.ne = self.n
        return self.Ke[: self.n]

    def key_boxes(self, b: int, F: int) -> KeyBoxes | None:
        """The whole key blocks' boxes (``fast_key_blocks``) from ``MIN_KEYS`` keys on, else None."""
        if self.n < fast_key_blocks.MIN_KEYS:
            return None
        return self.boxes.boxes(self.keys_float(b, F))

    def nbytes(self) -> int:
        held = (self.K, self.V, self.Kf, self.Ke, self.boxes.lo, self.boxes.hi)
        return sum(t.numel() * t.element_size() for t in held if t is not None)


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


def head_one(eng: _Engine, K, Q, Vr, li, hi, s, t0, Kf, v_rows) -> torch.Tensor:
    """One head (Def 3.1) on sequence ``s``: keys/values at positions 1..T, queries at t0+1..t0+n
    (Location positions relative to t0: the checker adds it).  ``Kf``: the keys' float64 reals
    (a session's cache); ``Vr`` (L, |v_rows|, T): the values' rows ``v_rows``, the only rows
    W_V can make non-zero (the others are exactly 0: a cache holds only these)."""
    F, names = eng.F, eng.P.names
    T, n = K.shape[2], Q.shape[2]
    keypos = torch.arange(T, device=eng.dev).reshape(T, 1)
    qpos = (t0 + torch.arange(n, device=eng.dev)).reshape(1, n)
    causal = keypos <= qpos  # (T, n): key j is seen by query k iff j <= k (mask C)
    if eng.arith.matmul == "round_once" and F > _FLOAT_SCORES_MAX_F:
        if Kf is None:
            Kf = _signed_to_float(K, eng.b, -F).T
        out = head_compact(eng, K, Kf, Q, Vr, v_rows, qpos.reshape(-1), li, hi, s)
        if out is not None:
            return out
    V = torch.zeros((Vr.shape[0], eng.P.model.d, T), dtype=torch.int64, device=eng.dev)
    V[:, v_rows] = Vr
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


def _sequence_kv(eng: _Engine, K, V, v_rows, h, n_seq, lmax, lens, caches):
    """Per sequence: all its keys (L, kdim, T), their float64 reals (T, kdim) and all its values'
    rows ``v_rows`` (L, |v_rows|, T), after appending this pass's columns to its cache (sessions)."""
    Ks, Kfs, Vs = [], [], []
    Kf_all = _signed_to_float(K, eng.b, -eng.F).T  # (n_seq lmax, kdim), one operator
    V = V[:, v_rows]  # the rows W_V can make non-zero: all a cache holds
    for s in range(n_seq):
        cols = slice(s * lmax, s * lmax + lens[s])
        Kn, Vn, Kfn = K[:, :, cols], V[:, :, cols], Kf_all[cols]
        if caches is not None:
            if caches[s][h] is None:
                caches[s][h] = KVCache()
            Kn, Vn = caches[s][h].extend(Kn, Vn, Kfn)
            Kfn = caches[s][h].keys_float(eng.b, eng.F)
        Ks.append(Kn)
        Vs.append(Vn)
        Kfs.append(Kfn)
    return Ks, Kfs, Vs


def _batched_head(eng: _Engine, Ks, Kfs, Q, Vs, v_rows, li, hi, t0s, lmax, lens, lay, valid) -> torch.Tensor:
    """One head (Def 3.1) for many sequences at once (a batched prefill or decode step), under
    round_once with F <= 45: sequence s has keys/values at positions 1..T_s (``Ks[s]``, floats
    ``Kfs[s]``, ``Vs[s]``: the values' rows ``v_rows``) and queries Q[:, :, s lmax + q] at positions t0s[s] + q + 1,
    q < lens[s].  Float64 scores by one batched GEMM with the error bound of
    :func:`fast_softmax._float_scores_softmax` (valid in any summation order) certify most
    columns; columns that do not (ties, near-midpoint entries) but whose scores are all proven
    in range get their exact scores (:func:`fast_compact.exact_scores`) and
    :func:`fast_softmax.exact_softmax` together (columns are independent); then V P as one
    batched exact limb product on the rows V can have non-zero (each sum of at most max_len
    digit products, exact in float64 as in :func:`fast_products._gemm`) and one finish.  A
    sequence with a score that may be out of range takes :func:`head_one` alone (its P is
    zeroed here, so the batched finish records nothing for it and its errors come in its own
    order).  (L, d, n_seq lmax)."""
    F, b, L, dev = eng.F, eng.b, eng.P.L, eng.dev
    S, kdim, d = len(Ks), Q.shape[1], eng.P.model.d
    lengths = torch.tensor([k.shape[2] for k in Ks], device=dev)
    Kfp = pad_sequence(Kfs, batch_first=True)  # (S, Tmax, kdim)
    Tmax = Kfp.shape[1]
    qf = _signed_to_float(Q, b, -F).reshape(kdim, S, lmax).permute(1, 0, 2)  # (S, kdim, lmax)
    cols = lambda t: t.permute(1, 0, 2).reshape(Tmax, S * lmax)  # noqa: E731  (S, Tmax, lmax) -> columns
    Sf = cols(torch.bmm(Kfp, qf))
    A = cols(torch.bmm(Kfp.abs(), qf.abs()))
    delta = A * _score_error_factor(kdim, L)
    qpos = torch.tensor(t0s, device=dev).reshape(S, 1) + torch.arange(lmax, device=dev).reshape(1, lmax)
    live = torch.arange(lmax, device=dev).reshape(1, lmax) < torch.tensor(lens, device=dev).reshape(S, 1)
    keypos = torch.arange(Tmax, device=dev).reshape(Tmax, 1)
    causal = (keypos <= qpos.reshape(1, -1)) & live.reshape(1, -1)  # (Tmax, S lmax), mask C
    ok, vals = _certify_float_scores(Sf, delta, causal, eng.P.model.d, F, eng.M)
    ok = ok | ~causal.any(0)  # padding columns: no entries, P = 0
    L_P = Limbs(b).count(F + 2)
    P = _split_small(torch.where(ok.unsqueeze(0), vals, torch.zeros_like(vals)), b, L_P + 1)  # (L_P+1, Tmax, S lmax)
    if not bool(ok.all()):
        P = _exact_columns(eng, Ks, Q, A, causal, ok, P, li, hi, S, lmax)
    R = torch.zeros((L + L_P, d, S, lmax), dtype=torch.int64, device=dev)
    nr = v_rows.numel()
    if nr:
        Vp = pad_sequence([v.permute(2, 0, 1) for v in Vs], batch_first=True)  # (S, Tmax, L, nr)
        Af = Vp.permute(0, 2, 3, 1).reshape(S, L * nr, Tmax).to(torch.float64)
        Bf = P.reshape(L_P + 1, Tmax, S, lmax).permute(2, 1, 3, 0).reshape(S, Tmax, lmax * (L_P + 1)).to(torch.float64)
        C = torch.bmm(Af, Bf).to(torch.int64).reshape(S, L, nr, lmax, L_P + 1)
        R[:, v_rows] = antidiagonal_sums(C.permute(1, 4, 2, 0, 3))
    names = eng.P.names
    out = eng.finish(
        R.reshape(L + L_P, d, S * lmax), eng.affine_shift, eng.M, L, lay, valid,
        lambda r, c: Location(li, "attention", hi, c + 1, names[r]), F,
    )
    return out


def _exact_columns(eng: _Engine, Ks, Q, A, causal, ok, P, li, hi, S, lmax) -> torch.Tensor:
    """P of the columns the float scores did not certify, from their exact scores, all
    sequences together (:func:`_batched_head`).  Columns of a sequence whose every score is
    proven in range (float64 bound ``|K|^T |Q|``, as :func:`fast_softmax._scores_surely_in_range`)
    skip the range check; the others' scores are range-checked by one finish whose records
    come per sequence in the reference's order (query column, then key: as head_one's), and
    their softmax is of the checked (clipped) scores."""
    F, b, L, dev = eng.F, eng.b, eng.P.L, eng.dev
    Tmax, kdim = causal.shape[0], Q.shape[1]
    ub = torch.where(causal, A * (1 + _score_error_factor(kdim, L)), torch.zeros_like(A)).amax(0)
    seq_ok = (ub < _score_limit(eng.M, F)).reshape(S, lmax).all(1)
    col_seq = torch.arange(S * lmax, device=dev) // lmax
    Kp = pad_sequence([k.permute(2, 0, 1) for k in Ks], batch_first=True)  # (S, Tmax, L, kdim)
    d_model, L_S = eng.P.model.d, score_limbs(eng)
    for checked in (False, True):
        todo = torch.nonzero(~ok & (seq_ok[col_seq] != checked)).flatten()
        for c0 in range(0, todo.numel(), 1024):
            ec = todo[c0 : c0 + 1024]
            Kg = Kp[col_seq[ec]].to(torch.float64)  # (c, Tmax, L, kdim)
            R = exact_scores(Kg, Q[:, :, ec])
            if not checked:
                P[:, :, ec] = eng.softmax(_carry_floor(R, b, L_S + 1), causal[:, ec], d_model, canonical=True)
                continue
            seqs, qs = col_seq[ec], ec % lmax

            def lay(x: torch.Tensor, seqs=seqs, qs=qs) -> torch.Tensor:
                out = torch.zeros((S, Tmax, lmax), dtype=x.dtype, device=dev)
                out[seqs, :, qs] = x.T
                return out

            Sx = eng.finish(
                R, 0, eng.M << F, L_S, lay, lay(causal[:, ec]),
                lambda r, c: Location(li, "attention.scores", hi, c + 1, f"key position {r + 1}"), 2 * F,
            )
            P[:, :, ec] = eng.softmax(Sx, causal[:, ec], d_model)
    return P
