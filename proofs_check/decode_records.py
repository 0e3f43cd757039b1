"""Measured decodes behind the claims table's chain-of-thought column, kept as records (issue #10).

A decode at the sizes the theorems are about costs minutes to hours on 2 cores (the DFS
Transformer at n = 2048, Thm 5.3 at n = 512), so every finished one is kept as a line of a JSONL
file, :data:`DEFAULT_RECORDS` (committed: measured data, like notes/precision/frontier.json), and
the claims table reads it instead of decoding again.  A row source describes each decode as a
**cell** (a JSON-able dict) and hands the cells to :func:`measured`:

* a cell with an ``ok`` record in the file is measured: its result is read back;
* a cell without one is decoded now if the row source allows it (its ``decode_up_to``, or
  ``--decode-all`` / ``PROOFS_CHECK_DECODE_ALL=1``), on the sweep executor of
  :mod:`proofs_check.sweep` (an embedded Dask ``LocalCluster``, or ``--scheduler ADDRESS``), and
  its record is appended the moment it finishes (an interrupted fill loses only the cells still
  running: run the same command again);
* any other cell is not measured, and its row says ``(not decoded)``.

What makes a record valid for a cell: the cell's key (:func:`proofs_check.sweep.cell_key`, its
canonical JSON) holds everything the chain depends on bit for bit: the theorem, n, the input
(the graph's edges, the machine, ...), the evaluator mode, and the model's SHA-256 digest
(:func:`constructions.modelfile.model_digest`: header and weights).  A construction whose weights
change gets a new digest and so new cells; its old records stay in the file, unused.  The
evaluator's code is not part of the key: the fast evaluator is bit-identical to the reference
evaluator by its equivalence tests, so a faster engine gives the same chain.  Each record also
says how it was measured (``seconds``, the result's ``engine``, ``host`` and ``date``), and every
result was checked against the independent reference (IsTree, Algorithm 1, the simulator) by the
cell function before it was written: a failing check is an error record, never a measured one,
and the decode that failed makes the claims table refuse (``ProofsCheckError``); the next run
decodes that cell again.

``records=None`` (``--decodes none``): no file is read or written, every allowed cell is decoded
(what the tests do).
"""
from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from constructions.errors import InputError, ProofsCheckError

from .sweep import Cell, Executor, cell_key, finished, read_records, run_cells

#: the committed records of the claims table's decodes (relative to the repository root, where
#: the documented `python -m proofs_check.claims --write notes/claims.md` runs)
DEFAULT_RECORDS = "notes/decodes/claims.jsonl"


def _env_decode_all() -> bool:
    return os.environ.get("PROOFS_CHECK_DECODE_ALL") == "1"


@dataclass(frozen=True)
class DecodeOptions:
    """How the claims table measures its chains (see the module docstring)."""

    records: str | None = DEFAULT_RECORDS
    decode_all: bool = field(default_factory=_env_decode_all)
    workers: int | None = None
    scheduler: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        self.executor()  # refuses a bad --workers / --scheduler before any work

    def executor(self) -> Executor:
        return Executor(workers=self.workers, scheduler=self.scheduler, quiet=self.quiet)


def stamp(engine: str) -> dict[str, Any]:
    """How a record was measured: the evaluator, the machine, the date (UTC) and the machine's
    1-minute load average when the decode ended (wall seconds on a shared machine are noisy)."""
    load = round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None
    return {"engine": engine, "host": f"{platform.machine()} {os.cpu_count()} cores, torch 1 thread",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"), "load": load}


def require_cell_model(model, cell: dict, what: str) -> None:
    """Refuse to decode ``cell`` with a model other than the one it was made for (its digest
    differs: the construction changed since), so a record never describes other weights."""
    from constructions.modelfile import model_digest

    if model_digest(model) != cell["model"]:
        raise ProofsCheckError(f"{what}: the model built now is not the one this cell was made for")


def known_results(records: str | None) -> dict[str, Any]:
    """Key -> result of every ok record in the file (none for ``None`` or a missing file)."""
    if records is None:
        return {}
    return {k: r["result"] for k, r in finished(read_records(records)[0]).items()}


def measured(cells: Sequence[Cell], allowed: Callable[[Cell], bool], fn: Callable[[Cell], Any],
             options: DecodeOptions, desc: str = "decodes", checkpoints: bool = False) -> dict[str, Any]:
    """Key -> result for each cell that is measured: read from ``options.records``, or decoded
    now by ``fn`` (a top-level function: it runs on Dask workers) when ``options.decode_all`` or
    ``allowed(cell)``.  Cells neither known nor allowed are left out of the answer.  A decode that
    fails (its check against the reference, an overflow, a dead worker) raises ProofsCheckError
    after the others have finished and been recorded.  ``checkpoints``: ``fn`` takes a
    ``checkpoint=`` keyword (proofs_check.decode_checkpoints); with records, each decode then
    saves its progress in ``partial/`` beside the records file and resumes from it."""
    known = known_results(options.records)
    keys = [cell_key(c) for c in cells]
    todo = [c for c, k in zip(cells, keys) if k not in known and (options.decode_all or allowed(c))]
    out = {k: known[k] for k in keys if k in known}
    if not todo:
        return out
    path = None
    if options.records is not None:
        path = Path(options.records)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {path.parent} for the decode records: {exc.strerror or exc}; "
                             "pass --decodes FILE elsewhere or --decodes none") from None
    if checkpoints and path is not None:
        from functools import partial

        from .decode_checkpoints import run_with_checkpoint

        fn = partial(run_with_checkpoint, fn, str(path.parent / "partial"))
    records = run_cells(todo, fn, out=path, resume=True, executor=options.executor(), desc=desc)
    failed = [r for r in records if r["status"] != "ok"]
    for r in records:
        if r["status"] == "ok":
            out[r["key"]] = r["result"]
    if failed:
        where = f" (recorded in {path}; run the same command again to retry)" if path else ""
        raise ProofsCheckError(f"{len(failed)} decode(s) failed{where}; first: {failed[0]['cell']}: {failed[0]['error']}")
    return out


