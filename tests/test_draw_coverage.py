"""Issue 16, the ci draws and the claims rows: full-length retrieval instances, distinct (n, m)
IsTree examples, explicit examples in ``property_check``, CoT steps measured by a decode."""
from __future__ import annotations

import random

import pytest
import torch
from hypothesis import strategies as st

from constructions.retrieval_tasks import build
from proofs_check.claims import retrieval_rows
from proofs_check.graphs import is_tree
from proofs_check.registry import PROFILES, property_check
from proofs_check.strategies import long_instance, spread_graphs

torch.set_num_threads(1)


@pytest.mark.parametrize("task", ["index", "ar", "cgram", "count"])
@pytest.mark.parametrize("n", [3, 17, 64])
def test_long_instance_has_n_data_tokens_and_a_valid_query(task: str, n: int) -> None:
    inst = long_instance(task, n, random.Random(n))
    assert inst.n == n and len(inst.seq) == n and max(inst.seq) <= n
    assert inst.answer() is not None  # answerable (make() validated the query)


def test_spread_graphs_have_distinct_sizes_over_the_range_and_every_family() -> None:
    gs = spread_graphs(32, 10)
    assert len({(g.n, g.m) for g in gs}) == 10
    assert min(g.n for g in gs) == 3 and max(g.n for g in gs) == 32
    assert {g.m - g.n for g in gs} == {-2, -1, 0, 1}  # forests, trees / non-trees, cycles, too many
    assert any(is_tree(g) for g in gs) and any(g.m == g.n - 1 and not is_tree(g) for g in gs)


def test_property_check_runs_the_explicit_examples_first() -> None:
    seen: list[int] = []
    out = property_check(st.integers(100, 200), seen.append, PROFILES["ci"], max_examples=3, examples=[7, 8])
    assert out.passed and seen[:2] == [7, 8] and all(100 <= x <= 200 for x in seen[2:])


def test_retrieval_rows_measure_the_cot_steps_by_decoding() -> None:
    rows = retrieval_rows([16])
    assert len(rows) == 12
    for r in rows:
        declared = build(r.task.split(" ")[0], r.model, 16, c=3).meta["cot_steps"]
        assert r.sizes["cot_steps"] == f"measured {declared}", (r.theorem, r.task, r.sizes["cot_steps"])
