"""Claims rows for the IsTree constructions: Theorems 4.7, 5.3 and 5.7 (a), (b).

One :class:`proofs_check.claims.ClaimRow` per construction and n: 4.7 at n = 8, 32, 128, 512,
1024, 2048, the others at 8, 32, 128, 512.  The sizes are read
off the built model by :func:`proofs_check.claims.measure` (layers, heads, width, parameters,
parameter bits, state bits, p).  The chain-of-thought column is **measured** up to
``Construction.decode_up_to`` (every n with ``PROOFS_CHECK_DECODE_ALL=1``; above it the bound
alone, labelled ``"bound 1023 (not decoded)"``): the model is decoded greedily by the exact fast evaluator on the graphs of :func:`probe_graphs` (a
uniform random tree and a randomly labelled path, edges in random order and orientation; 5.7
(b): a Figure 3 family instance), all graphs of one (construction, n) in one batch session
(:func:`constructions.decode.batch_session`); each answer is checked against IsTree
(union-find), each 4.7 chain against Algorithm 1 (``proofs_check.algorithms.cot_algorithm1``:
the tour A(G), then the answer of Lemma B.29), and the longest chain is reported next to the
theorem's bound: ``"measured 63 (bound 63)"``.

What is counted (the same quantity as the bound):

* 4.7 (``dfs_transformer.cot_bound`` = 2n - 1) and 5.7 (a) (``istree_hybrid.cot_bound`` =
  (2n - 1)(12 ceil(log2(n - 1)) + 8)): tokens generated before the answer (Def A.4);
* 5.3 (``istree_rag.max_chain(n) - 1`` = 40 (2n - 1)): tokens appended after the prompt before
  the answer, generated *and* retrieved (Sec 5.1: retrieval results are part of the sequence);
* 5.7 (b) (Figure 3 family, no CoT): 0; measured on a shuffled family instance.

The decodes run in worker processes (``spawn``, one torch thread each, at most
``os.cpu_count()`` at once), longest first.  Only these rows::

    python -m proofs_check.claims --write notes/claims.md --only istree
"""
from __future__ import annotations

import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable, Sequence

from constructions.errors import ProofsCheckError
from constructions.model import Model

from .claims import SIZES, ClaimRow, measure
from .graphs import Graph, istree_answer, random_tree, shuffle_edges

#: the issue's sizes for the IsTree rows (4.7 also at 1024 and 2048: DFS_SIZES)
ISTREE_SIZES: tuple[int, ...] = (8, 32, 128, 512)
DFS_SIZES: tuple[int, ...] = (*ISTREE_SIZES, 1024, 2048)


# ---- the constructions ------------------------------------------------------------------------


def _build_transformer(n: int) -> Model:
    from constructions.dfs_transformer import dfs_transformer

    return dfs_transformer(n)


def _bound_transformer(n: int) -> int:
    from constructions.dfs_transformer import cot_bound

    return cot_bound(n)


def _build_rag(n: int) -> Model:
    from constructions.istree_rag import istree_rag_rnn

    return istree_rag_rnn(n)


def _bound_rag(n: int) -> int:
    from constructions.istree_rag import max_chain

    return max_chain(n) - 1  # max_chain counts the answer token too


def _build_hybrid(n: int) -> Model:
    from constructions.istree_hybrid import istree_hybrid

    return istree_hybrid(n)


def _bound_hybrid(n: int) -> int:
    from constructions.istree_hybrid import cot_bound

    return cot_bound(n)


def _build_binary(n: int) -> Model:
    from constructions.istree_hybrid import istree_binary_hybrid

    return istree_binary_hybrid(n)


def _bound_binary(n: int) -> int:
    return 0


@dataclass(frozen=True)
class Construction:
    theorem: str
    task: str
    model: str  # the `proofs-check run istree --model` name where there is one
    build: Callable[[int], Model]
    bound: Callable[[int], int]  # the theorem's bound on the counted chain (module docstring)
    sizes: tuple[int, ...]  # the table's n
    decode_up_to: int  # largest n decoded by default (above: "bound B (not decoded)"; --decode-all)
    min_n: int = 1  # the builder's smallest n (rows below it are left out)


CONSTRUCTIONS: tuple[Construction, ...] = (
    Construction("4.7", "istree", "transformer", _build_transformer, _bound_transformer, DFS_SIZES, 128),
    Construction("5.3", "istree", "rag-rnn", _build_rag, _bound_rag, ISTREE_SIZES, 128),
    Construction("5.7 (a)", "istree", "hybrid", _build_hybrid, _bound_hybrid, ISTREE_SIZES, 32),
    Construction("5.7 (b)", "istree (Figure 3 family)", "binary-hybrid", _build_binary, _bound_binary, ISTREE_SIZES, 512, 4),
)


# ---- the graphs decoded ---------------------------------------------------------------------


def random_path(rng: random.Random, n: int) -> Graph:
    """A path through a random permutation of 1..n, edges in random order and orientation."""
    perm = list(range(1, n + 1))
    rng.shuffle(perm)
    return shuffle_edges(rng, Graph(n, tuple(zip(perm, perm[1:]))))


def probe_graphs(theorem: str, n: int) -> list[tuple[str, Graph]]:
    """The graphs decoded for the CoT column (seeded by n, so the table is reproducible)."""
    rng = random.Random(1000 + n)
    if theorem == "5.7 (b)":
        from .lower_bounds import figure3_graph

        x = tuple(rng.randint(0, 1) for _ in range(n - 2))
        return [("Figure 3 instance", shuffle_edges(rng, figure3_graph(x, rng.randint(1, n - 3))))]
    return [("random tree", random_tree(rng, n)), ("path", random_path(rng, n))]


