"""proofs_check/sweep.py: cells on a Dask LocalCluster, one JSONL record per cell, resume.

Independent references: each cell's function leaves a marker file when it finishes
(tests/sweep_support.py), so "no finished cell runs twice" is counted outside the sweep, and the
results are compared with plain x * x."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# distributed's config defaults must be loaded before the dask.config.set below: a set made before
# they exist deletes the whole "distributed" section on leaving, for every later test in the session
import distributed  # noqa: F401
import pytest

from constructions.errors import InputError, ProofsCheckError
from proofs_check.sweep import Executor, cell_key, read_records, results_or_raise, run_cells

sys.path.insert(0, str(Path(__file__).parent))
import sweep_support as S  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _cells(log: Path, xs, **extra) -> list[dict]:
    return [{"x": x, "log": str(log), **extra} for x in xs]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_local_cluster_sweep_records_every_cell_once_with_a_failing_cell_and_a_dying_worker(tmp_path):
    """6 cells on 2 workers: cell 3 raises (while the flag file exists), cell 1 kills its worker
    process whenever it runs (both while the flag file exists).  Each loses only itself; resume
    re-runs exactly those two."""
    import dask

    log = tmp_path / "log"
    log.mkdir()
    out = tmp_path / "sweep.jsonl"
    flag = tmp_path / "flag"
    flag.touch()
    cells = _cells(log, range(6), fail=3, flag=str(flag), die=1)
    # Dask retries the cell of a dead worker; the one that kills every worker it runs on fails after 2 tries
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        records = run_cells(cells, S.dies_or_squares, out=out, executor=Executor(workers=2, quiet=True))
    assert [r["cell"]["x"] for r in records] == list(range(6))  # the order of the cells
    assert {r["cell"]["x"]: r["status"] for r in records} == {0: "ok", 1: "error", 2: "ok", 3: "error", 4: "ok", 5: "ok"}
    assert [r["result"]["square"] for r in records if r["status"] == "ok"] == [0, 4, 16, 25]
    assert "ValueError: cell 3 fails on purpose" in records[3]["error"] and "worker lost" in records[1]["error"]
    assert sorted(line["key"] for line in _lines(out)) == sorted(cell_key(c) for c in cells)  # one line per cell
    # a cell whose result was still on the dead worker may be computed twice; it is recorded once
    assert set(S.finished_counts(str(log))) == {0, 2, 4, 5}
    with pytest.raises(ProofsCheckError, match="failed"):
        results_or_raise(records)
    # resume (here in this process) re-runs the two error records only, now both succeed
    flag.unlink()
    before = S.finished_counts(str(log))
    records = run_cells(cells, S.dies_or_squares, out=out, resume=True, executor=Executor(workers=1))
    assert [r["result"]["square"] for r in records] == [x * x for x in range(6)]
    assert S.finished_counts(str(log)) == {**before, 1: 1, 3: 1}


def test_torn_last_line_is_ignored_and_its_cell_rerun(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    out = tmp_path / "sweep.jsonl"
    cells = _cells(log, range(4))
    run_cells(cells, S.logged_square, out=out, executor=Executor(workers=1))
    text = out.read_text().splitlines(keepends=True)
    torn = json.loads(text[-1])["cell"]["x"]
    out.write_text("".join(text[:-1]) + text[-1][: len(text[-1]) // 2])  # a crash mid-write
    records, _ = read_records(out)
    assert len(records) == 3
    records = run_cells(cells, S.logged_square, out=out, resume=True, executor=Executor(workers=1))
    assert [r["result"]["square"] for r in records] == [x * x for x in range(4)]
    counts = S.finished_counts(str(log))
    assert counts == {x: 2 if x == torn else 1 for x in range(4)}
    assert len(_lines(out)) == 4  # every line whole again, one per cell


SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import sweep_support as S
from proofs_check.sweep import Executor, run_cells
cells = [{{"x": x, "log": {log!r}, "sleep": 1.0}} for x in range(6)]
run_cells(cells, S.logged_square, out={out!r}, executor=Executor(workers=2, quiet=True))
"""


def test_killed_sweep_resumes_to_completion_with_no_finished_cell_run_twice(tmp_path):
    log, out = tmp_path / "log", tmp_path / "sweep.jsonl"
    log.mkdir()
    script = SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), log=str(log), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
            time.sleep(0.1)
        assert out.exists() and out.read_text().count("\n") >= 1, "the sweep wrote no record in 120 s"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # client, scheduler and workers: the session we started
        proc.wait()
    before = {r["cell"]["x"] for r in read_records(out)[0] if r["status"] == "ok"}
    assert 1 <= len(before) < 6, before
    first_counts = S.finished_counts(str(log))
    records = run_cells([{"x": x, "log": str(log), "sleep": 1.0} for x in range(6)], S.logged_square,
                        out=out, resume=True, executor=Executor(workers=1))
    assert [r["result"]["square"] for r in records] == [x * x for x in range(6)]
    counts = S.finished_counts(str(log))
    for x in before:  # finished before the kill: not run again
        assert counts[x] == first_counts[x] == 1
    assert set(counts) == set(range(6))
    assert sorted(r["cell"]["x"] for r in read_records(out)[0] if r["status"] == "ok") == list(range(6))


def test_bad_executor_settings_and_cells_are_input_errors():
    with pytest.raises(InputError, match="--workers"):
        Executor(workers=0)
    with pytest.raises(InputError, match="--scheduler"):
        Executor(scheduler=" ")
    with pytest.raises(InputError, match="JSON-able"):
        cell_key({"x": object()})

