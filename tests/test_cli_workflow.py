"""The command line as one workflow (issue 15): what one command writes, the next one reads.

Round trips: ``data istree`` in each of its three formats -> ``run istree --input``; the label
the model is scored against comes from an independent BFS (tests/graph_reference.py).
"""
from __future__ import annotations

import json
import sys

import pytest

from proofs_check import cli, data, run_command
from tests.graph_reference import bfs_is_tree


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """The real `main` (every subcommand wired as shipped), output captured."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", data.FORMATS)
def test_data_istree_file_runs_in_every_format(capsys, tmp_path, fmt):
    path = tmp_path / f"g_{fmt}.jsonl"
    code, out, err = run(capsys, "data", "istree", "--n", "4", "--count", "2", "--format", fmt, "--out", str(path))
    assert code == 0, err
    records = [json.loads(line) for line in path.read_text().splitlines()]
    code, out, err = run(capsys, "run", "istree", "--model", "transformer", "--input", str(path), "--json")
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == len(records) == 2
    for rec, res in zip(records, results):
        truth = "YES" if bfs_is_tree(rec["n"], [tuple(e) for e in rec["edges"]]) else "NO"
        assert res["answer"] == truth == res["label"] and res["correct"] is True
        assert res["n"] == rec["n"] and res["generated"][-1] == truth


def test_human_output_shows_label_and_verdict(capsys, tmp_path):
    path = tmp_path / "g.jsonl"
    data.write_istree_data(4, 1, "vanilla", 0, path)
    code, out, err = run(capsys, "run", "istree", "--model", "transformer", "--input", str(path))
    assert code == 0, err
    assert out.startswith("answer: YES  label: YES (correct)")


def _record(**changes) -> dict:
    g = data.sample_graph(__import__("random").Random(1), 4, True)
    return {**data.record(g, "cot"), **changes}


@pytest.mark.parametrize("changes, needle", [
    ({"input": "<s> 1 ~ 2"}, "is not the tokenized edges"),
    ({"label": "MAYBE"}, "label must be"),
    ({"format": "poetry"}, "unknown data format"),
    ({"target": "1 2 NO"}, "target must be a string ending with its label"),
    ({"extra": 1}, "unknown keys ['extra']"),
])
def test_an_inconsistent_record_is_refused(changes, needle):
    with pytest.raises(cli.ProofsCheckError) as info:
        data.read_record(_record(**changes))
    assert needle in str(info.value)


def test_a_plain_graph_still_reads_as_before():
    from proofs_check.istree_runners import IsTreeRunner

    g = IsTreeRunner().parse({"n": 4, "edges": [[1, 2], [2, 3], [3, 4]]}, None)
    assert g.edges == ((1, 2), (2, 3), (3, 4))
    assert not data.is_data_record({"n": 4, "edges": []})
