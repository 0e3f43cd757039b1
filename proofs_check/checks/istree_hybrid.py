"""Check 5.7: hybrid linear RNNs (Def 5.5) for IsTree (Theorem 5.7, App B.12).

(a) ``constructions.istree_hybrid.istree_hybrid(n)`` is decoded greedily (Def A.4) on
Hypothesis-drawn graphs (trees, cyclic graphs, disconnected graphs with n - 1 edges, forests,
arbitrary graphs, the Figure 3 family; every edge order and orientation) and compared with
references written here from the paper's description, never with the construction:

* the answer equals IsTree (``graphs.istree_answer``, union-find);
* the chain of thought equals :func:`hybrid_cot` (B.12's DFS with the next neighbour found by
  doubling probes "closest to p + 2^i", written as the groups of the construction's docstring);
* the VISIT vertices equal Algorithm 1's A(G) on trees, and the B.6.2 walk
  (``algorithms.lemma_b27_chain``) on every graph with m = n - 1 (an independent cross-check
  of :func:`hybrid_cot` itself);
* the CoT has at most ``cot_bound(n)`` = (2n - 1)(12 ceil(log2(n - 1)) + 8) = O(n log n) tokens.

Sizes (:data:`LARGE`): most graphs are small (n <= 7 at ci; n <= 8, and trees with
9 <= n <= 16, otherwise), and at every size N of the profile's list (ci: 32; dev: 32;
thorough: 32, 64, 128) a tree on exactly N vertices is decoded (a seeded uniform random tree,
or a Hypothesis-drawn one; ~2350 CoT tokens at N = 32), with, outside ci, a non-tree with
N - 1 edges; at every N also a graph with fewer than N - 1 edges (answered at the prompt's
end).  ``measured["sizes"]`` has ``claims.measure`` of the model at every n decoded, with the
bound and the longest CoT seen; ``measured["binary_sizes"]`` the same for (b).

(b) ``istree_binary_hybrid(n)`` answers IsTree with no CoT on Figure 3 family graphs
``lower_bounds.figure3_graph(x, k)`` for random bit strings x and indices k, shuffled.
At the sizes of ``evaluator_agreement.REPLAY`` (ci: 16; dev: 16, 32; thorough: 64, 128) a tree's
whole decode is replayed on the reference evaluator: every token and residual column must agree.
"""
from __future__ import annotations

import random
from functools import lru_cache

import torch

from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.evaluate_fast import FastEvaluator
from constructions.istree_hybrid import (
    FOUND, PROBE, UP, VISIT, binary_declared_p, cot_bound, declared_p, istree_binary_hybrid, istree_hybrid,
)
from constructions.model import Model
from constructions.vocab import Token
from proofs_check.algorithms import algorithm1, lemma_b27_chain
from proofs_check.claims import measure
from proofs_check.evaluator_agreement import replay_chain, replay_sizes
from proofs_check.graphs import NO, YES, Graph, istree_answer, random_tree
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import figure3_cases, istree_graphs, large_sizes, non_trees_on, trees, trees_on

FIGURE3 = Graph.parse("2-6 1-5 3-5 4-6 2-3")
torch.set_num_threads(1)  # the exact evaluator's small tensors: threads only add overhead


# ---- the reference chain of thought (B.12, written from the paper) ------------------------------


def nearest_edge(g: Graph, w: int, t: float) -> int:
    """B.12's retrieval "the edge that contains v and is closest to p + 2^i", on edge indices:
    the index j (1-based) of the edge containing w nearest to t, or 0 for <s> (a virtual edge
    0 containing every vertex, so "nothing" is the start).  t = integer + 1/4: no ties."""
    cands = [0] + [j for j, (a, b) in enumerate(g.edges, 1) if w in (a, b)]
    return min(cands, key=lambda j: abs(j - t))


def other_end(g: Graph, j: int, w: int) -> int:
    a, b = g.edges[j - 1]
    return b if a == w else a


