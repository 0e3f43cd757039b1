"""No partial output file when a writer fails (issue #12): ``data istree --out``,
``inspect --export`` / ``--plot`` and the precision table write a temporary file beside the
target and rename it only when complete (proofs_check.atomic_files).  A writer that crashes
half-way (simulated: the disk fills up after some records, the rename fails, a bug raises) leaves
the target as it was - absent, or with its old contents - and no temporary file behind; the CLI
prints one error line.  Unwritable targets (a directory, a missing folder) are one error line.
"""
from __future__ import annotations

import errno
import json

import pytest
from hypothesis import given, strategies as st

from fuzz_support import assert_clean, examples, run_cli
from proofs_check import atomic_files, data, inspect_model, precision


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _disk_full_after(k: int, real):
    calls = {"n": 0}

    def record(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > k:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return record


@pytest.mark.parametrize("old", [None, "old contents\n"])
@pytest.mark.parametrize("k", [0, 2])
def test_data_writer_crash_leaves_no_partial_file(tmp_path, monkeypatch, k, old):
    out = tmp_path / "d.jsonl"
    if old is not None:
        out.write_text(old)
    monkeypatch.setattr(data, "record", _disk_full_after(k, data.record))
    run = run_cli(["data", "istree", "--n", "5", "--count", "4", "--format", "cot", "--out", str(out)])
    assert_clean(run, bad=1)
    assert "No space left" in run.err_lines[0] and str(out) in run.err_lines[0]
    assert leftovers(tmp_path) == ([] if old is None else ["d.jsonl"])
    if old is not None:
        assert out.read_text() == old


def test_data_writes_the_whole_file_when_nothing_fails(tmp_path):
    out = tmp_path / "d.jsonl"
    run = run_cli(["data", "istree", "--n", "5", "--count", "3", "--format", "vanilla", "--out", str(out)])
    assert_clean(run, bad=0)
    assert [json.loads(x)["label"] for x in out.read_text().splitlines()] == ["YES", "NO", "YES"]
    assert leftovers(tmp_path) == ["d.jsonl"]


def test_export_and_plot_rename_failure_leaves_nothing(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(atomic_files.os, "replace", failing_replace)
    for flag, name in (("--export", "e.json"), ("--plot", "e.png")):
        run = run_cli(["inspect", "index-transformer", "--n", "2", flag, str(tmp_path / name)])
        assert run.code == 2 and "Traceback" not in run.err and run.err_lines[-1].startswith("error: cannot write")
    assert leftovers(tmp_path) == []


def test_a_bug_inside_the_writer_leaves_no_file(tmp_path, monkeypatch):
    """A non-OS exception half-way (a bug) propagates, but the target is not created."""
    model = __import__("proofs_check.catalog", fromlist=["build"]).build("index-transformer", n=2)

    def half_then_crash(self, fname, **kwargs):
        open(fname, "wb").write(b"\x89PNG partial")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", half_then_crash)
    with pytest.raises(RuntimeError):
        inspect_model.plot(model, tmp_path / "p.png")
    assert leftovers(tmp_path) == []


def test_precision_table_writer_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "float_format_rows", lambda **kw: [])
    monkeypatch.setattr(precision, "minimal_p_rows", lambda **kw: [])
    monkeypatch.setattr(precision, "formats_markdown", lambda rows: "table")
    monkeypatch.setattr(precision, "breaking_points", lambda rows: [])
    monkeypatch.setattr(precision, "failures_markdown", lambda rows: "")
    monkeypatch.setattr(precision, "min_p_markdown", lambda rows: "")
    target = tmp_path / "formats.md"
    target.write_text("old table\n")
    monkeypatch.setattr(atomic_files.os, "replace", lambda s, d: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(Exception, match="cannot write"):
        precision.write_markdown(str(target))
    assert target.read_text() == "old table\n" and leftovers(tmp_path) == ["formats.md"]


@examples(10)
@given(st.sampled_from(["", ".", "/", "/nonexistent/x.jsonl", "/proc/version", "/dev/null/x", "\x00", "a" * 300]))
def test_fuzz_unwritable_output_paths(out):
    run = run_cli(["data", "istree", "--n", "5", "--count", "1", "--format", "cot", "--out", out])
    assert_clean(run, bad=1)
