"""Claims rows for the IsTree constructions: Theorems 4.7, 5.3 and 5.7 (a), (b).

One :class:`proofs_check.claims.ClaimRow` per construction and n (the issue's n = 8, 32, 128,
512).  The sizes are read off the built model by :func:`proofs_check.claims.measure` (layers,
heads, width, parameters, parameter bits, state bits, p).  The chain-of-thought column is

* **measured** where decoding is affordable (n <= ``Construction.decode_up_to``): the model is
  decoded greedily by the exact fast evaluator on a few graphs (:func:`probe_graphs`: a uniform
  random tree and a randomly labelled path, edges in random order and orientation), each
  answer is checked against IsTree (union-find), and the longest chain is reported next to the
  theorem's bound: ``"measured 63 (bound 63)"``;
* otherwise the theorem's bound alone, labelled as such: ``"bound 1023 (not decoded)"``.

What is counted (the same quantity as the bound):

* 4.7 (``dfs_transformer.cot_bound`` = 2n - 1) and 5.7 (a) (``istree_hybrid.cot_bound`` =
  (2n - 1)(12 ceil(log2(n - 1)) + 8)): tokens generated before the answer (Def A.4);
* 5.3 (``istree_rag.max_chain(n) - 1`` = 40 (2n - 1)): tokens appended after the prompt before
  the answer, generated *and* retrieved (Sec 5.1: retrieval results are part of the sequence);
* 5.7 (b) (Figure 3 family, no CoT): 0; measured on a shuffled family instance.

The decodes run in worker processes (``spawn``, one torch thread each, at most
``os.cpu_count()`` at once), longest first.
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

#: the issue's sizes for the IsTree rows
ISTREE_SIZES: tuple[int, ...] = (8, 32, 128, 512)


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
    decode_up_to: int  # largest n at which the chain is measured by decoding
    min_n: int = 1  # the builder's smallest n (rows below it are left out)


CONSTRUCTIONS: tuple[Construction, ...] = (
    Construction("4.7", "istree", "transformer", _build_transformer, _bound_transformer, 128),
    Construction("5.3", "istree", "rag-rnn", _build_rag, _bound_rag, 128),
    Construction("5.7 (a)", "istree", "hybrid", _build_hybrid, _bound_hybrid, 32),
    Construction("5.7 (b)", "istree (Figure 3 family)", "binary-hybrid", _build_binary, _bound_binary, 512, 4),
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


def decoded_chain(theorem: str, n: int, graph_json: dict) -> int:
    """Decode one graph with the construction of ``theorem``; check the answer against IsTree;
    return the counted chain length (module docstring).  Top-level: runs in a worker."""
    import torch

    from constructions.decode import RegexOracle, chain_of_thought, retrieval_augmented
    from constructions.evaluate_fast import FastEvaluator

    torch.set_num_threads(1)
    g = Graph.from_json(graph_json)
    c = next(c for c in CONSTRUCTIONS if c.theorem == theorem)
    model, ev = c.build(n), FastEvaluator()
    session = ev.session(model, g.tokens())
    if c.model == "rag-rnn":
        from constructions.istree_rag import max_chain

        with RegexOracle() as oracle:
            res = retrieval_augmented(session, model.vocab, max_chain(n), answers={"YES", "NO"}, oracle=oracle)
        length = len(res.sequence) - len(res.prompt) - 1
    else:
        res = chain_of_thought(session, c.bound(n))
        length = res.steps
    if res.answer != istree_answer(g):
        raise ProofsCheckError(f"Thm {theorem} at n={n} answered {res.answer} on '{g.to_text()}', "
                               f"IsTree says {istree_answer(g)}: run `proofs-check verify --only "
                               f"{theorem.split()[0]}` for the failing property")
    if length > c.bound(n):
        raise ProofsCheckError(f"Thm {theorem} at n={n}: chain of {length} tokens > bound {c.bound(n)}")
    return length


#: rough ms per decoded token of the exact fast evaluator (for scheduling only)
_MS_PER_TOKEN = {"4.7": 60.0, "5.3": 3.0, "5.7 (a)": 25.0, "5.7 (b)": 1.0}


def _cost(theorem: str, n: int) -> float:
    c = next(c for c in CONSTRUCTIONS if c.theorem == theorem)
    return _MS_PER_TOKEN[theorem] * max(1, c.bound(n)) * (1 + n / 64)


def _cot_cell(measured: int | None, bound: int) -> str:
    return f"measured {measured} (bound {bound})" if measured is not None else f"bound {bound} (not decoded)"


def _decode_all(jobs: list[tuple[str, int, dict]], workers: int) -> list[int]:
    if workers <= 1:
        return [decoded_chain(*job) for job in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(pool.map(decoded_chain, *zip(*jobs)))


def istree_rows(sizes: Sequence[int] | None = None, workers: int | None = None) -> list[ClaimRow]:
    """Rows for Thm 4.7, 5.3, 5.7 (a) and (b) at each n.

    ``sizes``: the IsTree rows use :data:`ISTREE_SIZES` when called with ``None`` or with the
    claims table's default sizes (``claims.SIZES``); any other list (``--sizes``) is used as
    given.  ``workers``: decoding processes (default ``os.cpu_count()``)."""
    ns = ISTREE_SIZES if sizes is None or tuple(sizes) == tuple(SIZES) else tuple(sizes)
    jobs: list[tuple[str, int, dict]] = []
    where: list[tuple[str, int, str]] = []
    for c in CONSTRUCTIONS:
        for n in ns:
            if c.min_n <= n <= c.decode_up_to:
                for label, g in probe_graphs(c.theorem, n):
                    jobs.append((c.theorem, n, g.to_json()))
                    where.append((c.theorem, n, label))
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i][0], jobs[i][1]))  # longest first
    results = _decode_all([jobs[i] for i in order], workers or os.cpu_count() or 1)
    measured: dict[tuple[str, int], dict[str, int]] = {}
    for i, length in zip(order, results):
        theorem, n, label = where[i]
        measured.setdefault((theorem, n), {})[label] = length
    rows = []
    for c in CONSTRUCTIONS:
        for n in (n for n in ns if n >= c.min_n):
            sizes_n = measure(c.build(n))
            seen = measured.get((c.theorem, n))
            longest = max(seen.values()) if seen else None
            sizes_n.update({"cot_steps": _cot_cell(longest, c.bound(n)), "cot_measured": seen or {},
                            "cot_bound": c.bound(n)})
            rows.append(ClaimRow(c.theorem, c.task, c.model, n, sizes_n))
    return rows
