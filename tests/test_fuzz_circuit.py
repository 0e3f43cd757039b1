"""Fuzz: ``proofs-check run circuit`` input (issue #12): circuit files and RNN prompts.

Circuit files are drawn as valid Thm 4.8 circuits (``strategies.circuits``) and then, half of the
time, spoiled in one way whose verdict is known without the validator: an operand pointing forward
or at the gate itself (a cycle), an unknown gate kind, a missing key, the JSON cut short, or raw
non-UTF-8 bytes.  Properties: exit 0 or 2, no traceback, every stderr line an ``error:`` line; a
spoiled file is refused with one error line; an intact one decodes and the Transformer's run
equals the circuit evaluator's (the command prints "equal ...: yes").  Prompts outside the
alphabet are refused.
"""
from __future__ import annotations

import json
import os
import tempfile

from hypothesis import event, given, strategies as st

from fuzz_support import assert_clean, examples, run_cli
from proofs_check.strategies import circuits

SPOILS = ("forward", "self", "kind", "missing", "cut", "bytes")


def _spoil(data: dict, how: str, draw) -> bytes:
    gates = data["gates"]
    k = data["state"]["coords"] * data["state"]["width"]
    free = [i for i in range(k, len(gates))]
    i = draw(st.sampled_from(free))
    if how == "forward":
        gates[i] = ["and", i + 2, 1] if i + 2 <= len(gates) else ["xor", i + 1, i + 1]
    elif how == "self":
        gates[i] = ["xor", i + 1, 1]
    elif how == "kind":
        gates[i] = [draw(st.sampled_from(["or", "nand", "", "AND", 3])), 1, 1]
    elif how == "missing":
        del data[draw(st.sampled_from(["gates", "input", "state", "output_bits", "alphabet"]))]
    text = json.dumps(data).encode()
    if how == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "bytes":
        return b"\xff\xfe" + text[:10]
    return text


@st.composite
def circuit_files(draw):
    c = draw(circuits(max_middle=4, max_state_bits=2))
    how = draw(st.sampled_from((None,) + SPOILS))
    data = c.to_json()
    return (json.dumps(data).encode() if how is None else _spoil(data, how, draw)), how, c


@examples(10)
@given(circuit_files(), st.data())
def test_circuit_files(case, data) -> None:
    blob, how, c = case
    event(f"spoil: {how}")
    prompt = " ".join(str(t) for t in data.draw(st.lists(st.sampled_from(c.alphabet), min_size=1, max_size=2)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.json")
        with open(path, "wb") as fh:
            fh.write(blob)
        run = run_cli(["run", "circuit", "--model", "transformer", "--circuit", path, "--input", prompt, "--steps", "1"])
    assert_clean(run)
    if how is None:
        assert run.code == 0 and "yes" in run.out, run
    else:
        assert run.code == 2 and len(run.err_lines) == 1, run


@examples(10)
@given(st.text(max_size=12))
def test_prompts_outside_the_alphabet(text) -> None:
    run = run_cli(["run", "circuit", "--model", "transformer", "--circuit", "parity", "--input", text, "--steps", "1"])
    assert_clean(run)
    words = text.split()
    if words and any(w not in ("0", "1") for w in words):
        assert run.code == 2, run


def test_a_huge_circuit_is_refused_before_work() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "big.json")
        gates = [["const1", 0, 0]] * ((1 << 16) + 1)
        with open(path, "w") as fh:
            json.dump({"input": {"coords": 1, "width": 1}, "state": {"coords": 0, "width": 1}, "output_bits": 1,
                       "alphabet": [0, 1], "gates": gates}, fh)
        run = run_cli(["run", "circuit", "--model", "transformer", "--circuit", path, "--input", "1"])
    assert_clean(run, bad=1)
    assert "at most 65536" in run.err
