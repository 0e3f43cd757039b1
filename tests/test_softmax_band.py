"""The fast evaluator's certified float64 softmax over the p band the constructions run at.

The DFS Transformer, the hybrids and the retrieval models run at p = 67..97 (F = 33..48): there
float64 carries only a few bits below the rounding cell of 2^F softmax, and the error bound of
``evaluate_fast._float_softmax`` is what decides whether a column is certified or goes to the
exact path.  Columns are built with one entry a chosen distance from a rounding midpoint (2^-3
to 2^-24 of a cell, both sides), and every entry must equal ``numerics.softmax_column``, the
reference evaluator's own operator.  The second test drops the error bound (the mutation that
no test caught before) and requires that the first test's columns then expose a misrounding:
so the band test can fail.
"""
from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

import constructions.evaluate_fast as ef
from constructions.numerics import Arithmetic, Precision, softmax_column
from tests.random_models import ModelSpec, random_model
from tests.test_softmax_fixed import near_midpoint_column

BAND = (67, 71, 77, 83, 89, 91, 97)  # odd p the IsTree / retrieval builders declare for n <= 1024
COLUMNS = 40  # per p


def _engine(p: int, tie: str = "even"):
    model = random_model(ModelSpec("transformer", p, seed=3))
    arith = Arithmetic(tie=tie)
    prep = ef._prepare(model, arith, COLUMNS, torch.device("cpu"))
    return ef._Engine(prep, arith, ef._Checker(1, prep.prec, arith)), model.d


def _near_midpoint_columns(p: int, d: int, seed: int) -> list[list[int]]:
    F = Precision(p).F
    rng = random.Random(seed * 1000 + p)
    cols = []
    for _ in range(COLUMNS):
        m = rng.randint(2, 6)
        delta = Fraction(rng.choice((-1, 1)), 1 << rng.randint(3, 24))
        cols.append(near_midpoint_column(rng, F, d, m, rng.randrange(m), delta))
    return cols


def _fast_softmax(eng, cols: list[list[int]], d: int) -> np.ndarray:
    """P = ROUND(softmax) of the columns through the engine's softmax (scores packed as in the
    evaluator: column k holds col k's scores in rows 0..len - 1)."""
    F = eng.F
    T = max(len(c) for c in cols)
    S = np.zeros((T, len(cols)), dtype=object)
    causal = torch.zeros((T, len(cols)), dtype=torch.bool)
    for k, col in enumerate(cols):
        S[: len(col), k] = col
        causal[: len(col), k] = True
    digits = ef._ints_to_digits(S, eng.b, ef.Limbs(eng.b).count(3 * F + 2), eng.dev)
    return ef._digits_to_ints(eng.softmax(digits, causal, d), eng.b)


def _mismatches(p: int, seed: int = 0) -> int:
    eng, d = _engine(p)
    prec = Precision(p)
    cols = _near_midpoint_columns(p, d, seed)
    P = _fast_softmax(eng, cols, d)
    bad = 0
    for k, col in enumerate(cols):
        want = softmax_column(col, 2 * prec.F, d, prec, "even")
        bad += [int(v) for v in P[: len(col), k]] != want
    return bad


@pytest.mark.parametrize("p", BAND)
def test_fast_softmax_equals_reference_near_midpoints_across_the_band(p: int) -> None:
    assert ef.Precision(p).F <= ef._FLOAT_SOFTMAX_ONLY_F  # these columns go through _float_softmax
    assert _mismatches(p) == 0


def test_the_band_test_catches_a_dropped_certification_bound(monkeypatch) -> None:
    real = ef._certify

    def no_bound(v, E, rel):
        return real(v, torch.zeros_like(E), rel)

    monkeypatch.setattr(ef, "_certify", no_bound)
    assert sum(_mismatches(p) for p in BAND) > 0
