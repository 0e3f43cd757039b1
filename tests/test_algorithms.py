"""Graphs, IsTree, Algorithm 1, the Lemma B.27 walk and Algorithm 2, against independent
references written here (BFS connectivity, a recursive DFS) and Python's ``re``."""
from __future__ import annotations

import itertools
import re

import pytest
from graph_reference import bfs_is_tree, recursive_euler_tour
from hypothesis import given
from hypothesis import strategies as st

from constructions.errors import InputError
from constructions.vocab import detokenize
from proofs_check import strategies as S
from proofs_check.algorithms import (
    FAILED,
    PAPER_R1_BACK,
    PAPER_R1_FRESH,
    algorithm1,
    algorithm2,
    cot_algorithm1,
    lemma_b27_chain,
    lemma_b29_answer,
    paper_regex,
    replay_retrievals,
)
from proofs_check.graphs import Graph, components, is_tree

FIGURE3 = "2-6 1-5 3-5 4-6 2-3"

# ---- independent references ---------------------------------------------------------------------






def bfs_component_size(n, edges, start=1):
    adj = {v: set() for v in range(1, n + 1)}
    for u, v in edges:
        adj[u].add(v)
        adj[v].add(u)
    seen, todo = {start}, [start]
    while todo:
        for y in adj[todo.pop()] - seen:
            seen.add(y)
            todo.append(y)
    return len(seen)


# ---- parsing and tokenization ---------------------------------------------------------------------


def test_figure3_tokenization_matches_the_paper():
    g = Graph.parse(FIGURE3)
    assert g.n == 6
    assert detokenize(g.tokens()) == "<s> 2 ~ 6 1 ~ 5 3 ~ 5 4 ~ 6 2 ~ 3"
    assert Graph.from_tokens(g.tokens()) == g
    assert Graph.from_json(g.to_json()) == g
    assert Graph.parse("n=6: " + FIGURE3) == g


def test_orientation_is_kept_and_canonical_orients():
    g = Graph.parse("5-1 2-6")
    assert g.tokens() == ["<s>", 5, "~", 1, 2, "~", 6]
    assert g.canonical().edges == ((1, 5), (2, 6))


@pytest.mark.parametrize(
    "text,n,match",
    [
        ("1-7", 6, "vertex 7 is outside 1..6"),
        ("0-2", None, "vertex 0 is outside"),
        ("3-3", None, "self-loop"),
        ("1-2 2-1", None, "repeats edge 1"),
        ("1-2 1-2", None, "repeats edge 1"),
        ("1-x", None, "cannot read edge"),
        ("1~2", None, "cannot read edge"),
        ("1-2-3", None, "cannot read edge"),
        ("n=x: 1-2", None, "vertex count"),
    ],
)
def test_parse_errors(text, n, match):
    with pytest.raises(InputError, match=match):
        Graph.parse(text, n)


@pytest.mark.parametrize(
    "data,match",
    [
        ({"n": 3, "edges": [[1, 4]]}, "outside 1..3"),
        ({"n": 3, "edges": [[1, "2"]]}, "whole numbers"),
        ({"n": 3, "edges": [[1, 2, 3]]}, "pair"),
        ({"n": 0, "edges": []}, "n \\(the number of vertices\\)"),
        ({"edges": [[1, 2]], "m": 1}, "unknown graph keys"),
        ([[1, 2]], "JSON form"),
    ],
)
def test_json_errors(data, match):
    with pytest.raises(InputError, match=match):
        Graph.from_json(data)


# ---- IsTree -----------------------------------------------------------------------------------------


@given(S.istree_graphs(max_n=14))
def test_is_tree_matches_bfs(g):
    assert is_tree(g) == bfs_is_tree(g.n, g.edges)
    assert sum(len(c) for c in components(g)) == g.n


@given(S.trees(max_n=14))
def test_trees_are_trees(g):
    assert bfs_is_tree(g.n, g.edges)


@given(S.disconnected_n_minus_1(max_n=14))
def test_hard_non_trees(g):
    assert g.m == g.n - 1 and not bfs_is_tree(g.n, g.edges)


@given(st.one_of(S.cyclic_graphs(max_n=14), S.forests(max_n=14)))
def test_other_non_trees(g):
    assert g.m != g.n - 1 and not bfs_is_tree(g.n, g.edges)


