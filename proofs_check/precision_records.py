"""Table 1 of notes/precision/formats.md from per-instance records, resumable (issue #10).

:func:`proofs_check.precision.format_row` decodes a whole row (one construction at one n, K
instances, exact then every float format) in one job.  At issue #10's sizes one such row is
hours (Thm 5.7 (a) at n = 512: about 7 x 10^4 tokens per instance, an hour or more per decode
in each format on one core), longer than a working session, so ``--large`` would lose
everything to one interruption.  Here the unit of work is one **instance in one format**, a
sweep cell (:mod:`proofs_check.sweep`)::

    {"source": "formats", "name": ..., "n": ..., "k": ..., "seed": ..., "index": i,
     "label": ..., "format": "exact" | "float64" | ..., "model": SHA-256 of the declared-p model}

:func:`format_case` decodes instance ``i`` of the row's sample in that format and returns
whether the answer is the reference answer and the SHA-256 of the decoded chain (the float
chains are compared with the exact one by digest when the row is folded); each record is
appended to a JSONL file (default for ``--large``: :data:`LARGE_RECORDS`, committed) the moment
it ends, and a run of the same command reads the finished ones back and decodes only the rest.  :func:`row_of_cases` folds a row's
records into the same :class:`~proofs_check.precision.FormatRow` that ``format_row`` returns
(test_precision_records checks the two agree).

The key holds the model's digest (weights and header), so a construction whose weights change
gets new cells; the evaluator's code is not in the key (the exact mode is bit-identical to the
reference evaluator by its equivalence tests; the float modes follow the same definitions).
"""
from __future__ import annotations

import hashlib
import time
from functools import partial
from pathlib import Path
from typing import Sequence

from constructions.errors import ProofsCheckError

from . import precision as P
from .decode_checkpoints import run_with_checkpoint
from .sweep import Executor, results_or_raise, run_cells

#: the records of ``python -m proofs_check.precision --write ... --large`` (measured data, committed)
LARGE_RECORDS = "notes/precision/formats_large.jsonl"


def _chain_digest(chain: Sequence[str]) -> str:
    """SHA-256 of a decoded chain (tokens after the prompt, as text, one per line)."""
    return hashlib.sha256("\n".join(chain).encode()).hexdigest()


def format_case(cell: dict, checkpoint=None) -> dict:
    """Decode instance ``cell["index"]`` of the row's sample in format ``cell["format"]``: is the
    answer the reference answer, the chain's SHA-256 (compared with the exact one's when the
    row is folded), how long it took.  ``checkpoint`` (proofs_check.decode_checkpoints): a
    resumable chain of thought (4.7, 5.7 (a): an hour or more at n = 512) continues from it and
    saves its progress there; the others ignore it.  Top level: runs on sweep workers."""
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
    with RegexOracle() as oracle:
        replay = checkpoint.replay(model.vocab) if checkpoint is not None and con.resumable else None
        out = P._run_case(con, model, case, FastEvaluator(mode=cell["format"], device=cell.get("device", "cpu")),
                          oracle, replay)
    return {"index": cell["index"], "label": case.label, "p": model.p, "format": cell["format"],
            "correct": out.correct, "short": out.short(),
            "error": out.error is not None, "chain_sha256": _chain_digest(out.chain), "tokens": len(out.chain),
            "seconds": round(time.time() - t0, 2)}


def row_of_cases(name: str, n: int, p: int, results: Sequence[dict], formats: Sequence[str]) -> P.FormatRow:
    """The FormatRow of one construction at one n from the :func:`format_case` results of its
    instances in every format (any order; instances are told apart by their index in the
    sample, since several can share a label such as "random")."""
    con = P.construction(name)
    by = {(r["index"], r["format"]): r for r in results}
    indices = sorted({r["index"] for r in results})
    rows: dict[str, P.FormatResult] = {}
    for fmt in dict.fromkeys(["exact", *formats]):
        outs = [by[i, fmt] for i in indices]
        equal = None
        if con.has_chain and fmt != "exact":
            equal = sum(1 for i, o in zip(indices, outs)
                        if not o["error"] and o["chain_sha256"] == by[i, "exact"]["chain_sha256"])
        rows[fmt] = P.FormatResult(sum(o["correct"] for o in outs), len(outs), equal,
                                   [o["short"] for o in outs if not o["correct"]])
    labels = [by[i, "exact"]["label"] for i in indices]
    return P.FormatRow(con.theorem, name, con.task, con.arch, n, p, len(indices), rows, labels,
                       round(sum(r["seconds"] for r in results), 2))


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
             "format": fmt, "model": digest}
            for i, c in enumerate(cases) for fmt in dict.fromkeys(["exact", *formats])], None


def recorded_format_rows(plan: dict[str, tuple[tuple[int, ...], int]], records: str | None, seed: int = P.SEED,
                         workers: int | None = None, formats: Sequence[str] = P.FORMATS,
                         quiet: bool = False, decode: bool = True) -> list[P.FormatRow]:
    """Table 1's rows for every (construction, n) of ``plan`` (in plan order), one sweep cell
    per instance and format: finished cells are read from ``records`` (None: nothing read or
    written), the others decoded now (cheapest first) and appended as they end.  ``decode=False``
    (``--recorded-only``): nothing is decoded; a row whose records are not all there says so
    (its ``error``: in progress, r of c)."""
    from .sweep import cell_key, finished, read_records

    plan_rows, cells = [], []
    for name, (sizes, k) in plan.items():
        for n in sizes:
            row_cells, error_row = _row_cells(name, n, k, seed, formats)
            plan_rows.append((name, n, row_cells, error_row))
            cells += row_cells
    if decode:
        # cheapest first: a run cut short (a session ends) leaves whole rows of the small n
        # finished (shown at once with --recorded-only) rather than pieces of the largest ones
        order = sorted(cells, key=lambda c: P._cost(c["name"], c["n"]))
        fn = format_case
        if records is not None:  # long chains checkpoint beside the records (partial/), as the claims' do
            fn = partial(run_with_checkpoint, format_case, str(Path(records).parent / "partial"))
        records_list = run_cells(order, fn, out=records, resume=True,
                                 executor=Executor(workers=workers, quiet=quiet), desc="format instances")
        known = {cell_key(c): res for c, res in zip(order, results_or_raise(records_list))}
    else:
        done = finished(read_records(records)[0]) if records is not None else {}
        known = {k: r["result"] for k, r in done.items()}
    out = []
    for name, n, row_cells, error_row in plan_rows:
        if error_row is not None:
            out.append(error_row)
            continue
        results = [known.get(cell_key(c)) for c in row_cells]
        if any(r is None for r in results):
            con = P.construction(name)
            have = sum(r is not None for r in results)
            out.append(P.FormatRow(con.theorem, name, con.task, con.arch, n, 0, 0, {}, [], 0.0,
                                   f"in progress: {have} of {len(results)} instance-format records "
                                   f"(`python -m proofs_check.precision --write FILE --large` continues)"))
            continue
        out.append(row_of_cases(name, n, results[0]["p"], results, formats))
    return out
