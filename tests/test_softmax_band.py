"""The fast evaluator's certified float64 softmax over the p band the constructions run at.

The DFS Transformer, the hybrids and the retrieval models run at p = 67..97 (F = 33..48): there
float64 carries only a few bits below the rounding cell of 2^F softmax, and the error bound of
``evaluate_fast._float_softmax`` is what decides whether a column is certified or goes to the
exact path.  ``proofs_check.softmax_columns`` builds columns with one entry a chosen distance
from a rounding midpoint (2^-3 to 2^-24 of a cell, both sides); every entry must equal
``numerics.softmax_column``, the reference evaluator's own operator.  Check A.2 runs the same
property.  The last test drops the error bound (the mutation no test caught before) and requires
that check A.2 then fails: so the band property can fail.
"""
from __future__ import annotations

import pytest
import torch

import constructions.evaluate_fast as ef
from constructions import fast_softmax
from constructions.numerics import Precision
from proofs_check.registry import PROFILES, select
from proofs_check.softmax_columns import BAND, band_mismatches

COLUMNS = 40  # per p


@pytest.mark.parametrize("p", BAND)
def test_fast_softmax_equals_reference_near_midpoints_across_the_band(p: int) -> None:
    assert Precision(p).F <= ef._FLOAT_SOFTMAX_ONLY_F  # these columns go through _float_softmax
    assert band_mismatches(p, COLUMNS) == []


def test_a_dropped_certification_bound_fails_check_a2(monkeypatch) -> None:
    real = fast_softmax._certify

    def no_bound(v, E, rel):
        return real(v, torch.zeros_like(E), rel)

    monkeypatch.setattr(fast_softmax, "_certify", no_bound)
    assert sum(len(band_mismatches(p, COLUMNS)) for p in BAND) > 0
    (a2,) = select(["A.2"])
    outcome = a2.run(PROFILES["ci"])
    assert not outcome.passed and "near a midpoint" in outcome.detail