def _construction(theorem: str) -> Construction:
    return next(c for c in CONSTRUCTIONS if c.theorem == theorem)


def _check_decode(c: Construction, n: int, g: Graph, res, length: int) -> None:
    """The answer against IsTree, a 4.7 chain against Algorithm 1, the chain against the bound."""
    from .algorithms import cot_algorithm1

    where = f"Thm {c.theorem} at n={n} on '{g.to_text()}'"
    hint = f"run `proofs-check verify --only {c.theorem.split()[0]}` for the failing property"
    if res.answer != istree_answer(g):
        raise ProofsCheckError(f"{where} answered {res.answer}, IsTree says {istree_answer(g)}: {hint}")
    if c.model == "transformer" and res.generated != cot_algorithm1(g):
        raise ProofsCheckError(f"{where}: the generated chain is not Algorithm 1's tour and answer: {hint}")
    if length > c.bound(n):
        raise ProofsCheckError(f"{where}: chain of {length} tokens > bound {c.bound(n)}")


def decoded_chains(theorem: str, n: int, graphs_json: Sequence[dict]) -> list[int]:
    """Decode the graphs together (one batch session) with the construction of ``theorem``;
    check each (:func:`_check_decode`); return the counted chain lengths (module docstring).
    Top-level: runs in a worker."""
    import torch

    from constructions.decode import RegexOracle, batch_session, chain_of_thought_batch, retrieval_augmented_batch
    from constructions.evaluate_fast import FastEvaluator

    torch.set_num_threads(1)
    graphs = [Graph.from_json(j) for j in graphs_json]
    c = _construction(theorem)
    model = c.build(n)
    bs = batch_session(FastEvaluator(), model, [g.tokens() for g in graphs])
    if c.model == "rag-rnn":
        from constructions.istree_rag import max_chain

        with RegexOracle() as oracle:
            results = retrieval_augmented_batch(bs, model.vocab, max_chain(n), answers={"YES", "NO"}, oracle=oracle)
        lengths = [len(r.sequence) - len(r.prompt) - 1 for r in results]
    else:
        results = chain_of_thought_batch(bs, c.bound(n))
        lengths = [r.steps for r in results]
    for g, res, length in zip(graphs, results, lengths):
        _check_decode(c, n, g, res, length)
    return lengths


#: rough ms per decoded token of the exact fast evaluator (for scheduling only)
_MS_PER_TOKEN = {"4.7": 60.0, "5.3": 3.0, "5.7 (a)": 25.0, "5.7 (b)": 1.0}


def _cost(theorem: str, n: int) -> float:
    c = _construction(theorem)
    return _MS_PER_TOKEN[theorem] * max(1, c.bound(n)) * (1 + n / 64)


def _decode_all(jobs: list[tuple[str, int, list[dict]]], workers: int) -> list[list[int]]:
    if workers <= 1:
        return [decoded_chains(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(decoded_chains, *zip(*jobs)))


def istree_rows(sizes: Sequence[int] | None = None, workers: int | None = None,
                decode_all: bool | None = None) -> list[ClaimRow]:
    """Rows for Thm 4.7, 5.3, 5.7 (a) and (b) at each n.

    ``sizes``: each construction's own :attr:`Construction.sizes` when called with ``None`` or
    with the claims table's default sizes (``claims.SIZES``); any other list (``--sizes``) is
    used as given for all four.  A chain is decoded up to :attr:`Construction.decode_up_to`
    (what 2 cores finish in minutes: the exact DFS decode costs ~0.1 s per token at n = 256,
    notes/performance.md); larger n get the bound alone, labelled "(not decoded)", unless
    ``decode_all`` (env ``PROOFS_CHECK_DECODE_ALL=1``; hours on 2 cores, for a big machine).
    ``workers``: decoding processes (default ``os.cpu_count()``)."""
    if decode_all is None:
        decode_all = os.environ.get("PROOFS_CHECK_DECODE_ALL") == "1"
    default = sizes is None or tuple(sizes) == tuple(SIZES)
    plan = [(c, n) for c in CONSTRUCTIONS for n in (c.sizes if default else tuple(sizes)) if n >= c.min_n]
    decoded = [(c, n) for c, n in plan if decode_all or n <= c.decode_up_to]
    jobs = [(c.theorem, n, [g.to_json() for _, g in probe_graphs(c.theorem, n)]) for c, n in decoded]
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i][0], jobs[i][1]))  # longest first
    results = dict(zip(order, _decode_all([jobs[i] for i in order], workers or os.cpu_count() or 1)))
    rows = []
    for c, n in plan:
        sizes_n = measure(c.build(n))
        if (c, n) in decoded:
            i = decoded.index((c, n))
            seen = {label: length for (label, _), length in zip(probe_graphs(c.theorem, n), results[i])}
            sizes_n.update({"cot_steps": f"measured {max(seen.values())} (bound {c.bound(n)})", "cot_measured": seen})
        else:
            sizes_n["cot_steps"] = f"bound {c.bound(n)} (not decoded)"
        sizes_n["cot_bound"] = c.bound(n)
        rows.append(ClaimRow(c.theorem, c.task, c.model, n, sizes_n))
    return rows
