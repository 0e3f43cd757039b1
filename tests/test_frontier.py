"""proofs_check/frontier.py and the precision sweep CLI: bisection against a brute-force downward
scan, the non-monotone report, the log2 fit, and the command line's flags (tiny n, K = 2)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from constructions.errors import PrecisionError
from proofs_check import cli
from proofs_check import frontier as Fr
from proofs_check import precision as P
from proofs_check.precision_sweep import build_cells

# ---- the search on synthetic predicates ----------------------------------------------------


@given(st.integers(1, 40), st.integers(0, 45))
def test_bisection_equals_downward_scan_on_monotone_predicates(top, threshold):
    values = list(range(1, top + 1))
    calls: list[int] = []

    def passes(v: int) -> bool:
        calls.append(v)
        return v >= threshold

    expected = threshold if 1 <= threshold <= top else (1 if threshold < 1 else None)
    assert Fr.bisect_smallest(values, passes) == expected == Fr.downward_scan(values, lambda v: v >= threshold)
    assert len(set(calls)) <= math.ceil(math.log2(top)) + 2  # bisection, not a scan


def test_non_monotone_pass_below_the_answer_is_reported():
    declared = {"p": 21, "I": 10, "F": 10}
    judge = Fr.Judge.__new__(Fr.Judge)  # a judge whose trials are a fixed table
    table = {v: (v >= 6 or v == 4) for v in range(1, 11)}
    judge.trials = {}
    judge._trial = lambda v: Fr.Trial(v, str(v), table[v], 1, 1)
    res = Fr.search_axis("I", declared, judge)
    assert res.answer == 6 and not res.monotone and res.also_passes == [4]
    assert {t.value for t in res.trials} >= {4, 5, 6, 10}


def test_least_squares_recovers_a_line_and_needs_two_sizes():
    a, b = Fr.least_squares([8, 16, 64, 256], [3 * k + 5 for k in (3, 4, 6, 8)])
    assert a == pytest.approx(3) and b == pytest.approx(5)
    assert Fr.least_squares([8, 8], [1, 2]) is None


# ---- a real construction -------------------------------------------------------------------


@pytest.fixture(scope="module")
def count_hybrid_row():
    return Fr.frontier_row("count-hybrid", 8, 2, route="rebuild")


def test_frontier_bisection_matches_brute_force_scan_on_a_real_family(count_hybrid_row):
    """count-hybrid (Thm 5.6) at n = 8, K = 2, rebuilt for each format: every axis' bisection
    answer equals a fresh downward scan (its own Judge, every value from declared down to the
    first failure)."""
    row = count_hybrid_row
    assert row.error is None and row.declared["p"] == P.construction("count-hybrid").build(8).p
    con = P.construction("count-hybrid")
    model = con.build(8)
    cases = con.cases(8, 2)
    from constructions.decode import RegexOracle
    from constructions.evaluate_fast import FastEvaluator

    with RegexOracle() as oracle:
        for axis in Fr.AXES:
            judge = Fr.Judge(con, cases, Fr.maker(con, 8, "rebuild", model), row.declared, axis, FastEvaluator(), oracle)
            scanned = Fr.downward_scan(Fr.axis_values(axis, row.declared), judge)
            assert row.axes[axis].answer == scanned, (axis, row.axes[axis], scanned)
            assert scanned is not None and scanned <= row.declared[axis]
            if row.axes[axis].monotone and scanned > Fr.axis_values(axis, row.declared)[0]:
                below = [t for t in row.axes[axis].trials if t.value < scanned]
                assert below and not any(t.ok for t in below) and all(t.first_failure for t in below)


def test_frontier_row_round_trips_through_json(count_hybrid_row):
    d = json.loads(json.dumps(count_hybrid_row.to_json()))
    assert Fr.FrontierRow.from_json(d) == count_hybrid_row


def test_rebuild_route_refuses_to_measure_when_the_builder_cannot_make_the_declared_format(monkeypatch):
    """A route that cannot even reproduce the declared format is an error row, not a frontier of 'fails'."""
    def refuse(prec):
        raise PrecisionError(f"this route cannot build {prec.label}")

    monkeypatch.setattr(Fr, "maker", lambda con, n, route, m: refuse)
    row = Fr.frontier_row("count-hybrid", 8, 1)
    assert row.error and "cannot make the model at its declared format" in row.error and not row.axes


# ---- the command line ----------------------------------------------------------------------


def _args(argv):
    return cli.build_parser().parse_args(["precision", *argv])


def test_comma_and_space_size_lists_and_all():
    cells = build_cells(_args(["count-hybrid", "--n", "8,16", "32", "--frontier"]))
    assert [(c["kind"], c["n"]) for c in cells] == [("frontier", 8), ("frontier", 16), ("frontier", 32)]
    cells = build_cells(_args(["count-hybrid", "--n", "8", "--frontier", "--formats", "exact,bfloat16"]))
    assert [c["kind"] for c in cells] == ["formats", "frontier"] and cells[0]["formats"] == ["exact", "bfloat16"]
    cells = build_cells(_args(["all", "--n", "8", "--frontier"]))
    from proofs_check.precision_machines import NAMES

    assert sorted(c["name"] for c in cells) == sorted([c.name for c in P.CONSTRUCTIONS] + list(NAMES))
    assert [c["kind"] for c in build_cells(_args(["count-hybrid", "--n", "8"]))] == ["formats"]  # as before


@pytest.mark.parametrize("argv, message", [
    (["count-hybrid", "--n", "8,x"], "sizes must be positive integers"),
    (["count-hybrid", "--n", "0"], "sizes must be positive integers"),
    (["count-hybrid", "--formats", "exact,float16"], "unknown number format"),
    (["nosuch"], "invalid choice"),
    (["count-hybrid", "--device", "tpu"], "invalid choice"),
    (["count-hybrid", "--n", "8", "--resume"], "--resume needs --out"),
    (["count-hybrid", "--n", "8", "--workers", "0"], "--workers must be a positive integer"),
    (["dfs-transformer", "--n", "2"], "n >= 4"),
])
def test_bad_values_exit_2_with_a_message(argv, message, capsys):
    assert cli.main(["precision", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cuda_without_a_device_is_a_clear_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present; the refusal path is not reachable here")
    assert cli.main(["precision", "count-hybrid", "--n", "8", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_frontier_cli_writes_jsonl_and_a_plot(tmp_path, capsys):
    out, png = tmp_path / "f.jsonl", tmp_path / "f.png"
    argv = ["precision", "count-hybrid", "--n", "8", "--instances", "2", "--frontier", "--route", "requantise",
            "--formats", "exact", "--out", str(out), "--plot", str(png), "--json"]
    assert cli.main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows] == ["formats", "frontier"]
    assert rows[1]["axes"]["p"]["answer"] <= rows[1]["declared"]["p"]
    assert len(out.read_text().splitlines()) == 2 and png.read_bytes()[:4] == b"\x89PNG"
    assert cli.main([*argv, "--resume"]) == 0  # every cell already there: nothing runs, same rows
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows
    assert len(out.read_text().splitlines()) == 2


def test_claims_paragraph_fits_the_committed_rows_and_is_empty_without_them(tmp_path, count_hybrid_row):
    from proofs_check.frontier_notes import claims_paragraph

    assert claims_paragraph(tmp_path / "missing.json") == ""
    rows = []
    for n, p in ((8, 27), (64, 33)):  # a slope of 2 bits per doubling of n
        d = count_hybrid_row.to_json()
        d["n"], d["axes"]["p"]["answer"] = n, p
        rows.append(d)
    path = tmp_path / "frontier.json"
    path.write_text(json.dumps(rows))
    text = claims_paragraph(path)
    (line,) = [x for x in text.splitlines() if "count-hybrid" in x]
    assert "| 2.00 log2 n + 21.0 |" in line and "O(log n) bits (Thm 5.6)" in line


# ---- verify --workers ----------------------------------------------------------------------


def test_verify_on_the_sweep_executor_keeps_the_registry_order(capsys):
    """The parallel path's cells and records (run here in-process, 1 worker) give the same
    outcomes, in the same order, as the serial loop."""
    import argparse

    from proofs_check import registry

    checks = registry.select(["B.3", "B.2"])
    args = argparse.Namespace(profile="ci", workers=1, scheduler=None, quiet=True)
    results = cli._verify_parallel(checks, args)
    assert [r["id"] for r in results] == [c.id for c in checks]
    assert all(r["passed"] and r["cases"] > 0 for r in results)


def test_verify_refuses_zero_workers(capsys):
    assert cli.main(["verify", "--only", "B.2", "--workers", "0"]) == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
