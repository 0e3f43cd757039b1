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


def test_local_cluster_sweep_writes_one_record_per_cell_and_an_error_record(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    out = tmp_path / "sweep.jsonl"
    flag = tmp_path / "flag"
    flag.touch()
    cells = _cells(log, range(6), fail=3, flag=str(flag))
    records = run_cells(cells, S.logged_square, out=out, executor=Executor(workers=2, quiet=True))
    assert [r["cell"]["x"] for r in records] == list(range(6))  # the order of the cells
    assert [r["result"]["square"] for r in records if r["status"] == "ok"] == [x * x for x in range(6) if x != 3]
    (err,) = [r for r in records if r["status"] == "error"]
    assert err["cell"]["x"] == 3 and "ValueError: cell 3 fails on purpose" in err["error"]
    lines = _lines(out)
    assert sorted(line["key"] for line in lines) == sorted(cell_key(c) for c in cells)
    assert S.finished_counts(str(log)) == {x: 1 for x in range(6) if x != 3}
    with pytest.raises(ProofsCheckError, match="fails on purpose"):
        results_or_raise(records)
    # resume re-runs the error record only (its cell now succeeds), nothing else
    flag.unlink()
    records = run_cells(cells, S.logged_square, out=out, resume=True, executor=Executor(workers=1))
    assert all(r["status"] == "ok" for r in records)
    assert S.finished_counts(str(log)) == {x: 1 for x in range(6)}


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
