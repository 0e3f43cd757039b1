"""``proofs-check run TASK``: JSON in / JSON out, per-instance errors, the plug-in shape.

The parser is built here from ``run_command.add_parser`` exactly as cli.py does for every
module in its SUBCOMMAND_MODULES, so these tests do not depend on how cli.py is wired.
Expected answers are worked out by hand (and agree with proofs_check.tasks).
"""
from __future__ import annotations

import json
import sys
import types

import pytest

from proofs_check import cli, run_command


def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = cli._Parser(prog="proofs-check")
    sub = parser.add_subparsers(dest="command", parser_class=cli._Parser)
    run_command.add_parser(sub)
    try:
        args = parser.parse_args(list(argv))
        code = args.handler(args)
    except cli.ProofsCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.strip().splitlines()]


@pytest.mark.parametrize("model", ["transformer", "hybrid", "rag-rnn"])
def test_every_task_answers(capsys, model):
    cases = [
        ("index", {"tokens": [12, 3, 7], "query": 1}, 12),
        ("ar", {"tokens": [5, 7, 5, 9], "query": 5}, 7),
        ("cgram", {"tokens": [1, 4, 6, 1, 4, 2], "query": [1, 4]}, 6),
        ("count", {"tokens": [3, 1, 3], "query": 3, "threshold": 1}, 1),
        ("count", {"tokens": [3, 1, 3], "query": 3, "threshold": 2}, 0),
    ]
    for task, inst, expected in cases:
        code, out, err = run(capsys, "run", task, "--model", model, "--instance", json.dumps(inst), "--json")
        assert code == 0, err
        (obj,) = json_lines(out)
        assert obj["answer"] == expected
        assert obj["n"] == max([*inst["tokens"], *(inst["query"] if isinstance(inst["query"], list) else [inst["query"]])])
        assert isinstance(obj["p"], int) and obj["generated"][-1] == str(expected)
        if model == "rag-rnn":
            assert obj["generated"][0] == "<StartSearch>" and len(obj["retrievals"]) == 1
            assert set(obj["retrievals"][0]) == {"pattern", "result"}
        else:
            assert obj["generated"] == [str(expected)] and obj["retrievals"] == []


def test_jsonl_file_with_bad_instances_keeps_going(capsys, tmp_path):
    path = tmp_path / "idx.jsonl"
    path.write_text(
        '{"tokens": [3, 1, 4, 1, 5], "query": 3}\n'
        '{"tokens": [3, 1, 4], "query": 9}\n'
        "not json\n"
        "\n"
        '{"tokens": [3, 1, 4, 1, 5], "query": 5}\n'
    )
    code, out, err = run(capsys, "run", "index", "--model", "rag-rnn", "--input", str(path), "--json")
    assert code == 2
    objs = json_lines(out)
    assert [o.get("answer") for o in objs] == [4, None, None, 5]
    assert objs[1]["instance"] == 2 and "points past the sequence" in objs[1]["error"]
    assert objs[2]["instance"] == 3 and "not valid JSON" in objs[2]["error"]
    errs = err.strip().splitlines()
    assert len(errs) == 2 and all(e.startswith("error: instance ") for e in errs)
    assert "Traceback" not in out + err


def test_n_and_p_options(capsys):
    inst = json.dumps({"tokens": [3, 1, 4, 1, 5, 2], "query": 4})
    code, out, _ = run(capsys, "run", "ar", "--model", "transformer", "--n", "100", "--instance", inst, "--json")
    assert code == 0 and json_lines(out)[0]["n"] == 100 and json_lines(out)[0]["answer"] == 1
    # a number above --n
    code, out, err = run(capsys, "run", "ar", "--model", "transformer", "--n", "4", "--instance", inst)
    assert code == 2 and "outside 1..4" in err and out == ""
    # p too small names the p needed
    code, _, err = run(capsys, "run", "ar", "--model", "hybrid", "--p", "9", "--instance", inst)
    assert code == 2 and "needs p >=" in err
    # a larger p than needed works and is reported
    code, out, _ = run(capsys, "run", "ar", "--model", "hybrid", "--p", "101", "--instance", inst, "--json")
    assert code == 0 and json_lines(out)[0]["p"] == 101 and json_lines(out)[0]["answer"] == 1


def test_human_output_and_reference_evaluator(capsys):
    inst = json.dumps({"tokens": [2, 2, 1], "query": 2, "threshold": 1})
    code, out, _ = run(capsys, "run", "count", "--model", "rag-rnn", "--instance", inst, "--evaluator", "reference")
    assert code == 0 and out.startswith("answer: 1 ") and "retrieval:" in out


def test_usage_errors(capsys):
    code, _, err = run(capsys, "run", "sort", "--model", "transformer", "--instance", "{}")
    assert code == 2 and "invalid choice" in err
    code, _, err = run(capsys, "run", "index", "--model", "transformer")
    assert code == 2 and "--input" in err
    code, _, err = run(capsys, "run", "index", "--model", "transformer", "--input", "/nonexistent.jsonl")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "run", "cgram", "--model", "hybrid", "--instance", '{"tokens": [1, 2], "query": 1}')
    assert code == 2 and "list" in err


def test_a_plugged_in_task(capsys, monkeypatch):
    """The plug-in shape (as IsTree uses it): a runner module with its own option and instances from it."""

    class FakeRunner:
        name = "fake"
        models = ("transformer",)

        def add_arguments(self, parser):
            parser.add_argument("--fake-edges", default=None)

        def instances_from_args(self, args):
            return None if args.fake_edges is None else [{"edges": args.fake_edges.split()}]

        def parse(self, data, n):
            return data

        def run(self, instance, model, n, p, evaluator, cache, oracle):
            return {"answer": len(instance["edges"]), "generated": [], "retrievals": [], "p": p, "n": n}

    fake = types.ModuleType("fake_runners")
    fake.RUNNERS = {"fake": FakeRunner()}
    monkeypatch.setitem(sys.modules, "fake_runners", fake)
    monkeypatch.setattr(run_command, "RUNNER_MODULES", run_command.RUNNER_MODULES + ("fake_runners",))
    code, out, _ = run(capsys, "run", "fake", "--model", "transformer", "--fake-edges", "1-5 2-6", "--json")
    assert code == 0 and json_lines(out)[0]["answer"] == 2
