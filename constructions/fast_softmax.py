"""The fast evaluator's softmax operator: float-certified scores and softmax, fixed-point hand-off.

Bit-equal to :func:`constructions.numerics.softmax_column` (the reference's softmax: exact
softmax of the exact scores divided by sqrt(d), rounded to R_p) for every column.

Under ``round_once`` with F <= 45 (p <= 91) a head first works from float64 scores: K and Q
(exact R_p values) are converted to float64 and ``K^T Q`` is one float64 GEMM with a rigorous
error bound ``delta = 1.03 (kdim + 2L) u |K|^T |Q|`` (see :func:`_float_scores_softmax`); a
query column whose scores are all surely inside the range of R_p and whose rounded softmax
certifies from the float scores (the shift by the float column maximum is exact for softmax)
is done; only the other columns get the exact scores (range check, overflow Location,
saturation) and :func:`exact_softmax`.

Exact path (:func:`exact_softmax`): the exact column maximum and the exact gaps
``g_j = s_max - s_j`` are computed on the digits; a column of equal scores is the exact
``div_round(2^F, m)``; otherwise 2^F softmax_j is approximated in float64 with a rigorous
relative error bound (every float operation's error budgeted, see :func:`_float_softmax`), and
an entry is *certified* when the whole error interval lies strictly inside one rounding cell
(entries near 1 use the complement ``2^F * sum_(i != max) e_i / sum e_i``).  A column with any
uncertified entry goes on to fixed point.  Above F = 60 (where float64 certifies almost no soft
entry) columns go to fixed point directly: :mod:`constructions.softmax_fixed` computes every
2^F softmax_j in float64-held 24-bit limbs with a rigorous error bound of about 2^-30, and
certifies an entry when it is farther than that from a rounding midpoint.  Only columns with
an uncertified entry (about one entry in 2^30) are handed to ``numerics.softmax_column`` (arb)
itself, column by column.  Under ``round_once`` a float64 bound ``|K|^T |Q|`` that proves every
score of the head inside the range of R_p lets the exact scores skip the range-checking finish
(:func:`_scores_surely_in_range`).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .fast_limbs import (
    Limbs, _U, _carry_floor, _const_digits, _digits_to_float, _digits_to_ints, _ints_to_digits, _normalize,
    _score_error_factor, _score_limit, _signed_to_float, _split_small, _trim,
)
from .numerics import Precision, div_round, softmax_column
from .softmax_fixed import certified_softmax

_FLOAT_SCORES_MAX_F = 45  # float64 scores can certify roundings of 2^F softmax only for small F
_FLOAT_SOFTMAX_ONLY_F = 60  # above: float64 certifies almost no soft entry; straight to fixed point


def exact_softmax(
    S: torch.Tensor, causal: torch.Tensor, d: int, prec: Precision, b: int, tie: str, canonical: bool = False,
    m_full: torch.Tensor | None = None, arb_column: Callable[[int], np.ndarray] | None = None,
) -> torch.Tensor:
    """P (L_P, T, n): ROUND(softmax(scores[:k+1, k] / sqrt(d))) per query column, exact.
    ``canonical``: S is already in canonical digits (floor carries, signed top digit).

    Compacted columns (:func:`candidate_entries`): ``causal`` marks the entries present in S,
    ``m_full`` (n,) the column's true entry count (the others are proven far: each exp term
    below 2^-(F+66) / m_ref, m_ref >= every m_full here, so they round to 0, and with m_full in
    every bound the budgets of :func:`_float_softmax` (negligible entries) and
    :mod:`softmax_fixed` (far entries, each below its u > 2^-(F+66) / max m_full) cover them), and ``arb_column(k)`` the arb fallback of
    column k (``numerics.softmax_column`` of its whole column, as its present entries)."""
    F, dev = prec.F, S.device
    T, n = causal.shape
    L_P = Limbs(b).count(F + 2)
    canon = S if canonical else _carry_floor(S, b, S.shape[0] + 1)
    # exact column maximum by lexicographic elimination on canonical digits
    cand = causal.clone()
    smax = []
    low = torch.iinfo(torch.int64).min
    for k in range(canon.shape[0] - 1, -1, -1):
        v = torch.where(cand, canon[k], torch.full_like(canon[k], low))
        mx = v.amax(0, keepdim=True)
        smax.append(mx)
        cand = cand & (canon[k] == mx)
    smax = torch.stack(smax[::-1])  # canonical digits of the max, (Lc, 1, n)
    # g = smax - s >= 0 on the causal entries (0 elsewhere): one floor-carry pass gives its
    # canonical digits, all in [0, 2^b)
    gmag = _carry_floor(torch.where(causal, smax - canon, 0), b, canon.shape[0])
    is_max = cand
    m = causal.sum(0) if m_full is None else m_full  # entries per column
    t = is_max.sum(0)
    uniform = t == m
    out = torch.zeros((L_P + 1, T, n), dtype=torch.int64, device=dev)
    certified = uniform.clone()
    # uniform columns: div_round(2^F, m) exactly (the only case with possible ties)
    if bool(uniform.any()):
        ms = sorted(set(m[uniform].tolist()))
        table = {mm: div_round(1 << F, mm, tie) for mm in ms}
        tab = torch.zeros((L_P + 1, len(ms)), dtype=torch.int64, device=dev)
        for i, mm in enumerate(ms):
            tab[:, i] = _const_digits(table[mm], b, L_P + 1, tab[:, :1]).reshape(-1)
        idx = torch.searchsorted(torch.tensor(ms, device=dev), m.clamp(min=1))
        idx = idx.clamp(max=len(ms) - 1)
        vals = tab[:, idx].unsqueeze(1).expand(L_P + 1, T, n)
        sel = (causal & uniform.unsqueeze(0)).unsqueeze(0)
        out = torch.where(sel, vals, out)
    todo = torch.nonzero(~uniform & (m > 0)).flatten()
    if todo.numel() and F <= _FLOAT_SOFTMAX_ONLY_F:
        cols = todo
        cert_cols, direct, comp, use_comp = _float_softmax(
            gmag[:, :, cols], is_max[:, cols], causal[:, cols], d, F, b, m[cols]
        )
        if bool(cert_cols.any()):
            cc = cols[cert_cols]
            dk = direct[:, cert_cols]
            ck = comp[:, cert_cols]
            uc = use_comp[:, cert_cols]
            Ld = L_P + 1
            raw_direct = _split_small(dk, b, Ld)
            pow2F = _const_digits(1 << F, b, Ld, raw_direct)
            raw_comp = pow2F - _split_small(ck, b, Ld)
            raw = torch.where(uc.unsqueeze(0), raw_comp, raw_direct)
            _, mag = _normalize(raw, b)
            out[:, :, cc] = _trim(mag, L_P + 1)
            certified[cc] = True
    todo = ~certified & (m > 0)
    if bool(todo.any()):
        # fixed point (constructions.softmax_fixed), written into `out` in place; the
        # columns it does not certify are overwritten below
        ok = certified_softmax(gmag, b, causal & todo.unsqueeze(0), d, F, 2 * F, out, None if m_full is None else torch.where(todo, m_full, 0))
        if ok is not None:
            certified |= ok & todo
    rest = torch.nonzero(~certified & (m > 0)).flatten().tolist()
    if rest and arb_column is not None:  # compacted: the arb fallback needs the whole column
        for k in rest:
            out[:, :, k] = _ints_to_digits(arb_column(k), b, L_P + 1, dev)
    elif rest:
        ints = _digits_to_ints(S[:, :, rest], b)  # (T, len(rest))
        for i, k in enumerate(rest):
            mk = int(m[k])
            col = softmax_column([int(v) for v in ints[:mk, i]], 2 * F, d, prec, tie)
            arr = np.zeros((T,), dtype=object)
            arr[:mk] = col
            out[:, :, k] = _ints_to_digits(arr, b, L_P + 1, dev)
    return out


def _float_softmax(gmag, is_max, causal, d, F, b, m_full=None):
    """Certified float64 rounding of 2^F softmax for the given columns.

    Inputs: exact gaps g = s_max - s_j as digits (2^-2F grid), the max entries, the mask.
    Error budget (u = 2^-53, all quantities non-negative):
      * float(g): a sum of L exact terms, relative error <= (L - 1) u;
      * c = 2^(-2F) / sqrt(d): sqrt and division rounded (2u), the power of two exact;
      * x = float(g) * c: one more rounding; so |x~ - x| <= (L + 2) u x (1 + 1e-10);
      * e = exp(-x~): libm/SLEEF/CUDA exp are within 1 ulp; we budget 4 ulp = 8u, hence
        rel(e_j) <= eps_j := 1.01 (L + 2) u x_j + 8u (x_j e^(-x_j) bounded, first order);
        the maximum entries have g = 0, e = 1 exactly;
      * S = sum of m non-negative e_j in any order: rel <= max eps + (m - 1) u (1.01);
      * v_j = 2^F e_j / S: one division, 2^F exact: rel <= 1.02 (eps_j + rel(S) + u);
      * underflow of exp (x > 708): absolute error <= 2^-1074, i.e. <= 2^(F - 1070) in v;
      * negligible entries (:func:`_negligible_gap`: x~ (1 - 1e-9) > (F + 40) ln 2 + ln m) have
        v_j < 2^-40 / m: ROUND gives 0, certified; they are left out of S and of the
        complement, whose true values then differ by at most 2^-(F+40) relative (S >= 1) and
        2^-40 absolute (v scale): budgeted as 2^-(F+39) in rel(S) and 2^-39 in the complement.
    Only relative bounds below 1e-6 are used, so the neglected second-order terms are far below
    the 2% slack.  An entry is certified when its interval [v - E, v + E] lies strictly inside
    one rounding cell: |v - rint(v)| < 1/2 - E (rint(v) exact for v < 2^50), giving rint(v).
    For the unique-maximum entry the complement c = 2^F sum_(i != max) e_i / S is used instead
    when it certifies (the result is then 2^F - rint(c), midpoints map to midpoints).
    Returns (column certified?, direct ints, complement ints, use complement?).
    """
    L = gmag.shape[0]
    g = _digits_to_float(gmag, b)
    c = (1.0 / math.sqrt(d)) * 2.0 ** (-2 * F)
    x = g * c
    m = (causal.sum(0) if m_full is None else m_full).to(torch.float64)
    live = causal & ~_negligible_gap(x * (1 - 1e-9), m, F)
    e = torch.where(live, torch.exp(-x), torch.zeros_like(x))
    eps = torch.where(live, 1.01 * (L + 2) * _U * x + 8 * _U, torch.zeros_like(x))
    S = e.sum(0)
    eps_max = eps.amax(0)
    rel_S = 1.01 * (eps_max + (m - 1) * _U) + 2.0 ** -(F + 39)
    scale = 2.0**F
    tiny = 2.0 ** (F - 1070)
    v = scale * e / S
    rel_v = 1.02 * (eps + rel_S + _U)
    E = v * rel_v * (1 + 1e-9) + tiny
    ok_v, k_v = _certify(v, E, rel_v)
    # complement for the unique maximum
    t = is_max.sum(0)
    others = torch.where(is_max, torch.zeros_like(e), e)
    T_ = others.sum(0)
    eps_oth = torch.where(is_max, torch.zeros_like(eps), eps).amax(0)
    rel_T = 1.01 * (eps_oth + (m - 2).clamp(min=0) * _U)
    cv = scale * T_ / S
    rel_c = 1.02 * (rel_T + rel_S + _U)
    Ec = cv * rel_c * (1 + 1e-9) + tiny + 2.0**-39
    ok_c, k_c = _certify(cv, Ec, rel_c)
    use_c = is_max & (t == 1).unsqueeze(0) & ok_c.unsqueeze(0) & ~ok_v
    ok = ok_v | use_c | ~causal
    col_ok = ok.all(0)
    return col_ok, torch.where(causal, k_v, torch.zeros_like(k_v)), k_c.unsqueeze(0).expand_as(k_v), use_c


def _negligible_gap(x_low: torch.Tensor, m: torch.Tensor, F: int) -> torch.Tensor:
    """Entries whose true scaled gap x (score gap / sqrt(d), here a lower bound ``x_low``)
    exceeds (F + 40) ln 2 + ln m: e^(-x) < 2^-(F+40) / m, so 2^F softmax < 2^-40 / m (the sum
    of the exponentials is >= 1, the maximum's): ROUND gives 0, and all of them together hold
    less than 2^-40 of the column's mass on the 2^F scale."""
    return x_low > (F + 40) * math.log(2.0) + torch.log(m.clamp(min=1.0))


def _float_scores_softmax(K, Q, causal, d, F, b, M):
    """Certified ROUND(2^F softmax(K^T Q / sqrt(d))) per query column from float64 scores.

    K (L, kdim, T), Q (L, kdim, n): R_p values as signed digits; causal (T, n).  Returns
    (column certified?, (T, n) int64 values, zero where masked).  A column is certified when
    every score is surely within the range of R_p and every entry's error interval lies inside
    one rounding cell; the others need the exact scores.  Error budget (u = 2^-53):
      * Kf, Qf: the reals K 2^-F, Q 2^-F with relative error <= (L - 1) u (same-sign terms);
      * Sf = fl(Kf^T Qf): |Sf - s| <= delta := 1.03 (kdim + 2L) u (|Kf|^T |Qf|) (any GEMM
        summation order: gamma_kdim, plus the input errors, plus the rounding of |Kf|^T |Qf|);
      * range: |Sf| + delta < (M / 2^F)(1 - 4u) proves |s| <= M 2^-F (the check of the scores);
      * y~ = fl(fl(Sf - Sf_max) * fl(1 / sqrt(d))) approximates y = (s - Sf_max) / sqrt(d), a
        shift by the constant Sf_max, which softmax ignores: |y~ - y| <= a := 1.01 (delta /
        sqrt(d) + 4u |y~|);
      * e = exp(y~) (4 ulp budget): relative error vs exp(y) <= eps := 1.01 a + 8u for a <= 1e-7
        (columns with a larger a are left to the exact path);
      * S = sum e (m - 1 roundings of non-negative terms): |S~ - S| <= 1.01 (sum e eps + (m - 1) u S~);
      * v = 2^F e / S, complement 2^F sum_(i != i0) e_i / S for one entry i0 (the float argmax),
        certified as in :func:`_float_softmax`;
      * negligible entries: the true gap to the float argmax i0 is at least -(y~ + a + a_i0)
        (the true S is >= exp(y_i0) >= exp(-a_i0)); where that exceeds the threshold of
        :func:`_negligible_gap` the entry is certified 0 and left out of S (budget as there).
    """
    L, kdim = K.shape[0], K.shape[1]
    Kf = _signed_to_float(K, b, -F).T  # (T, kdim)
    Qf = _signed_to_float(Q, b, -F)  # (kdim, n)
    Sf = Kf @ Qf
    delta = (Kf.abs() @ Qf.abs()) * _score_error_factor(kdim, L)
    return _certify_float_scores(Sf, delta, causal, d, F, M)


def _certify_float_scores(Sf: torch.Tensor, delta: torch.Tensor, causal: torch.Tensor, d: int, F: int, M: int):
    """The rest of :func:`_float_scores_softmax` from the float scores Sf (T, n) and their error
    bounds delta, column by column (the batched decode step stacks one column per sequence)."""
    T, n = causal.shape
    bound = _score_limit(M, F)
    in_range = ((Sf.abs() + delta) < bound) | ~causal
    neg_inf = torch.full_like(Sf, -math.inf)
    Sm = torch.where(causal, Sf, neg_inf)
    smax, i0 = Sm.max(0)
    c = 1.0 / math.sqrt(d)
    y = torch.where(causal, (Sf - smax) * c, neg_inf)
    a = torch.where(causal, 1.01 * (delta * c + 4 * _U * y.abs()), torch.zeros_like(Sf))
    m = causal.sum(0).to(torch.float64)
    ar = torch.arange(n, device=Sf.device)
    neg = causal & _negligible_gap(-(y + a + a[i0, ar]), m, F)
    small_a = ((a <= 1e-7) | neg).all(0)
    e = torch.where(neg, torch.zeros_like(y), torch.exp(y))  # 0 where masked or negligible
    eps = 1.01 * a + 8 * _U
    S = e.sum(0)
    rel_S = 1.01 * ((e * eps).sum(0) / S + (m - 1) * _U) + 2.0 ** -(F + 39)
    scale = 2.0**F
    tiny = 2.0 ** (F - 1070)
    v = scale * e / S
    rel_v = 1.02 * (eps + rel_S + _U)
    ok_v, vals = _certify(v, v * rel_v * (1 + 1e-9) + tiny, rel_v)  # 0 where masked (v = 0)
    ok_v = ok_v | ~causal | neg
    cols_ok = ok_v.all(0)
    if not bool(cols_ok.all()):
        # complement for i0 (entries near 2^F): 2^F - 2^F sum_(i != i0) e_i / S
        others = e.clone()
        others[i0, ar] = 0.0
        T_ = others.sum(0)  # summed directly: m - 2 roundings of non-negative terms
        rel_T = 1.01 * ((others * eps).sum(0) / torch.where(T_ > 0, T_, torch.ones_like(T_)) + (m - 2).clamp(min=0) * _U)
        cv = scale * T_ / S
        rel_c = 1.02 * (rel_T + rel_S + _U)
        ok_c, k_c = _certify(cv, cv * rel_c * (1 + 1e-9) + tiny + 2.0**-39, rel_c)
        use = ok_c & ~ok_v[i0, ar]
        vals[i0[use], ar[use]] = (1 << F) - k_c[use]
        ok_v[i0[use], ar[use]] = True
        cols_ok = ok_v.all(0)
    ok = cols_ok & in_range.all(0) & small_a
    return ok, vals


def _scores_surely_in_range(K: torch.Tensor, Q: torch.Tensor, causal: torch.Tensor, F: int, b: int, M: int) -> bool:
    """True when every causal score |K^T Q| (exact, on the 2^-2F grid) is proven below the
    largest magnitude M 2^-F of R_p: the float64 GEMM of |K~|^T |Q~| (reals with relative
    error <= (L - 1) u each, same-sign digit sums) is within 1.03 (kdim + 2L) u of sum |K| |Q|
    >= |K^T Q| (as in :func:`_float_scores_softmax`); ``1 - 4u`` covers the float of M 2^-F."""
    L, kdim = K.shape[0], K.shape[1]
    if causal.numel() == 0:
        return True
    Ka = _signed_to_float(K, b, -F).abs().T
    Qa = _signed_to_float(Q, b, -F).abs()
    ub = (Ka @ Qa) * (1 + _score_error_factor(kdim, L))
    return bool(torch.where(causal, ub, torch.zeros_like(ub)).amax() < _score_limit(M, F))


def _certify(v: torch.Tensor, E: torch.Tensor, rel: torch.Tensor):
    k = torch.round(v)
    dist = (v - k).abs()
    ok = (v < 2.0**50) & (rel < 1e-6) & ((0.5 - dist) * (1 - 1e-12) > E) & torch.isfinite(v)
    return ok, torch.where(ok, k, torch.zeros_like(k)).to(torch.int64)
