"""Multi-limb integer tensors of the fast evaluator: digits, carries, rounding, the word path.

A tensor of scaled integers is held as ``int64`` *signed digits* ``D`` of shape ``(L, *shape)``:
``x = sum_k D[k] * 2^(b k)`` with ``|D[k]| < 2^b`` and every digit carrying the sign of ``x``
(sign-magnitude).  The limb width ``b`` of a pass is chosen with ``2 b + ceil(log2 n_max) <= 53``
for its largest inner dimension ``n_max`` (:class:`Limbs`) so that float64 GEMMs of digits are
exact (:mod:`constructions.fast_products`).  Carries are propagated digit by digit (vectorized
over all entries), and the rounding of A.2 (ties even / away, from the floor digits: the half
bit, a sticky bit and the sign, :func:`_round_raw`) and the range check are done on the digits:
exact, no Python loop over entries.  Each function here is checkable against
:func:`constructions.numerics.div_round` (the reference's rounding) on Python ints.

For R_p values with p <= 61 the rounding and range check run on one int64 word per entry
instead (:func:`_finish_word`: the limb sums are combined modulo 2^64, which is exact once a
rigorously bounded float64 estimate shows |value| < 2^62; larger estimates are certain
overflows).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .errors import EvaluatorError

_MAX_LIMBS = 200  # raw limb sums stay below 2^53 * 200 < 2^62 (int64 carries)

_MIN_LIMB_BITS = 8

_CHUNK = 8192  # entries per cache-sized chunk of multi-limb finishing passes

_U = 2.0**-53  # unit roundoff of float64


def _score_error_factor(kdim: int, L: int) -> float:
    """c with |fl(K^T Q) - K^T Q| <= c |K|^T |Q| for float64 keys and queries read from L-limb
    digits (relative error (L - 1) u each) in a kdim-term GEMM of any order: (kdim + 2L) u,
    with 3% slack for the rounding of the bound itself (fast_softmax._float_scores_softmax)."""
    return 1.03 * (kdim + 2 * L) * _U


def _score_limit(M: int, F: int) -> float:
    """A float64 bound below which a score's magnitude is proven <= M 2^-F (the R_p range),
    with 4u of slack for the bound's own rounding."""
    return float(M) * 2.0**-F * (1 - 4 * _U)




