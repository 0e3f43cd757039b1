"""Sweeps that scale (issue #11): run many small independent *cells* on Dask, one JSONL line each.

A **cell** is a small JSON-able dict (``{"name": "index-transformer", "n": 64, ...}``); its
**key** is its canonical JSON text (sorted keys), so the same cell always has the same key.
:func:`run_cells` runs ``fn(cell) -> dict`` (a top-level, importable function: it is sent to
worker processes) on every cell and returns the records in the order of the cells.

Executor.
  * ``workers == 1`` and no scheduler: in this process, one cell after the other (no cluster
    to start; the same records, the same file).
  * otherwise an embedded ``distributed.LocalCluster`` of ``workers`` processes (default: the
    machine's cores), one thread each, or with ``scheduler="tcp://HOST:PORT"`` an existing
    Dask cluster (the workers there must import this package at the same version).

Records.  One line per finished cell: ``{"key", "cell", "status": "ok" | "error", "result",
"error", "seconds"}``, appended the moment the cell ends (written, flushed and fsynced), so a
crash of the client, the cluster or the machine loses at most the cells still running.

Failures (decided here, once for every sweep):
  * a cell whose ``fn`` raises gets an **error record** (``status: "error"``, the exception's
    type and message); the other cells go on;
  * a worker process that dies (killed, out of memory, a segfault) fails its cell the same way
    (Dask's ``KilledWorker`` after its retries, or a lost connection): an error record;
  * ``resume=True`` keeps the ``ok`` records already in ``out`` and runs every other cell again:
    cells never started, cells with an error record (their old error line stays in the file, a
    later ok line supersedes it), and a cell whose line was torn (a last line cut mid-way by a
    crash is ignored, the file is truncated back to its last whole line before appending).
  * without ``resume`` an existing ``out`` is replaced (a new sweep).

Progress: one tqdm bar over the cells (``proofs_check.progress``; none off a terminal or with
``quiet``).
"""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

from constructions.errors import InputError, ProofsCheckError

from .atomic_files import check_target
from .progress import bar, wanted

Cell = dict
Record = dict


def cell_key(cell: Cell) -> str:
    """The stable key of a cell: its JSON text with sorted keys (refuses what JSON cannot hold)."""
    try:
        return json.dumps(cell, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"a sweep cell must be a JSON-able dict, got {cell!r}: {exc}") from None


@dataclass(frozen=True)
class Executor:
    """Where cells run: ``scheduler`` (an existing cluster's address) or ``workers`` local
    processes (None: the machine's cores; 1 without a scheduler: in this process)."""

    workers: int | None = None
    scheduler: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1):
            raise InputError(f"--workers must be a positive integer, got {self.workers!r}")
        if self.scheduler is not None and not str(self.scheduler).strip():
            raise InputError("--scheduler needs an address such as tcp://127.0.0.1:8786")

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.workers == 1

    def local_workers(self, cells: int) -> int:
        return max(1, min(cells, self.workers or os.cpu_count() or 1))


# ---- the JSONL file ------------------------------------------------------------------------


def read_records(path: str | os.PathLike) -> tuple[list[Record], int]:
    """The whole, parseable records of a sweep file and the byte length they end at (a torn or
    unreadable last line is not counted; a bad line in the middle is skipped)."""
    path = Path(path)
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records, end, pos = [], 0, 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        if not line.endswith(b"\n"):
            break  # torn last line: its cell runs again
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "key" in rec and "status" in rec:
            records.append(rec)
        end = pos
    return records, end


def finished(records: Sequence[Record]) -> dict[str, Record]:
    """Key -> the ok record of every cell that finished without error."""
    return {r["key"]: r for r in records if r.get("status") == "ok"}


def _open_out(out: str | os.PathLike | None, resume: bool) -> tuple[IO[str] | None, dict[str, Record]]:
    if out is None:
        return None, {}
    path = check_target(out)
    done: dict[str, Record] = {}
    if resume and path.exists():
        records, end = read_records(path)
        done = finished(records)
        with open(path, "r+b") as fh:  # drop a torn last line before appending
            fh.truncate(end)
    try:
        return open(path, "a" if resume else "w", encoding="utf-8"), done
    except OSError as exc:
        raise ProofsCheckError(f"cannot write {path}: {exc.strerror or exc}; choose another output path") from None