def hybrid_cot(g: Graph) -> list[Token]:
    """The chain of thought of ``istree_hybrid`` after Tokenize(g), then YES/NO.

    m != n - 1: ``[NO]`` (never a tree).  Otherwise a DFS from vertex 1 (B.12: "similar to the
    proof of Theorem 5.3"; Algorithm 1's order) written as groups:

    * ``VISIT x jx j0``: the tour arrives at x (jx = x's father edge, 0 at the root; j0 = 0
      on the first arrival, else the father edge of the child it returns from);
    * ``PROBE x jx j0 d r``: r = nearest edge of x to j0 + d + 1/4, for d = 1, 2, 4, ...
      (B.12: closest to p + 2^i).  r != j0 is the first edge of x after j0: the father edge is
      skipped (search again after it, d = 1), another edge is FOUND; r = j0: double d, unless
      j0 + 2d >= n - 1 = m (no later edge can exist): x is finished;
    * ``FOUND x r y``: y = the other end of edge r; NO if y was visited (a cycle), else VISIT y;
    * ``UP x jx p``: p = x's father; VISIT p with j0 = jx.  At the root: YES iff the tour has
      2n - 1 VISITs (Lemma B.29), else NO.
    """
    n = g.n
    if g.m != n - 1:
        return [NO]
    out: list[Token] = []
    father_edge: dict[int, int] = {}
    visits = 0

    def visit(x: int, jx: int, j0: int) -> None:
        nonlocal visits
        out.extend([VISIT, x, jx, j0])
        visits += 1
        father_edge.setdefault(x, jx)

    x, j0 = 1, 0
    visit(1, 0, 0)
    while True:
        jx = father_edge[x]
        d, found = 1, None
        while True:
            r = nearest_edge(g, x, j0 + d + 0.25)
            out.extend([PROBE, x, jx, j0, d, r])
            if r != j0 and r == jx:
                j0, d = r, 1
            elif r != j0:
                found = r
                break
            elif j0 + 2 * d >= n - 1:
                break
            else:
                d *= 2
        if found is not None:
            y = other_end(g, found, x)
            out.extend([FOUND, x, found, y])
            if y in father_edge:
                return out + [NO]
            visit(y, found, 0)
            x, j0 = y, 0
        elif jx == 0:
            return out + [YES if visits == 2 * n - 1 else NO]
        else:
            p = other_end(g, jx, x)
            out.extend([UP, x, jx, p])
            visit(p, father_edge[p], jx)
            x, j0 = p, jx


def visits_of(cot: list[Token]) -> list[int]:
    return [cot[i + 1] for i, t in enumerate(cot) if t == VISIT]


# ---- running the models ----------------------------------------------------------------------


@lru_cache(maxsize=32)
def _model(n: int) -> Model:
    return istree_hybrid(n)


@lru_cache(maxsize=32)
def _binary_model(n: int) -> Model:
    return istree_binary_hybrid(n)


def run_graph(g: Graph, evaluator=None) -> list[Token]:
    ev = evaluator or FastEvaluator()
    return chain_of_thought(ev.session(_model(g.n), g.tokens()), cot_bound(g.n) + 1).generated


def check_graph(g: Graph, stats: dict | None = None) -> list[Token]:
    got = run_graph(g)
    where = f"graph n={g.n} edges '{g.to_text()}'"
    assert got and got[-1] in (YES, NO), f"{where}: no answer within {cot_bound(g.n) + 1} tokens: {got[-12:]}"
    answer, cot = got[-1], got[:-1]
    assert answer == istree_answer(g), f"{where}: answer {answer}, IsTree says {istree_answer(g)}"
    exp = hybrid_cot(g)
    assert got == exp, f"{where}: CoT differs from the reference at token {_first_diff(got, exp)}"
    assert len(cot) <= cot_bound(g.n), f"{where}: CoT of {len(cot)} tokens > bound {cot_bound(g.n)}"
    if g.m == g.n - 1:
        walk = lemma_b27_chain(g, literal_end_check=False)
        assert visits_of(cot) == [t for t in walk if isinstance(t, int)], f"{where}: VISITs differ from the B.6.2 walk"
        if answer == YES:
            assert visits_of(cot) == algorithm1(g), f"{where}: tour differs from Algorithm 1"
    if stats is not None:
        stats["graphs"] = stats.get("graphs", 0) + 1
        lens = stats.setdefault("cot_len", {})
        lens[g.n] = max(lens.get(g.n, 0), len(cot))
    return got


def _first_diff(a: list, b: list) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"{i}: model {a[max(0, i - 6):i + 3]} vs reference {b[max(0, i - 6):i + 3]}"


def check_binary(cases: list) -> None:
    by_n: dict[int, list] = {}
    for case in cases:
        by_n.setdefault(case.graph.n, []).append(case)
    for n, cs in by_n.items():
        got = FastEvaluator().next_tokens(_binary_model(n), [c.graph.tokens() for c in cs])
        for c, tok in zip(cs, got):
            exp = istree_answer(c.graph)
            assert (exp == YES) == c.tree_expected, f"family claim fails for x={c.x}, k={c.k}"
            assert tok == exp, f"x={c.x} k={c.k} edges '{c.graph.to_text()}': model {tok}, IsTree {exp}"