# ---- Algorithm 1 ------------------------------------------------------------------------------------


def test_algorithm1_figure3():
    g = Graph.parse(FIGURE3)
    assert algorithm1(g) == [1, 5, 3, 2, 6, 4, 6, 2, 3, 5, 1]
    assert cot_algorithm1(g) == [1, 5, 3, 2, 6, 4, 6, 2, 3, 5, 1, "YES"]


def _prose_algorithm1(g):
    """B.6.2's prose, literally: pop the top of S1 and push it to S2, then push every neighbour of
    the popped vertex not in S1 u S2 to S1; the popped vertices in order."""
    adj = {v: [] for v in range(1, g.n + 1)}
    for u, v in g.edges:
        adj[u].append(v)
        adj[v].append(u)
    s1, s2 = [1], []
    while s1:
        v = s1.pop()
        s2.append(v)
        s1 += [u for u in adj[v] if u not in s1 and u not in s2]
    return s2


def test_erratum_Alg1_E1_prose_algorithm_is_not_the_tour():
    """The prose describes the iterative pre-order DFS: on Figure 3 it visits each of the 6
    vertices once, while Lemma B.29 needs the pseudocode's Euler tour of 2n - 1 = 11 vertices."""
    g = Graph.parse(FIGURE3)
    prose = _prose_algorithm1(g)
    assert sorted(prose) == [1, 2, 3, 4, 5, 6]  # n yields, each vertex once
    assert len(algorithm1(g)) == 2 * g.n - 1 != len(prose)


@pytest.mark.parametrize(
    "text,n,tour,answer",
    [
        ("1-2 2-3", 3, [1, 2, 3, 2, 1], "YES"),
        ("2-3 1-2", 3, [1, 2, 3, 2, 1], "YES"),
        ("1-3 1-2", 3, [1, 3, 1, 2, 1], "YES"),
        ("1-2 1-3", 3, [1, 2, 1, 3, 1], "YES"),
        # triangle: the edge 3-1 is skipped silently, the walk is the full tour
        ("1-2 2-3 3-1", 3, [1, 2, 3, 2, 1], "NO"),
        # cycle 1-2-3 plus isolated 4: 3 edges = n - 1, not a tree
        ("1-2 2-3 1-3", 4, [1, 2, 3, 2, 1], "NO"),
        # 1 isolated
        ("2-3 3-4", 4, [1], "NO"),
        ("", 1, [1], "YES"),
    ],
)
def test_algorithm1_hand_worked(text, n, tour, answer):
    g = Graph.parse(text, n)
    assert algorithm1(g) == tour
    assert lemma_b29_answer(g) == answer


@given(S.istree_graphs(max_n=14))
def test_algorithm1_is_the_recursive_dfs_tour(g):
    tour = algorithm1(g)
    assert tour == recursive_euler_tour(g.edges)
    assert len(tour) == 2 * bfs_component_size(g.n, g.edges) - 1
    edge_set = {frozenset(e) for e in g.edges}
    assert all(frozenset((a, b)) in edge_set for a, b in zip(tour, tour[1:]))
    assert lemma_b29_answer(g) == ("YES" if bfs_is_tree(g.n, g.edges) else "NO")


def test_every_order_and_orientation_small():
    for text, n in [("1-2 2-3 2-4", 4), ("1-2 2-3 3-1", 4), ("1-2 3-4 2-4", 4), ("1-3 2-3 3-4 4-1", 4)]:
        base = Graph.parse(text, n)
        for order in itertools.permutations(range(base.m)):
            for flips in itertools.product((False, True), repeat=base.m):
                edges = [base.edges[i][::-1] if f else base.edges[i] for i, f in zip(order, flips)]
                g = Graph.make(n, edges)
                assert algorithm1(g) == recursive_euler_tour(g.edges)
                want = "YES" if bfs_is_tree(n, g.edges) else "NO"
                assert lemma_b29_answer(g) == want
                assert lemma_b27_chain(g, literal_end_check=False)[-1] == want
                assert algorithm2(g).answer == want


# ---- the Lemma B.27 walk ----------------------------------------------------------------------------


@given(S.trees(max_n=14))
def test_b27_chain_on_trees_is_the_tour(g):
    assert lemma_b27_chain(g) == recursive_euler_tour(g.edges) + ["YES"]


