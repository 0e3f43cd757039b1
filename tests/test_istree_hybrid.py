"""Theorem 5.7 / App B.12: the hybrid IsTree models (constructions/istree_hybrid.py) and errata."""
from __future__ import annotations

import itertools
import random

import pytest
import torch

from constructions.errors import PrecisionError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.istree_hybrid import (
    PROBE, VISIT, binary_declared_p, cot_bound, declared_p, istree_binary_hybrid, istree_hybrid,
)
from constructions.model import LinearRNNLayer, TransformerLayer
from proofs_check.algorithms import algorithm1, lemma_b27_chain
from proofs_check.checks.istree_hybrid import CHECKS, FIGURE3, hybrid_cot, nearest_edge, run_graph, visits_of
from proofs_check.graphs import NO, YES, Graph, istree_answer, random_non_tree_n_minus_1, random_tree, shuffle_edges
from proofs_check.lower_bounds import figure3_graph
from proofs_check.registry import PROFILES

torch.set_num_threads(1)


def test_figure3_cot_is_the_reference_and_the_tour():
    got = run_graph(FIGURE3)
    assert got == hybrid_cot(FIGURE3)
    assert got[-1] == YES and visits_of(got) == algorithm1(FIGURE3) == [1, 5, 3, 2, 6, 4, 6, 2, 3, 5, 1]
    assert len(got) - 1 <= cot_bound(6)


@pytest.mark.parametrize("text,n", [("", 1), ("1-2", 2), ("2-1", 2), ("2-3 3-1", 3), ("", 2), ("1-2 2-3 3-1", 3),
                                    ("1-2 2-3 3-1 4-1", 5), ("1-2 3-4", 4)])
def test_small_and_edge_cases(text, n):
    g = Graph.parse(text, n)
    got = run_graph(g)
    assert got == hybrid_cot(g)
    assert got[-1] == istree_answer(g)
    if g.m != g.n - 1:
        assert got == [NO]  # never a tree: answered at the prompt's end


def test_reference_and_fast_agree_bit_for_bit():
    g = Graph.parse("1-2 3-1")
    model = istree_hybrid(3)
    toks = g.tokens() + hybrid_cot(g)[:14]  # into the second PROBE group
    a = ReferenceEvaluator().forward(model, toks)
    b = FastEvaluator().forward(model, toks)
    assert a.next_token == b.next_token == hybrid_cot(g)[14]
    assert a.logits == b.logits and (a.residual == b.residual).all()
    gb = figure3_graph((0, 1, 1), 2)
    mb = istree_binary_hybrid(5)
    a, b = ReferenceEvaluator().forward(mb, gb.tokens()), FastEvaluator().forward(mb, gb.tokens())
    assert a.next_token == b.next_token == istree_answer(gb) and a.logits == b.logits


def test_reference_cot_is_the_dfs_of_the_paper():
    """hybrid_cot (the check's reference) against Algorithm 1 and the B.6.2 walk, in Python."""
    rng = random.Random(7)
    for n in range(2, 40):
        for g in [random_tree(rng, n)] + ([random_non_tree_n_minus_1(rng, n)] if n >= 4 else []):
            cot = hybrid_cot(g)
            assert cot[-1] == istree_answer(g)
            assert visits_of(cot) == [t for t in lemma_b27_chain(g, literal_end_check=False) if isinstance(t, int)]
            if cot[-1] == YES:
                assert visits_of(cot) == algorithm1(g)
            assert len(cot) - 1 <= cot_bound(n)


def test_binary_family_all_instances_n6_any_order():
    n, rng = 6, random.Random(3)
    cases = [(x, k) for x in itertools.product((0, 1), repeat=n - 2) for k in range(1, n - 2)]
    graphs = [shuffle_edges(rng, figure3_graph(x, k)) for x, k in cases]
    got = FastEvaluator().next_tokens(istree_binary_hybrid(n), [g.tokens() for g in graphs])
    for (x, k), g, tok in zip(cases, graphs, got):
        assert tok == istree_answer(g) == (YES if x[k - 1] != x[k] else NO), (x, k, g.to_text())


def test_architecture_is_def_5_5_and_sizes_do_not_grow():
    for build in (istree_hybrid, istree_binary_hybrid):
        small, big = build(8), build(32)
        for mdl in (small, big):
            assert mdl.arch == "hybrid" and isinstance(mdl.layers[-1], TransformerLayer)
            assert all(isinstance(layer, LinearRNNLayer) for layer in mdl.layers[:-1])
        assert small.state_dims() == big.state_dims() and small.d == big.d and small.n_heads() == big.n_heads()


def test_precision_is_logarithmic_and_checked():
    ps = [declared_p(n) for n in (8, 16, 32, 64, 128)]
    assert all(0 < b - a <= 10 for a, b in zip(ps, ps[1:]))  # about 7 bits per doubling of n
    with pytest.raises(PrecisionError, match=f"p >= {declared_p(8)}"):
        istree_hybrid(8, p=declared_p(8) - 2)
    with pytest.raises(PrecisionError, match=f"p >= {binary_declared_p(8)}"):
        istree_binary_hybrid(8, p=binary_declared_p(8) - 2)