def sizes(model: Model) -> dict:
    return {k: v for k, v in measure(model).items() if k != "cot_steps"}


#: per profile: the sizes N at which a tree (and, outside ci, a non-tree with N - 1 edges) on
#: exactly N vertices is always decoded, and how many of each.  Cost: ~2350 CoT tokens at
#: N = 32 (~25 ms each: about a minute), ~5000 at 64, ~11500 at 128 (minutes).
LARGE: dict[str, tuple[tuple[int, int], ...]] = {
    "ci": ((32, 1),),
    "dev": ((32, 1),),
    "thorough": ((32, 2), (64, 1), (128, 1)),
}


def _seeded(make) -> st.SearchStrategy[Graph]:
    return st.integers(0, 2**32 - 1).map(lambda s: make(random.Random(s)))


def forests_on(n: int) -> st.SearchStrategy[Graph]:
    """Graphs on exactly n vertices with fewer than n - 1 edges (a seeded random tree, some
    edges dropped): never trees; the model must answer NO at the prompt's end."""
    def make(r: random.Random) -> Graph:
        t = random_tree(r, n)
        return Graph(n, tuple(t.edges[: r.randrange(0, n - 1)]))

    return _seeded(make)


def run(profile: Profile) -> CheckOutcome:
    """ci: Figure 3, 15 mixed graphs with n <= 7, one tree and one forest on 32 vertices (the
    tree's ~2350-token CoT is most of the run: ~60 s), 40 Figure 3 family instances (n <= 32)
    for (b).  Larger profiles draw more: general graphs up to n = 8, trees with 9 <= n <= 16,
    and the :data:`LARGE` sizes."""
    stats: dict = {}
    small = min(profile.max_n, 7 if profile.name == "ci" else 8)

    def body(g: Graph) -> None:
        check_graph(g, stats)

    outcomes = [
        property_check(st.just(FIGURE3), body, profile, max_examples=1),
        property_check(istree_graphs(small), body, profile, max_examples=max(4, profile.max_examples * 3 // 4)),
    ]
    if profile.name != "ci":  # at ci the N = 32 tree takes their place (time)
        outcomes.append(property_check(trees(min(profile.max_n, 16), min_n=9), body, profile,
                                       max_examples=max(2, profile.max_examples // 10)))
    for n, k in large_sizes(LARGE, profile.name, profile.max_n):
        outcomes.append(property_check(trees_on(n), body, profile, max_examples=k))
        outcomes.append(property_check(forests_on(n), body, profile, max_examples=k))
        if profile.name != "ci":
            outcomes.append(property_check(non_trees_on(n), body, profile, max_examples=k))
    for n, k in replay_sizes("5.7", profile.name, profile.max_n):  # the reference evaluator replays the decode
        outcomes.append(property_check(trees_on(n), lambda g: replay_chain(_model(g.n), g.tokens(), check_graph(g, stats)),
                                       profile, max_examples=k))
    binary_ns: set[int] = set()

    def binary_body(cases: list) -> None:
        binary_ns.update(c.graph.n for c in cases)
        check_binary(cases)

    outcomes.append(property_check(st.lists(figure3_cases(min(profile.max_n, 32)), min_size=8, max_size=8),
                                   binary_body, profile, max_examples=max(2, profile.max_examples // 4)))
    out = combine(outcomes)
    lens = stats.get("cot_len", {})
    out.measured["sizes"] = {n: {**sizes(_model(n)), "cot_bound": cot_bound(n), "cot_max_seen": lens[n]}
                             for n in sorted(lens)}
    out.measured["binary_sizes"] = {n: sizes(_binary_model(n)) for n in sorted(binary_ns)}
    out.measured["declared_p"] = {n: declared_p(n) for n in (8, 16, 32, 64, 128)}
    out.measured["binary_declared_p"] = {n: binary_declared_p(n) for n in (8, 16, 32, 64, 128)}
    out.measured["graphs_decoded"] = stats.get("graphs", 0)
    return out


CHECKS = [
    Check(
        "5.7",
        "IsTree by a hybrid linear RNN with one Transformer layer (Thm 5.7, App B.12)",
        "A hybrid linear RNN (Def 5.5) with O(log n) bits of state and O(log n)-bit parameters "
        "(a) solves IsTree with a chain of thought of length O(n log n) (a DFS whose next "
        "neighbour is found by doubling nearest-edge probes), and (b) solves the binary-sequence "
        "IsTree of Theorem 4.7's Figure 3 family without chain of thought.",
        run,
    )
]
