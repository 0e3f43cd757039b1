"""``run`` records fed back as ``run --input`` (issue 15; ``proofs_check/run_records.py``).

Per task, the pair ``run X --json`` -> ``run X --input`` (and ``data istree`` -> ``run istree``
-> ``run istree``): the second run answers the instance the record carries, and its answer is the
task's plain-Python one (written here, or an independent evaluator: BFS for IsTree, published
busy-beaver counts, the plain circuit evaluator), never read off the earlier record.
"""
from __future__ import annotations

import json

import pytest

from proofs_check import cli, data
from tests.graph_reference import bfs_is_tree
from test_fuzz_jsonl import reference_answer

INSTANCES = {
    "index": [{"tokens": [3, 1, 4, 1, 5], "query": 3}, {"tokens": [2, 1, 2], "query": 2}],
    "ar": [{"tokens": [2, 4, 3, 1, 3], "query": 3}, {"tokens": [1, 2], "query": 1}],
    "cgram": [{"tokens": [1, 4, 3, 2, 3, 1, 4], "query": [1, 4]}, {"tokens": [2, 1, 2, 2], "query": [2]}],
    "count": [{"tokens": [3, 1, 3, 3, 1], "query": 3, "threshold": 2}, {"tokens": [1, 2], "query": 2, "threshold": 1}],
}


def run(capsys, *argv: str) -> tuple[int, list[dict], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def write_lines(path, records: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.mark.parametrize("task", sorted(INSTANCES))
def test_retrieval_run_record_runs_again(capsys, tmp_path, task):
    """index / ar / cgram / count: a record of one model fed to the same task on each model."""
    first = write_lines(tmp_path / "in.jsonl", INSTANCES[task])
    code, records, err = run(capsys, "run", task, "--model", "transformer", "--input", first, "--json")
    assert code == 0, err
    again = write_lines(tmp_path / "out.jsonl", records)
    for model in ("transformer", "hybrid", "rag-rnn"):
        code, second, err = run(capsys, "run", task, "--model", model, "--input", again, "--json")
        assert code == 0, err
        assert [r["answer"] for r in second] == [reference_answer(task, i) for i in INSTANCES[task]]
        for inst, rec in zip(INSTANCES[task], second):
            assert {k: rec[k] for k in inst} == inst  # the instance travels on in the new record


def test_a_record_s_old_answer_is_not_read(capsys, tmp_path):
    """The earlier outputs are dropped unread: a tampered answer / generated / p changes nothing."""
    inst = INSTANCES["index"][0]
    forged = {**inst, "answer": 5, "generated": ["5"], "retrievals": [], "p": 3, "n": 5, "instance": 9, "line": 40}
    code, (rec,), err = run(capsys, "run", "index", "--model", "hybrid", "--input",
                            write_lines(tmp_path / "f.jsonl", [forged]), "--json")
    assert code == 0, err
    assert (rec["answer"], rec["instance"], rec["line"]) == (reference_answer("index", inst), 1, 1)
    assert rec["p"] != 3


@pytest.mark.parametrize("record, needle", [
    ({"tokens": [1, 2], "query": 1, "generated": ["1"], "mood": "x"}, "unknown keys ['mood']"),
    ({"tokens": [1, 2], "query": 1, "generated": ["1"], "halted": True}, "unknown keys ['halted']"),  # tm's key
    ({"instance": 2, "line": 3, "error": "bad JSON"}, "error record of an earlier run"),
    ({"answer": 1, "generated": ["1"]}, "missing ['query', 'tokens']"),
])
def test_what_a_record_may_not_carry_is_refused(capsys, tmp_path, record, needle):
    code, (rec,), err = run(capsys, "run", "index", "--model", "transformer", "--input",
                            write_lines(tmp_path / "r.jsonl", [record]), "--json")
    assert code == 2 and needle in rec["error"] and needle in err, (rec, err)


def test_istree_data_run_run(capsys, tmp_path):
    """data istree -> run istree -> run istree: the label travels and is compared afresh."""
    path = tmp_path / "g.jsonl"
    data.write_istree_data(4, 2, "cot", 0, path)
    code, first, err = run(capsys, "run", "istree", "--model", "transformer", "--input", str(path), "--json")
    assert code == 0, err
    forged = [{**r, "answer": "MAYBE", "correct": False} for r in first]
    code, second, err = run(capsys, "run", "istree", "--model", "transformer", "--input",
                            write_lines(tmp_path / "again.jsonl", forged), "--json")
    assert code == 0, err
    for rec in second:
        truth = "YES" if bfs_is_tree(rec["n"], [tuple(e) for e in rec["edges"]]) else "NO"
        assert rec["answer"] == truth == rec["label"] and rec["correct"] is True
    assert [r["edges"] for r in second] == [json.loads(x)["edges"] for x in path.read_text().splitlines()]


def test_istree_edges_record_runs_again(capsys, tmp_path):
    code, first, err = run(capsys, "run", "istree", "--model", "transformer", "--edges", "1-2 2-3 3-1", "--json")
    assert code == 0 and first[0]["answer"] == "NO" and "label" not in first[0], err
    code, (rec,), err = run(capsys, "run", "istree", "--model", "transformer", "--input",
                            write_lines(tmp_path / "e.jsonl", first), "--json")
    assert code == 0 and rec["answer"] == "NO" and rec["edges"] == [[1, 2], [2, 3], [3, 1]], err


def test_tm_run_record_runs_again(capsys, tmp_path):
    """BB(2) from a blank tape: 6 steps, 4 ones (the published champion), on both models."""
    code, first, err = run(capsys, "run", "tm", "--model", "rag-rnn", "--machine", "1RB1LB_1LA1RZ", "--json")
    assert code == 0, err
    assert (first[0]["machine"], first[0]["input"]) == ("1RB1LB_1LA1RZ", [])
    again = write_lines(tmp_path / "tm.jsonl", first)
    for model in ("rag-rnn", "hybrid"):
        code, (rec,), err = run(capsys, "run", "tm", "--model", model, "--input", again, "--json")
        assert code == 0, err
        assert (rec["halted"], rec["steps"], rec["ones"], rec["model"]) == (True, 6, 4, model)


def test_circuit_run_record_runs_again(capsys, tmp_path):
    """A named circuit whose name differs from the circuit's own ("dfa" -> dfa3x3s0): the record's
    ``source`` is what is read back; the outputs equal the plain circuit evaluator's."""
    from proofs_check.automata import named_circuit
    from proofs_check.circuits import run as circuit_run

    code, first, err = run(capsys, "run", "circuit", "--model", "transformer", "--circuit", "dfa",
                           "--input", "1 0 1", "--steps", "2", "--json")
    assert code == 0, err
    assert first[0]["circuit"] != "dfa" and first[0]["source"] == "dfa"
    code, (rec,), err = run(capsys, "run", "circuit", "--model", "transformer", "--input",
                            write_lines(tmp_path / "c.jsonl", first), "--json")
    assert code == 0, err
    plain = [sv.emitted for sv in circuit_run(named_circuit("dfa"), [1, 0, 1], 1)]
    assert rec["rnn_outputs"] == plain and rec["equal"] is True and rec["steps"] == 2