@given(S.istree_graphs(max_n=14))
def test_b27_chain_fixed_end_check(g):
    chain = lemma_b27_chain(g, literal_end_check=False)
    want = "YES" if bfs_is_tree(g.n, g.edges) else "NO"
    assert chain[-1] == want
    walk = chain[:-1]
    edge_set = {frozenset(e) for e in g.edges}
    assert walk[0] == 1 and all(frozenset((a, b)) in edge_set for a, b in zip(walk, walk[1:]))


def test_b27_chain_stops_at_the_first_revisit():
    # triangle 1-2-3: 1 -> 2 -> 3, then 3's next edge 3-1 closes the cycle
    assert lemma_b27_chain(Graph.parse("1-2 2-3 3-1")) == [1, 2, 3, "NO"]


def test_b27_chain_literal_end_check_accepts_a_non_tree():
    """B.6.2 step 11 checks only the position 5n - 3: vertex 1 isolated, n = 7, ten edges
    among 2..7 give 3*10 + 1 + 1 = 32 = 5*7 - 3."""
    edges = list(itertools.combinations(range(2, 8), 2))[:10]
    g = Graph.make(7, edges)
    assert not bfs_is_tree(7, edges)
    assert lemma_b27_chain(g, literal_end_check=True) == [1, "YES"]  # the printed check errs
    assert lemma_b27_chain(g, literal_end_check=False) == [1, "NO"]


# ---- Algorithm 2 ------------------------------------------------------------------------------------


def _visits(trace_tokens):
    """Vertices pushed at line 3: followed by their parent search <StartSearch> - v, and not a
    retrieval result (those follow <EndSearch>)."""
    return [t for i, t in enumerate(trace_tokens[:-3])
            if isinstance(t, int) and (i == 0 or trace_tokens[i - 1] != "<EndSearch>")
            and trace_tokens[i + 1 : i + 4] == ["<StartSearch>", "-", t]]


def test_algorithm2_figure3_and_retrievals():
    g = Graph.parse(FIGURE3)
    trace = algorithm2(g)
    assert trace.answer == "YES"
    assert _visits(trace.tokens) == [1, 5, 3, 2, 6, 4, 6, 2, 3, 5, 1]
    for q, got in replay_retrievals(g.tokens(), trace):
        assert got == q.result, q


@given(S.istree_graphs(max_n=10))
def test_algorithm2_answer_and_every_retrieval(g):
    trace = algorithm2(g)
    assert trace.answer == ("YES" if bfs_is_tree(g.n, g.edges) else "NO")
    for q, got in replay_retrievals(g.tokens(), trace):
        assert got == q.result, (q, detokenize(g.tokens() + trace.tokens))
    if bfs_is_tree(g.n, g.edges):
        assert _visits(trace.tokens) == recursive_euler_tour(g.edges)


def test_algorithm2_cycle_trace():
    g = Graph.parse("1-2 2-3 3-1")
    t = detokenize(algorithm2(g).tokens)
    assert t.endswith("<StartSearch> 2 ~ 3 <EndSearch> 1 <StartSearch> - 1 <EndSearch> FAILED NO")


def test_erratum_Alg2_E1_line13_as_printed_disagrees_with_retrieve():
    g = Graph.parse("1-2")
    literal = algorithm2(g, literal_line13=True)
    mismatches = [(q, got) for q, got in replay_retrievals(g.tokens(), literal) if got != q.result]
    assert mismatches and mismatches[0][0].kind == "first_edge"
    assert mismatches[0][0].result == FAILED and mismatches[0][1] == 1  # r1 finds the father 1


def test_erratum_Alg2_E2_paper_r1_groups():
    s = detokenize(Graph.parse("1-2 2-3").tokens())
    # fresh r1 for v = 1: the edge is written "1 ~ 2", the second alternative matches, group 1 is unset
    m = re.search(paper_regex(PAPER_R1_FRESH, v=1), s)
    assert m is not None and m.group(1) is None
    # back r1 for v = 2 after child 1: group 1 is the anchor edge itself, not the next neighbour
    m = re.search(paper_regex(PAPER_R1_BACK, a=1, v=2), s)
    assert m.group(1) == "1 ~ 2"
