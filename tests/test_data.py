"""IsTree data files: reproducible, balanced, and each record checked independently."""
from __future__ import annotations

import argparse
import json

import pytest
from graph_reference import bfs_is_tree, recursive_euler_tour

from constructions.errors import InputError
from constructions.vocab import Vocabulary
from proofs_check.algorithms import RECORD, RetrievalTrace, replay_retrievals
from proofs_check.data import add_parser, write_istree_data
from proofs_check.graphs import Graph






def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("family", ["figure3", "random"])
@pytest.mark.parametrize("fmt", ["vanilla", "cot", "retrieval"])
def test_records(tmp_path, fmt, family):
    out = tmp_path / "d.jsonl"
    yes = write_istree_data(9, 12, fmt, 5, out, family)
    recs = _read(out)
    assert len(recs) == 12 and yes == 6 == sum(r["label"] == "YES" for r in recs)
    for r in recs:
        edges = [tuple(e) for e in r["edges"]]
        vocab = Vocabulary.with_extras(r["n"], [RECORD])
        g = Graph.from_tokens(vocab.tokenize(r["input"]), n=r["n"])
        assert list(g.edges) == edges and r["n"] == 9
        label = "YES" if bfs_is_tree(r["n"], edges) else "NO"
        assert r["label"] == label and r["format"] == fmt
        target = vocab.tokenize(r["target"])
        assert target[-1] == label
        if family == "figure3":
            assert all(u < v for u, v in edges) and len(edges) == 8
        if family == "random":
            assert len(edges) == 8  # trees and the hard non-trees both have n - 1 edges
        if fmt == "vanilla":
            assert target == [label]
        elif fmt == "cot":
            assert target[:-1] == recursive_euler_tour(edges)
        else:
            trace = _trace_from_tokens(target)
            for q, got in replay_retrievals(g.tokens(), trace):
                assert got == q.result


def _trace_from_tokens(tokens):
    """Rebuild the query list of a retrieval target from its tokens alone."""
    from proofs_check.algorithms import END, START, Query

    trace = RetrievalTrace(list(tokens))
    for i, t in enumerate(tokens):
        if t == START:
            j = tokens.index(END, i)
            trace.queries.append(Query(i, "?", (), tokens[j + 1], j + 1))
    assert trace.queries
    return trace


def test_reproducible_and_seeded(tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_istree_data(8, 10, "cot", 3, a)
    write_istree_data(8, 10, "cot", 3, b)
    write_istree_data(8, 10, "cot", 4, c)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_cli_parser(tmp_path):
    parser = argparse.ArgumentParser(prog="proofs-check")
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "x.jsonl"
    args = parser.parse_args(["data", "istree", "--n", "6", "--count", "4", "--format", "retrieval", "--out", str(out)])
    assert args.handler(args) == 0
    assert len(_read(out)) == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "istree", "--n", "6", "--count", "4", "--format", "bogus", "--out", str(out)])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n=3, count=2, fmt="cot"), "at least 4"),
        (dict(n=6, count=-1, fmt="cot"), "count"),
        (dict(n=6, count=2, fmt="dfs"), "unknown data format"),
        (dict(n=6, count=2, fmt="cot", family="grid"), "unknown graph family"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(InputError, match=match):
        write_istree_data(seed=0, path=tmp_path / "e.jsonl", **kwargs)


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_istree_data(6, 2, "cot", 0, tmp_path / "nope" / "e.jsonl")
