"""Products of multi-limb tensors (:mod:`constructions.fast_limbs` digits): the matrix product
``W X`` under both matmul readings of A.2 and the elementwise product of the ReGLU.

Round-once: a matrix product ``W X`` is summed exactly in float64 GEMMs of the limb digits,
either one GEMM per non-zero limb of W (``W[i]`` times all of X's limbs side by side: the
fewest products, and the weight's own limb as operand, what a decode step of one column
needs) or one of a block-Toeplitz matrix of W's limbs (``(L_r m) x (g n)``, block ``(r, j) =
W[r - j]``) times g stacked limbs of X (``(g n) x N``), which sums the limb products along
anti-diagonals inside the GEMM (fewer int64 additions where n is a head's small key
dimension).  Every float64 entry is a sum of at most ``g n`` products of two digits,
``|.| <= g n 2^(2b) <= 2^53``, hence exact; the partial sums are added in int64 (CUDA has no
int64 GEMM; float64 is the GPU route too), see :func:`_gemm`.  Limbs that are zero in a whole
operand are skipped.  The reference's matching function is the exact integer dot product of
``evaluate_reference``.

Round-each-product reading: under ``matmul="round_products"`` every scalar product W_ij X_jk is
rounded and checked on its own, so the product tensor (m, n, N) is formed explicitly (in
chunks).  When the operands are below 2^62 this is done in int64 words
(:func:`_round_products_word`: one word per product below 2^62, two 31-bit halves above,
F <= 61); otherwise on the limb digits (``_Engine.round_products``, one carry pass).
"""
from __future__ import annotations

import torch

from .fast_limbs import _const_digits, _gt_const, _nonzero_limbs, _round_raw, _signed, _split_small, _trim, _word_values


