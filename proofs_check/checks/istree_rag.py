"""Check "5.3": the retrieval-augmented linear RNN of Theorem 5.3 solves IsTree in O(n) CoT steps.

Property, on Hypothesis-drawn graphs (trees, cyclic graphs, disconnected graphs with n - 1
edges, forests, arbitrary graphs, Theorem 4.7's Figure 3 family; every edge order and
orientation; ``strategies.istree_graphs``):

* the final answer equals IsTree(G) (``graphs.is_tree``: union-find, independent of any DFS);
* the generated sequence, retrieval results included and regex fragments deleted, equals
  Algorithm 2's list L token for token (``algorithms.algorithm2``, written independently of the
  construction); every retrieval is the real RETRIEVE (Python ``re`` on the detokenized prefix);
* the chain (generated + retrieved tokens) is at most 40 (2n - 1) + 1 long, and the measured
  constant max(length / n) is reported.

Sizes: 20 (ci) mixed graphs with n <= 32, and at every size N of :data:`LARGE` (ci: 32; dev:
32, 64; thorough: 32, 64, 128, 256) a tree and a non-tree with N - 1 edges on exactly N vertices
(a seeded uniform random tree / ``graphs.random_non_tree_n_minus_1``, or a Hypothesis-drawn
tree).  ``measured["sizes"]`` has ``claims.measure`` of the model at every n decoded, with the
bound and the longest chain seen.

Decoding uses the fast evaluator (bit-equal to the reference one; ``tests/test_istree_rag.py``
compares the two on a whole sequence); at the sizes of ``evaluator_agreement.REPLAY`` (ci: 16; dev: 16, 64; thorough: 64, 256) a
tree's whole decode is replayed on the reference evaluator.  Five explicit examples with distinct
(n, m) (``strategies.spread_graphs``) come first in the mixed draws.
"""
from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from constructions.decode import RegexOracle, retrieval_augmented
from constructions.istree_rag import declared_p, istree_rag_rnn, max_chain, strip_fragments
from proofs_check.algorithms import algorithm2
from proofs_check.claims import measure
from proofs_check.evaluator_agreement import replay_decode, replay_sizes
from proofs_check.graphs import NO, YES, Graph, istree_answer
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import istree_graphs, large_sizes, non_trees_on, spread_graphs, trees_on

SIZES = (2, 4, 8, 16, 32, 64)


def check_max_n(profile: Profile) -> int:
    """Largest n drawn: 32 (or the profile's max_n if smaller).  Decoding costs ~9 ms per token
    with the fast evaluator and a tree takes ~50 n tokens; ci's 20 derandomized draws up to
    n = 32 take ~17 s (the always-decoded N = 32 tree and non-tree of :data:`LARGE` ~5 s more)."""
    return min(profile.max_n, 32)


def run_graph(g: Graph, models: dict, evaluator, oracle: RegexOracle):
    model = models.get(g.n)
    if model is None:
        model = models[g.n] = istree_rag_rnn(g.n)
    session = evaluator.session(model, g.tokens())
    return retrieval_augmented(session, model.vocab, max_chain(g.n), answers={YES, NO}, oracle=oracle)


def sizes(n: int) -> dict[str, Any]:
    """``claims.measure`` of the model (``params`` = the layers' non-zero weights, a constant;
    ``readout_params`` = the explicit readout 2i, -i^2 per number i, erratum D32-E1, fixed by a
    formula like A.3's W_E) and the chain bound."""
    m = istree_rag_rnn(n)
    return {**{k: v for k, v in measure(m).items() if k != "cot_steps"}, "chain_bound": max_chain(n)}


#: per profile: the sizes N at which a tree and a non-tree with N - 1 edges are always decoded,
#: and how many of each (a tree's chain is ~36 N tokens, ~2.5 ms each at N = 32, ~5 ms at 128)
LARGE: dict[str, tuple[tuple[int, int], ...]] = {
    "ci": ((32, 1),),
    "dev": ((32, 1), (64, 1)),
    "thorough": ((32, 3), (64, 3), (128, 2), (256, 1)),
}


def _run(profile: Profile) -> CheckOutcome:
    from constructions.evaluate_fast import FastEvaluator

    evaluator = FastEvaluator()
    models: dict[int, Any] = {}
    longest: dict[int, int] = {}
    generated: dict[int, int] = {}

    def body(g: Graph) -> Any:
        res = run_graph(g, models, evaluator, oracle)
        chain = res.sequence[len(res.prompt):]
        expected = algorithm2(g).tokens
        assert res.answer == istree_answer(g), f"{g.to_text()} (n={g.n}): answered {res.answer}, IsTree is {istree_answer(g)}"
        got = strip_fragments(chain)
        assert got == expected, f"{g.to_text()} (n={g.n}): trace differs from Algorithm 2:\n got {got}\n ref {expected}"
        assert len(chain) <= max_chain(g.n), f"{g.to_text()}: chain of {len(chain)} tokens > bound {max_chain(g.n)}"
        longest[g.n] = max(longest.get(g.n, 0), len(chain))
        generated[g.n] = max(generated.get(g.n, 0), len(res.generated))
        return res

    def replay_body(g: Graph) -> None:
        res = body(g)  # builds models[g.n]
        replay_decode(models[g.n], res)

    max_n = check_max_n(profile)
    fixed = [Graph.parse("2-6 1-5 3-5 4-6 2-3"), Graph.parse("1-2 2-3 3-1"), Graph(1, ()), Graph(3, ((2, 3),))]
    strategy = st.one_of(st.sampled_from(fixed), istree_graphs(max_n))
    with RegexOracle() as oracle:
        spread = spread_graphs(max_n, 5)  # distinct (n, m) first: the derandomized draws cluster
        outcomes = [property_check(strategy, body, profile, max_examples=profile.max_examples - len(spread), examples=spread)]
        for n, k in large_sizes(LARGE, profile.name, profile.max_n):
            outcomes.append(property_check(trees_on(n), body, profile, max_examples=k))
            outcomes.append(property_check(non_trees_on(n), body, profile, max_examples=k))
        for n, k in replay_sizes("5.3", profile.name, profile.max_n):  # the reference evaluator replays the decode
            outcomes.append(property_check(trees_on(n), replay_body, profile, max_examples=k))
    outcome = combine(outcomes)
    outcome.measured = {
        "max_n_drawn": max(longest, default=0),
        "declared_p": {n: declared_p(n) for n in SIZES},
        "sizes": {n: {**sizes(n), "chain_max_seen": longest[n], "generated_max_seen": generated[n]}
                  for n in sorted(longest)},
        "chain_per_n_max": max((v / n for n, v in longest.items()), default=0.0),
        "chain_bound": "40 (2n - 1) + 1",
    }
    return outcome


CHECKS = [
    Check(
        id="5.3",
        title="Retrieval-augmented linear RNN for IsTree (Thm 5.3, App B.9, Algorithm 2)",
        claim="A linear RNN with O(log n) bits of state and in-context retrieval by Python regular "
        "expressions solves IsTree in O(n) CoT steps, emitting Algorithm 2's queries",
        run=_run,
    )
]
