"""Claims rows for the IsTree constructions: Theorems 4.7, 5.3 and 5.7 (a), (b).

One :class:`proofs_check.claims.ClaimRow` per construction and n: 4.7 at n = 8, 32, 128, 512,
1024, 2048, the others at 8, 32, 128, 512.  The sizes are read
off the built model by :func:`proofs_check.claims.measure` (layers, heads, width, parameters,
parameter bits, state bits, p).  The chain-of-thought column is **measured**: each graph of
:func:`probe_graphs` (a uniform random tree and a randomly labelled path, edges in random order
and orientation; 5.7 (b): a Figure 3 family instance) is decoded greedily by the exact fast
evaluator, one session per graph; each answer is checked against IsTree (union-find), each 4.7
chain against Algorithm 1 (``proofs_check.algorithms.cot_algorithm1``: the tour A(G), then the
answer of Lemma B.29), and the longest chain is reported next to the theorem's bound:
``"measured 63 (bound 63)"``.  The decodes are kept as records
(:mod:`proofs_check.decode_records`, notes/decodes/claims.jsonl, keyed by the model's digest and
the graph): a recorded decode is read back, an unrecorded one is decoded now up to
``Construction.decode_up_to`` (every n with ``--decode-all`` / ``PROOFS_CHECK_DECODE_ALL=1``),
and a row whose chains are neither says ``"bound 1023 (not decoded)"``.

What is counted (the same quantity as the bound):

* 4.7 (``dfs_transformer.cot_bound`` = 2n - 1) and 5.7 (a) (``istree_hybrid.cot_bound`` =
  (2n - 1)(12 ceil(log2(n - 1)) + 8)): tokens generated before the answer (Def A.4);
* 5.3 (``istree_rag.max_chain(n) - 1`` = 40 (2n - 1)): tokens appended after the prompt before
  the answer, generated *and* retrieved (Sec 5.1: retrieval results are part of the sequence);
* 5.7 (b) (Figure 3 family, no CoT): 0; measured on a shuffled family instance.

The decodes run on the sweep executor (an embedded Dask LocalCluster of one-thread workers, or
``--scheduler ADDRESS``), longest first, each recorded the moment it ends.  Only these rows
(and fill in every missing decode; interrupt and re-run at will)::

    python -m proofs_check.claims --write notes/claims.md --only istree [--decode-all]
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from constructions.errors import ProofsCheckError
from constructions.model import Model
from constructions.modelfile import model_digest

from .claims import SIZES, ClaimRow, measure
from .decode_checkpoints import progress_note, saved_tokens
from .decode_records import DecodeOptions, measured
from .graphs import Graph, istree_answer, random_tree, shuffle_edges
from .sweep import cell_key

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


def _chain_reference(model: str):
    """(name, chain of a graph) of the independent reference a decoded chain is compared with
    token by token, or None (5.3: the answer only): Algorithm 1 for 4.7's tour and answer,
    ``checks.istree_hybrid.hybrid_cot`` for 5.7 (a)."""
    from . import algorithms
    from .checks import istree_hybrid

    return {"transformer": ("Algorithm 1", algorithms.cot_algorithm1),
            "hybrid": ("hybrid_cot", istree_hybrid.hybrid_cot)}.get(model)


def _check_decode(c: Construction, n: int, g: Graph, res, length: int) -> None:
    """The answer against IsTree, a 4.7 chain against Algorithm 1, a 5.7 (a) chain against
    hybrid_cot (proofs_check.checks.istree_hybrid), the chain against the bound."""
    where = f"Thm {c.theorem} at n={n} on '{g.to_text()}'"
    hint = f"run `proofs-check verify --only {c.theorem.split()[0]}` for the failing property"
    if res.answer != istree_answer(g):
        raise ProofsCheckError(f"{where} answered {res.answer}, IsTree says {istree_answer(g)}: {hint}")
    ref = _chain_reference(c.model)
    if ref is not None and res.generated != ref[1](g):
        raise ProofsCheckError(f"{where}: the generated chain is not the reference chain ({ref[0]}): {hint}")
    if length > c.bound(n):
        raise ProofsCheckError(f"{where}: chain of {length} tokens > bound {c.bound(n)}")


def decode_cell(cell: dict, checkpoint=None) -> dict:
    """Decode one graph (``cell["edges"]``) with the construction of ``cell["theorem"]`` at
    ``cell["n"]`` by the exact fast evaluator, check it (:func:`_check_decode`) and return the
    counted chain length (module docstring) with how it was measured.  The model rebuilt here
    must have the digest the cell was made for (else the construction changed: refused).
    ``checkpoint`` (proofs_check.decode_checkpoints): resume a chain-of-thought decode from it and
    save progress there.  Top-level: runs on Dask workers."""
    import torch

    from constructions.decode import RegexOracle, chain_of_thought, retrieval_augmented
    from constructions.evaluate_fast import FastEvaluator

    from .decode_records import require_cell_model, stamp

    torch.set_num_threads(1)
    c, n, g = _construction(cell["theorem"]), cell["n"], Graph.from_json(cell["edges"])
    model = c.build(n)
    require_cell_model(model, cell, f"Thm {c.theorem} at n={n}")
    session = FastEvaluator().session(model, g.tokens())
    if c.model == "rag-rnn":
        from constructions.istree_rag import max_chain

        with RegexOracle() as oracle:
            res = retrieval_augmented(session, model.vocab, max_chain(n), answers={"YES", "NO"}, oracle=oracle)
        length = len(res.sequence) - len(res.prompt) - 1
    else:
        res = chain_of_thought(session, c.bound(n), replay=checkpoint.replay(model.vocab) if checkpoint else None)
        length = res.steps
    _check_decode(c, n, g, res, length)
    ref = _chain_reference(c.model)
    return {"counted": length, "answer": res.answer, "generated": len(res.generated),
            **stamp(f"FastEvaluator exact (checked: IsTree{f', {ref[0]}' if ref else ''})")}


#: rough ms per decoded token of the exact fast evaluator (for scheduling only)
_MS_PER_TOKEN = {"4.7": 60.0, "5.3": 3.0, "5.7 (a)": 25.0, "5.7 (b)": 1.0}


def _cost(theorem: str, n: int) -> float:
    c = _construction(theorem)
    return _MS_PER_TOKEN[theorem] * max(1, c.bound(n)) * (1 + n / 64)


def decode_cells(c: Construction, n: int, digest: str) -> list[dict]:
    """The cells of (construction, n): one per probe graph (proofs_check.decode_records)."""
    return [{"source": "istree", "theorem": c.theorem, "n": n, "graph": label, "edges": g.to_json(),
             "mode": "exact", "model": digest} for label, g in probe_graphs(c.theorem, n)]


def istree_rows(sizes: Sequence[int] | None = None, workers: int | None = None,
                decode_all: bool | None = None, decode: DecodeOptions | None = None) -> list[ClaimRow]:
    """Rows for Thm 4.7, 5.3, 5.7 (a) and (b) at each n.

    ``sizes``: each construction's own :attr:`Construction.sizes` when called with ``None`` or
    with the claims table's default sizes (``claims.SIZES``); any other list (``--sizes``) is
    used as given for all four.  The chains come from ``decode``'s records
    (:mod:`proofs_check.decode_records`, default notes/decodes/claims.jsonl); a chain not
    recorded is decoded now up to :attr:`Construction.decode_up_to` (what 2 cores finish in
    minutes), or at every n with ``decode_all`` (``--decode-all``, env
    ``PROOFS_CHECK_DECODE_ALL=1``: hours on 2 cores, notes/performance.md); a row whose chains
    are neither recorded nor decoded says "bound B (not decoded)".  ``workers`` (default: the
    machine's cores) and ``decode_all`` override the same fields of ``decode``."""
    decode = decode or DecodeOptions()
    decode = replace(decode, workers=workers if workers is not None else decode.workers,
                     decode_all=decode.decode_all if decode_all is None else decode_all)
    default = sizes is None or tuple(sizes) == tuple(SIZES)
    plan = [(c, n) for c in CONSTRUCTIONS for n in (c.sizes if default else tuple(sizes)) if n >= c.min_n]
    models = {(c.theorem, n): c.build(n) for c, n in plan}
    cells = {(c.theorem, n): decode_cells(c, n, model_digest(models[c.theorem, n])) for c, n in plan}
    order = sorted(plan, key=lambda cn: -_cost(cn[0].theorem, cn[1]))  # longest first
    results = measured([cell for c, n in order for cell in cells[c.theorem, n]],
                       lambda cell: cell["n"] <= _construction(cell["theorem"]).decode_up_to, decode_cell, decode,
                       desc="istree decodes", checkpoints=True)
    saved = saved_tokens(decode.records, [cell for c, n in plan for cell in cells[c.theorem, n]])
    rows = []
    for c, n in plan:
        sizes_n = measure(models[c.theorem, n])
        got = [results.get(cell_key(cell)) for cell in cells[c.theorem, n]]
        if all(got):
            seen = {cell["graph"]: r["counted"] for cell, r in zip(cells[c.theorem, n], got)}
            sizes_n.update({"cot_steps": f"measured {max(seen.values())} (bound {c.bound(n)})", "cot_measured": seen})
        else:
            note = progress_note(saved, cells[c.theorem, n])
            sizes_n["cot_steps"] = f"bound {c.bound(n)} (not decoded{note})"
        sizes_n["cot_bound"] = c.bound(n)
        rows.append(ClaimRow(c.theorem, c.task, c.model, n, sizes_n))
    return rows
