"""Circuits as data (constructions.circuit) and the reference evaluator (proofs_check.circuits)."""
from __future__ import annotations

import pytest

from constructions.circuit import Circuit, Gate, circuit_from_json
from constructions.errors import MachineError
from proofs_check.circuits import generated, run, step


def parity() -> Circuit:
    """state s (1 bit), input bit x: next state and output both s XOR x."""
    gates = (Gate("state", 0, 0), Gate("input", 0, 0), Gate("xor", 1, 2), Gate("xor", 1, 2))
    return Circuit(gates, 1, 1, 1, 1, 1, (0, 1), name="parity")


def test_parity_run_against_a_running_xor() -> None:
    bits = [1, 0, 1, 1, 0, 1]
    expect = [sum(bits[: k + 1]) % 2 for k in range(len(bits))]
    assert [sv.emitted for sv in run(parity(), bits)] == expect


def test_chain_of_thought_reads_back_its_own_tokens() -> None:
    # after 1 0 1 1 the parity is 1; reading 1 gives 0; reading 0 keeps 0
    assert generated(parity(), [1, 0, 1, 1], 3) == [1, 0, 0]


def test_gate_values_follow_the_types() -> None:
    sv = step(parity(), 1, (1,))
    assert sv.values == (1, 1, 0, 0) and sv.next_state == (0,) and sv.emitted == 0


def test_json_round_trip() -> None:
    c = parity()
    assert circuit_from_json(c.dumps()) == c


@pytest.mark.parametrize("gates, words", [
    ([["state", 0, 0], ["and", 3, 1], ["xor", 1, 2], ["xor", 1, 2]], "earlier gates"),
    ([["state", 0, 0], ["input", 0, 3], ["xor", 1, 2], ["xor", 1, 2]], "input coordinate/bit"),
    ([["input", 0, 0], ["state", 0, 0], ["xor", 1, 2], ["xor", 1, 2]], "must be the state gates"),
    ([["state", 0, 0], ["nand", 1, 1], ["xor", 1, 2], ["xor", 1, 2]], "kind one of"),
    ([["state", 0, 0], ["xor", 1, 1]], "cannot hold"),
])
def test_malformed_circuits_are_refused(gates, words) -> None:
    data = {"gates": gates, "input": {"coords": 1, "width": 1}, "state": {"coords": 1, "width": 1},
            "output_bits": 1, "alphabet": [0, 1]}
    with pytest.raises(MachineError, match=words):
        circuit_from_json(data)


def test_not_json() -> None:
    with pytest.raises(MachineError, match="not valid JSON"):
        circuit_from_json("{")
