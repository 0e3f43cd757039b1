"""constructions/fast_products.py: the exact limb GEMM, both routes, against Python ints."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st

from constructions import fast_products as FP


def _value(digits: list[int], b: int) -> int:
    return sum(d << (b * k) for k, d in enumerate(digits))


@st.composite
def operands(draw):
    """Signed digit tensors W (Lw, m, n), X (Lx, n, N) with |digit| < 2^b, some limbs all zero
    (the routes skip them), and b at the exactness edge 2b + log2(n) <= 53 or below."""
    n = draw(st.integers(1, 9))
    b = draw(st.integers(4, (53 - n.bit_length() + 1) // 2))
    m, N = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    Lw, Lx = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    edge = draw(st.booleans())  # digits at +-(2^b - 1): the largest float64 partial sums
    hi = (1 << b) - 1
    def tensor(L, r, c):
        zero = draw(st.sets(st.integers(0, L - 1), max_size=L - 1))
        vals = [[[0 if k in zero else (draw(st.sampled_from([-hi, hi])) if edge else draw(st.integers(-hi, hi)))
                  for _ in range(c)] for _ in range(r)] for k in range(L)]
        return torch.tensor(vals, dtype=torch.int64)
    return tensor(Lw, m, n), tensor(Lx, n, N), b


def _want(W: torch.Tensor, X: torch.Tensor, b: int) -> list[list[int]]:
    Wl, Xl = W.tolist(), X.tolist()
    Lw, m, n = W.shape
    Lx, _, N = X.shape
    wv = [[_value([Wl[k][i][j] for k in range(Lw)], b) for j in range(n)] for i in range(m)]
    xv = [[_value([Xl[k][j][c] for k in range(Lx)], b) for c in range(N)] for j in range(n)]
    return [[sum(wv[i][j] * xv[j][c] for j in range(n)) for c in range(N)] for i in range(m)]


def _got(R: torch.Tensor, b: int) -> list[list[int]]:
    Rl = R.tolist()
    return [[_value([Rl[k][i][c] for k in range(R.shape[0])], b) for c in range(R.shape[2])] for i in range(R.shape[1])]


def _routed(route: str, W: torch.Tensor, X: torch.Tensor, b: int, cache: dict | None = None) -> torch.Tensor:
    """FP._gemm with its route forced (the operand limb ranges as _gemm finds them)."""
    wi, xi = FP._weight_limbs(W, cache), FP._nonzero_limbs(X)
    if not wi or not xi:
        return FP._gemm(W, X, b, cache)
    if route == "per_limb":
        return FP._gemm_per_limb(W, X, wi, xi, cache)
    return FP._gemm_toeplitz(W, X, b, wi, xi, cache)


@pytest.mark.parametrize("route", ["per_limb", "toeplitz"])
@settings(max_examples=60, deadline=None)
@given(case=operands(), cached=st.booleans())
def test_each_gemm_route_is_the_exact_integer_product(route, case, cached):
    W, X, b = case
    cache = {} if cached else None
    assert _got(_routed(route, W, X, b, cache), b) == _want(W, X, b)
    if cached:  # the kept operand gives the same sums again
        assert _got(_routed(route, W, X, b, cache), b) == _want(W, X, b)
    assert _got(FP._gemm(W, X, b, cache), b) == _want(W, X, b)


@pytest.mark.parametrize("route", ["per_limb", "toeplitz"])
def test_more_bits_than_the_float64_mantissa_allows_breaks_each_route(route):
    """The exactness condition is needed: b = 26-bit digits and n = 4 (2b + log2 n = 54 > 53)
    give a float64 partial sum 3 (2^26 - 1)^2, an odd integer above 2^53, which float64 cannot
    hold, so the route's answer is wrong (this is why Limbs caps b at (53 - log2 n) / 2)."""
    b, hi = 26, (1 << 26) - 1
    W = torch.tensor([[[hi, hi, hi, hi]]], dtype=torch.int64)
    X = torch.tensor([[[hi], [hi], [hi], [1]]], dtype=torch.int64)
    assert _got(_routed(route, W, X, b), b) != _want(W, X, b)
    assert _got(_routed(route, W[:, :, :2], X[:, :2], b), b) == _want(W[:, :, :2], X[:, :2], b)  # n = 2: exact


def test_a_decode_step_of_a_wide_sparse_ffn_takes_the_per_limb_route():
    """Thm 4.8's FFN at P = 1024 (6156 x 36 weights in 2 limbs, one column of 8 limbs): the
    Toeplitz operand would be 9 x 8 blocks of the weight; per limb it is the weight itself."""
    assert FP._gemm_route(2, 8, 6156, 36, 1, 18) == "per_limb"
    assert FP._gemm_route(8, 8, 400, 2, 400, 18) == "toeplitz"  # prefill scores, key dim 2
