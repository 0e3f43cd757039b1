"""One attention head on compacted columns: exact scores, softmax and ``V P`` only at the keys
that can matter (the fast evaluator's path for large F, where float64 cannot certify a column).

The reference's matching function is the head of ``evaluate_reference._Run.attention``:
``P[:, k] = R(softmax(K^T Q[:, k] / sqrt(d)))`` over keys 1..k, head output ``R(V P)``.

Hard attention makes almost every entry of a column *far*: its exponential is below
2^-(F+66) / m (m the head's longest column), so it rounds to 0 and its mass is inside every
budget of :func:`fast_softmax.exact_softmax` (see there).  Far entries are found from float64 scores with a
rigorous error bound (:func:`candidate_entries`), without their exact digits; the other entries
(*candidates*, a few per column) are gathered per column, sorted into chunks of columns with
similar counts, and get exact scores (:func:`exact_scores`, exact float64 products of digits),
:func:`fast_softmax.exact_softmax` on the compacted columns and the limb products of ``V P`` on
the candidates only (:func:`limb_vp`: the far entries' P is 0, so the sums are the same
integers).  Only rows of V that W_V can make non-zero are read (the others are exactly 0).
Used only under ``round_once`` when every score is proven inside the range of R_p (no range
check to report); otherwise the caller takes the dense path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .errors import Location
from .fast_engine import _Engine
from . import fast_key_blocks
from .fast_key_blocks import KeyBoxes, block_boxes, kept_keys
from .fast_limbs import (
    _U, Limbs, _carry_floor, _digits_to_ints, _exact_float_digits, _lsb_exponent, _score_error_factor, _score_limit,
    _signed_to_float,
)
from .fast_products import _gemm
from .fast_softmax import exact_softmax
from .numerics import softmax_column

_CHUNK_ENTRIES = 1 << 15  # compacted entries (candidates x columns) per chunk
_COLUMN_BLOCK = 256  # query columns per block of float scores
_FAR_BITS = 66  # far: exp term below 2^-(F + 66) / m


def float_scores(Kf: torch.Tensor, Q: torch.Tensor, b: int, F: int, L: int):
    """(Sf, delta, |K|^T |Q|): float64 scores of keys Kf (T, kdim) (reals, relative error
    <= (L - 1) u) against the queries Q (L, kdim, n) (digits) and the rigorous bound
    ``|Sf - s| <= delta = 1.03 (kdim + 2L) u |Kf|^T |Qf|`` (as ``fast_softmax._float_scores_softmax``)."""
    kdim = Q.shape[1]
    Qf = _signed_to_float(Q, b, -F)
    A = Kf.abs() @ Qf.abs()
    return Kf @ Qf, A * _score_error_factor(kdim, L), A


def exact_float_entries(A: torch.Tensor, e: torch.Tensor, kdim: int, L: int) -> torch.Tensor:
    """bool, shaped like A: the entries whose float64 score (a dot product of the float keys
    and queries, in any order) *is* the exact score.  ``A``: float64 sum_j |K_j| |Q_j| of the
    entry; ``e``: the sum of its key's and its query's low-bit exponents
    (:func:`fast_limbs._lsb_exponent`), so every product K_j Q_j is a multiple of 2^e.  Where
    sum_j |K_j| |Q_j| (at most A (1 + 1.03 (kdim + 2L) u), :func:`_abs_score_bound`)
    is below 2^(53 + e), every nonzero product has at most 53 significant bits and exact
    operands (|K_j| < 2^(53 + e_K) where Q_j != 0, and the same for Q; a zero operand makes the
    product 0 whatever the other's rounding), and every partial sum is a multiple of 2^e below
    2^(53 + e): all the float64 products and sums are exact, fused or not, in any order."""
    return _abs_score_bound(A, kdim, L) < torch.exp2(53 + e)


def _abs_score_bound(A: torch.Tensor, kdim: int, L: int) -> torch.Tensor:
    """A rigorous upper bound of sum_j |K_j| |Q_j| (exact operands) from its float64 value A
    over float keys and queries (relative errors (L - 1) u each, kdim terms)."""
    return A * (1 + _score_error_factor(kdim, L))


def candidate_entries(Sf: torch.Tensor, delta: torch.Tensor, causal: torch.Tensor, d: int, F: int, m_ref: int) -> torch.Tensor:
    """Causal entries that are not proven far: far when a lower bound of the true gap
    (s_max - s_j) / sqrt(d) exceeds (F + 66) ln 2 + ln m_ref, i.e. exp term < 2^-(F+66) / m_ref.
    ``m_ref``: at least the entry count of every column that shares an ``exact_softmax`` call
    with these (the head's longest column), so a far entry is below the u = 2^-(24 L) >
    2^-(F+66) / m_max of any :mod:`softmax_fixed` plan for those columns, and below
    ``fast_softmax._negligible_gap``'s 2^-(F+40) / m of its own column.

    s_max >= lo := max_i (Sf_i - delta_i) and s_j <= Sf_j + delta_j, so the gap is at least
    lo - Sf_j - delta_j; the three float operations err by at most 4u (|lo| + |Sf_j| +
    delta_j), subtracted; 1/sqrt(d) and the product err by < 3u relative, covered by 1e-9."""
    neg_inf = torch.full_like(Sf, -math.inf)
    lo = torch.where(causal, Sf - delta, neg_inf).amax(0, keepdim=True)
    gap = (lo - (Sf + delta)) - 4 * _U * (lo.abs() + Sf.abs() + delta)
    x_low = gap * (1.0 / math.sqrt(d)) * (1 - 1e-9)
    far = x_low > _far_exponent(F, m_ref)
    return causal & ~far


def _far_exponent(F: int, m_ref: int) -> float:
    """(F + 66) ln 2 + ln m_ref, with 1e-6 of slack for the logarithms: an entry whose
    (s_max - s_j) / sqrt(d) exceeds it has exp term < 2^-(F+66) / m_ref (far)."""
    return (F + _FAR_BITS) * math.log(2.0) + math.log(max(1, m_ref)) + 1e-6


def coarse_candidates(Sf: torch.Tensor, Kmax: float, Qf: torch.Tensor, causal: torch.Tensor, L: int, d: int, F: int,
                      M: int, m_ref: int) -> torch.Tensor | None:
    """:func:`candidate_entries` and :func:`scores_in_range` from one bound per column instead of
    one per entry (a few passes over the (T, n) scores instead of about twenty): None where that
    bound is too coarse to be worth it or cannot prove the range (the caller takes the per-entry
    path, which also decides the range).

    ``Kmax``: max |Kf| over every key entry.  For each column, B = Kmax sum_k |Qf_k| bounds
    every entry's |Kf_j|^T |Qf| (up to a relative (2 kdim + 2) u of float rounding, inside the
    3% slack of the error factor), so D = B 1.03 (kdim + 2L) u bounds every |Sf_j - s_j| and
    B (1 + that) every |s_j|: all in range when below M 2^-F (1 - 4u).  Far needs a true gap
    s_max - s_j > G := sqrt(d) ((F + 66) ln 2 + ln m_ref) (the threshold of candidate_entries,
    with its slack); s_max >= max_causal Sf - D and s_j <= Sf_j + D, so Sf_j < t := max_causal Sf
    - 2D - G suffices, t computed with 4u (|max| + 2D + G) subtracted for its own roundings.
    Used only where 2D <= G / 8, so at most the entries within G + 2D of the maximum (rather
    than G + delta_j) stay candidates."""
    kdim = Qf.shape[0]
    B = Kmax * Qf.abs().sum(0)  # (n,)
    if not bool((_abs_score_bound(B, kdim, L) < _score_limit(M, F)).all()):
        return None
    D = B * _score_error_factor(kdim, L)
    G = math.sqrt(d) * _far_exponent(F, m_ref) * (1 + 1e-8)
    if bool((D > G / 16).any()):
        return None
    top = torch.where(causal, Sf, torch.full_like(Sf, -math.inf)).amax(0)  # (n,); -inf: no causal entry
    t = top - 2 * D - G
    t = t - 4 * _U * (top.abs() + 2 * D + G)
    return causal & (Sf >= t)


def scores_in_range(Sf: torch.Tensor, delta: torch.Tensor, causal: torch.Tensor, F: int, M: int) -> bool:
    """Every causal |score| proven <= M 2^-F: |s_j| <= |Sf_j| + delta_j (``delta`` the rigorous
    error bound of the float score Sf_j), the float sum's rounding inside the limit's 4u slack.
    (Tighter than |K|^T |Q|, which a Match head's cancelling terms -pos'^2 + 2 pos' t exceed.)"""
    if causal.numel() == 0:
        return True
    ub = Sf.abs() + delta
    return bool(torch.where(causal, ub, torch.zeros_like(ub)).amax() < _score_limit(M, F))


@dataclass
class _Chunk:
    """Compacted columns ``cols`` of one head: candidate keys ``idx`` (kc, c) (``valid``), their
    exact scores ``S`` (canonical digits), the columns' true entry counts, the arb fallback."""

    cols: torch.Tensor
    idx: torch.Tensor
    valid: torch.Tensor
    S: torch.Tensor
    m_full: torch.Tensor
    arb: Callable[[int], np.ndarray]


@dataclass
class HeadPlan:
    """One head's compacted columns (:func:`plan_head`), waiting for their softmax."""

    chunks: list[_Chunk]
    n: int
    P: list[torch.Tensor] | None = None


def head_compact(eng: _Engine, K, Kf, Q, Vr, v_rows, qpos, li, hi, s) -> torch.Tensor | None:
    """The head's output (L, d, n) for keys K (L, kdim, T) (floats Kf (T, kdim)), queries Q
    (L, kdim, n) at positions ``qpos`` (n,) (key j is causal for query k iff j <= qpos[k]),
    values' rows ``v_rows`` Vr (L, |v_rows|, T) (the other rows are 0); None when a score may be
    out of range (the caller's dense path then reports it)."""
    plan = plan_head(eng, K, Kf, Q, qpos)
    if plan is None:
        return None
    softmax_plans(eng, [plan])
    return finish_head(eng, plan, Vr, v_rows, li, hi, s)


def plan_head(eng: _Engine, K, Kf, Q, qpos, Ke: torch.Tensor | None = None,
              boxes: KeyBoxes | None = None) -> HeadPlan | None:
    """Float scores, candidate keys and their exact scores, chunked; None when a score may be
    out of range.  Nothing is recorded (no range check is needed, none is done).  Queries at
    positions ``qpos`` (n,): key j is causal for query k iff j <= qpos[k].  From
    ``fast_key_blocks.MIN_KEYS`` keys on, whole blocks of keys are proven far first
    (:func:`fast_key_blocks.kept_keys`; ``boxes``: the blocks' boxes, a session's cache, else
    computed here) and only the rest is tested entry by entry.  A chunk whose candidates' float
    scores are all exact (:func:`exact_float_entries`; ``Ke``: the keys' low bit exponents, a
    session's cache, else computed here) takes its digits from them; the others get
    :func:`exact_scores`."""
    F, b, L = eng.F, eng.b, eng.P.L
    T, n = K.shape[2], Q.shape[2]
    m_full = torch.clamp(qpos + 1, min=0, max=T)  # each column's causal entries
    m_ref = int(m_full.max()) if n else 1
    if T < fast_key_blocks.MIN_KEYS:
        boxes = None
    elif boxes is None:
        boxes = block_boxes(Kf)
    Ke = _lsb_exponent(K, b, -F) if Ke is None else Ke
    Qe = _lsb_exponent(Q, b, -F)
    Kt = None  # K as float64 digits (T, L, kdim), converted once when many candidates need it
    chunks = []
    Ls = score_limbs(eng) + 1
    for c0 in range(0, n, _COLUMN_BLOCK):  # column blocks: the float temporaries stay small
        cs = slice(c0, c0 + _COLUMN_BLOCK)
        found = _column_candidates(eng, Kf, Q[:, :, cs], qpos[cs], m_ref, boxes)
        if found is None:
            return None
        rows, cand = found
        counts = cand.sum(0)
        for cols in _chunks(counts):
            kc = int(counts[cols].max())
            if kc == 0:
                continue
            idx, valid = _compact_rows(cand[:, cols], counts[cols], kc)
            if rows is not None:
                idx = rows[idx]
            cols = cols + c0
            S = _float_exact_scores(Kf, Ke, Q[:, :, cols], Qe[cols], idx, valid, b, F, L, Ls)
            if S is None:
                if Kt is None and int(counts.sum()) >= T:
                    Kt = K.permute(2, 0, 1).to(torch.float64)
                S = _carry_floor(exact_scores(_gathered(K, Kt, idx), Q[:, :, cols]), b, Ls)

            def arb_column(k: int, cols=cols, idx=idx, valid=valid) -> np.ndarray:
                return _arb_column(eng, K, Q, int(cols[k]), int(m_full[cols[k]]), idx[:, k], valid[:, k])

            chunks.append(_Chunk(cols, idx, valid, S, m_full[cols], arb_column))
    return HeadPlan(chunks, n)


def _column_candidates(eng: _Engine, Kf, Qc, qpos, m_ref: int, boxes) -> tuple[torch.Tensor | None, torch.Tensor] | None:
    """(rows, cand) for one block of query columns Qc (L, kdim, c) at positions qpos: the
    candidate mask cand over the keys ``rows`` (all T keys for None; else those the block
    bounds kept, :mod:`fast_key_blocks`); None when a score may be out of range."""
    F, L, d = eng.F, eng.P.L, eng.P.model.d
    Qf = _signed_to_float(Qc, eng.b, -F)
    kdim = Qf.shape[0]
    rows = None
    found = None
    if boxes is not None:
        found = kept_keys(Kf, boxes, Qf, qpos, L, d, F, eng.M, _far_exponent(F, m_ref))
    if found is not None:
        rows, causal = found
        Kf = Kf[rows]
    else:
        causal = torch.arange(Kf.shape[0], device=Kf.device).reshape(-1, 1) <= qpos.reshape(1, -1)
    Sf = Kf @ Qf
    Kmax = float(Kf.abs().amax()) if Kf.numel() else 0.0
    coarse = coarse_candidates(Sf, Kmax, Qf, causal, L, d, F, eng.M, m_ref)
    if coarse is not None:
        return rows, coarse
    delta = (Kf.abs() @ Qf.abs()) * _score_error_factor(kdim, L)
    if not scores_in_range(Sf, delta, causal, F, eng.M):
        return None
    return rows, candidate_entries(Sf, delta, causal, d, F, m_ref)


def _float_exact_scores(Kf, Ke, Qc, Qe, idx, valid, b: int, F: int, L: int, Ls: int) -> torch.Tensor | None:
    """Canonical digits (Ls, kc, c) of the candidates' scores (keys idx (kc, c) of the float
    keys Kf (T, kdim), queries Qc (L, kdim, c) as digits) computed in float64, when every valid
    entry is proven exact (:func:`exact_float_entries`); else None.  Invalid (padding) entries
    get 0."""
    Qf = _signed_to_float(Qc, b, -F).T  # (c, kdim)
    Kg = Kf[idx]  # (kc, c, kdim)
    A = (Kg.abs() * Qf.abs().unsqueeze(0)).sum(-1)
    ok = exact_float_entries(A, Ke[idx] + Qe.reshape(1, -1), Qc.shape[1], L)
    if not bool(ok[valid].all()):
        return None
    Sf = torch.where(valid, (Kg * Qf.unsqueeze(0)).sum(-1), 0.0)
    return _exact_float_digits(Sf * (2.0 ** (2 * F)), b, Ls)  # 2^(2F) s: an integer


def softmax_plans(eng: _Engine, plans: list[HeadPlan]) -> None:
    """:func:`fast_softmax.exact_softmax` of every chunk of the given heads, chunks of similar
    size side by side in one call (columns are independent; the heads of one layer of one
    sequence share the causal mask, hence m_ref of :func:`candidate_entries`); fills plan.P."""
    chunks = [(pi, ci, ch) for pi, pl in enumerate(plans) for ci, ch in enumerate(pl.chunks)]
    for pl in plans:
        pl.P = [None] * len(pl.chunks)
    chunks.sort(key=lambda t: t[2].idx.shape[0])
    start = 0
    while start < len(chunks):
        end, width = start + 1, chunks[start][2].idx.shape[1]
        while end < len(chunks):
            kc, w = chunks[end][2].idx.shape[0], chunks[end][2].idx.shape[1]
            if kc * (width + w) > _CHUNK_ENTRIES:
                break
            width += w
            end += 1
        group = [t[2] for t in chunks[start:end]]
        for (pi, ci, _), P in zip(chunks[start:end], _softmax_group(eng, group)):
            plans[pi].P[ci] = P
        start = end


def _softmax_group(eng: _Engine, group: list[_Chunk]) -> list[torch.Tensor]:
    """One exact_softmax over the chunks' columns side by side (rows padded, masked)."""
    if len(group) == 1:
        S, valid, m_full, arbs = group[0].S, group[0].valid, group[0].m_full, [group[0].arb]
        offs = [0]
    else:
        kc = max(ch.idx.shape[0] for ch in group)

        def pad(x: torch.Tensor, rows_dim: int) -> torch.Tensor:
            extra = kc - x.shape[rows_dim]
            if not extra:
                return x
            shape = list(x.shape)
            shape[rows_dim] = extra
            return torch.cat([x, torch.zeros(shape, dtype=x.dtype, device=x.device)], dim=rows_dim)

        S = torch.cat([pad(ch.S, 1) for ch in group], dim=2)
        valid = torch.cat([pad(ch.valid, 0) for ch in group], dim=1)
        m_full = torch.cat([ch.m_full for ch in group])
        offs, o = [], 0
        for ch in group:
            offs.append(o)
            o += ch.idx.shape[1]
        arbs = [ch.arb for ch in group]

    def arb_column(k: int) -> np.ndarray:
        g = max(i for i, o in enumerate(offs) if o <= k)
        vals = arbs[g](k - offs[g])
        out = np.zeros((valid.shape[0],), dtype=object)
        out[: vals.shape[0]] = vals
        return out

    P = exact_softmax(S, valid, eng.P.model.d, eng.P.prec, eng.b, eng.arith.tie, True, m_full, arb_column)
    P = torch.where(valid.unsqueeze(0), P, torch.zeros_like(P))
    return [P[:, : ch.idx.shape[0], o : o + ch.idx.shape[1]] for ch, o in zip(group, offs)]


def finish_head(eng: _Engine, plan: HeadPlan, Vr, v_rows, li, hi, s) -> torch.Tensor:
    """V P on the candidates and the head output's finish (its range check: the reference's
    ``R(V P)`` of head hi)."""
    F, b, L, dev = eng.F, eng.b, eng.P.L, eng.dev
    n, d = plan.n, eng.P.model.d
    L_P = Limbs(b).count(F + 2)
    R = torch.zeros((L + L_P, d, n), dtype=torch.int64, device=dev)
    if v_rows.numel():
        total = sum(int(ch.valid.sum()) for ch in plan.chunks)
        Vt = Vr.permute(2, 0, 1).to(torch.float64) if total >= Vr.shape[2] else None
        for ch, P in zip(plan.chunks, plan.P):
            R[:, v_rows.reshape(-1, 1), ch.cols] = limb_vp(_gathered(Vr, Vt, ch.idx), P, L + L_P)
    names = eng.P.names
    ones = torch.ones((1, 1, n), dtype=torch.bool, device=dev)
    return eng.finish(
        R, eng.affine_shift, eng.M, L, lambda x: x.unsqueeze(0), ones,
        lambda r, c: Location(li, "attention", hi, c + 1, names[r]), F, seq_base=s,
    )


def _chunks(counts: torch.Tensor) -> list[torch.Tensor]:
    """Columns in ascending order of candidate count, cut so that a chunk's padded size
    (its largest count x its columns) stays within _CHUNK_ENTRIES."""
    order = torch.argsort(counts, stable=True)
    cs = counts[order].tolist()
    out, start = [], 0
    while start < len(cs):
        end = start + 1
        while end < len(cs) and max(1, cs[end]) * (end + 1 - start) <= _CHUNK_ENTRIES:
            end += 1
        out.append(order[start:end])
        start = end
    return out


def _compact_rows(cand: torch.Tensor, counts: torch.Tensor, kc: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx (kc, c): each column's candidate key indices in ascending order, padded with 0;
    valid (kc, c): the entries that are candidates) for a (T, c) candidate mask."""
    c = cand.shape[1]
    col, row = torch.nonzero(cand.T, as_tuple=True)  # column-major: by column, then row
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(col.numel(), device=cand.device) - start[col]
    idx = torch.zeros((kc, c), dtype=torch.int64, device=cand.device)
    idx[slot, col] = row
    valid = torch.arange(kc, device=cand.device).reshape(-1, 1) < counts.reshape(1, -1)
    return idx, valid


def score_limbs(eng: _Engine) -> int:
    """Limbs of an exact score (|s| <= M 2^F on the 2^-2F grid)."""
    return Limbs(eng.b).count(eng.P.prec.p - 1 + eng.F + 2)


def _gathered(X: torch.Tensor, Xt: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
    """float64 digits (c, kc, L, r) of the columns idx[i, k] of X (L, r, T), or of its float64
    transpose Xt (T, L, r) when given."""
    if Xt is not None:
        return Xt[idx.T]
    return X[:, :, idx.T].permute(2, 3, 0, 1).to(torch.float64)


def exact_scores(Kg: torch.Tensor, Qc: torch.Tensor) -> torch.Tensor:
    """Raw digits (2L - 1, kc, c) of the exact scores Kg[k, i]^T Qc[:, :, k] for gathered keys
    Kg (c, kc, L, kdim) (float64 digits).  Each limb pair's sum over kdim is at most kdim
    2^(2b) <= 2^53 (:class:`fast_limbs.Limbs`), so the float64 batched product is exact; the
    limb pairs are added in int64 (the sums of ``fast_products._gemm``, grouped differently)."""
    c, kc, L, kdim = Kg.shape
    Lq = Qc.shape[0]
    Bf = Qc.permute(2, 1, 0).to(torch.float64)  # (c, kdim, Lq)
    C = torch.bmm(Kg.reshape(c, kc * L, kdim), Bf).to(torch.int64).reshape(c, kc, L, Lq)
    return antidiagonal_sums(C.permute(2, 3, 1, 0))


def limb_vp(Vg: torch.Tensor, P: torch.Tensor, L_out: int) -> torch.Tensor:
    """Raw digits (L_out, nr, c) of sum_i Vg[k, i] P[:, i, k] for gathered values Vg
    (c, kc, L, nr) (float64 digits) and probabilities P (Lp, kc, c).  Each limb pair's sum has
    at most kc <= max_len terms below 2^(2b) (exact in float64)."""
    c, kc, L, nr = Vg.shape
    Lp = P.shape[0]
    Bf = P.permute(2, 0, 1).to(torch.float64)  # (c, Lp, kc)
    C = torch.bmm(Bf, Vg.reshape(c, kc, L * nr)).to(torch.int64).reshape(c, Lp, L, nr)
    acc = antidiagonal_sums(C.permute(2, 1, 3, 0))
    if acc.shape[0] < L_out:
        acc = torch.cat([acc, torch.zeros((L_out - acc.shape[0], nr, c), dtype=torch.int64, device=Vg.device)])
    return acc


def antidiagonal_sums(C: torch.Tensor) -> torch.Tensor:
    """R[k] = sum_(a + e = k) C[a, e] for C (La, Le, *shape) int64: raw limb sums of a product
    whose limb pairs were formed separately (one index_add over the flattened pairs)."""
    La, Le = C.shape[0], C.shape[1]
    shape = tuple(C.shape[2:])
    k = (torch.arange(La, device=C.device).reshape(-1, 1) + torch.arange(Le, device=C.device).reshape(1, -1)).reshape(-1)
    R = torch.zeros((La + Le - 1, math.prod(shape)), dtype=torch.int64, device=C.device)
    R.index_add_(0, k, C.reshape(La * Le, -1))
    return R.reshape((La + Le - 1,) + shape)


def _arb_column(eng: _Engine, K, Q, col: int, m: int, rows: torch.Tensor, valid: torch.Tensor) -> np.ndarray:
    """``numerics.softmax_column`` of query ``col``'s whole column (keys 0..m-1, exact scores by
    :func:`fast_products._gemm`), laid out as the compacted rows ``rows`` (masked: 0)."""
    F, b = eng.F, eng.b
    R = _gemm(K[:, :, :m].permute(0, 2, 1), Q[:, :, col : col + 1], b)
    ints = _digits_to_ints(R, b)[:, 0]
    vals = softmax_column([int(v) for v in ints], 2 * F, eng.P.model.d, eng.P.prec, eng.arith.tie)
    arr = np.zeros((rows.numel(),), dtype=object)
    for i, (j, ok) in enumerate(zip(rows.tolist(), valid.tolist())):
        if ok:
            arr[i] = vals[j]
    return arr