# ---- the summary of what is recorded -----------------------------------------------------------

#: the input column of the summary, per row source (what distinguishes two cells of one n)
_INPUT = {"istree": lambda c: c["graph"], "tm-rag": lambda c: c["machine"], "tm-hybrid": lambda c: c["machine"],
          "cot-rnn": lambda c: f"parity sweep, {c['tape']} tape", "circuit": lambda c: f"P = {c['P']}"}


def _tokens(result: dict) -> int | None:
    for key in ("generated", "cot_length", "counted"):
        if key in result:
            return int(result[key])
    return None


def summary_markdown(records: str = DEFAULT_RECORDS) -> str:
    """One line per recorded decode (the newest ok record of each cell): theorem, input, n,
    tokens generated, wall seconds, ms per token, load, date; then per theorem and input the
    fitted exponent of seconds ~ n^e where there are two or more n."""
    import math

    rows = sorted(finished(read_records(records)[0]).values(),
                  key=lambda r: (r["cell"].get("theorem", ""), r["cell"].get("source", ""), _INPUT.get(r["cell"].get("source"), str)(r["cell"]), r["cell"]["n"]))
    lines = ["| Thm | input | n | tokens generated | seconds | ms / token | load | date | engine |", "|---|---|---|---|---|---|---|---|---|"]
    fits: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        cell, res = r["cell"], r["result"]
        what = _INPUT.get(cell.get("source"), lambda c: "-")(cell)
        toks = _tokens(res)
        resumed = res.get("resumed_at")
        per = f"{1000 * r['seconds'] / toks:.1f}" if toks and r.get("seconds") and not resumed else "-"
        secs = f"{r.get('seconds', '-')} (last run only: resumed at {resumed} tokens)" if resumed else r.get("seconds", "-")
        lines.append(f"| {cell.get('theorem', '-')} | {what} | {cell['n']} | {toks} | {secs} | {per} | "
                     f"{res.get('load', '-')} | {res.get('date', '-')} | {res.get('engine', '-')} |")
        if r.get("seconds") and not resumed:  # a resumed decode's seconds are not the whole decode's
            fits.setdefault((cell.get("theorem", "-"), what), []).append((cell["n"], r["seconds"]))
    out = ["\n".join(lines), ""]
    partial = in_progress(records)
    if partial:
        out += ["In progress (a checkpoint in partial/, continued by the next `--decode-all`; "
                "proofs_check.decode_checkpoints):", ""]
        out += [f"- Thm {c.get('theorem', '-')}, {_INPUT.get(c.get('source'), lambda c: '-')(c)}, n = {c['n']}: "
                f"{toks} tokens decoded (saved {saved})" for c, toks, saved in partial]
        out.append("")
    for (thm, what), pts in fits.items():
        if len({n for n, _ in pts}) < 2:
            continue
        xs, ys = [math.log(n) for n, _ in pts], [math.log(max(s, 1e-3)) for _, s in pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        e = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        out.append(f"- Thm {thm}, {what}: seconds ~ n^{e:.2f} over n = {', '.join(str(n) for n, _ in sorted(pts))}")
    return "\n".join(out) + "\n"


def in_progress(records: str = DEFAULT_RECORDS) -> list[tuple[dict, int, str]]:
    """(cell, tokens saved, when) of every decode checkpoint beside ``records`` (partial/)."""
    import json

    from .decode_checkpoints import read_all

    out = [(json.loads(d["key"]), int(d["tokens"]), str(d["saved"])) for d in read_all(Path(records).parent / "partial")]
    return sorted(out, key=lambda t: (t[0].get("theorem", ""), t[0]["n"]))


SUMMARY_HEAD = """# Recorded decodes of the claims table

Generated by `python -m proofs_check.decode_records --write notes/decodes/README.md` from
`notes/decodes/claims.jsonl` (do not edit by hand).  Every line is one exact decode that the
claims table (notes/claims.md) reads its chain-of-thought column from: the decode was checked
against the independent reference (IsTree and Algorithm 1, the Turing simulator, the circuit
evaluator) before it was recorded, and it is keyed by the model's SHA-256 digest and the input
(`proofs_check.decode_records`).  Seconds are wall-clock on the machine named in each record,
often shared with other jobs: the load column is the 1-minute load average when the decode
ended (on 2 cores, a load of 4 means about half speed).  The fitted exponents below mix the
engine versions and loads the records were made under: a rough guide, not a benchmark
(`benchmarks/large_n.py` is one; notes/performance.md).  `python -m proofs_check.claims
--decode-all` fills in the chains not yet recorded; a decode longer than a session saves its
progress in `notes/decodes/partial/` every 10 minutes and the next run continues it.

"""


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m proofs_check.decode_records",
                                 description="summarise the recorded decodes of the claims table")
    ap.add_argument("--records", default=DEFAULT_RECORDS, help=f"the records (default {DEFAULT_RECORDS})")
    ap.add_argument("--write", metavar="FILE", help="write the markdown summary to FILE (else print it)")
    args = ap.parse_args(argv)
    text = SUMMARY_HEAD + summary_markdown(args.records)
    if args.write:
        from .atomic_files import write_text

        write_text(args.write, text)
        print(f"wrote {args.write}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
