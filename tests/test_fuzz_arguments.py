"""Fuzz: text arguments and sizes of the CLI (issue #12): ``--edges``, ``--tokens``, and the p and
n arguments of every command that builds a model.

``--edges`` is checked against an independent grammar (ASCII decimals ``u-v`` separated by spaces
or commas, optionally ``n=N:`` in front) and an independent simple-graph test; to keep the fuzz
cheap, valid graphs are not decoded (IsTree models take seconds): ``--p 3`` is below every
IsTree builder's precision, so a graph the parser accepts ends in a precision refusal, and one it
refuses ends in its parse error - which of the two happened is what the property checks.
"""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import event, given, strategies as st

from constructions.vocab import PAPER_SPECIALS
from fuzz_support import assert_clean, examples, run_cli

# ---- --edges --------------------------------------------------------------------------------

# vertices are ASCII decimals; separators are commas and whitespace (str.split's: any Unicode space)
EDGE_TEXT = re.compile(r"\s*(?:n=\s*([0-9]+)\s*:)?[\s,]*((?:[0-9]+-[0-9]+(?:[\s,]+|$))*)")


def reference_graph(text: str) -> tuple[int, list[tuple[int, int]]] | None:
    """(n, edges) of a text the grammar accepts and that is a simple graph; None otherwise."""
    m = EDGE_TEXT.fullmatch(text)
    if m is None:
        return None
    edges = [tuple(map(int, e.split("-"))) for e in re.findall(r"[0-9]+-[0-9]+", m.group(2))]
    n = int(m.group(1)) if m.group(1) else max([1, *(max(e) for e in edges)])
    keys = [frozenset(e) for e in edges]
    if n < 1 or any(u == v or not (1 <= u <= n and 1 <= v <= n) for u, v in edges) or len(set(keys)) != len(keys):
        return None
    return n, edges


VERTEX = st.one_of(st.integers(1, 6).map(str), st.sampled_from(["0", "007", "99999999999", "²", "١", "๓", "1_0", "+1", "-1", "x", ""]))
SEP = st.sampled_from([" ", ",", ", ", "  ", "\t", "\u00a0", "\u2003", ";", "--", "-"])


@st.composite
def edge_text(draw) -> str:
    edges = draw(st.lists(st.tuples(VERTEX, VERTEX), max_size=5))
    joiner = draw(st.sampled_from(["-", "-", "-", "~", "--", "- "]))
    body = "".join(f"{u}{joiner}{v}" + draw(SEP) for u, v in edges)
    head = draw(st.sampled_from(["", "", "n=5: ", "n=3:", "n=0: ", "n=-2: ", "n=²: ", "n=9", "n= 4 : ", "n=100000000: "]))
    noise = draw(st.sampled_from(["", "", "", "\x00", "\u200b", "é", "1-2 3", "\udcff"]))
    return head + body + noise


@examples(60)
@given(edge_text())
def test_fuzz_edges_text(text):
    run = run_cli(["run", "istree", "--model", "transformer", f"--edges={text}", "--p", "3", "--json"])
    assert_clean(run, bad=1)  # p = 3 is refused for every graph: the question is which refusal
    line = run.err_lines[0]
    assert line.startswith("error: instance 1: "), line
    graph = reference_graph(text)
    event("a graph" if graph is not None else "not a graph")
    if graph is not None and 3 <= graph[0] <= 65536:
        assert "p" in line and ("p >=" in line or "precision" in line or "p =" in line), (text, line)
    elif graph is None:
        assert "got p = 3" not in line and "p >=" not in line, (text, line)


# ---- --tokens -------------------------------------------------------------------------------

WORD = st.one_of(st.sampled_from(PAPER_SPECIALS), st.integers(-2, 5).map(str),
                 st.sampled_from(["²", "١", "３", "1.0", "1e3", "<S>", "yes", "~~", "99999999999999999999", "0x1",
                                  "\udcff"]))  # a lone surrogate: what Python makes of a non-UTF-8 byte in argv
SPACE = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000"])


def reference_token_ok(word: str, n: int) -> bool:
    """A.3: a special token's text, or a decimal number (ASCII digits) in 1..n."""
    if word in PAPER_SPECIALS:
        return True
    return bool(re.fullmatch(r"-?[0-9]+", word, re.ASCII)) and 1 <= int(word) <= n


