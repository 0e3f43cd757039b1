"""Progress bars on a real terminal (issue 15): the CLI in a child whose stderr is a pseudo-terminal.

On a terminal ``run`` draws a bar per instance and one per decode (tokens), ``verify`` one per
check (cases); with ``--quiet``, or with stderr not a terminal, stderr has no bar at all.  stdout
is a pipe in every case and carries the same answer.  Tiny instances keep this to a few seconds.
"""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_ISTREE = ["run", "istree", "--model", "transformer", "--edges", "1-2 2-3", "--evaluator", "reference"]  # no torch import


def cli_on_tty(args: list[str], tty: bool = True, timeout: float = 60, module: bool = True) -> tuple[int, str, str]:
    """(exit status, stdout, what stderr got) of ``python -m proofs_check ARGS`` (``python ARGS``
    without ``module``); stderr is a pseudo-terminal (80 columns) when ``tty``, else a pipe."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    cmd = [sys.executable, *(["-m", "proofs_check"] if module else []), *args]
    if not tty:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout.decode(), done.stderr.decode()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise AssertionError(f"no output for {timeout} s from {args}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        out = child.stdout.read().decode()
        return child.wait(timeout), out, seen.decode(errors="replace")
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()


MARK = "<<end of command>>"
DRIVER = f"""
import os, sys
from proofs_check import cli
for argv in sys.argv[1:]:
    code = cli.main(argv.split("|"))
    sys.stdout.flush(); sys.stderr.flush()
    os.write(2, ("{MARK} %d\\n" % code).encode())
"""
COMMANDS = {  # one child runs them all (one interpreter start: the imports dominate)
    "run": RUN_ISTREE,
    "run quiet": RUN_ISTREE + ["--quiet"],
    "verify": ["verify", "--only", "B.5"],
    "verify quiet": ["verify", "--only", "B.5", "--quiet"],
}


@pytest.fixture(scope="module")
def on_a_terminal() -> dict[str, str]:
    """What the terminal got on stderr per command of :data:`COMMANDS` (each exited 0), and
    ``"stdout"``: the stdout of them all."""
    code, out, err = cli_on_tty(["-c", DRIVER, *("|".join(a) for a in COMMANDS.values())], module=False)
    assert code == 0, (out, err)
    parts = err.split(MARK)  # [stderr 1, " 0\r\n" + stderr 2, ..., " 0\r\n"] (the pty writes \r\n)
    texts = [parts[0]] + [part.partition("\n")[2] for part in parts[1:-1]]
    codes = [int(part.split()[0]) for part in parts[1:]]
    assert codes == [0] * len(COMMANDS) and len(texts) == len(COMMANDS), err
    return dict(zip(COMMANDS, texts)) | {"stdout": out}


def test_run_draws_an_instance_bar_and_a_token_bar_on_a_terminal(on_a_terminal):
    err = on_a_terminal["run"]
    assert "run istree:" in err and "instance" in err, err  # the per-instance bar
    assert "decoding:" in err and "token" in err, err  # the per-token bar of the decode
    assert "\r" in err  # drawn in place
    assert on_a_terminal["stdout"].count("answer: YES  n=3") == 2  # the answer, with and without bars


def test_verify_draws_a_case_bar_on_a_terminal(on_a_terminal):
    err = on_a_terminal["verify"]
    assert "B.5:" in err and "case" in err and "\r" in err, err
    assert on_a_terminal["stdout"].count("1 of 1 checks passed") == 2


def test_quiet_draws_nothing_on_a_terminal(on_a_terminal):
    assert on_a_terminal["run quiet"] == ""
    assert on_a_terminal["verify quiet"] == ""


def test_run_draws_nothing_off_a_terminal():
    code, out, err = cli_on_tty(RUN_ISTREE, tty=False)
    assert code == 0 and out.startswith("answer: YES") and err == "", (out, err)
