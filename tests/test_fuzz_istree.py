"""Fuzz: IsTree JSONL and ``--instance`` input of ``proofs-check run istree`` (issue #12).

IsTree models take seconds per graph here, so the fuzz does not decode: with ``--p 3`` (below
every IsTree builder) a graph the parser accepts ends in that model's precision refusal and one it
refuses ends in its own parse error.  The validity of a JSON graph is restated independently below
(an object with ``edges`` and optional ``n``; pairs of integers; vertices in 1..n; no self-loop,
no repeated edge in either orientation; n within the size bound 2^16).  Two cheap graphs are then
really decoded, mixed with bad lines, on every model: their answers equal the plain-Python IsTree
answer and their records equal the same graph run alone.
"""
from __future__ import annotations

import json
import os
import tempfile

import pytest
from hypothesis import event, given, strategies as st

from fuzz_support import assert_clean, examples, run_cli

MODELS = ("transformer", "rag-rnn", "hybrid")
PRECISION_REFUSAL = ("got p = 3",)


def reference_graph_ok(data) -> bool:
    if not isinstance(data, dict) or "edges" not in data or set(data) - {"n", "edges"}:
        return False
    edges = data["edges"]
    if not isinstance(edges, list):
        return False
    pairs = []
    for e in edges:
        if not isinstance(e, list) or len(e) != 2 or any(type(x) is not int for x in e):
            return False
        pairs.append(tuple(e))
    n = data.get("n", max([1, *(max(p) for p in pairs)]))
    if type(n) is not int or not 1 <= n <= 1 << 16:
        return False
    seen = set()
    for u, v in pairs:
        if u == v or not (1 <= u <= n and 1 <= v <= n) or frozenset((u, v)) in seen:
            return False
        seen.add(frozenset((u, v)))
    return True


VERTEX = st.one_of(st.integers(1, 6), st.integers(-3, 0), st.sampled_from([70000, 10**30, 1.0, 2.5, True, "1", None, [1]]))


@st.composite
def graph_json(draw):
    edges = draw(st.lists(st.lists(VERTEX, min_size=2, max_size=2) | st.lists(st.integers(1, 6), max_size=3),
                          max_size=5))
    data: dict = {"edges": edges}
    n = draw(st.one_of(st.none(), st.integers(1, 7), st.sampled_from([0, -1, 70000, 2.0, "6", True])))
    if n is not None:
        data["n"] = n
    shape = draw(st.sampled_from(["object"] * 6 + ["extra key", "no edges key", "array", "edges as text"]))
    if shape == "extra key":
        data["m"] = 1
    elif shape == "no edges key":
        data.pop("edges")
    elif shape == "array":
        return edges
    elif shape == "edges as text":
        data["edges"] = "1-2 2-3"
    return data


RAW_JUNK = st.sampled_from([b"\xff\xfe{}", b"{", b"[" * 5000 + b"]" * 5000, b'{"edges": NaN}', b"\x00", b"null"])


@examples(30)
@given(st.lists(st.one_of(graph_json().map(lambda g: ("json", g)), RAW_JUNK.map(lambda b: ("raw", b))),
                min_size=1, max_size=5), st.sampled_from(MODELS))
def test_fuzz_istree_jsonl_parse_layer(lines, model):
    body = b"\n".join(json.dumps(x).encode() if kind == "json" else x for kind, x in lines) + b"\n"
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    try:
        run = run_cli(["run", "istree", "--model", model, "--input", path, "--p", "3", "--json"])
    finally:
        os.unlink(path)
    assert_clean(run, bad=len(lines))  # p = 3 refuses every graph: the question is which refusal
    for k, ((kind, x), line) in enumerate(zip(lines, run.err_lines), 1):
        assert line.startswith(f"error: instance {k}: "), line
        ok = kind == "json" and reference_graph_ok(x)
        event("a graph" if ok else "not a graph")
        assert any(f in line for f in PRECISION_REFUSAL) == ok, (x, line)


@examples(20)
@given(graph_json())
def test_fuzz_istree_instance_argument(graph):
    run = run_cli(["run", "istree", "--model", "transformer", "--p", "3", "--instance", json.dumps(graph)])
    assert_clean(run, bad=1)
    assert ("got p = 3" in run.err_lines[0]) == reference_graph_ok(graph), (graph, run.err)


CHEAP = {"NO": {"n": 2, "edges": []}, "YES": {"n": 1, "edges": []}}  # a graph on 2 vertices without edges; one vertex


@pytest.mark.parametrize("model", MODELS)
def test_good_graphs_among_bad_lines_answer_as_alone(model, tmp_path):
    goods = [CHEAP["NO"], CHEAP["YES"]]
    bad = [b"\xff not utf-8", json.dumps({"edges": [[1, 1]]}).encode(), json.dumps({"n": 2, "edges": [[1, 2], [2, 1]]}).encode()]
    lines = [bad[0], json.dumps(goods[0]).encode(), b"", bad[1]] + [json.dumps(g).encode() for g in goods[1:]] + [bad[2]]
    path = tmp_path / "g.jsonl"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    run = run_cli(["run", "istree", "--model", model, "--input", str(path), "--json"])
    assert_clean(run, bad=3)
    records = [json.loads(x) for x in run.out_lines]
    want = ["error", "NO", "error", "YES", "error"]
    assert [r.get("answer", "error") for r in records] == want
    assert [(r["instance"], r["line"]) for r in records] == [(1, 1), (2, 2), (3, 4), (4, 5), (5, 6)]  # line 3 blank
    for g, rec in zip(goods, [r for r in records if "answer" in r]):
        alone = run_cli(["run", "istree", "--model", model, "--instance", json.dumps(g), "--json"])
        assert_clean(alone, bad=0)
        assert {**json.loads(alone.out_lines[0]), "instance": rec["instance"], "line": rec["line"]} == rec