def test_check_5_7_passes_at_ci():
    """The check at ci (the only place an n = 32 tree is decoded: ~1 minute) passes and reports
    the sizes of every model it ran (constant in n)."""
    out = CHECKS[0].run(PROFILES["ci"])
    assert out.passed, out.detail
    sizes = out.measured["sizes"]
    assert 32 in sizes and cot_bound(32) >= sizes[32]["cot_max_seen"] > 2 * 31  # a whole tour
    # n = 2: one weight derived from n is 0 there (409 non-zero)
    assert {(s["layers"], s["state_dims"], s["params"]) for n, s in sizes.items() if n >= 3} == {(3, 42, 410)}
    assert out.measured["binary_sizes"]


# ---- errata (notes/errata/istree_hybrid.md): each literal reading fails ------------------------


def test_erratum_T57_E1_integer_targets_tie_and_the_average_is_a_wrong_edge():
    """B.12 probes "closest to p + 2^i": with an integer target, edges j0 and j0 + 2d tie."""
    g = Graph.parse("1-2 3-4 1-3")
    cands = [j for j, e in enumerate(g.edges, 1) if 1 in e]
    j0, d = 1, 1
    dist = sorted(abs(j - (j0 + d)) for j in cands)
    assert cands == [1, 3] and dist[0] == dist[1]  # a tie: softmax splits 1/2 - 1/2
    avg = sum(cands) // 2  # what a split head returns: edge 2 = 3-4, which does not contain 1
    assert 1 not in g.edges[avg - 1]
    assert nearest_edge(g, 1, j0 + d + 0.25) == 3  # the fix: target + 1/4, the later edge wins


def _literal_position_search(g: Graph, v: int, p: int, n: int) -> int | None:
    """B.12 literally: positions in the token sequence, i = 0..log2 n, closest to p + 2^i."""
    toks = g.tokens()
    occ = [k for k, t in enumerate(toks, 1) if t == v]
    for i in range(0, n.bit_length()):  # 2^i <= n
        best = min(occ, key=lambda k: (abs(k - (p + 2 ** i)), -k))
        if best != p:
            return best
    return None


def test_erratum_T57_E2_position_doubling_up_to_log_n_misses_the_next_edge():
    g = Graph.parse("1-2 2-3 3-4 4-5 5-6 6-7 1-8")  # vertex 1 in edges 1 and 7 (positions 2, 20)
    assert _literal_position_search(g, 1, 2, g.n) is None  # "no next edge": wrong
    assert nearest_edge(g, 1, 1 + 4 + 0.25) == 7  # edge indices, d up to j0 + 2d >= m: found
    got = run_graph(g)
    assert got == hybrid_cot(g) and got[-1] == YES


def test_erratum_T57_E3_latest_occurrence_predecessor_is_not_the_parent():
    g = Graph.parse("1-2 2-3 2-4")
    tour = algorithm1(g)
    assert tour == [1, 2, 3, 2, 4, 2, 1]
    k = 5  # the third 2
    latest = max(i for i in range(k) if tour[i] == 2)
    first = tour.index(2)
    assert tour[latest - 1] == 3  # MatchClose + "predecessor": a child, not the parent
    assert tour[first - 1] == 1  # first occurrence: the parent (what the visit head uses)


def _is_family_with_hubs(g: Graph, hubs: tuple[int, int]) -> bool:
    hub_of = {}
    special = []
    for a, b in g.edges:
        ha, hb = a in hubs, b in hubs
        if ha and hb:
            return False
        if ha or hb:
            w = b if ha else a
            if w in hub_of:
                return False
            hub_of[w] = a if ha else b
        else:
            special.append((a, b))
    return len(special) == 1 and set(hub_of) == set(range(1, g.n + 1)) - set(hubs)


def test_erratum_T57_E4_the_first_four_edges_do_not_determine_a_hub():
    """With the hubs' labels not fixed, two family instances share their first four edges but
    not a hub: the bit-1 hub is 6 in one and 3 in the other, the bit-0 hub any of 1, 2, 5."""
    a = Graph.parse("1-5 2-5 1-2 3-6 4-6")  # figure3_graph((0, 0, 1, 1), 1) reordered: hubs 5, 6
    b = Graph.parse("1-5 2-5 1-2 3-6 4-3")  # hubs 5, 3 (6 and 4 on hub 3)
    assert a.edges == figure3_graph((0, 0, 1, 1), 1).reordered([0, 1, 4, 2, 3]).edges
    assert a.edges[:4] == b.edges[:4]
    pairs = list(itertools.combinations(range(1, 7), 2))
    readings_a = {frozenset(h) for h in pairs if _is_family_with_hubs(a, h)}
    readings_b = {frozenset(h) for h in pairs if _is_family_with_hubs(b, h)}
    assert readings_a == {frozenset((w, 6)) for w in (1, 2, 5)}
    assert readings_b == {frozenset((w, 3)) for w in (1, 2, 5)}
    assert not frozenset.intersection(*readings_a, *readings_b)  # no vertex is a hub in every reading
    # the family as defined (hubs n - 1 and n) needs no such step; the model reads the labels
    assert FastEvaluator().next_token(istree_binary_hybrid(6), a.tokens()) == istree_answer(a) == NO


def test_markers_are_in_the_vocabulary():
    v = istree_hybrid(4).vocab
    assert v.min_number == 0 and VISIT in v.specials and PROBE in v.specials
