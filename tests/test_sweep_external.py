"""A sweep sent to an EXTERNAL Dask cluster (``--scheduler ADDRESS``, issue #11): the test starts
``dask scheduler`` and one ``dask worker`` (no nanny, one thread) as its own subprocesses, runs
cells there through :func:`proofs_check.sweep.run_cells` and through ``proofs-check precision
... --scheduler``, checks the JSONL records, and tears both processes down.

Independent references: each cell returns the pid of the process that computed it, which must
be the worker subprocess this test started (not this process, not a local cluster), and the
squares are compared with plain x * x; the precision record is compared with the same cell run
in this process.  Bounded: every wait has a deadline; distributed is a dependency, so no skip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import distributed  # noqa: F401 - its config defaults loaded at collection (see tests/test_sweep.py)
import pytest

from proofs_check import cli
from proofs_check.sweep import Executor, cell_key, read_records, run_cells

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
import sweep_support as S  # noqa: E402

DEADLINE_S = 90


def _wait_for(what: str, ok, procs) -> None:
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        if ok():
            return
        dead = [p.args[2] for p in procs if p.poll() is not None]
        assert not dead, f"{dead} exited before {what}"
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {DEADLINE_S} s")


@pytest.fixture(scope="module")
def external_cluster(tmp_path_factory):
    """(scheduler address, worker pid) of a scheduler and one worker started as subprocesses."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    sched_file = tmp / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    common = {"cwd": str(ROOT), "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)], **common)]
    try:
        _wait_for("scheduler file", lambda: sched_file.exists() and "address" in sched_file.read_text(), procs)
        address = json.loads(sched_file.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny",
                                       "--nthreads", "1", "--no-dashboard", "--death-timeout", "60"], **common))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=DEADLINE_S)
        yield address, procs[1].pid
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_cells_run_on_the_external_worker_and_are_recorded(external_cluster, tmp_path):
    address, worker_pid = external_cluster
    out = tmp_path / "sweep.jsonl"
    cells = [{"x": x} for x in range(5)]
    records = run_cells(cells, S.pid_square, out=out, executor=Executor(scheduler=address, quiet=True))
    assert [r["result"]["square"] for r in records] == [x * x for x in range(5)]
    assert {r["result"]["pid"] for r in records} == {worker_pid} != {os.getpid()}
    lines, _ = read_records(out)
    assert sorted(r["key"] for r in lines) == sorted(cell_key(c) for c in cells) and all(r["status"] == "ok" for r in lines)
    again = run_cells(cells, S.pid_square, out=out, resume=True, executor=Executor(scheduler=address, quiet=True))
    assert again == records and len(out.read_text().splitlines()) == 5  # resume: nothing re-ran


def test_precision_cli_with_scheduler_writes_the_same_record_as_in_process(external_cluster, tmp_path, capsys):
    address, _ = external_cluster
    argv = ["precision", "count-hybrid", "--n", "8", "--instances", "1", "--formats", "exact", "--quiet", "--json"]
    remote, local = tmp_path / "remote.jsonl", tmp_path / "local.jsonl"
    assert cli.main([*argv, "--scheduler", address, "--out", str(remote)]) == 0
    remote_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cli.main([*argv, "--out", str(local)]) == 0
    local_rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    drop = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    assert [drop(r) for r in remote_rows] == [drop(r) for r in local_rows] and remote_rows[0]["kind"] == "formats"
    (rec,), _ = read_records(remote)
    assert rec["status"] == "ok" and rec["cell"]["name"] == "count-hybrid" and rec["result"]["results"]["exact"]["correct"] == 1


def test_an_unreachable_scheduler_is_a_clear_error(capsys):
    assert cli.main(["precision", "count-hybrid", "--n", "8", "--instances", "1", "--formats", "exact", "--quiet",
                     "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and "Traceback" not in err