def _append(fh: IO[str] | None, rec: Record) -> None:
    if fh is None:
        return
    fh.write(json.dumps(rec, sort_keys=True) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# ---- running -------------------------------------------------------------------------------


def run_one(fn: Callable[[Cell], Any], cell: Cell) -> Record:
    """Run one cell and wrap the outcome as a record (an exception becomes an error record)."""
    t0 = time.perf_counter()
    try:
        result, status, error = fn(cell), "ok", None
    except Exception as exc:  # noqa: BLE001 - one failing cell must not stop the sweep
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
        result, status, error = None, "error", f"{type(exc).__name__}: {' '.join(str(exc).split())}{where}"
    return {"key": cell_key(cell), "cell": cell, "status": status, "result": result, "error": error,
            "seconds": round(time.perf_counter() - t0, 3)}


def _in_process(fn: Callable[[Cell], Any], todo: list[Cell]) -> Iterator[Record]:
    for cell in todo:
        yield run_one(fn, cell)


def _client(ex: Executor, cells: int):
    from distributed import Client, LocalCluster

    if ex.scheduler is not None:
        try:
            return Client(ex.scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ProofsCheckError(f"cannot reach the Dask scheduler at {ex.scheduler}: {exc}; "
                                   "start one (dask scheduler) or leave --scheduler out for a local cluster") from None
    cluster = LocalCluster(n_workers=ex.local_workers(cells), threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster)


#: saturation 1.0: a worker holds only the cell it runs (none queued), so a dying worker takes no
#: bystander with it; daemon False: a cell may start processes of its own (the regex oracle of
#: the retrieval-augmented RNNs runs Python's re in a child process)
DASK_CONFIG = {"distributed.scheduler.worker-saturation": 1.0, "distributed.worker.daemon": False}


def _on_dask(ex: Executor, fn: Callable[[Cell], Any], todo: list[Cell]) -> Iterator[Record]:
    import dask
    from distributed import as_completed

    with dask.config.set(DASK_CONFIG):  # held while the cluster lives: restarted workers read it too
        yield from _submit_all(ex, fn, todo, as_completed)


def _submit_all(ex: Executor, fn: Callable[[Cell], Any], todo: list[Cell], as_completed) -> Iterator[Record]:
    client = _client(ex, len(todo))
    try:
        pending = {client.submit(run_one, fn, cell, pure=False, key=f"cell-{i}-{time.time_ns()}"): cell
                   for i, cell in enumerate(todo)}
        for fut in as_completed(list(pending)):
            cell = pending.pop(fut)
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker died (KilledWorker, lost connection)
                rec = {"key": cell_key(cell), "cell": cell, "status": "error", "result": None,
                       "error": f"worker lost: {type(exc).__name__}: {' '.join(str(exc).split())}", "seconds": None}
            fut.release()  # fetched: a later dead worker must not make Dask compute it again
            yield rec
    finally:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()


def run_cells(cells: Sequence[Cell], fn: Callable[[Cell], Any], out: str | os.PathLike | None = None,
              resume: bool = False, executor: Executor = Executor(), desc: str = "cells") -> list[Record]:
    """Run ``fn`` on every cell (module docstring); the records in the order of ``cells``
    (finished ones from ``out`` when resuming).  Duplicate cells run once."""
    keys = [cell_key(c) for c in cells]
    fh, done = _open_out(out, resume)
    todo = [c for k, c in dict(zip(keys, cells)).items() if k not in done]
    records = dict(done)
    progress = bar(wanted(executor.quiet), len(todo), desc, "cell")
    try:
        stream = _in_process(fn, todo) if executor.in_process or not todo else _on_dask(executor, fn, todo)
        for rec in stream:
            _append(fh, rec)
            records[rec["key"]] = rec
            if progress is not None:
                progress.update(1)
    finally:
        if progress is not None:
            progress.close()
        if fh is not None:
            fh.close()
    return [records[k] for k in keys]


def results_or_raise(records: Sequence[Record]) -> list[Any]:
    """The results of ok records; the first error record raises ProofsCheckError naming its cell."""
    for r in records:
        if r["status"] != "ok":
            raise ProofsCheckError(f"sweep cell {r['key']} failed: {r['error']}")
    return [r["result"] for r in records]
