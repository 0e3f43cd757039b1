"""Certified ROUND(2^F softmax(s / sqrt(d))) in vectorized fixed point: the fast evaluator's
softmax for large p (F = (p-1)/2 fractional bits, where float64 cannot certify).

The specification is :func:`constructions.numerics.softmax_column` (exact softmax of the exact
scores divided by sqrt(d), rounded to R_p).  This module computes, for many columns at once, an
approximation ``v~`` of every entry ``v_j = 2^F softmax_j`` together with a *rigorous* bound
``err`` on ``|v~ - v_j|``; an entry is certified when ``|frac(v~) - 1/2| > err`` (then the whole
interval [v~ - err, v~ + err] lies inside one rounding cell and ROUND(v_j) = round(v~); no tie
can be certified, so the tie rule never matters here).  A column is returned as certified only
when all its entries are; the caller sends the others to ``numerics.softmax_column``.

Inputs: the exact gaps ``g_j = s_max - s_j >= 0`` as integers (real gap ``y_j = g_j / 2^shift``,
``shift = 2F`` for R_p scores), held as canonical base-2^b digits (the fast evaluator's format).

Fixed-point numbers
-------------------
A number is a set of *limbs* ``X[t]`` (float64 tensors holding integers), value
``sum_t X[t] 2^(-24 t)``.  After a carry pass (``floor`` based, exact) every limb but the top
one lies in [0, 2^24).  A product keeps the columns ``t <= last + 1`` of the limb convolution
(each column a sum of at most 32 products below 2^48 plus a carry, so exact in float64: this is
checked for every operation when the plan is made), propagates carries and drops the guard
column ``last + 1``.  Its truncation error is at most ``sum_(omitted i, j) |A_i| |B_j|
2^(-24 (i + j)) + 2^(-24 last)`` with the per-limb bounds of the operands (:class:`_Bnd`).

The exponential
---------------
With ``u = 2^(-24 L)`` (L fraction limbs, ``24 L >= F + log2(m_max) + 40``) and c = 1/sqrt(d):
``y = i0 + i1 2^-12 + i2 2^-24 + r`` read off the gap bits (``i0`` integer, ``i1, i2`` 12-bit,
``0 <= r < 2^-24``; r truncated below u, error < u), and
``exp(-c y) = T0[i0] T1[i1] T2[i2] (1 - P'(r))``, ``P'(r) = 1 - exp(-c r)`` by Horner:
``q_D = c_D``, ``q_k = c_k - r q_(k+1)``, ``P' = r q_1`` with ``c_k = c^k / k!``; the series tail is
below ``(c 2^-24)^(D+1) / (D+1)!`` (alternating, decreasing terms), D chosen to make it <= u.
Tables and coefficients are exact floors (arb, python-flint) of the real values at 2^-(24 L)
(clamped below 1, so every table value is < 1): error <= u each.  The error of every step is
propagated with the rule ``|X~ Y~ - X Y| <= e_X |Y| + |X| e_Y + e_X e_Y`` plus the truncation
bound, as exact rationals (:func:`_bound_exp`), giving ``eps_E``: ``|E~_j - exp(-c y_j)| <=
eps_E``.  Entries with ``y >= N0`` are *far*: ``exp(-c y) <= exp(-N0 c) <= u`` (N0 from rational
upper bounds of ln 2 and sqrt(d)); they are not computed, count as 0 and round to 0
(``2^F u < 1/2``).

The division
------------
``S~ = sum_near E~_j`` exactly (limb sums), ``|S~ - S| <= eps_S = m_near eps_E + m_far u`` with
``S = sum_j exp(-c y_j) >= 1`` (the maximum's term is 1).  ``R~ = floor(2^(F+W) / S~) / 2^W``
(exact Python integers, W = 48): ``0 <= 2^F / S~ - R~ < 2^-W``.  ``v~ = trunc(E~_j R~)`` with
truncation bound ``tau``.  Then, as ``E_j <= 1`` and ``S >= 1``,
``|v~ - v_j| <= tau + eps_E R~ + 2^-W + 2^F eps_S / S~``,
evaluated per column in float64 from upward-rounded constants with a relative safety factor
(each float operation errs by at most 2^-53 relatively; 1.001 covers them).  ``frac(v~)`` comes
from two exact 24-bit limbs, so ``|frac - 1/2|`` is exact in float64.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from flint import arb, ctx as _flint_ctx

LIMB = 24
_BASE = float(1 << LIMB)
_INV = 2.0**-LIMB
_W_LIMBS = 2  # R~ = 2^F / S~ kept to 2^-(24 * 2)
_MAX_COLUMN = 1 << 53
_CHUNK = 1 << 14  # entries per cache-sized chunk
_SAFETY = 1.001


# =============================================================================================
# bounds: the same limb structure as the tensors, with magnitudes and errors as exact rationals
# =============================================================================================


@dataclass(frozen=True)
class _Bnd:
    """A fixed-point quantity at plan time: ``limbs`` maps limb index -> bound on |limb| (ints),
    ``val`` bounds |exact value|, ``err`` bounds |computed - exact|."""

    limbs: dict
    val: Fraction
    err: Fraction


def _frac_limbs(first: int, last: int) -> dict:
    return {t: (1 << LIMB) - 1 for t in range(first, last + 1)}


def _product_bound(A: _Bnd, B: _Bnd, last: int, top: int, sub: _Bnd | None = None) -> _Bnd:
    """Bound of ``trunc(A B)`` (or ``trunc(C - A B)`` with ``sub = C``) kept to limb ``last``,
    normalized with its top limb at index ``top``.  Checks every float64 column sum is exact."""
    cols: dict[int, int] = {}
    omitted = Fraction(0)
    for i, a in A.limbs.items():
        for j, b in B.limbs.items():
            t = i + j
            if t > last + 1:
                omitted += Fraction(a * b) / Fraction(2) ** (LIMB * t)
            else:
                cols[t] = cols.get(t, 0) + a * b
    if sub is not None:
        for t, c in sub.limbs.items():
            if t > last + 1:
                raise ValueError("internal: constant finer than the kept limbs")
            cols[t] = cols.get(t, 0) + c
    carry = 0
    for t in range(last + 1, top - 1, -1):
        total = cols.get(t, 0) + carry
        if total >= _MAX_COLUMN:
            raise ValueError("internal: a float64 limb column could exceed 2^53")
        carry = total // (1 << LIMB) + 1
    trunc = omitted + Fraction(1, 1 << (LIMB * last))
    err = A.err * B.val + A.val * B.err + A.err * B.err + trunc
    val = A.val * B.val
    if sub is not None:
        err += sub.err
        val += sub.val
    top_bound = math.ceil((val + err) * Fraction(2) ** (LIMB * top)) + 1
    limbs = {t: (1 << LIMB) - 1 for t in range(top + 1, last + 1)}
    limbs[top] = max(top_bound, 1)
    return _Bnd(limbs, val, err)


# =============================================================================================
# tensors: the same operations
# =============================================================================================


def _product_columns(A: dict, B: dict, last: int) -> dict:
    """Raw columns t <= last + 1 of the limb convolution of A and B (tensors or floats)."""
    cols: dict = {}
    for i, a in A.items():
        for j, b in B.items():
            t = i + j
            if t > last + 1:
                continue
            x = cols.get(t)
            if x is None:
                cols[t] = a * b
            elif isinstance(b, float):
                x.add_(a, alpha=b)
            elif isinstance(a, float):
                x.add_(b, alpha=a)
            else:
                x.addcmul_(a, b)
    return cols


def _carry(cols: dict, last: int, top: int, like: torch.Tensor) -> dict:
    """Floor carries from column last + 1 up to ``top``; the guard column is dropped."""
    for t in range(last + 1, top, -1):
        x = cols.get(t)
        if x is None:
            continue
        c = torch.floor(x * _INV)
        x.add_(c, alpha=-_BASE)
        y = cols.get(t - 1)
        if y is None:
            cols[t - 1] = c
        else:
            y.add_(c)
    out = {}
    for t in range(top, last + 1):
        x = cols.get(t)
        out[t] = x if x is not None else torch.zeros_like(like)
    return out


def _mul(A: dict, B: dict, last: int, top: int, like: torch.Tensor) -> dict:
    return _carry(_product_columns(A, B, last), last, top, like)


def _sub_mul(C: dict, A: dict, B: dict, last: int, top: int, like: torch.Tensor) -> dict:
    """trunc(C - A B), C a constant (floats)."""
    cols = _product_columns(A, B, last)
    for t, x in cols.items():
        x.neg_()
    for t, c in C.items():
        if t in cols:
            cols[t].add_(c)
        else:
            cols[t] = torch.full_like(like, c)
    return _carry(cols, last, top, like)


# =============================================================================================
# the plan: tables, coefficients and error bounds for one (F, d, shift, m_max)
# =============================================================================================


@dataclass(frozen=True)
class _Plan:
    F: int
    d: int
    shift: int
    L: int  # fraction limbs 1..L of E, u = 2^(-24 L)
    N0: int  # near iff y < N0
    D: int  # Horner degree
    T0: torch.Tensor  # (L, N0) limbs 1..L
    T1: torch.Tensor  # (L, 4096)
    T2: torch.Tensor  # (L, 4096)
    coeffs: tuple  # coeffs[k]: dict limb -> float for c~_k (k = 1..D), index 0 unused
    lasts: tuple  # last limb of q_k
    eps_E: float  # |E~ - E| <= eps_E (rounded up)
    u: float
    tau_v: float  # truncation bound of v~ = trunc(E~ R~)
    m_max: int


def _exact_floor(x_fn, scale_bits: int, work: int) -> int:
    """floor(x * 2^scale_bits) for the real x given by ``x_fn()`` (an arb), certified."""
    while True:
        old = _flint_ctx.prec
        _flint_ctx.prec = work
        try:
            q = (x_fn() * arb(2) ** scale_bits).floor().unique_fmpz()
        finally:
            _flint_ctx.prec = old
        if q is not None:
            return int(q)
        work *= 2
        if work > 1 << 16:  # pragma: no cover - exp(-rational) is never a dyadic rational but 1
            raise ValueError("internal: table entry could not be certified")


def _coeff_floor(d: int, k: int, bits: int, work: int) -> int:
    """floor(c^k / k! 2^bits), c = 1/sqrt(d): exact rational arithmetic where c^k is rational
    (k even or d a square; arb cannot certify the floor of an exact dyadic value), else arb."""
    r = math.isqrt(d)
    if k % 2 == 0 or r * r == d:
        den = (d ** (k // 2) if k % 2 == 0 else r**k) * math.factorial(k)
        return (1 << bits) // den
    return _exact_floor(lambda: arb(d).rsqrt() ** k / math.factorial(k), bits, work)


def _limb_rows(values: list[int], L: int) -> torch.Tensor:
    """Integers in units 2^(-24 L), each < 2^(24 L), as an (L, n) float64 tensor of limbs 1..L."""
    mask = (1 << LIMB) - 1
    rows = [[float((v >> (LIMB * (L - t))) & mask) for v in values] for t in range(1, L + 1)]
    return torch.tensor(rows, dtype=torch.float64)


def _exp_table(n: int, step_shift: int, d: int, L: int) -> torch.Tensor:
    """T[i] = min(floor(exp(-i 2^-step_shift / sqrt(d)) 2^(24 L)), 2^(24 L) - 1), i < n."""
    bits = LIMB * L
    top = (1 << bits) - 1
    work = bits + 64
    vals = []
    for i in range(n):
        q = _exact_floor(lambda i=i: (arb(-i) / arb(2) ** step_shift * arb(d).rsqrt()).exp(), bits, work)
        vals.append(min(q, top))
    return _limb_rows(vals, L)


def _split_const(q: int, last: int) -> dict:
    """A non-negative integer in units 2^(-24 last) as limbs 1..last (floats); limb 1 takes
    everything above 2^-24 (c_1 = 1 exactly when d = 1)."""
    mask = (1 << LIMB) - 1
    out = {t: float((q >> (LIMB * (last - t))) & mask) for t in range(2, last + 1)}
    out[1] = float(q >> (LIMB * (last - 1)))
    return out


def _const_bnd(c: dict, val: Fraction, last: int) -> _Bnd:
    """A floored constant (limbs ``c``) of the real value bounded by ``val``: error < 2^(-24 last)."""
    return _Bnd({t: int(v) for t, v in c.items()}, val, Fraction(1) / Fraction(2) ** (LIMB * last))


def _bound_exp(L: int, D: int, lasts: tuple, c_up: Fraction, coeffs: list, coeff_val: list) -> Fraction:
    """eps_E: the error of E~ = T0~ T1~ T2~ - (T0~ T1~ T2~) P'~ against exp(-c y), following the
    tensor code of :func:`_exp_limbs` step by step (same limb sets, same truncations)."""
    u = Fraction(1, 1 << (LIMB * L))
    table = _Bnd(_frac_limbs(1, L), Fraction(1), u)
    r = _Bnd(_frac_limbs(2, L), Fraction(1, 1 << LIMB), u)
    B = _product_bound(table, table, L, 1)
    B = _product_bound(B, table, L, 1)
    q = _const_bnd(coeffs[D], coeff_val[D], lasts[D])
    for k in range(D - 1, 0, -1):
        q = _product_bound(r, q, lasts[k], 1, sub=_const_bnd(coeffs[k], coeff_val[k], lasts[k]))
    Pp = _product_bound(r, q, L, 2)
    tail = (c_up / (1 << LIMB)) ** (D + 1) / math.factorial(D + 1)
    Pp = _Bnd(Pp.limbs, Pp.val, Pp.err + tail)
    # E~ = trunc(B~ - B~ P'~) against B (1 - P'): error e_B + e(B~ P'~), which is this bound
    return _product_bound(B, Pp, L, 1, sub=B).err


@functools.lru_cache(maxsize=32)
def plan(F: int, d: int, shift: int, m_max: int) -> _Plan | None:
    """Tables and bounds for gaps on the 2^-shift grid, width d, columns of <= m_max entries.
    None where the limb arithmetic cannot be exact (very large F or m_max)."""
    if m_max >= 1 << 28 or d < 1:
        return None
    L = -(-(F + m_max.bit_length() + 40) // LIMB)
    if L + 2 > 30:  # column sums of <= 32 products of 24-bit limbs
        return None
    u = Fraction(1, 1 << (LIMB * L))
    sq_up = math.isqrt(d - 1) + 1  # >= sqrt(d)
    c_up = Fraction(1, math.isqrt(d))  # >= 1/sqrt(d)
    # N0 / sqrt(d) >= 24 L ln 2 with ln 2 < 0.6931472: exp(-N0 / sqrt(d)) <= u
    N0 = -(-(LIMB * L * 6931472 * sq_up) // 10**7)
    D = 1
    while (c_up / (1 << LIMB)) ** (D + 1) / math.factorial(D + 1) > u:
        D += 1
    lasts = tuple(max(1, L - k) for k in range(D + 1))
    work = LIMB * L + 64
    coeffs = [None]
    coeff_val = [Fraction(1)]
    for k in range(1, D + 1):
        q = _coeff_floor(d, k, LIMB * lasts[k], work)
        coeffs.append(_split_const(q, lasts[k]))
        coeff_val.append(c_up**k / math.factorial(k))
    eps_E = _bound_exp(L, D, lasts, c_up, coeffs, coeff_val)
    # v~ = trunc(E~ R~): E limbs 1..L (< 2^24 each), R~ limbs from its top down to 2^-(24 W)
    top_R = -((F + 1 + LIMB * _W_LIMBS) // LIMB) + _W_LIMBS  # R~ < 2^(F+1)
    R = _Bnd({t: (1 << LIMB) - 1 for t in range(top_R, _W_LIMBS + 1)}, Fraction(1 << (F + 1)), Fraction(0))
    E = _Bnd(_frac_limbs(1, L), Fraction(1), Fraction(0))
    V = _product_bound(E, R, 2, min(top_R + 1, 0))
    if Fraction(1 << F) * u >= Fraction(1, 4):  # far entries must round to 0 (never here)
        return None
    return _Plan(
        F, d, shift, L, N0, D,
        _exp_table(N0, 0, d, L), _exp_table(4096, 12, d, L), _exp_table(4096, 24, d, L),
        tuple(coeffs), lasts, float(eps_E) * (1 + 2.0**-40), float(u), float(V.err) * (1 + 2.0**-40), m_max,
    )


# =============================================================================================
# bit fields of canonical digits
# =============================================================================================


def _field(D: torch.Tensor, b: int, lo: int, w: int, k0: int = 0) -> torch.Tensor:
    """floor(g / 2^lo) mod 2^w for g = sum_k D[k] 2^(b (k + k0)) (digits in [0, 2^b); the
    digits below k0 may be left out when lo >= b k0), w + b <= 62; ``lo`` may be negative (bits
    below 0 are zero)."""
    out = None
    for k in range(D.shape[0]):
        s = b * (k + k0) - lo
        if s >= w or s + b <= 0:
            continue
        piece = D[k] << s if s >= 0 else D[k] >> (-s)
        out = piece if out is None else out + piece
    if out is None:
        return torch.zeros(D.shape[1:], dtype=torch.int64, device=D.device)
    return out & ((1 << w) - 1)


def _high_zero(D: torch.Tensor, b: int, pos: int, k0: int = 0) -> torch.Tensor:
    """All bits of g (digits as in :func:`_field`) at positions >= pos are zero."""
    ok = torch.ones(D.shape[1:], dtype=torch.bool, device=D.device)
    for k in range(D.shape[0]):
        if b * (k + k0 + 1) <= pos:
            continue
        s = max(0, pos - b * (k + k0))
        ok &= (D[k] >> s) == 0
    return ok


def _int_limbs(values: list[int], t_first: int, t_last: int, dev) -> dict:
    """Non-negative ints in units 2^(-24 t_last), each below 2^(24 (t_last - t_first + 1)), as
    limbs t_first .. t_last (float64 tensors), through their little-endian bytes."""
    n_l = t_last - t_first + 1
    raw = b"".join(v.to_bytes(3 * n_l, "little") for v in values)
    arr = np.frombuffer(raw, dtype=np.uint8).reshape(len(values), n_l, 3).astype(np.float64)
    limbs = torch.from_numpy(arr[:, :, 0] + 256.0 * arr[:, :, 1] + 65536.0 * arr[:, :, 2]).to(dev)
    return {t: limbs[:, t_last - t].contiguous() for t in range(t_first, t_last + 1)}


# =============================================================================================
# the computation
# =============================================================================================


def _exp_limbs(P: _Plan, G: torch.Tensor, b: int, tables, k0: int = 0) -> torch.Tensor:
    """E~ (L, N) for near gaps G (canonical digits from digit k0 on, y < N0): see the module
    docstring."""
    L, sh = P.L, P.shift
    T0, T1, T2 = tables
    i0 = _field(G, b, sh, 36, k0)
    i1 = _field(G, b, sh - 12, 12, k0)
    i2 = _field(G, b, sh - 24, 12, k0)
    like = torch.empty(G.shape[1:], dtype=torch.float64, device=G.device)
    r = {t: _field(G, b, sh - LIMB * t, LIMB, k0).to(torch.float64) for t in range(2, L + 1)}
    a0, a1, a2 = T0[:, i0], T1[:, i1], T2[:, i2]
    A0 = {t: a0[t - 1] for t in range(1, L + 1)}
    A1 = {t: a1[t - 1] for t in range(1, L + 1)}
    A2 = {t: a2[t - 1] for t in range(1, L + 1)}
    B = _mul(A0, A1, L, 1, like)
    B = _mul(B, A2, L, 1, like)
    q = {t: torch.full_like(like, c) for t, c in P.coeffs[P.D].items()}
    for k in range(P.D - 1, 0, -1):
        q = _sub_mul(P.coeffs[k], r, q, P.lasts[k], 1, like)
    Pp = _mul(r, q, L, 2, like)
    cols = _product_columns(B, Pp, L)
    for x in cols.values():
        x.neg_()
    for t, x in B.items():
        if t in cols:
            cols[t].add_(x)
        else:
            cols[t] = x
    E = _carry(cols, L, 1, like)
    return torch.stack([E[t] for t in range(1, L + 1)])


def _to_ints(rows: torch.Tensor) -> list[int]:
    """(L, n) limbs 1..L (integers < 2^24 as float64) -> Python ints in units 2^(-24 L)."""
    acc = [0] * rows.shape[1]
    for t, row in enumerate(rows.to(torch.int64).cpu().tolist()):
        acc = [(a << LIMB) + v for a, v in zip(acc, row)]
    return acc


def certified_softmax(gmag: torch.Tensor, b: int, causal: torch.Tensor, d: int, F: int, shift: int,
                      out: torch.Tensor, m_full: torch.Tensor | None = None) -> torch.Tensor | None:
    """Certified ROUND(2^F softmax) of columns given by their exact gaps.

    gmag (Lg, T, n): canonical base-2^b digits of g = s_max - s >= 0 per entry (any value where
    ``causal`` is False); causal (T, n): the entries of each column (a column with entries has
    its maximum among them, gap 0; columns without entries are left alone).  Writes the values
    of the near entries of every column into ``out`` (L_out, T, n) (int64 base-2^b canonical
    digits; far entries and entries outside ``causal`` are not written: they must be 0 there);
    returns certified? (n,) (False for columns without entries), or None where no plan exists
    (nothing written).  Values written for an uncertified column are meaningless.  ``m_full``:
    each column's true entry count when ``causal`` leaves out entries proven far (compacted
    columns: each left-out term is below u, budgeted as a far entry)."""
    T, n = causal.shape
    dev = gmag.device
    m = causal.sum(0) if m_full is None else m_full
    m_max = max(1, int(m.max())) if n else 1
    P = plan(F, d, shift, 1 << max(0, (m_max - 1).bit_length()))
    if P is None:
        return None
    L = P.L
    tables = tuple(t.to(dev) for t in (P.T0, P.T1, P.T2))
    # near entries (y < N0); only the digits holding bits shift - 24 L .. shift + 36 are read
    Lg = gmag.shape[0]
    flatg = gmag.reshape(Lg, -1)
    k_hi = min(Lg, (shift + 36) // b + 1)
    k_lo = min(k_hi, max(0, (shift - LIMB * L) // b))
    top = flatg[k_lo:]
    near = causal.reshape(-1) & _high_zero(top, b, shift + 36, k_lo) & (_field(top, b, shift, 36, k_lo) < P.N0)
    ent = near.nonzero().flatten()
    G = flatg[k_lo:k_hi, ent]
    col = ent % n
    N = ent.numel()
    E = torch.empty((L, N), dtype=torch.float64, device=dev)
    for s0 in range(0, N, _CHUNK):
        E[:, s0 : s0 + _CHUNK] = _exp_limbs(P, G[:, s0 : s0 + _CHUNK], b, tables, k_lo)
    S = torch.zeros((L, n), dtype=torch.float64, device=dev).index_add_(1, col, E)  # exact: < 2^52
    m_near = torch.zeros((n,), dtype=torch.float64, device=dev).index_add_(
        0, col, torch.ones((N,), dtype=torch.float64, device=dev))
    m_far = m.to(torch.float64) - m_near
    # R~ = floor(2^(F + W) / S~) per column, exact; S~ in units u
    W = LIMB * _W_LIMBS
    S_int = _to_ints(S)
    num = 1 << (F + W + LIMB * L)
    R_int = [num // s if s > 0 else 0 for s in S_int]
    top_R = -((F + 1 + W) // LIMB) + _W_LIMBS
    mask = (1 << LIMB) - 1
    R_rows = _int_limbs(R_int, top_R, _W_LIMBS, dev)
    # per-column error bound (float64, constants rounded up, safety factor for the float ops)
    S_f = torch.tensor([float(s) for s in S_int], dtype=torch.float64, device=dev) * P.u
    R_f = torch.tensor([float(r) for r in R_int], dtype=torch.float64, device=dev) * 2.0**-W
    eps_S = m_near * P.eps_E + m_far * P.u
    err = (P.tau_v + 2.0**-W + P.eps_E * R_f + (2.0**F) * eps_S / S_f) * _SAFETY
    bad_col = ~(S_f > 0.5)  # never (S~ >= 1 - eps): defensive
    ok_ent = torch.empty((N,), dtype=torch.bool, device=dev)
    top_V = min(top_R + 1, 0)  # v~ < 2^(F+1): limbs top_V .. 2, the integer part in top_V .. 0
    n_int = -top_V + 1  # integer limbs t = 0, -1, .., top_V -> digits 2^(24 k), k = 0 .. n_int - 1
    Q = torch.empty((n_int + 1, N), dtype=torch.int64, device=dev)
    for s0 in range(0, N, _CHUNK):
        cs = col[s0 : s0 + _CHUNK]
        Ec = E[:, s0 : s0 + _CHUNK]
        Ed = {t: Ec[t - 1] for t in range(1, L + 1)}
        Rd = {t: R_rows[t][cs] for t in R_rows}
        V = _mul(Ed, Rd, 2, top_V, Ec[0])
        f = (V[1] + V[2] * _INV) * _INV  # exact: 48 bits
        dist = (f - 0.5).abs()
        ok_ent[s0 : s0 + _CHUNK] = dist > err[cs]
        up = (f > 0.5).to(torch.int64)
        for k in range(n_int):
            t = -k
            Q[k, s0 : s0 + _CHUNK] = V[t].to(torch.int64)
        Q[n_int, s0 : s0 + _CHUNK] = 0
        Q[0, s0 : s0 + _CHUNK] += up
    for k in range(n_int):  # the increment's carry (digits of a non-negative integer)
        c = Q[k] >> LIMB
        Q[k] &= mask
        Q[k + 1] += c
    col_ok = ~bad_col
    bad = torch.zeros((n,), dtype=torch.bool, device=dev).index_put_((col[~ok_ent],), torch.tensor(True, device=dev))
    col_ok &= ~bad & (m > 0)
    flat_out = out.view(out.shape[0], T * n)
    for k in range(out.shape[0]):
        flat_out[k, ent] = _field(Q, LIMB, b * k, b)
    return col_ok
