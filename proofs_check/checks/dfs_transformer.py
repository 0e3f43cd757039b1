"""Check 4.7: the Lemma B.27 Transformer solves IsTree with Algorithm 1's tour as its CoT.

For Hypothesis-drawn graphs (trees, cyclic graphs, disconnected graphs with n - 1 edges,
forests, arbitrary graphs, the Figure 3 family; every edge order and orientation) the model
``constructions.dfs_transformer.dfs_transformer(g.n)`` is decoded greedily (Def A.4) by the
exact fast evaluator and compared with the references of ``proofs_check.algorithms`` (never with
anything the construction computes):

* the answer equals IsTree (``graphs.istree_answer``);
* on a tree the tokens before YES are exactly Algorithm 1's sequence (``algorithm1``);
* on a non-tree with m = n - 1 the tokens before NO are the B.6.2 walk
  (``lemma_b27_chain(g, literal_end_check=False)``), and that walk is a prefix of A(G);
* with m != n - 1 the model answers NO at once (erratum B27-E3);
* the CoT has at most 2n - 1 tokens (Theorem 4.7's O(n)).

Sizes (:func:`large_sizes`): most graphs are small (n <= 8, and trees with 9 <= n <= 12), and
at every size N of the profile's list (ci: 32; dev: 32, 64; thorough: 32, 64, 128, 256) a tree
and a non-tree with N - 1 edges on exactly N vertices are decoded too (a seeded uniform random
tree / ``graphs.random_non_tree_n_minus_1``, or a Hypothesis-drawn tree).  ``measured["sizes"]``
has ``claims.measure`` of the model at every n decoded, with the bound and the longest CoT seen.
At the sizes of ``evaluator_agreement.REPLAY`` (ci: 16; dev: 16, 64; thorough: 64, 256) a tree's
whole decode is replayed on the reference evaluator: every token and residual column must agree.
"""
from __future__ import annotations

from functools import lru_cache

from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.dfs_transformer import cot_bound, declared_p, dfs_transformer
from constructions.evaluate_fast import FastEvaluator
from constructions.model import Model
from proofs_check.algorithms import algorithm1, lemma_b27_chain
from proofs_check.claims import measure
from proofs_check.evaluator_agreement import replay_chain, replay_sizes
from proofs_check.graphs import NO, YES, Graph, istree_answer
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import istree_graphs, large_sizes, non_trees_on, spread_graphs, trees, trees_on

FIGURE3 = Graph.parse("2-6 1-5 3-5 4-6 2-3")


@lru_cache(maxsize=64)
def _model(n: int) -> Model:
    return dfs_transformer(n)


def expected_chain(g: Graph) -> list:
    """What the construction must emit after Tokenize(g), from the reference algorithms."""
    if g.m != g.n - 1:
        return [NO]
    return lemma_b27_chain(g, literal_end_check=False)


def run_graph(g: Graph, evaluator=None) -> list:
    ev = evaluator or FastEvaluator()
    res = chain_of_thought(ev.session(_model(g.n), g.tokens()), cot_bound(g.n) + 1)
    return res.generated


def check_graph(g: Graph, stats: dict | None = None) -> list:
    got = run_graph(g)
    where = f"graph n={g.n} edges '{g.to_text()}': model emitted {got}"
    assert got and got[-1] in (YES, NO), f"{where}: no answer within {cot_bound(g.n) + 1} tokens"
    answer, cot = got[-1], got[:-1]
    assert answer == istree_answer(g), f"{where}: answer {answer}, IsTree says {istree_answer(g)}"
    assert len(cot) <= cot_bound(g.n), f"{where}: CoT longer than 2n - 1"
    tour = algorithm1(g)
    if answer == YES:
        assert cot == tour, f"{where}: tour differs from Algorithm 1's {tour}"
    else:
        assert cot == tour[: len(cot)], f"{where}: CoT is not a prefix of Algorithm 1's {tour}"
        exp = expected_chain(g)
        assert got == exp, f"{where}: expected the B.6.2 walk {exp}"
    if stats is not None:
        stats[g.n] = max(stats.get(g.n, 0), len(cot))
    return got


def sizes(n: int) -> dict:
    return {**{k: v for k, v in measure(_model(n)).items() if k != "cot_steps"}, "cot_bound": cot_bound(n)}


#: per profile: the sizes N at which a tree and a non-tree with N - 1 edges are always decoded,
#: and how many of each (4.7 costs ~55 ms per token at N = 32, ~170 ms at N = 128)
LARGE: dict[str, tuple[tuple[int, int], ...]] = {
    "ci": ((32, 1),),
    "dev": ((32, 1), (64, 1)),
    "thorough": ((32, 3), (64, 3), (128, 2), (256, 1)),
}


def run(profile: Profile) -> CheckOutcome:
    stats: dict[int, int] = {}
    small = min(profile.max_n, 8)
    big = min(profile.max_n, 12)

    def body(g: Graph) -> None:
        check_graph(g, stats)

    outcomes = [
        property_check(st.just(FIGURE3), body, profile, max_examples=1),
        property_check(istree_graphs(small), body, profile, max_examples=profile.max_examples - 5,
                       examples=spread_graphs(small, 5)),  # distinct (n, m) first: the derandomized draws cluster
        property_check(trees(big, min_n=9), body, profile, max_examples=max(2, profile.max_examples // 5)),
    ]
    for n, k in large_sizes(LARGE, profile.name, profile.max_n):
        outcomes.append(property_check(trees_on(n), body, profile, max_examples=k))
        outcomes.append(property_check(non_trees_on(n), body, profile, max_examples=k))
    for n, k in replay_sizes("4.7", profile.name, profile.max_n):  # the reference evaluator replays the decode
        outcomes.append(property_check(trees_on(n), lambda g: replay_chain(_model(g.n), g.tokens(), check_graph(g, stats)),
                                       profile, max_examples=k))
    out = combine(outcomes)
    out.measured["sizes"] = {n: {**sizes(n), "cot_max_seen": stats[n]} for n in sorted(stats)}
    out.measured["declared_p"] = {n: declared_p(n) for n in (8, 32, 128, 512)}
    out.measured["max_n_seen"] = max(stats, default=0)
    return out


CHECKS = [
    Check(
        "4.7",
        "IsTree by a constant-size Transformer with DFS chain of thought (Thm 4.7, Lemma B.27)",
        "A Transformer of constant depth and width with O(log n) precision, given Tokenize(G), "
        "emits Algorithm 1's Euler tour as chain of thought (length <= 2n - 1) and answers "
        "IsTree(G): YES after exactly A(G) on trees, NO otherwise (after a prefix of the walk).",
        run,
    )
]