@dataclass(frozen=True)
class Limbs:
    """Limb width ``b`` for one pass, chosen from the largest inner dimension ``n_max``.

    Invariant used for exactness: ``2 b + ceil(log2 n_max) <= 53`` so that every entry of a
    float64 GEMM of digits (``|digit| < 2^b``) is an integer below 2^53.
    """

    b: int

    @property
    def mask(self) -> int:
        return (1 << self.b) - 1

    @staticmethod
    def for_inner_dim(n_max: int, p: int) -> "Limbs":
        log_n = max(1, math.ceil(math.log2(max(n_max, 2))))
        b = min((53 - log_n) // 2, 24)
        if b < _MIN_LIMB_BITS:
            raise EvaluatorError(
                f"FastEvaluator at p = {p}: an inner dimension of {n_max} needs limbs of {b} bits "
                f"(2b + log2(n) <= 53 for exact float64 GEMMs); it needs inner dimensions below "
                f"2^{53 - 2 * _MIN_LIMB_BITS}: use the ReferenceEvaluator"
            )
        return Limbs(b)

    def count(self, bits: int) -> int:
        """Limbs for magnitudes below 2^bits."""
        return max(1, -(-bits // self.b))


def _carry_floor(R: torch.Tensor, b: int, L_out: int) -> torch.Tensor:
    """Canonical digits of sum_k R[k] 2^(bk): digits in [0, 2^b) except the signed top one."""
    mask = (1 << b) - 1
    out = torch.empty((L_out,) + tuple(R.shape[1:]), dtype=torch.int64, device=R.device)
    carry = None
    for k in range(L_out):
        if k < R.shape[0]:
            t = R[k] if carry is None else R[k] + carry
        else:
            t = carry if carry is not None else torch.zeros_like(R[0])
        if k == L_out - 1:
            out[k] = t
            break
        carry = t >> b
        torch.bitwise_and(t, mask, out=out[k])
    return out


def _normalize(R: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(negative?, magnitude digits in [0, 2^b)) of sum_k R[k] 2^(bk); |R| < 2^62."""
    L_out = R.shape[0] + 63 // b + 1
    canon = _carry_floor(R, b, L_out)
    neg = canon[-1] < 0
    mag = _carry_floor(torch.where(neg, -R, R), b, L_out)
    return neg, mag


def _trim(mag: torch.Tensor, L: int) -> torch.Tensor:
    if mag.shape[0] >= L:
        return mag[:L]
    pad = torch.zeros((L - mag.shape[0],) + tuple(mag.shape[1:]), dtype=mag.dtype, device=mag.device)
    return torch.cat([mag, pad])


def _round_raw(R: torch.Tensor, shift: int, b: int, tie: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(negative?, canonical magnitude digits) of ROUND(V / 2^shift), V = sum_k R[k] 2^(bk),
    |R[k]| < 2^62 (A.2's nearest, ties even / away, as ``numerics.div_round``).

    One floor-carry pass gives V's digits D (in [0, 2^b), the top one signed: V = q 2^shift + r
    with q = floor(V / 2^shift) read off the shifted digits and 0 <= r < 2^shift).  Nearest,
    ties even: q + 1 iff r > 2^(shift-1) or (r = 2^(shift-1) and q odd); ties away from zero:
    q + 1 iff r >= 2^(shift-1) and V >= 0 (q >= 0), or r > 2^(shift-1) (for V < 0 the tie goes to
    q, away from zero).  Both rules are symmetric in the sign (rounding |V| gives the same).
    The magnitude of a negative result is taken on the (shorter) rounded digits."""
    L_c = R.shape[0] + 63 // b + 1
    D = _carry_floor(R, b, L_c)
    if shift:
        a, c = divmod(shift, b)
        if a >= L_c:  # |V| < 2^(b L_c) <= 2^shift ... keep the general path simple
            D = _carry_floor(D, b, a + 2)
            L_c = a + 2
        mask = (1 << b) - 1
        ha, hc = divmod(shift - 1, b)
        half = ((D[ha] >> hc) & 1).bool()
        sticky = (D[ha] & ((1 << hc) - 1)) != 0
        if ha > 0:
            sticky = sticky | (D[:ha] != 0).any(0)
        Lq = L_c - a
        Q = torch.empty((Lq + 1,) + tuple(D.shape[1:]), dtype=torch.int64, device=D.device)
        for i in range(Lq):
            lo = D[i + a] >> c if c else D[i + a]
            if c and i + a + 1 < L_c:
                lo = (lo & (mask >> c)) | ((D[i + a + 1] << (b - c)) & mask)
            Q[i] = lo
        Q[Lq] = Q[Lq - 1] >> b  # sign extension of the top (signed) digit
        Q[Lq - 1] = Q[Lq - 1] & mask
        if tie == "even":
            inc = half & (sticky | (Q[0] & 1).bool())
        else:
            inc = half & (sticky | (Q[Lq] >= 0))
        Q[0] += inc.to(torch.int64)
        D = _carry_floor(Q, b, Lq + 1)
    neg = D[-1] < 0
    if bool(neg.any()):
        mag = _carry_floor(torch.where(neg, -D, D), b, D.shape[0])
    else:
        mag = D
    return neg, mag


def _gt_const(mag: torch.Tensor, const: int, b: int) -> torch.Tensor:
    """mag > const (exact, lexicographic on canonical magnitude digits)."""
    L = mag.shape[0]
    if const >> (b * L):
        return torch.zeros(mag.shape[1:], dtype=torch.bool, device=mag.device)
    mask = (1 << b) - 1
    gt = torch.zeros(mag.shape[1:], dtype=torch.bool, device=mag.device)
    eq = torch.ones(mag.shape[1:], dtype=torch.bool, device=mag.device)
    for k in range(L - 1, -1, -1):
        ck = (const >> (b * k)) & mask
        gt = gt | (eq & (mag[k] > ck))
        eq = eq & (mag[k] == ck)
    return gt


def _const_digits(value: int, b: int, L: int, like: torch.Tensor) -> torch.Tensor:
    """Signed digits of one Python int, shaped (L, 1, ..., 1) to broadcast against ``like``."""
    mag, sgn = abs(value), (-1 if value < 0 else 1)
    digs = [sgn * ((mag >> (b * k)) & ((1 << b) - 1)) for k in range(L)]
    if mag >> (b * L):
        raise EvaluatorError("internal: constant does not fit its limbs")
    shape = (L,) + (1,) * (like.dim() - 1)
    return torch.tensor(digs, dtype=torch.int64, device=like.device).reshape(shape)


def _nonzero_limbs(D: torch.Tensor) -> list[int]:
    if D.numel() == 0:
        return []
    return torch.nonzero(D.reshape(D.shape[0], -1).any(1)).flatten().tolist()


def _signed(neg: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
    return torch.where(neg, -mag, mag)


def _digits_to_ints(D: torch.Tensor, b: int) -> np.ndarray:
    """Signed digits (L, *shape) -> numpy object array of Python ints."""
    D = D.cpu()
    L = D.shape[0]
    group = max(1, 62 // b)
    out = None
    for start in range(((L - 1) // group) * group, -1, -group):
        chunk = torch.zeros(D.shape[1:], dtype=torch.int64)
        for k in range(min(L, start + group) - 1, start - 1, -1):
            chunk = (chunk << b) + D[k]
        arr = chunk.numpy().astype(object)
        out = arr if out is None else (out << (b * group)) + arr
    if out is None:
        return np.zeros(D.shape[1:], dtype=object)
    return out


def _ints_to_digits(arr: np.ndarray, b: int, L: int, device: torch.device) -> torch.Tensor:
    """Numpy array of Python ints -> signed digits (L, *shape)."""
    arr = np.asarray(arr, dtype=object)
    try:
        a64n = arr.astype(np.int64)
        if arr.size and (int(a64n.max()) >= 1 << 62 or int(a64n.min()) <= -(1 << 62)):
            raise OverflowError
        a64 = torch.from_numpy(a64n).to(device)
        neg = a64 < 0
        mag = a64.abs()
        if b * L < 62 and arr.size and bool(((mag >> (b * L)) != 0).any()):
            raise EvaluatorError("internal: value does not fit its limbs")
        return _signed(neg, torch.stack([(mag >> (b * k)) & ((1 << b) - 1) for k in range(L)]))
    except OverflowError:
        pass
    sgn = np.where(arr < 0, -1, 1).astype(object)
    mag = np.abs(arr)
    mask = (1 << b) - 1
    digs = [torch.from_numpy(((mag >> (b * k)) & mask).astype(np.int64)) for k in range(L)]
    if any(int(v) >> (b * L) for v in mag.reshape(-1)):
        raise EvaluatorError("internal: value does not fit its limbs")
    D = torch.stack(digs).to(device)
    return D * torch.from_numpy(sgn.astype(np.int64)).to(device)


def _digits_to_float(mag: torch.Tensor, b: int) -> torch.Tensor:
    """float64 value of non-negative digits (relative error <= (L - 1) u: a sum of L exact terms)."""
    out = torch.zeros(mag.shape[1:], dtype=torch.float64, device=mag.device)
    for k in range(mag.shape[0] - 1, -1, -1):
        out = out + mag[k].to(torch.float64) * (2.0 ** (b * k))
    return out


def _signed_to_float(D: torch.Tensor, b: int, exp2: int) -> torch.Tensor:
    """float64 of 2^exp2 sum_k D[k] 2^(bk) for signed digits of one sign per entry (so the terms
    never cancel): relative error <= (L - 1) u, every term exact (|D[k]| < 2^b, b <= 24)."""
    out = torch.zeros(D.shape[1:], dtype=torch.float64, device=D.device)
    for k in range(D.shape[0] - 1, -1, -1):
        out = out + D[k].to(torch.float64) * (2.0 ** (b * k + exp2))
    return out


def _lsb_exponent(D: torch.Tensor, b: int, exp2: int) -> torch.Tensor:
    """float64 (cols,): the exponent of the lowest set bit of each column's values, the min over
    the rows r of ``2^exp2 sum_k D[k, r, col] 2^(bk)`` (signed digits of one sign per entry,
    |D[k]| < 2^b), +inf for an all-zero column.  Every value of the column is then an integer
    multiple of 2^(that exponent)."""
    v = D.abs()
    low = v & (-v)  # the lowest set bit of each digit (0 for a zero digit)
    ctz = torch.frexp(low.to(torch.float64)).exponent.to(torch.float64) - 1  # exact: powers of two
    k = torch.arange(D.shape[0], device=D.device, dtype=torch.float64).reshape((-1,) + (1,) * (D.dim() - 1))
    e = torch.where(low > 0, ctz + b * k + exp2, torch.full_like(ctz, math.inf))
    return e.reshape(-1, e.shape[-1]).amin(0)


def _exact_float_digits(x: torch.Tensor, b: int, L: int) -> torch.Tensor:
    """Canonical digits (L, *shape) (floor carries, signed top) of float64 values that are
    integers (exactly): d_k = floor(x 2^-bk) - 2^b floor(x 2^-b(k+1)), every operation exact
    (power-of-two scalings, floors of floats, a difference in [0, 2^b))."""
    q = [torch.floor(x * (2.0 ** (-b * k))) for k in range(L)]
    out = [q[k] - q[k + 1] * float(1 << b) for k in range(L - 1)] + [q[L - 1]]
    return torch.stack(out).to(torch.int64)


def _split_small(v: torch.Tensor, b: int, L: int) -> torch.Tensor:
    """Digits of non-negative int64 values."""
    return torch.stack([(v >> (b * k)) & ((1 << b) - 1) for k in range(L)])


def _word_values(D: torch.Tensor, b: int) -> torch.Tensor | None:
    """int64 values of signed digits (one sign per entry) when every value is provably below
    2^62: b (top - 1) + bits of the largest top digit <= 62 (else None).  The Horner steps stay
    below the final magnitude (all digits of an entry share its sign)."""
    nz = _nonzero_limbs(D)
    top = nz[-1] + 1 if nz else 1
    if D[0].numel() and b * (top - 1) + int(D[top - 1].abs().max()).bit_length() > 62:
        return None
    v = torch.zeros(D.shape[1:], dtype=torch.int64, device=D.device)
    for k in range(top - 1, -1, -1):
        v = v * (1 << b) + D[k]
    return v


def _finish_word(R: torch.Tensor, shift: int, bound: int, b: int, tie: str):
    """ROUND(V / 2^shift) and its range check in one int64 word, V = sum_k R[k] 2^(bk).

    For bounds below 2^61 (R_p values with p <= 61).  A float64 estimate with a rigorous error
    bound decides whether |V / 2^shift| < 2^62; then the wrapped (mod 2^64) int64 evaluation
    below is the exact value.  Entries with a larger estimate overflow for certain.  Returns
    None (use the limb path) if an entry is ambiguous (massive cancellation between limbs).
      H  = sum_(bk >= s) R_k 2^(bk - s) + sum_(bk < s) floor(R_k / 2^(s - bk))   (mod 2^64)
      Rm = sum_(bk < s) (R_k mod 2^(s - bk)) 2^(bk)   in [0, K 2^s), exact
      floor(V / 2^s) = H + floor(Rm / 2^s),  V mod 2^s = Rm mod 2^s.
    """
    K = R.shape[0]
    # cheap global bound first: sum_k max|R_k| 2^(bk - s) < 2^61 means every entry is safe
    amax = R.reshape(K, -1).abs().amax(1).tolist() if R.numel() else [0] * K
    if sum(float(a) * 2.0 ** (b * k - shift) for k, a in enumerate(amax)) < 2.0**61:
        sure_over = torch.zeros(R.shape[1:], dtype=torch.bool, device=R.device)
        est = None
    else:
        Rf = R.to(torch.float64)
        w = torch.tensor([2.0 ** (b * k - shift) for k in range(K)], dtype=torch.float64, device=R.device)
        w = w.reshape((K,) + (1,) * (R.dim() - 1))
        est = (Rf * w).sum(0)
        err = (Rf.abs() * w).sum(0) * (2 * K * _U) + 4.0
        safe = est.abs() + err < 2.0**62
        sure_over = est.abs() - err > float(bound) + 2.0
        if not bool((safe | sure_over).all()):
            return None
    H = torch.zeros(R.shape[1:], dtype=torch.int64, device=R.device)
    Rm = torch.zeros_like(H)
    for k in range(K):
        sh = b * k - shift
        if sh >= 0:
            if sh < 64:
                H += R[k] << sh
        else:
            H += R[k] >> (-sh)
            Rm += (R[k] & ((1 << (-sh)) - 1)) << (b * k)
    if shift:
        q = H + (Rm >> shift)
        rem = Rm & ((1 << shift) - 1)
        half = ((rem >> (shift - 1)) & 1).bool()
        sticky = (rem & ((1 << (shift - 1)) - 1)) != 0
        if tie == "even":
            inc = half & (sticky | (q & 1).bool())
        else:
            inc = half & (sticky | (q >= 0))
        q = q + inc.to(torch.int64)
    else:
        q = H
    over = q.abs() > bound
    if est is not None:
        over = over | sure_over
        q = torch.where(sure_over, torch.where(est < 0, -bound - 1, bound + 1), q)  # keep the sign
    return q, over


def _add_raw(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    L = max(A.shape[0], B.shape[0])
    shape = torch.broadcast_shapes(A.shape[1:], B.shape[1:])
    out = torch.zeros((L,) + tuple(shape), dtype=torch.int64, device=A.device)
    out[: A.shape[0]] += A
    out[: B.shape[0]] += B
    return out


def _shift_left_raw(R: torch.Tensor, shift: int, b: int) -> torch.Tensor:
    """Raw digits of (value * 2^shift)."""
    neg, mag = _normalize(R, b)
    a, c = divmod(shift, b)
    out = torch.zeros((mag.shape[0] + a + 1,) + tuple(mag.shape[1:]), dtype=torch.int64, device=R.device)
    out[a : a + mag.shape[0]] += (mag << c) & ((1 << b) - 1)
    out[a + 1 : a + 1 + mag.shape[0]] += mag >> (b - c) if c else 0
    return _signed(neg, out)


def _shifted_small(v: torch.Tensor, shift: int, b: int, L: int) -> torch.Tensor:
    """Signed digits of v * 2^shift for small int64 v (|v| < 2^40)."""
    neg = v < 0
    raw = _split_small(v.abs(), b, 3)
    a, c = divmod(shift, b)
    out = torch.zeros((max(L, a + 5),) + tuple(v.shape), dtype=torch.int64, device=v.device)
    out[a : a + 3] += raw << c
    _, mag = _normalize(out, b)
    return _signed(neg, _trim(mag, L))


def _finish_ints(R: torch.Tensor, shift: int, bound: int, b: int, L_out: int, tie: str) -> torch.Tensor | None:
    """Signed digits (L_out, *shape) of ROUND(V / 2^shift), V = sum_k R[k] 2^(bk), in Python
    ints: for the few entries of a decode step on the CPU, where a few list passes beat ~100
    tensor operations.  The rounding is :func:`numerics.div_round`'s (floor, remainder, the tie
    rule), written out per list so that no Python call is made per entry.  None when some
    |q| > bound (the caller's tensor path then clips and reports it)."""
    shape = tuple(R.shape[1:])
    rows = R.reshape(R.shape[0], -1).tolist()
    if not rows or not rows[0]:
        return torch.zeros((L_out,) + shape, dtype=torch.int64, device=R.device)
    vs = rows[0]
    for k in range(1, len(rows)):
        bk = b * k
        vs = [v + (r << bk) for v, r in zip(vs, rows[k])]
    if shift:
        half, low = 1 << (shift - 1), (1 << shift) - 1
        if tie == "even":  # q = floor + 1 when the remainder is above half, or at half with an odd floor
            qs = [(v >> shift) + ((v & low) > half or ((v & low) == half and (v >> shift) & 1)) for v in vs]
        else:  # at half: away from zero (up exactly when the floor is >= 0)
            qs = [(v >> shift) + ((v & low) > half or ((v & low) == half and v >= 0)) for v in vs]
    else:
        qs = vs
    mags = [abs(q) for q in qs]
    if max(mags) > bound:
        return None
    mask = (1 << b) - 1  # numpy from lists: a few times faster than torch.tensor(list)
    digits = torch.from_numpy(np.array([[(m >> (b * k)) & mask for m in mags] for k in range(L_out)], dtype=np.int64))
    neg = torch.from_numpy(np.array([q < 0 for q in qs], dtype=np.bool_))
    return torch.where(neg, -digits, digits).to(R.device).reshape((L_out,) + shape)
