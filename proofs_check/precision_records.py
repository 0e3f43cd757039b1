"""Table 1 of notes/precision/formats.md from per-instance records, resumable (issue #10).

:func:`proofs_check.precision.format_row` decodes a whole row (one construction at one n, K
instances, exact then every float format) in one job.  At issue #10's sizes one such row is
hours (Thm 5.7 (a) at n = 512: about 10^5 tokens per instance, an hour per exact decode on
2 cores), so ``--large`` would lose everything to one interruption.  Here the unit of work is
one **instance** of a row, a sweep cell (:mod:`proofs_check.sweep`)::

    {"source": "formats", "name": ..., "n": ..., "k": ..., "seed": ..., "index": i,
     "label": ..., "formats": [...], "model": SHA-256 of the declared-p model}

:func:`format_case` decodes instance ``i`` of the row's sample in ``exact`` first, then in each
float format, and returns per format whether the answer is the reference answer and whether
the chain equals the exact chain; each record is appended to a JSONL file (default for
``--large``: :data:`LARGE_RECORDS`, committed) the moment it ends, and a run of the same command
reads the finished ones back and decodes only the rest.  :func:`row_of_cases` folds a row's
records into the same :class:`~proofs_check.precision.FormatRow` that ``format_row`` returns
(test_precision_records checks the two agree).

The key holds the model's digest (weights and header), so a construction whose weights change
gets new cells; the evaluator's code is not in the key (the exact mode is bit-identical to the
reference evaluator by its equivalence tests; the float modes follow the same definitions).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

from constructions.errors import ProofsCheckError

from . import precision as P
from .sweep import Executor, results_or_raise, run_cells

#: the records of ``python -m proofs_check.precision --write ... --large`` (measured data, committed)
LARGE_RECORDS = "notes/precision/formats_large.jsonl"


def format_case(cell: dict) -> dict:
    """Decode instance ``cell["index"]`` of the row's sample in every format (exact first) and
    say, per format, whether it is correct and whether its chain is the exact chain.
    Top level: runs on sweep workers."""
    import torch

    from constructions.decode import RegexOracle
    from constructions.evaluate_fast import FastEvaluator
    from constructions.modelfile import model_digest

    torch.set_num_threads(1)
    t0 = time.time()
    con = P.construction(cell["name"])
    model = con.build(cell["n"])
    if model_digest(model) != cell["model"]:
        raise ProofsCheckError(f"{con.name} at n={cell['n']}: the model built now is not the one this cell was made for")
    case = con.cases(cell["n"], cell["k"], cell["seed"])[cell["index"]]
    formats = list(dict.fromkeys(["exact", *cell["formats"]]))
    outcomes: dict[str, dict[str, Any]] = {}
    exact_chain: list[str] = []
    with RegexOracle() as oracle:
        for fmt in formats:
            out = P._run_case(con, model, case, FastEvaluator(mode=fmt, device=cell.get("device", "cpu")), oracle)
            if fmt == "exact":
                exact_chain = out.chain
            same = None if not con.has_chain or fmt == "exact" else (out.error is None and out.chain == exact_chain)
            outcomes[fmt] = {"correct": out.correct, "short": out.short(), "chain_equal": same,
                             "tokens": len(out.chain)}
    return {"label": case.label, "p": model.p, "outcomes": outcomes, "seconds": round(time.time() - t0, 2)}


def row_of_cases(name: str, n: int, p: int, results: Sequence[dict], formats: Sequence[str]) -> P.FormatRow:
    """The FormatRow of one construction at one n from its instances' :func:`format_case` results."""
    con = P.construction(name)
    rows: dict[str, P.FormatResult] = {}
    for fmt in dict.fromkeys(["exact", *formats]):
        outs = [r["outcomes"][fmt] for r in results]
        equal = None if not con.has_chain or fmt == "exact" else sum(bool(o["chain_equal"]) for o in outs)
        rows[fmt] = P.FormatResult(sum(o["correct"] for o in outs), len(outs), equal,
                                   [o["short"] for o in outs if not o["correct"]])
    return P.FormatRow(con.theorem, name, con.task, con.arch, n, p, len(results), rows,
                       [r["label"] for r in results], round(sum(r["seconds"] for r in results), 2))


def _row_cells(name: str, n: int, k: int, seed: int, formats: Sequence[str]) -> tuple[list[dict], P.FormatRow | None]:
    """The instance cells of one row, or (no cells, an error row) where the model or the
    sample cannot be made (as format_row reports it)."""
    from constructions.modelfile import model_digest

    con = P.construction(name)
    try:
        model = con.build(n)
        cases = con.cases(n, k, seed)
    except ProofsCheckError as exc:
        return [], P.FormatRow(con.theorem, name, con.task, con.arch, n, 0, 0, {}, [], 0.0, " ".join(str(exc).split()))
    digest = model_digest(model)
    return [{"source": "formats", "name": name, "n": n, "k": k, "seed": seed, "index": i, "label": c.label,
             "formats": list(formats), "model": digest} for i, c in enumerate(cases)], None


def recorded_format_rows(plan: dict[str, tuple[tuple[int, ...], int]], records: str | None, seed: int = P.SEED,
                         workers: int | None = None, formats: Sequence[str] = P.FORMATS,
                         quiet: bool = False) -> list[P.FormatRow]:
    """Table 1's rows for every (construction, n) of ``plan`` (in plan order), one sweep cell
    per instance: finished cells are read from ``records`` (None: nothing read or written),
    the others decoded now (longest first) and appended as they end."""
    plan_rows, cells = [], []
    for name, (sizes, k) in plan.items():
        for n in sizes:
            row_cells, error_row = _row_cells(name, n, k, seed, formats)
            plan_rows.append((name, n, row_cells, error_row))
            cells += row_cells
    order = sorted(cells, key=lambda c: -P._cost(c["name"], c["n"]))
    records_list = run_cells(order, format_case, out=records, resume=True,
                             executor=Executor(workers=workers, quiet=quiet), desc="format instances")
    by_key = dict(zip((id(c) for c in order), results_or_raise(records_list)))
    out = []
    for name, n, row_cells, error_row in plan_rows:
        if error_row is not None:
            out.append(error_row)
            continue
        results = [by_key[id(c)] for c in row_cells]
        out.append(row_of_cases(name, n, results[0]["p"], results, formats))
    return out
