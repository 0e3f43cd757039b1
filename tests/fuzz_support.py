"""Shared pieces of the fuzz suite (tests/test_fuzz_*.py, issue #12).

:func:`run_cli` drives the real entry point ``proofs_check.cli.main(argv)`` with stdout and
stderr captured the way Python sets them up for a console (UTF-8; stdout strict, stderr
``backslashreplace``), so an unencodable character in an error message fails the test as it
would fail the user.  :func:`assert_clean` is the property every fuzz case must satisfy: exit
status 0 or 2, no traceback, and every stderr line one ``error: ...`` line.

:func:`examples` scales a test's example count with the Hypothesis profile (``ci`` = the
number given; ``dev`` and ``thorough`` scale it by their max_examples relative to ci's 20).
"""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

from proofs_check import cli

CI_EXAMPLES = 20  # tests/conftest.py's ci profile


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def out_lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]


def _stream(errors: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)


def run_cli(argv: list[str], stdin: bytes = b"") -> CliRun:
    """``cli.main(argv)`` with fresh stdin/stdout/stderr; returns (code, stdout, stderr)."""
    out, err = _stream("strict"), _stream("backslashreplace")
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, out, err
    try:
        code = cli.main(argv)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return CliRun(code, out.buffer.getvalue().decode("utf-8"), err.buffer.getvalue().decode("utf-8"))


def assert_clean(run: CliRun, *, bad: int | None = None) -> None:
    """Exit 0 or 2, no traceback, every stderr line an ``error:`` line; with ``bad`` given,
    exactly that many error lines and exit 2 iff there is one."""
    assert run.code in (0, 2), run
    assert "Traceback" not in run.err + run.out, run.err
    for line in run.err_lines:
        assert line.startswith("error: "), run.err
    if bad is not None:
        assert len(run.err_lines) == bad, run.err
        assert run.code == (2 if bad else 0), run


def examples(ci: int) -> settings:
    """Hypothesis settings with ``ci`` examples at the ci profile, scaled for dev/thorough."""
    scale = max(1.0, settings.default.max_examples / CI_EXAMPLES)
    return settings(max_examples=max(1, int(ci * scale)), suppress_health_check=[HealthCheck.too_slow,
                                                                                HealthCheck.data_too_large])
