"""``proofs-check run circuit`` and ``inspect circuit-transformer`` (in process); expected RNN
outputs worked out by hand for parity (running XOR of the prompt, then of its own outputs)."""
from __future__ import annotations

import json

import pytest

from proofs_check import cli
from proofs_check.automata import named_circuit
from proofs_check.circuit_runners import write_json


def main(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_circuit_file_json(capsys, tmp_path) -> None:
    path = tmp_path / "parity.json"
    write_json(named_circuit("parity"), str(path))
    code, out, err = main(capsys, "run", "circuit", "--model", "transformer", "--circuit", str(path),
                          "--input", "1 1 1", "--steps", "2", "--json")
    assert code == 0, err
    rec = json.loads(out)
    # parity after 1, 1 1, 1 1 1 is 1 0 1; it reads 1 back: 0; reads 0: 0
    assert rec["rnn_outputs"] == [1, 0, 1, 0] and rec["rnn_chain_of_thought"] == [1, 0]
    assert rec["equal"] is True and rec["cot_length"] == 14 * 4 == len(rec["generated"])


def test_run_circuit_human_summary(capsys) -> None:
    code, out, _ = main(capsys, "run", "circuit", "--model", "transformer", "--circuit", "parity", "--input", "0 1")
    assert code == 0
    assert "chain of thought 42 tokens" in out and "RNN outputs (Transformer): 0 1 0" in out and ": yes" in out


@pytest.mark.parametrize("argv, words", [
    (["--circuit", "nope", "--input", "1"], "neither a named circuit"),
    (["--circuit", "parity", "--input", "1 7"], "not in this circuit's alphabet"),
    (["--circuit", "parity"], "non-empty list"),
    (["--circuit", "parity", "--input", "1", "--steps", "0"], "--steps must be a positive integer"),
])
def test_run_circuit_bad_input(capsys, argv, words) -> None:
    code, out, err = main(capsys, "run", "circuit", "--model", "transformer", *argv)
    assert code == 2 and words in err and "Traceback" not in err


def test_inspect_named_circuit_transformer(capsys) -> None:
    code, out, _ = main(capsys, "inspect", "circuit-transformer", "--param", "circuit=parity", "--param", "n=3")
    assert code == 0 and "latest RNN token" in out and "rnn:1" in out
