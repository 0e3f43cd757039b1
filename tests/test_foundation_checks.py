"""The registered foundation checks (A.2 arithmetic, A.5 retrieval) pass at the ci profile."""
from __future__ import annotations

import pytest

from proofs_check.checks.foundation import CHECKS
from proofs_check.registry import PROFILES


def test_ids_and_titles():
    assert [(c.id, c.title) for c in CHECKS] == [
        ("A.2", "p-bit arithmetic (Appendix A.2)"),
        ("A.5", "In-context retrieval (Def A.5, Sec 5.1)"),
    ]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_passes_at_ci(check):
    outcome = check.run(PROFILES["ci"])
    assert outcome.passed, f"{check.id} failed after {outcome.cases} cases:\n{outcome.detail}"
    assert outcome.cases >= PROFILES["ci"].max_examples
