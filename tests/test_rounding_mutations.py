"""Meta-tests of issue 16: each evaluator rounding mutation fails a block or theorem check.

The mutations (``tests/rounding_mutations.py``) are one-line source edits: round-to-nearest by
floor in ``numerics.div_round`` (every user) or in the reference evaluator only, and the fast
evaluator's tie rule inverted (ties to odd) in ``_round_raw`` (the limb path, p > 61) and in
``_finish_word`` (the one-word path).  With the mutation in place, the named registered check
must fail at ``ci``: the block checks now run both evaluators on every input
(``evaluator_agreement.block_forward``), and the theorem checks replay a decode on the
reference evaluator (``evaluator_agreement.replay``).  Which check catches which mutation, and
why the theorem decodes cannot see a tie mutation, is in ``notes/testing.md``.
"""
from __future__ import annotations

import random

import pytest
import torch

from constructions.numerics import div_round
from proofs_check.checks import dfs_transformer as c47
from proofs_check.evaluator_agreement import replay_chain
from proofs_check.graphs import Graph
from proofs_check.registry import PROFILES, select
from tests.rounding_mutations import MUTATIONS, applied

torch.set_num_threads(1)

#: mutation -> (a block check it fails at ci, a phrase of the failure it must report)
BLOCK_CATCHES = {
    "div_round_floor": ("B.1", "evaluators disagree"),
    "reference_floor": ("B.1", "evaluators disagree"),
    "fast_tie_raw": ("B.18", "evaluators disagree"),
    "fast_tie_word": ("B.1", "evaluators disagree"),
}


def _tree(n: int, seed: int) -> Graph:
    rng = random.Random(seed)
    return Graph.parse(" ".join(f"{i}-{rng.randrange(1, i)}" for i in range(2, n + 1)))


@pytest.mark.parametrize("name", sorted(BLOCK_CATCHES))
def test_a_block_check_fails_under_the_rounding_mutation(name: str) -> None:
    check_id, phrase = BLOCK_CATCHES[name]
    (check,) = select([check_id])
    with applied(name):
        out = check.run(PROFILES["ci"])
    assert not out.passed, f"check {check_id} passed with mutation {name} ({MUTATIONS[name].what})"
    assert phrase in out.detail, out.detail[:400]


@pytest.mark.parametrize("name", ["div_round_floor", "reference_floor"])
def test_the_theorem_replay_fails_under_a_floor_mutation(name: str) -> None:
    """Check 4.7's replay (the whole decode of an 8-vertex tree on the reference evaluator)."""
    g = _tree(8, 1)
    replay_chain(c47._model(8), g.tokens(), c47.run_graph(g))  # unmutated: agrees
    with applied(name):
        with pytest.raises(AssertionError, match="evaluators disagree"):
            replay_chain(c47._model(8), g.tokens(), c47.run_graph(g))


def test_mutations_are_undone() -> None:
    with applied("div_round_floor"):
        assert div_round(3, 2) == 1
    assert div_round(3, 2) == 2 and div_round(5, 2) == 2


def test_every_mutation_site_exists() -> None:
    for name in MUTATIONS:
        with applied(name):
            pass


def test_div_round_ties_away_at_the_smallest_numerators() -> None:
    """mutmut survivor ``num > 0`` -> ``num > 1`` in the away branch (notes/testing.md)."""
    assert [div_round(k, 2, "away") for k in (-3, -1, 1, 3)] == [-2, -1, 1, 2]
    assert [div_round(k, 2, "even") for k in (-3, -1, 1, 3)] == [-2, 0, 0, 2]
