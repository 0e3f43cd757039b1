"""constructions/fast_limbs.py: the Python-int finish of decode steps against numerics.div_round."""
from __future__ import annotations

import torch
from hypothesis import given, strategies as st

from constructions.fast_limbs import _finish_ints
from constructions.numerics import div_round

B = 20  # limb bits as the engine uses them (any b works)


def _value(col: list[int], b: int) -> int:
    return sum(r << (b * k) for k, r in enumerate(col))


@st.composite
def raw_digits(draw):
    """Raw signed limb digits (not normalised, as the GEMMs leave them), some exact ties."""
    limbs = draw(st.integers(1, 5))
    entries = draw(st.integers(1, 12))
    shift = draw(st.integers(0, B * limbs))
    cols = [[draw(st.integers(-(1 << (B + 3)), 1 << (B + 3))) for _ in range(limbs)] for _ in range(entries)]
    if 0 < shift <= B * limbs - 12 and draw(st.booleans()):  # V = m 2^shift + 2^(shift-1): a tie
        v = draw(st.integers(-(1 << 10), 1 << 10)) * (1 << shift) + (1 << (shift - 1))
        sign, mag = (-1 if v < 0 else 1), abs(v)
        cols[draw(st.integers(0, entries - 1))] = [sign * ((mag >> (B * k)) & ((1 << B) - 1)) for k in range(limbs)]
    return cols, shift


@given(raw_digits(), st.sampled_from(["even", "away"]))
def test_finish_ints_rounds_as_div_round(case, tie):
    cols, shift = case
    R = torch.tensor(cols, dtype=torch.int64).T
    want = [div_round(_value(col, B), 1 << shift, tie) if shift else _value(col, B) for col in cols]
    bound = max(abs(q) for q in want)
    L_out = max(1, -(-bound.bit_length() // B))
    got = _finish_ints(R, shift, bound, B, L_out, tie)
    assert got is not None
    assert [_value(col, B) for col in got.T.tolist()] == want
    assert all(abs(d) < (1 << B) for d in got.flatten().tolist())
    if bound:
        assert _finish_ints(R, shift, bound - 1, B, L_out, tie) is None  # one over the bound: refused
