"""The fast evaluator: the reference evaluator's exact semantics, vectorized in torch, batched.

Same bits as :mod:`constructions.evaluate_reference` (read its docstring and
notes/architecture.md for the semantics), for every p, both matmul readings, both tie rules and
both overflow modes; overflows raise the same :class:`PrecisionOverflow` at the same
:class:`Location` (the first one in the reference's evaluation order).

Exact integers beyond 64 bits: multi-limb tensors
-------------------------------------------------
A tensor of scaled integers is held as ``int64`` *signed digits* ``D`` of shape ``(L, *shape)``:
``x = sum_k D[k] * 2^(b k)`` with ``|D[k]| < 2^b`` and every digit carrying the sign of ``x``
(sign-magnitude).  A matrix product ``W X`` is a float64 GEMM of a block-Toeplitz matrix of
W's limbs (``(L_r m) x (g n)``, block ``(r, j) = W[r - j]``) times g stacked limbs of X
(``(g n) x N``), which sums the limb products along anti-diagonals inside the GEMM: every entry
is a sum of at most ``g n`` products of two digits, ``|.| <= g n 2^(2b) <= 2^53``, hence exact
in float64; the limb width ``b`` is chosen with ``2 b + ceil(log2 n_max) <= 53`` for the largest
inner dimension ``n_max`` of the pass (so g >= 1) and groups of g X-limbs are added in int64
(CUDA has no int64 GEMM; float64 is the GPU route too), see :func:`_gemm`.  Carries are
propagated digit by digit (vectorized over all entries, in cache-sized column chunks), and the
rounding of A.2 (ties even / away, from the floor digits: the half bit, a sticky bit and the
sign, :func:`_round_raw`) and the range check are done on the digits: exact, no Python
loop over entries.  Limbs that are zero in a whole operand are skipped, so small weights and
activations cost few limb products.  For R_p values with p <= 61 the rounding and range check
run on one int64 word per entry instead (:func:`_finish_word`: the limb sums are combined
modulo 2^64, which is exact once a rigorously bounded float64 estimate shows
|value| < 2^62; larger estimates are certain overflows).  The representation refuses (EvaluatorError naming p)
where its int64 carries could not hold the values.

Round-each-product reading
--------------------------
Under ``matmul="round_products"`` every scalar product W_ij X_jk is rounded and checked on its
own, so the product tensor (m, n, N) is formed explicitly (in chunks).  When the operands are
below 2^62 this is done in int64 words (:func:`_round_products_word`: one word per product
below 2^62, two 31-bit halves above, F <= 61); otherwise on the limb digits (one carry pass).

Softmax
-------
Under ``round_once`` with F <= 45 (p <= 91) a head first works from float64 scores: K and Q
(exact R_p values) are converted to float64 and ``K^T Q`` is one float64 GEMM with a rigorous
error bound ``delta = 1.03 (kdim + 2L) u |K|^T |Q|`` (see :func:`_float_scores_softmax`); a
query column whose scores are all surely inside the range of R_p and whose rounded softmax
certifies from the float scores (the shift by the float column maximum is exact for softmax)
is done; only the other columns get the exact scores (range check, overflow Location,
saturation) and the path below.  Exact path: each column is ``softmax(scores / sqrt(d))`` rounded to R_p, bit-equal to
:func:`numerics.softmax_column`: the exact column maximum and the exact gaps
``g_j = s_max - s_j`` are computed on the digits; a column of equal scores is the exact
``div_round(2^F, m)``; otherwise 2^F softmax_j is approximated in float64 with a rigorous
relative error bound (every float operation's error budgeted, see :func:`_float_softmax`), and
an entry is *certified* when the whole error interval lies strictly inside one rounding cell
(entries near 1 use the complement ``2^F * sum_(i != max) e_i / sum e_i``).  A column with any
uncertified entry goes on to fixed point.  Above F = 60 (where float64 certifies almost no soft
entry) columns go to fixed point directly: :mod:`constructions.softmax_fixed` computes every
2^F softmax_j in float64-held 24-bit limbs (exp by tables of exp(-i 2^-12k / sqrt(d)) and a short
series, exact column sums, 1/S as an exact Python integer) with a rigorous error bound of about
2^-30, and certifies an entry when it is farther than that from a rounding midpoint.  Only
columns with an uncertified entry (about one entry in 2^30) are handed to
``numerics.softmax_column`` (arb) itself.  Under ``round_once`` a float64 bound
``|K|^T |Q|`` that proves every score of the head inside the range of R_p lets the exact scores
skip the range-checking finish (one carry pass to canonical digits); otherwise the scores are
finished and checked as before (overflow Location, saturation).

Float modes
-----------
``mode="float64" | "float32" | "bfloat16"`` decodes the same weights to reals and runs the same
definitions in that torch dtype with no R_p rounding (softmax with 1/sqrt(d), argmax ties to the
lowest id): a view of what real hardware would do.  The residual is then a float tensor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np
import torch

from .errors import EvaluatorError, Location, PrecisionOverflow, ProofsCheckError, TokenError
from .evaluate_float import _FloatRun, session_next_token
from .evaluate_reference import ForwardResult, _Run, embed, tied_unembed
from .model import FeedForward, Model, TransformerLayer
from .numerics import Arithmetic, Precision, div_round, softmax_column
from .softmax_fixed import certified_softmax
from .vocab import Token

MODES = ("exact", "float64", "float32", "bfloat16")
_FLOAT_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}
_MAX_LIMBS = 200  # raw limb sums stay below 2^53 * 200 < 2^62 (int64 carries)
_MIN_LIMB_BITS = 8
_CHUNK = 8192  # entries per cache-sized chunk of multi-limb finishing passes
_U = 2.0**-53  # unit roundoff of float64
_FLOAT_SOFTMAX_MAX_F = 330  # 2^F, 2^(3F+2) and 2^(-2F) stay normal float64 numbers
_FLOAT_SCORES_MAX_F = 45  # float64 scores can certify roundings of 2^F softmax only for small F
_FLOAT_SOFTMAX_ONLY_F = 60  # above: float64 certifies almost no soft entry; straight to fixed point


# =============================================================================================
# multi-limb integer tensors
# =============================================================================================


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


def _round_mag(mag: torch.Tensor, shift: int, b: int, tie: str) -> torch.Tensor:
    """ROUND(mag / 2^shift) on magnitudes (A.2's nearest, ties even/away; symmetric in sign)."""
    a, c = divmod(shift, b)
    mask = (1 << b) - 1
    if mag.shape[0] <= a + 1:
        mag = _trim(mag, a + 2)
    L = mag.shape[0]
    ha, hc = divmod(shift - 1, b)
    half = ((mag[ha] >> hc) & 1).bool()
    sticky = (mag[ha] & ((1 << hc) - 1)) != 0
    if ha > 0:
        sticky = sticky | (mag[:ha] != 0).any(0)
    q = []
    for i in range(L - a):
        lo = mag[i + a] >> c if c else mag[i + a]
        if c and i + a + 1 < L:
            lo = lo | ((mag[i + a + 1] << (b - c)) & mask)
        q.append(lo)
    q = torch.stack(q) if q else torch.zeros_like(mag[:1])
    if tie == "even":
        inc = half & (sticky | (q[0] & 1).bool())
    else:
        inc = half
    q = torch.cat([q, torch.zeros_like(q[:1])])
    q[0] = q[0] + inc.to(q.dtype)
    return _carry_floor(q, b, q.shape[0])


def _round_raw(R: torch.Tensor, shift: int, b: int, tie: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(negative?, canonical magnitude digits) of ROUND(V / 2^shift), V = sum_k R[k] 2^(bk),
    |R[k]| < 2^62: the same result as ``_normalize`` then ``_round_mag``, with fewer passes.

    One floor-carry pass gives V's digits D (in [0, 2^b), the top one signed: V = q 2^shift + r
    with q = floor(V / 2^shift) read off the shifted digits and 0 <= r < 2^shift).  Nearest,
    ties even: q + 1 iff r > 2^(shift-1) or (r = 2^(shift-1) and q odd); ties away from zero:
    q + 1 iff r >= 2^(shift-1) and V >= 0 (q >= 0), or r > 2^(shift-1) (for V < 0 the tie goes to
    q, away from zero).  Both rules are symmetric in the sign, as _round_mag's rounding of |V|.
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


def _gemm(W: torch.Tensor, X: torch.Tensor, b: int, cache: dict | None = None) -> torch.Tensor:
    """Raw limb sums of W X: W (Lw, m, n), X (Lx, n, N) signed digits (|digit| < 2^b) ->
    (Lr, m, N) int64, R[k] = sum_(i + j = k) W[i] X[j].

    The anti-diagonal sums are formed inside float64 GEMMs: for a group of g consecutive limbs
    of X, the block-Toeplitz matrix ``WT[(r, :), (j, :)] = W[r - j]`` times the stacked limbs
    ``X[j0 : j0 + g]`` (a view, ``(g n) x N``) gives every ``sum_(i + j = r) W[i] X[j]`` of the
    group; each output is a sum of at most ``g n`` products of two digits, so with
    ``g n 2^(2b) <= 2^53`` every partial sum is an integer of magnitude <= 2^53, exact in
    float64 (any summation order).  Groups are added in int64 (|R[k]| <= min(Lw, Lx) 2^53).
    Only the range of non-zero limbs of each operand is used.  ``cache`` (a dict owned by one
    pass) keeps the Toeplitz matrix of a weight that is applied repeatedly (the linear RNN)."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    wi, xi = _nonzero_limbs(W), _nonzero_limbs(X)
    if not wi or not xi or n == 0:
        return torch.zeros((1, m, N), dtype=torch.int64, device=X.device)
    w0, w1, x0, x1 = wi[0], wi[-1], xi[0], xi[-1]
    Lw = w1 - w0 + 1
    g = max(1, (1 << (53 - 2 * b)) // n)  # 2b + log2(n) <= 53 (Limbs) makes g >= 1 exact
    R = torch.zeros((w1 + x1 + 1, m, N), dtype=torch.int64, device=X.device)
    for xs in range(x0, x1 + 1, g):
        xe = min(x1 + 1, xs + g)
        Lg = xe - xs
        key = (id(W), w0, w1, Lg)
        hit = cache.get(key) if cache is not None else None
        if hit is not None and hit[0] is W:
            WT = hit[1]
        else:
            Wf = W[w0 : w1 + 1].to(torch.float64)
            pad = torch.zeros((Lg - 1, m, n), dtype=torch.float64, device=W.device)
            Wp = torch.cat([pad, Wf, pad])
            r = torch.arange(Lw + Lg - 1, device=W.device).reshape(-1, 1)
            j = torch.arange(Lg, device=W.device).reshape(1, -1)
            WT = Wp[r - j + Lg - 1].permute(0, 2, 1, 3).reshape((Lw + Lg - 1) * m, Lg * n)
            if cache is not None:
                cache[key] = (W, WT)
        Xs = X[xs:xe].reshape(Lg * n, N).to(torch.float64)
        out = (WT @ Xs).to(torch.int64).reshape(Lw + Lg - 1, m, N)
        R[w0 + xs : w0 + xe + Lw - 1] += out
    return R


def _elementwise_product(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Raw limb sums of the (broadcast) elementwise product of two signed-digit tensors."""
    ai, bi = _nonzero_limbs(A), _nonzero_limbs(B)
    shape = torch.broadcast_shapes(A.shape[1:], B.shape[1:])
    if not ai or not bi:
        return torch.zeros((1,) + tuple(shape), dtype=torch.int64, device=A.device)
    R = torch.zeros((ai[-1] + bi[-1] + 1,) + tuple(shape), dtype=torch.int64, device=A.device)
    for a in ai:
        for c in bi:
            R[a + c] += A[a] * B[c]
    return R


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


_WORD_CHUNK = 1 << 20  # scalar products per chunk of the word path


def _round_products_word(W: torch.Tensor, X: torch.Tensor, b: int, F: int, M: int, tie: str):
    """The round_products reading in one int64 word per scalar product: sum_j ROUND(W_ij X_jk
    / 2^F) with each rounded product range-checked (|q| <= M, clipped to +-M otherwise), and the
    count of out-of-range products per entry, as (raw digits (Lr, m, N), counts (m, N)).

    Exact when every operand is below 2^62 and the sum of n rounded, clipped products stays
    below 2^61 (n min(M, max|W| max|X| / 2^F + 1)); returns None otherwise (the caller takes
    the limb path).  Products below 2^62 (from the operands' maxima) are one word: ROUND by 2^F
    from the floor word, q = floor(v / 2^F) (arithmetic shift), r = v mod 2^F; +1 iff
    r > 2^(F-1), or r = 2^(F-1) and (ties even) q is odd / (ties away) v > 0, the same rule as
    :func:`numerics.div_round`.  Larger products (F <= 61) take :func:`_round_wide_products`."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    Wv, Xv = _word_values(W, b), _word_values(X, b)
    if Wv is None or Xv is None:
        return None
    wmax, xmax = int(Wv.abs().max()), int(Xv.abs().max())
    wide = wmax * xmax >= 1 << 62
    if (wide and F > 61) or n * min(M, (wmax * xmax >> F) + 1) >= 1 << 61:
        return None
    may_overflow = (wmax * xmax >> F) + 1 > M
    L = -(-62 // b)
    if not wide and F >= 63:  # |v| < 2^62 <= 2^(F-1): every product rounds to 0 (2^F is no int64)
        zero = torch.zeros((m, N), dtype=torch.int64, device=X.device)
        return _split_small(zero, b, L), zero
    half, low = 1 << (F - 1), (1 << F) - 1
    sums = torch.empty((m, N), dtype=torch.int64, device=X.device)
    pc = torch.zeros((m, N), dtype=torch.int64, device=X.device)
    chunk = max(1, _WORD_CHUNK // max(1, m * n))
    for s0 in range(0, N, chunk):
        if wide:
            q, over = _round_wide_products(Wv.unsqueeze(-1), Xv[:, s0 : s0 + chunk].unsqueeze(0), F, M, tie)
            pc[:, s0 : s0 + chunk] = over.sum(1)
            sums[:, s0 : s0 + chunk] = q.sum(1)
            continue
        v = Wv.unsqueeze(-1) * Xv[:, s0 : s0 + chunk].unsqueeze(0)  # (m, n, Nc), exact
        q = v >> F
        r = v & low
        tie_up = (q & 1).bool() if tie == "even" else v > 0
        q += ((r > half) | ((r == half) & tie_up)).to(torch.int64)
        if may_overflow:
            over = q.abs() > M
            pc[:, s0 : s0 + chunk] = over.sum(1)
            q = torch.where(over, torch.where(q < 0, -M, M), q)
        sums[:, s0 : s0 + chunk] = q.sum(1)
    return _signed(sums < 0, _split_small(sums.abs(), b, L)), pc


def _round_wide_products(a: torch.Tensor, x: torch.Tensor, F: int, M: int, tie: str):
    """(ROUND(a x / 2^F) clipped to +-M, out of range?) for int64 a, x (broadcast), |a|, |x| <
    2^62, 1 <= F <= 61, M < 2^61, whose products may need two words.

    With 31-bit halves |a| = ah 2^31 + al, |x| = xh 2^31 + xl (all < 2^31), |a x| = c2 2^62 +
    c1 2^31 + c0 with c0, c2 < 2^62 and c1 <= 2 (2^31 - 1)^2 < 2^63: every partial fits int64.
    Carrying c0's and c1's high bits gives hi = floor(|a x| / 2^62) < 2^62 and lo = |a x| mod
    2^62.  If hi >= 2^F the quotient is >= 2^62 > M (out of range); otherwise floor(|a x| / 2^F)
    = hi 2^(62-F) + floor(lo / 2^F) < 2^63, with remainder lo mod 2^F; rounded on the magnitude
    (both tie rules are symmetric in the sign: away = half up on magnitudes), then signed."""
    m31 = (1 << 31) - 1
    neg = (a < 0) ^ (x < 0)
    A, X = a.abs(), x.abs()
    ah, al, xh, xl = A >> 31, A & m31, X >> 31, X & m31
    c0 = al * xl
    t = ah * xl + al * xh + (c0 >> 31)
    lo = (c0 & m31) + ((t & m31) << 31)
    hi = ah * xh + (t >> 31)
    big = (hi >> F) != 0
    q = (torch.where(big, torch.zeros_like(hi), hi) << (62 - F)) + (lo >> F)
    r, half = lo & ((1 << F) - 1), 1 << (F - 1)
    tie_up = (q & 1).bool() if tie == "even" else torch.ones_like(big)
    q = q + ((r > half) | ((r == half) & tie_up)).to(torch.int64)
    over = big | (q > M)
    q = torch.where(over, torch.full_like(q, M), q)
    return torch.where(neg, -q, q), over


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


def _split_small(v: torch.Tensor, b: int, L: int) -> torch.Tensor:
    """Digits of non-negative int64 values."""
    return torch.stack([(v >> (b * k)) & ((1 << b) - 1) for k in range(L)])


# =============================================================================================
# overflow bookkeeping (first overflow per sequence in the reference's order; saturations)
# =============================================================================================


class _Checker:
    """Range checks of one batched pass.

    Raise mode: the first overflow of each sequence (in the reference's evaluation order) is
    recorded and the pass goes on with the value clipped; :meth:`raise_first` raises the error of
    the lowest-index failing sequence, as one-by-one evaluation would.  Saturate mode: each
    sequence's saturation list, in the reference's order.
    """

    def __init__(self, n_seq: int, prec: Precision, arith: Arithmetic):
        self.prec = prec
        self.arith = arith
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
                    self.errors[s] = PrecisionOverflow(self.prec.p, value(s, r, c), loc(r, c))
            else:
                self.saturations[s].extend(str(loc(r, c)) for r, c in entries)

    def fail(self, s: int, err: ProofsCheckError) -> None:
        if self.errors[s] is None:
            self.errors[s] = err

    def raise_first(self) -> None:
        for err in self.errors:
            if err is not None:
                raise err


# =============================================================================================
# prepared weights
# =============================================================================================


@dataclass
class _PFFN:
    W1: torch.Tensor
    b1: torch.Tensor  # bias times 2^F (round_once) or bias (round_products), signed digits (L, w, 1)
    W2: torch.Tensor
    b2: torch.Tensor
    W3: torch.Tensor
    b3: torch.Tensor
    hidden: list[str]


@dataclass
class _PHead:
    W_K: torch.Tensor
    W_Q: torch.Tensor
    W_V: torch.Tensor


@dataclass
class _PLayer:
    kind: str
    ffn: _PFFN
    heads: list[_PHead] = field(default_factory=list)
    A: torch.Tensor | None = None
    B: torch.Tensor | None = None


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


# =============================================================================================
# the exact engine
# =============================================================================================


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
        self._gemm_cache: dict = {}

    # ---- finishing: normalize, round, range check, clip ------------------------------------
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

    # ---- affine maps --------------------------------------------------------------------------
    def affine(self, W: torch.Tensor, X: torch.Tensor, bias: torch.Tensor | None, reuse: bool = False):
        """Raw digits of W X (+ bias) per the matmul reading, ready for finish(shift=...), and
        (round_products) the number of out-of-range rounded products per entry (or None).
        ``reuse``: W is a weight applied again in this pass (keep its GEMM operand)."""
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
        b, F, M, tie = self.b, self.F, self.M, self.arith.tie

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
        chunk = max(1, (1 << 20) // max(1, m * n))
        parts = []
        for start in range(0, N, chunk):
            Xc = X[:, :, start : start + chunk]
            R = _elementwise_product(W.unsqueeze(-1), Xc.unsqueeze(1))  # (Lr, m, n, Nc)
            neg, mag = _round_raw(R, self.F, self.b, self.arith.tie)  # one carry pass per limb
            over = _gt_const(mag, self.M, self.b)
            if bool(over.any()):
                pc[:, start : start + chunk] = over.sum(1)
                mag = torch.where(over.unsqueeze(0), _const_digits(self.M, self.b, mag.shape[0], mag), mag)
            mag = _trim(mag, self.P.L)  # now |product| <= M: the limbs of an R_p value suffice
            parts.append(_signed(neg, mag).sum(2))
        return torch.cat(parts, dim=2), pc

    # ---- embedding -----------------------------------------------------------------------------
    def embed(self, seqs: list[list[Token]], t0: int, lmax: int) -> tuple[torch.Tensor, list[int]]:
        """A.3 embedding of a batch (right-padded with zero columns). Positions start at t0 + 1."""
        model = self.P.model
        vocab, d, F, b = model.vocab, model.d, self.F, self.b
        n_seq = len(seqs)
        lens = [len(s) for s in seqs]
        num = np.zeros((n_seq, lmax), dtype=np.int64)
        spec = np.full((n_seq, lmax), -1, dtype=np.int64)
        posv = np.zeros((n_seq, lmax), dtype=np.int64)
        X = torch.zeros((self.P.L, d, n_seq * lmax), dtype=torch.int64, device=self.dev)
        exotic: list[tuple[int, np.ndarray]] = []
        max_int = self.P.prec.max_integer
        for s, toks in enumerate(seqs):
            ok = 0 < t0 + len(toks) <= model.max_len and all(
                (isinstance(t, int) and not isinstance(t, bool) and vocab.min_number <= t <= vocab.n and abs(t) <= max_int)
                or (isinstance(t, str) and t in vocab._special_index)
                for t in toks
            ) and t0 + len(toks) <= max_int
            if not ok:
                # an error or an overflow in the embedding: let the reference's own code decide
                # which (it raises the first one in its order) and, in saturate mode, build it.
                run = _Run(model, self.arith)
                try:
                    if t0 != 0:
                        raise EvaluatorError("internal: exotic embedding inside a session")
                    Xs = embed(model, list(toks), run)
                except ProofsCheckError as err:
                    self.chk.fail(s, err)
                    lens[s] = max(1, min(lens[s], lmax))
                    continue
                self.chk.saturations[s].extend(run.saturations)
                exotic.append((s, Xs))
                continue
            for l, tok in enumerate(toks):
                if isinstance(tok, int):
                    num[s, l] = tok
                else:
                    spec[s, l] = 1 + vocab.special_rank(tok)
                posv[s, l] = t0 + l + 1
        numt = torch.from_numpy(num).to(self.dev).reshape(-1)
        post = torch.from_numpy(posv).to(self.dev).reshape(-1)
        spect = torch.from_numpy(spec).to(self.dev).reshape(-1)
        X[:, 0, :] = _shifted_small(numt, F, b, self.P.L)
        X[:, d - 1, :] = _shifted_small(post, F, b, self.P.L)
        one = _const_digits(1 << F, b, self.P.L, X[:, 0, :1]).reshape(self.P.L, 1)
        cols = torch.nonzero(spect >= 0).flatten()
        if cols.numel():
            X[:, spect[cols], cols] = one.expand(self.P.L, cols.numel())
        for s, Xs in exotic:
            X[:, :, s * lmax : s * lmax + Xs.shape[1]] = _ints_to_digits(Xs, b, self.P.L, self.dev)
        return X, lens

    def input_matrix(self, X: np.ndarray, t0: int = 0) -> torch.Tensor:
        """forward_residual's input: range-checked position by position, as in the reference."""
        d, l = X.shape
        vals = np.asarray(X, dtype=object)
        big = np.vectorize(lambda v: abs(int(v)) > self.M, otypes=[bool])(vals) if vals.size else np.zeros((d, l), bool)
        if big.any():
            names = self.P.names
            over = torch.from_numpy(big).reshape(1, d, l)
            self.chk.record(
                over,
                lambda r, c: Location(sublayer="input", position=c + 1, dim=names[r]),
                lambda s, r, c: Fraction(int(vals[r, c]), self.P.prec.scale),
            )
            vals = np.vectorize(lambda v: max(-self.M, min(self.M, int(v))), otypes=[object])(vals)
        return _ints_to_digits(vals, self.b, self.P.L, self.dev)

    # ---- layers --------------------------------------------------------------------------------
    def layer_locs(self, n_seq: int, lmax: int, lens: list[int], t0: int):
        """Helpers: reshape (rows, n_seq*lmax) -> (n_seq, rows, lmax) and the validity mask."""
        valid_cols = torch.zeros((n_seq, lmax), dtype=torch.bool, device=self.dev)
        for s, n in enumerate(lens):
            valid_cols[s, :n] = True

        def lay(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(t.shape[0], n_seq, lmax).permute(1, 0, 2)

        return lay, valid_cols.unsqueeze(1)

    def add(self, A: torch.Tensor, B: torch.Tensor, li, sub: str, lay, valid, t0: int) -> torch.Tensor:
        names = self.P.names
        R = _add_raw(A, B)
        return self.finish(
            R, 0, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, sub, None, t0 + c + 1, names[r]), self.F,
        )

    def checked_affine(self, W, X, bias, li, sub, head, rows, lay, valid, t0) -> torch.Tensor:
        R, pc = self.affine(W, X, bias)
        lmax = valid.shape[-1]
        pv = self.product_value([(W, X, lambda s, c: s * lmax + c)]) if pc is not None else None
        return self.finish(
            R, self.affine_shift, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, sub, head, t0 + c + 1, rows[r] if rows else str(r)), self.F,
            pcount=pc, pvalue=pv,
        )

    def feed_forward(self, ffn: _PFFN, Y, li, lay, valid, t0) -> torch.Tensor:
        hidden = ffn.hidden or None
        H1 = self.checked_affine(ffn.W1, Y, ffn.b1, li, "ffn.W1", None, hidden, lay, valid, t0)
        H2 = self.checked_affine(ffn.W2, Y, ffn.b2, li, "ffn.W2", None, hidden, lay, valid, t0)
        relu = torch.where((H1 < 0).any(0, keepdim=True), torch.zeros_like(H1), H1)
        R = _elementwise_product(relu, H2)
        G = self.finish(
            R, self.F, self.M, self.P.L, lay, valid,
            lambda r, c: Location(li, "ffn.product", None, t0 + c + 1, hidden[r] if hidden else str(r)), self.F,
        )
        return self.checked_affine(ffn.W3, G, ffn.b3, li, "ffn.W3", None, list(self.P.names), lay, valid, t0)

    def linear_unit(self, layer: _PLayer, X, li, n_seq, lmax, lens, t0, h0: torch.Tensor | None):
        """h_t = R(A h_(t-1) + B X_t), one rounded operator per step; returns (H, h_last)."""
        names = self.P.names
        d = X.shape[1]
        BX, pcB = self.affine(layer.B, X, None)  # raw, not yet rounded: added to A h, then rounded
        BX = BX.reshape(BX.shape[0], d, n_seq, lmax)
        if pcB is not None:
            pcB = pcB.reshape(d, n_seq, lmax)
        h = h0 if h0 is not None else torch.zeros((self.P.L, d, n_seq), dtype=torch.int64, device=self.dev)
        H = torch.zeros((self.P.L, d, n_seq, lmax), dtype=torch.int64, device=self.dev)
        lens_t = torch.tensor(lens, device=self.dev)
        last = h.clone()
        for t in range(lmax):
            RA, pcA = self.affine(layer.A, h, None, reuse=True)
            R = _add_raw(RA, BX[:, :, :, t])
            valid = (lens_t > t).reshape(n_seq, 1, 1)
            pc = pv = None
            if pcA is not None:
                pc = pcA + pcB[:, :, t]
                pv = self.product_value(
                    [(layer.A, h, lambda s, c: s), (layer.B, X, lambda s, c, t=t: s * lmax + t)]
                )
            h = self.finish(
                R, self.affine_shift, self.M, self.P.L,
                lambda x: x.permute(1, 0).unsqueeze(-1), valid,
                lambda r, c, t=t: Location(li, "linear_unit", None, t0 + t + 1, names[r]), self.F,
                pcount=pc, pvalue=pv,
            )
            H[:, :, :, t] = h
            upd = (lens_t == t + 1)
            if bool(upd.any()):
                last = torch.where(upd.reshape(1, 1, n_seq), h, last)
        return H.reshape(self.P.L, d, n_seq * lmax), last

    def attention(self, layer: _PLayer, X, li, n_seq, lmax, lens, t0, cache: list | None):
        """Sum of heads (Def 3.1); ``cache``: per head [K_prev, V_prev] (sessions) or None."""
        names = self.P.names
        d = X.shape[1]
        lay, valid = self.layer_locs(n_seq, lmax, lens, t0)
        total = None
        for hi, head in enumerate(layer.heads, start=1):
            K = self.checked_affine(head.W_K, X, None, li, "attention.keys", hi, None, lay, valid, t0)
            Q = self.checked_affine(head.W_Q, X, None, li, "attention.queries", hi, None, lay, valid, t0)
            V = self.checked_affine(head.W_V, X, None, li, "attention.values", hi, list(names), lay, valid, t0)
            out = torch.zeros((self.P.L, d, n_seq * lmax), dtype=torch.int64, device=self.dev)
            for s in range(n_seq):
                n = lens[s]
                cols = slice(s * lmax, s * lmax + n)
                Ks, Qs, Vs = K[:, :, cols], Q[:, :, cols], V[:, :, cols]
                if cache is not None:
                    Ks = torch.cat([cache[hi - 1][0], Ks], dim=2)
                    Vs = torch.cat([cache[hi - 1][1], Vs], dim=2)
                    cache[hi - 1] = [Ks, Vs]
                out[:, :, cols] = self.head_one(Ks, Qs, Vs, li, hi, s, n_seq, t0)
            if total is None:
                total = out
            else:
                total = self.add(total, out, li, "attention (sum of heads)", lay, valid, t0)
        if total is None:
            total = torch.zeros((self.P.L, d, n_seq * lmax), dtype=torch.int64, device=self.dev)
        return total

    def head_one(self, K, Q, V, li, hi, s, n_seq, t0) -> torch.Tensor:
        """One head on sequence ``s``: keys/values at positions 1..T, queries at t0+1..t0+n."""
        F, b, names = self.F, self.b, self.P.names
        T, n = K.shape[2], Q.shape[2]
        keypos = torch.arange(T, device=self.dev).reshape(T, 1)
        qpos = (t0 + torch.arange(n, device=self.dev)).reshape(1, n)
        causal = keypos <= qpos  # (T, n): key j is seen by query k iff j <= k (mask C)
        Kt = K.permute(0, 2, 1)  # (L, T, kdim)
        d_model = self.P.model.d
        L_P = Limbs(b).count(F + 2)
        P = torch.zeros((L_P + 1, T, n), dtype=torch.int64, device=self.dev)
        exact_cols = torch.arange(n, device=self.dev)

        def lay(x: torch.Tensor) -> torch.Tensor:
            return x.unsqueeze(0)

        if self.arith.matmul == "round_once" and F <= _FLOAT_SCORES_MAX_F:
            # float64 scores with a rigorous error bound: columns whose every score is surely in
            # range and whose softmax rounding certifies never need the exact scores
            ok, vals = _float_scores_softmax(K, Q, causal, d_model, F, b, self.M)
            if bool(ok.all()):
                P = _split_small(vals, b, L_P + 1)
            elif bool(ok.any()):
                P[:, :, ok] = _split_small(vals[:, ok], b, L_P + 1)
            exact_cols = torch.nonzero(~ok).flatten()
        if exact_cols.numel():
            cols = exact_cols.tolist()
            Qc, cz = Q[:, :, exact_cols], causal[:, exact_cols]
            pc = pv = None
            L_S = Limbs(b).count(3 * F + 2)
            if self.arith.matmul == "round_once":
                R = _gemm(Kt, Qc, b)  # exact scores, not rounded
                if _scores_surely_in_range(K, Qc, cz, F, b, self.M):
                    # no overflow to report: one carry pass gives the canonical digits
                    Pc = self.softmax(_carry_floor(R, b, L_S + 1), cz, d_model, canonical=True)
                    if len(cols) == n:
                        P = Pc
                    else:
                        P[:, :, exact_cols] = Pc
                    R = None
            else:
                R, pc = self.round_products(Kt, Qc)
                R = _shift_left_raw(R, F, b)
                pv = self.product_value([(Kt, Qc, lambda s, c: c)])
            if R is not None:
                S = self.finish(
                    R, 0, self.M << F, L_S, lay, cz.unsqueeze(0),
                    lambda r, c: Location(li, "attention.scores", hi, t0 + cols[c] + 1, f"key position {r + 1}"),
                    2 * F, seq_base=s, pcount=pc, pvalue=pv,
                )
                P[:, :, exact_cols] = self.softmax(S, cz, d_model)
        Rv, pc = self.affine(V, P, None)
        pv = self.product_value([(V, P, lambda s, c: c)]) if pc is not None else None
        ones = torch.ones((1, 1, n), dtype=torch.bool, device=self.dev)
        return self.finish(
            Rv, self.affine_shift, self.M, self.P.L, lay, ones,
            lambda r, c: Location(li, "attention", hi, t0 + c + 1, names[r]), F, seq_base=s,
            pcount=pc, pvalue=pv,
        )

    # ---- softmax ---------------------------------------------------------------------------------
    def softmax(self, S: torch.Tensor, causal: torch.Tensor, d: int, canonical: bool = False) -> torch.Tensor:
        """P (L_P, T, n): ROUND(softmax(scores[:k+1, k] / sqrt(d))) per query column, exact.
        ``canonical``: S is already in canonical digits (floor carries, signed top digit)."""
        F, b = self.F, self.b
        T, n = causal.shape
        prec = self.P.prec
        tie = self.arith.tie
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
        m = causal.sum(0)  # entries per column
        t = is_max.sum(0)
        uniform = t == m
        out = torch.zeros((L_P + 1, T, n), dtype=torch.int64, device=self.dev)
        certified = uniform.clone()
        # uniform columns: div_round(2^F, m) exactly (the only case with possible ties)
        if bool(uniform.any()):
            ms = sorted(set(m[uniform].tolist()))
            table = {mm: div_round(1 << F, mm, tie) for mm in ms}
            tab = torch.zeros((L_P + 1, len(ms)), dtype=torch.int64, device=self.dev)
            for i, mm in enumerate(ms):
                tab[:, i] = _const_digits(table[mm], b, L_P + 1, tab[:, :1]).reshape(-1)
            idx = torch.searchsorted(torch.tensor(ms, device=self.dev), m.clamp(min=1))
            idx = idx.clamp(max=len(ms) - 1)
            vals = tab[:, idx].unsqueeze(1).expand(L_P + 1, T, n)
            sel = (causal & uniform.unsqueeze(0)).unsqueeze(0)
            out = torch.where(sel, vals, out)
        todo = torch.nonzero(~uniform & (m > 0)).flatten()
        if todo.numel() and F <= _FLOAT_SOFTMAX_ONLY_F:
            cols = todo
            cert_cols, direct, comp, use_comp = _float_softmax(
                gmag[:, :, cols], is_max[:, cols], causal[:, cols], d, F, b
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
            ok = certified_softmax(gmag, b, causal & todo.unsqueeze(0), d, F, 2 * F, out)
            if ok is not None:
                certified |= ok & todo
        rest = torch.nonzero(~certified & (m > 0)).flatten().tolist()
        if rest:
            ints = _digits_to_ints(S[:, :, rest], b)  # (T, len(rest))
            for i, k in enumerate(rest):
                mk = int(m[k])
                col = softmax_column([int(v) for v in ints[:mk, i]], 2 * F, d, prec, tie)
                arr = np.zeros((T,), dtype=object)
                arr[:mk] = col
                out[:, :, k] = _ints_to_digits(arr, b, L_P + 1, self.dev)
        return out


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


def _float_softmax(gmag, is_max, causal, d, F, b):
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
      * underflow of exp (x > 708): absolute error <= 2^-1074, i.e. <= 2^(F - 1070) in v.
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
    e = torch.where(causal, torch.exp(-x), torch.zeros_like(x))
    eps = torch.where(causal, 1.01 * (L + 2) * _U * x + 8 * _U, torch.zeros_like(x))
    m = causal.sum(0).to(torch.float64)
    S = e.sum(0)
    eps_max = eps.amax(0)
    rel_S = 1.01 * (eps_max + (m - 1) * _U)
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
    Ec = cv * rel_c * (1 + 1e-9) + tiny
    ok_c, k_c = _certify(cv, Ec, rel_c)
    use_c = is_max & (t == 1).unsqueeze(0) & ok_c.unsqueeze(0) & ~ok_v
    ok = ok_v | use_c | ~causal
    col_ok = ok.all(0)
    return col_ok, torch.where(causal, k_v, torch.zeros_like(k_v)), k_c.unsqueeze(0).expand_as(k_v), use_c


def _signed_to_float(D: torch.Tensor, b: int, exp2: int) -> torch.Tensor:
    """float64 of 2^exp2 sum_k D[k] 2^(bk) for signed digits of one sign per entry (so the terms
    never cancel): relative error <= (L - 1) u, every term exact (|D[k]| < 2^b, b <= 24)."""
    out = torch.zeros(D.shape[1:], dtype=torch.float64, device=D.device)
    for k in range(D.shape[0] - 1, -1, -1):
        out = out + D[k].to(torch.float64) * (2.0 ** (b * k + exp2))
    return out


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
        certified as in :func:`_float_softmax`.
    """
    L, kdim = K.shape[0], K.shape[1]
    T, n = causal.shape
    Kf = _signed_to_float(K, b, -F).T  # (T, kdim)
    Qf = _signed_to_float(Q, b, -F)  # (kdim, n)
    Sf = Kf @ Qf
    delta = (Kf.abs() @ Qf.abs()) * (1.03 * (kdim + 2 * L) * _U)
    bound = float(M) * 2.0**-F * (1 - 4 * _U)
    in_range = ((Sf.abs() + delta) < bound) | ~causal
    neg_inf = torch.full_like(Sf, -math.inf)
    Sm = torch.where(causal, Sf, neg_inf)
    smax, i0 = Sm.max(0)
    c = 1.0 / math.sqrt(d)
    y = torch.where(causal, (Sf - smax) * c, neg_inf)
    a = torch.where(causal, 1.01 * (delta * c + 4 * _U * y.abs()), torch.zeros_like(Sf))
    small_a = (a <= 1e-7).all(0)
    e = torch.exp(y)  # 0 where masked
    eps = 1.01 * a + 8 * _U
    m = causal.sum(0).to(torch.float64)
    S = e.sum(0)
    rel_S = 1.01 * ((e * eps).sum(0) / S + (m - 1) * _U)
    scale = 2.0**F
    tiny = 2.0 ** (F - 1070)
    v = scale * e / S
    rel_v = 1.02 * (eps + rel_S + _U)
    ok_v, vals = _certify(v, v * rel_v * (1 + 1e-9) + tiny, rel_v)  # 0 where masked (v = 0)
    ok_v = ok_v | ~causal
    cols_ok = ok_v.all(0)
    if not bool(cols_ok.all()):
        # complement for i0 (entries near 2^F): 2^F - 2^F sum_(i != i0) e_i / S
        ar = torch.arange(n, device=K.device)
        others = e.clone()
        others[i0, ar] = 0.0
        T_ = others.sum(0)  # summed directly: m - 2 roundings of non-negative terms
        rel_T = 1.01 * ((others * eps).sum(0) / torch.where(T_ > 0, T_, torch.ones_like(T_)) + (m - 2).clamp(min=0) * _U)
        cv = scale * T_ / S
        rel_c = 1.02 * (rel_T + rel_S + _U)
        ok_c, k_c = _certify(cv, cv * rel_c * (1 + 1e-9) + tiny, rel_c)
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
    ub = (Ka @ Qa) * (1 + 1.03 * (kdim + 2 * L) * _U)
    limit = float(M) * 2.0**-F * (1 - 4 * _U)
    return bool(torch.where(causal, ub, torch.zeros_like(ub)).amax() < limit)


def _certify(v: torch.Tensor, E: torch.Tensor, rel: torch.Tensor):
    k = torch.round(v)
    dist = (v - k).abs()
    ok = (v < 2.0**50) & (rel < 1e-6) & ((0.5 - dist) * (1 - 1e-12) > E) & torch.isfinite(v)
    return ok, torch.where(ok, k, torch.zeros_like(k)).to(torch.int64)


# =============================================================================================
# preparation of weights
# =============================================================================================


def _token_ok(vocab, tok, max_int: int) -> bool:
    if isinstance(tok, bool):
        return False
    if isinstance(tok, int):
        return vocab.min_number <= tok <= vocab.n and abs(tok) <= max_int
    if isinstance(tok, str):
        try:
            vocab.special_rank(tok)
        except ProofsCheckError:
            return False
        return True
    return False


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
    need = limbs.count(3 * F + 2) + limbs.count(2 * F) + 63 // limbs.b + 4
    if need > _MAX_LIMBS:
        raise EvaluatorError(
            f"FastEvaluator cannot hold R_{model.p} exactly: attention scores need {need} limbs of "
            f"{limbs.b} bits and its int64 carry sums allow {_MAX_LIMBS}; use p <= "
            f"{(2 * _MAX_LIMBS * limbs.b) // 5} or the ReferenceEvaluator"
        )
    L = limbs.count(2 * F)
    b = limbs.b

    def dig(arr: np.ndarray, bits: int = 2 * F) -> torch.Tensor:
        return _ints_to_digits(np.asarray(arr, dtype=object), b, limbs.count(bits), device)

    def bias(vec: np.ndarray) -> torch.Tensor:
        vec = np.asarray(vec, dtype=object).reshape(-1, 1)
        if arith.matmul == "round_once":
            return dig(vec * (1 << F) if vec.size else vec, 3 * F + 1)
        return dig(vec)

    def ffn(f: FeedForward) -> _PFFN:
        return _PFFN(dig(f.W1), bias(f.b1), dig(f.W2), bias(f.b2), dig(f.W3), bias(f.b3), list(f.hidden_names))

    layers = []
    for layer in model.layers:
        if isinstance(layer, TransformerLayer):
            heads = [_PHead(dig(h.W_K), dig(h.W_Q), dig(h.W_V)) for h in layer.heads]
            layers.append(_PLayer("transformer", ffn(layer.ffn), heads))
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


def _run_layers(eng: _Engine, X, n_seq, lmax, lens, t0, stages, state: dict | None):
    """All layers (Def 3.2 / 3.6 / 5.5); ``state``: a session's caches (or None)."""
    for li, layer in enumerate(eng.P.layers, start=1):
        lay, valid = eng.layer_locs(n_seq, lmax, lens, t0)
        if layer.kind == "transformer":
            cache = None
            if state is not None:
                cache = state.setdefault(li, [None] * len(layer.heads))
                for hi in range(len(layer.heads)):
                    if cache[hi] is None:
                        kdim = layer.heads[hi].W_K.shape[1]
                        z = lambda r: torch.zeros((eng.P.L, r, 0), dtype=torch.int64, device=eng.dev)
                        cache[hi] = [z(kdim), z(X.shape[1])]
            mixed = eng.attention(layer, X, li, n_seq, lmax, lens, t0, cache)
            sub = "attention"
        else:
            h0 = state.get(li) if state is not None else None
            mixed, last = eng.linear_unit(layer, X, li, n_seq, lmax, lens, t0, h0)
            if state is not None:
                state[li] = last
            sub = "linear_unit"
        Y = eng.add(X, mixed, li, f"residual after {sub}", lay, valid, t0)
        X = eng.add(Y, eng.feed_forward(layer.ffn, Y, li, lay, valid, t0), li, "residual after ffn", lay, valid, t0)
        if stages is not None:
            stages.append((f"layer {li} after {sub}", Y))
            stages.append((f"layer {li} after ffn", X))
    return X


def _readout(eng: _Engine, last: torch.Tensor, positions: list[int]) -> np.ndarray:
    """Logits R(U x_l) for the last column of each sequence: (|V|, n_seq) object array.
    ``positions``: each sequence's last position (the Location of a logits overflow)."""
    names = eng.P.token_names
    U = eng.P.U
    cols = []
    for s, pos in enumerate(positions):
        for i, (tok, value) in enumerate(eng.P.unembed_over):  # tied W_E rows out of R_p
            where = Location(sublayer="output embedding W_E", position=pos, dim=tok)
            if eng.arith.overflow == "raise":
                if i == 0:
                    eng.chk.fail(s, PrecisionOverflow(eng.P.prec.p, value, where))
            else:
                eng.chk.saturations[s].append(str(where))
        x = last[:, :, s : s + 1]
        R, pc = eng.affine(U, x, None)
        pv = eng.product_value([(U, x, lambda s_, c: 0)]) if pc is not None else None
        ones = torch.ones((1, 1, 1), dtype=torch.bool, device=eng.dev)
        cols.append(eng.finish(
            R, eng.affine_shift, eng.M, eng.P.L, lambda t: t.unsqueeze(0), ones,
            lambda r, c, pos=pos: Location(None, "output logits", None, pos, names[r]), eng.F,
            seq_base=s, pcount=pc, pvalue=pv,
        ))
    return _digits_to_ints(torch.cat(cols, dim=2), eng.b)


def _argmax(logits: Sequence) -> int:
    return max(range(len(logits)), key=lambda i: (logits[i], -i))


# =============================================================================================
# the evaluator
# =============================================================================================


class FastEvaluator:
    """Exact (same bits as ReferenceEvaluator) batched evaluator in torch; see module docstring.

    ``forward(model, tokens, trace=False)``, ``next_token``, ``session(model, prompt)``,
    ``forward_batch(model, seqs)``, ``next_tokens(model, seqs)``, ``forward_residual(model, X)``.
    """

    name = "fast"

    def __init__(self, arith: Arithmetic = Arithmetic(), device: str | torch.device = "cpu", mode: str = "exact"):
        if mode not in MODES:
            raise EvaluatorError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        self.arith = arith
        self.device = torch.device(device)
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
        Xd = eng.input_matrix(np.asarray(X, dtype=object))
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
        X, lens = eng.embed(seqs, 0, lmax)
        stages = [("embedding", X)] if trace else None
        return self._finish_batch(eng, chk, X, len(seqs), lmax, lens, trace, residual, stages)

    def _finish_batch(self, eng, chk, X, n_seq, lmax, lens, trace, residual, stages, readout=True):
        X = _run_layers(eng, X, n_seq, lmax, lens, 0, stages, None)
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
    so it raises exactly what the reference raises for the whole sequence."""

    def __init__(self, evaluator: FastEvaluator, model: Model, prompt: Sequence[Token]):
        self.evaluator = evaluator
        self.model = model
        self.tokens: list[Token] = [model.vocab.check(t) for t in prompt]
        self._done = 0
        self._state: dict = {}
        self._last: torch.Tensor | None = None
        self._broken = False
        self._prep: _Prepared | None = None

    def append(self, tokens: Sequence[Token]) -> None:
        self.tokens.extend(self.model.vocab.check(t) for t in tokens)

    def next_token(self) -> Token:
        ev, model = self.evaluator, self.model
        n = len(self.tokens)
        if ev.mode != "exact":
            return session_next_token(self)
        if self._broken or n == 0 or n > model.max_len:
            return ev.next_token(model, self.tokens)
        if self._prep is None:
            self._prep = _prepare(model, ev.arith, model.max_len, ev.device)
        prep = self._prep
        new = self.tokens[self._done :]
        if new:
            chk = _Checker(1, prep.prec, ev.arith)
            eng = _Engine(prep, ev.arith, chk)
            m = len(new)
            try:
                X, lens = eng.embed([new], self._done, m)
                if chk.errors[0] is None:
                    X = _run_layers(eng, X, 1, m, [m], self._done, None, self._state)
            except ProofsCheckError:
                chk.errors[0] = chk.errors[0] or EvaluatorError("session")
            if chk.errors[0] is not None:
                self._broken = True
                return ev.next_token(model, self.tokens)
            self._done = n
            self._last = X[:, :, -1:]
        chk = _Checker(1, prep.prec, ev.arith)
        eng = _Engine(prep, ev.arith, chk)
        logits = _readout(eng, self._last, [n])
        chk.raise_first()
        lg = [int(v) for v in logits[:, 0]]
        return model.vocab.token_of(_argmax(lg))