def _gemm(W: torch.Tensor, X: torch.Tensor, b: int, cache: dict | None = None) -> torch.Tensor:
    """Raw limb sums of W X: W (Lw, m, n), X (Lx, n, N) signed digits (|digit| < 2^b) ->
    (Lr, m, N) int64, R[k] = sum_(i + j = k) W[i] X[j].

    Two exact routes, chosen by :func:`_gemm_route` (same sums, grouped differently):

    * **per weight limb** (:func:`_gemm_per_limb`): for each non-zero limb i of W one float64
      GEMM ``W[i] @ [X[x0] ... X[x1]]`` (``m x n`` times ``n x (Lx N)``); each output is a sum
      of n products of two digits, ``|.| <= n 2^(2b) <= 2^53``, exact in float64 (any order),
      added into ``R[i + j]`` in int64.  The fewest products; the GEMM operand is W's own limb.
    * **block-Toeplitz** (:func:`_gemm_toeplitz`): for a group of g consecutive X-limbs, the
      block-Toeplitz matrix ``WT[(r, :), (j, :)] = W[r - j]`` times the stacked limbs
      ``X[j0 : j0 + g]`` (a view, ``(g n) x N``) sums every ``sum_(i + j = r) W[i] X[j]`` of the
      group inside the GEMM; each output is a sum of at most ``g n`` digit products, so
      ``g n 2^(2b) <= 2^53`` keeps it exact.  Fewer int64 additions where n is small (a head's
      key dimension) and both operands have many limbs; the zero blocks cost products.

    Groups are added in int64 (|R[k]| <= min(Lw, Lx) 2^53).  Only the range of non-zero limbs
    of each operand is used.  ``cache`` (a dict owned by one pass, or a prepared model) keeps
    the GEMM operand of a weight that is applied repeatedly."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    wi, xi = _weight_limbs(W, cache), _nonzero_limbs(X)
    if not wi or not xi or n == 0:
        return torch.zeros((1, m, N), dtype=torch.int64, device=X.device)
    if _gemm_route(wi[-1] - wi[0] + 1, xi[-1] - xi[0] + 1, m, n, N, b) == "per_limb":
        return _gemm_per_limb(W, X, wi, xi, cache)
    return _gemm_toeplitz(W, X, b, wi, xi, cache)


def _gemm_route(Lw: int, Lx: int, m: int, n: int, N: int, b: int) -> str:
    """The cheaper route of :func:`_gemm` by a rough count: GEMM operand entries (read once per
    GEMM, so they dominate a decode step's N = 1), products, and int64 outputs to add."""
    g = max(1, (1 << (53 - 2 * b)) // n)
    per_limb = Lw * m * n + Lw * Lx * m * N * (n + 4)
    toeplitz = 0
    for xs in range(0, Lx, g):
        Lg = min(g, Lx - xs)
        toeplitz += (Lw + Lg - 1) * Lg * m * n * (1 + N) + 4 * (Lw + Lg - 1) * m * N
    return "per_limb" if per_limb <= toeplitz else "toeplitz"


def _gemm_per_limb(W: torch.Tensor, X: torch.Tensor, wi: list[int], xi: list[int], cache: dict | None) -> torch.Tensor:
    """:func:`_gemm`'s per-weight-limb route (exactness in its docstring)."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    w0, w1, x0, x1 = wi[0], wi[-1], xi[0], xi[-1]
    Lx = x1 - x0 + 1
    Xs = X[x0 : x1 + 1].permute(1, 0, 2).reshape(n, Lx * N).to(torch.float64)
    R = torch.zeros((w1 + x1 + 1, m, N), dtype=torch.int64, device=X.device)
    for i in wi:
        out = (_weight_limb_f64(W, i, cache) @ Xs).to(torch.int64).reshape(m, Lx, N).permute(1, 0, 2)
        R[i + x0 : i + x1 + 1] += out
    return R


def _weight_limb_f64(W: torch.Tensor, i: int, cache: dict | None) -> torch.Tensor:
    """Limb i of W in float64 (kept in ``cache``: a weight's limbs never change)."""
    if cache is None:
        return W[i].to(torch.float64)
    key = ("limb", id(W), i)
    hit = cache.get(key)
    if hit is None or hit[0] is not W:
        hit = cache[key] = (W, W[i].to(torch.float64))
    return hit[1]


def _gemm_toeplitz(W: torch.Tensor, X: torch.Tensor, b: int, wi: list[int], xi: list[int], cache: dict | None) -> torch.Tensor:
    """:func:`_gemm`'s block-Toeplitz route (exactness in its docstring)."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    w0, w1, x0, x1 = wi[0], wi[-1], xi[0], xi[-1]
    if cache is not None:
        x0 = 0  # groups of X-limbs always start at 0: few Toeplitz shapes per weight to keep
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


def _weight_limbs(W: torch.Tensor, cache: dict | None) -> list[int]:
    """The non-zero limbs of W, remembered in ``cache`` (a weight's never change)."""
    if cache is None:
        return _nonzero_limbs(W)
    hit = cache.get(("limbs", id(W)))
    if hit is None or hit[0] is not W:
        hit = cache[("limbs", id(W))] = (W, _nonzero_limbs(W))
    return hit[1]


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
    if (wide and (F > 61 or M >= 1 << 61)) or n * min(M, (wmax * xmax >> F) + 1) >= 1 << 61:
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


def _round_products_limbs(W: torch.Tensor, X: torch.Tensor, b: int, F: int, M: int, tie: str, L: int, pc: torch.Tensor):
    """The round_products reading on the limb digits (operands beyond the word path): each
    product's digits, rounded by 2^F with one carry pass, clipped to +-M (counted in ``pc``,
    (m, N), in place), summed over j; (raw digits (L, m, N), pc)."""
    m, n, N = W.shape[1], W.shape[2], X.shape[2]
    chunk = max(1, (1 << 20) // max(1, m * n))
    parts = []
    for start in range(0, N, chunk):
        Xc = X[:, :, start : start + chunk]
        R = _elementwise_product(W.unsqueeze(-1), Xc.unsqueeze(1))  # (Lr, m, n, Nc)
        neg, mag = _round_raw(R, F, b, tie)  # one carry pass per limb
        over = _gt_const(mag, M, b)
        if bool(over.any()):
            pc[:, start : start + chunk] = over.sum(1)
            mag = torch.where(over.unsqueeze(0), _const_digits(M, b, mag.shape[0], mag), mag)
        mag = _trim(mag, L)  # now |product| <= M: the limbs of an R_p value suffice
        parts.append(_signed(neg, mag).sum(2))
    return torch.cat(parts, dim=2), pc
