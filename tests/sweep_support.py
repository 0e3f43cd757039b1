"""Cell functions for tests/test_sweep.py (a module of their own: Dask workers import them by name).

Each call leaves a marker file ``<cell["log"]>/<x>.<unique>`` *after* its work, so a test counts
how often each cell really finished, independently of the sweep's own records."""
from __future__ import annotations

import os
import time
import uuid


def logged_square(cell: dict) -> dict:
    """x * x after ``cell.get("sleep", 0)`` seconds; x = cell["fail"] raises ValueError while
    the file ``cell["flag"]`` exists (a failure the test can lift before resuming)."""
    time.sleep(cell.get("sleep", 0))
    if cell["x"] == cell.get("fail") and os.path.exists(cell["flag"]):
        raise ValueError(f"cell {cell['x']} fails on purpose")
    with open(os.path.join(cell["log"], f"{cell['x']}.{uuid.uuid4().hex}"), "w"):
        pass
    return {"square": cell["x"] * cell["x"]}


def finished_counts(log: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for name in os.listdir(log):
        x = int(name.split(".")[0])
        out[x] = out.get(x, 0) + 1
    return out


def dies_or_squares(cell: dict) -> dict:
    """The worker process exits (no exception, no cleanup) on x = cell["die"] while the file
    ``cell["flag"]`` exists; else logged_square."""
    if cell["x"] == cell.get("die") and os.path.exists(cell["flag"]):
        os._exit(3)
    return logged_square(cell)


def pid_square(cell: dict) -> dict:
    """x * x and the id of the process that computed it (which worker ran the cell)."""
    return {"square": cell["x"] * cell["x"], "pid": os.getpid()}