@examples(40)
@given(st.lists(st.tuples(WORD, SPACE), max_size=6))
def test_fuzz_run_model_tokens(words):
    text = "".join(w + s for w, s in words)
    run = run_cli(["run-model", "index-transformer", "--n", "4", f"--tokens={text}", "--json"])
    assert_clean(run)
    assert len(run.err_lines) <= 1
    split = text.split()
    bad_words = [w for w in split if not reference_token_ok(w, 4)]
    if bad_words:
        assert run.code == 2 and repr(bad_words[0]) in run.err_lines[0] or str(bad_words[0]) in run.err_lines[0], (text, run.err)
    elif not split:
        assert run.code == 2 and "empty" in run.err_lines[0]
    # a valid token sequence may still be refused (too long for the model): never a crash


# ---- p and n: refused quickly, before any work --------------------------------------------------

BAD_P = ["0", "1", "2", "-1", "-3", "4", "1000000", "1000001", str(10**100)]
BAD_N = ["0", "-1", "1000000", str(10**100)]
INSTANCE = '{"tokens": [1, 2], "query": 1}'


def commands_with(flag: str, value: str) -> list[list[str]]:
    cmds = [
        ["run", "index", "--model", "transformer", "--instance", INSTANCE, flag, value],
        ["run", "count", "--model", "rag-rnn", "--instance", '{"tokens": [1], "query": 1, "threshold": 0}', flag, value],
        ["run", "istree", "--model", "transformer", "--edges", "1-2", flag, value],
        ["inspect", "index-transformer", flag, value] + (["--n", "2"] if flag == "--p" else []),
        ["inspect", "dfs-transformer", flag, value] + (["--n", "3"] if flag == "--p" else []),
        ["run-model", "ar-hybrid", "--tokens", "<s> 1 2 1", flag, value] + (["--n", "2"] if flag == "--p" else []),
    ]
    if flag == "--n":
        cmds.append(["data", "istree", "--n", value, "--count", "1", "--format", "cot", "--out", "/nonexistent/x.jsonl"])
    return cmds


@pytest.mark.parametrize("flag, value", [("--p", p) for p in BAD_P] + [("--n", n) for n in BAD_N])
def test_bad_p_and_n_are_refused_quickly(flag, value):
    for argv in commands_with(flag, value):
        start = time.perf_counter()
        run = run_cli(argv)
        elapsed = time.perf_counter() - start
        assert_clean(run, bad=1)
        assert elapsed < 20, (argv, elapsed)  # refused up front (a build at n = 10^6 takes minutes)


@pytest.mark.parametrize("key", ["n", "p"])
@pytest.mark.parametrize("junk", ["abc", "1/2", "-1", "0", "true", "2.5", "1" * 5000, "\udcff"])
def test_every_catalog_model_refuses_junk_parameters(key, junk):
    """``--param KEY=VALUE`` reaches each builder as an int, a Fraction, a bool or a string."""
    from proofs_check import catalog

    for name in catalog.names():
        start = time.perf_counter()
        run = run_cli(["inspect", name, "--param", f"{key}={junk}"])
        assert_clean(run)
        assert time.perf_counter() - start < 20, name


def test_data_refuses_sizes_beyond_the_bound_before_writing(tmp_path):
    out = tmp_path / "d.jsonl"
    for n, count in ((10**6, 1), (5, 10**12)):
        start = time.perf_counter()
        run = run_cli(["data", "istree", "--n", str(n), "--count", str(count), "--format", "cot", "--out", str(out)])
        assert_clean(run, bad=1)
        assert time.perf_counter() - start < 20 and not out.exists()


@pytest.mark.parametrize("argv", [
    ["inspect", "index-transformer", "--n", "2", "--matrix", "\udcff*"],
    ["inspect", "index-transformer", "--param", "\udcff=1"],
    ["run-model", "index-transformer", "--n", "2", "--tokens", "<s> 1 1", "--answers", "\udcff"],
    ["inspect", "\udcff"],
    ["inspect", "/nonexistent/\udcff.safetensors"],
    ["run", "index", "--model", "transformer", "--input", "/nonexistent/\udcff.jsonl"],
    ["verify", "--only", "\udcff"],
])
def test_non_utf8_bytes_in_any_argument_are_one_error_line(argv):
    run = run_cli(argv)
    assert_clean(run)
    assert len(run.err_lines) <= 1
