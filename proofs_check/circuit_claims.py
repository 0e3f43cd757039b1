"""Claims rows for Thm 4.8: the circuit-simulating Transformer as P and n grow.

One :class:`proofs_check.claims.ClaimRow` per (circuit, n) with T = n RNN chain-of-thought steps
(n^A, A = 1).  Sizes are read off the built model (:func:`proofs_check.claims.measure`); the task
cell adds P and the ratio of the measured parameter bits to P log2 max(P, n) (the theorem's
O(P log max(P, n))); the CoT cell is the decoded length where decoding is cheap (n = 4 for P <= 40,
checked against the circuit evaluator), else the schedule's length labelled "not decoded", next
to the printed bound (P + 1) n^A (erratum T48-E1: the fixed schedule also simulates the n prompt
steps, (P + 1)(n + T - 1)).
"""
from __future__ import annotations

import math
import random
from typing import Sequence

from constructions.circuit import Circuit, Gate
from constructions.circuit_transformer import circuit_transformer, cot_length
from constructions.evaluate_fast import FastEvaluator

from .automata import named_circuit
from .claims import ClaimRow, measure

CIRCUIT_SIZES: tuple[int, ...] = (4, 16, 64, 256)


def seeded_circuit(P: int, seed: int = 0, state_bits: int = 4) -> Circuit:
    """A seeded random circuit of exactly P gates (state_bits state bits, 1 output bit, 2 input bits)."""
    rng = random.Random(seed)
    gates = [Gate("state", 0, b) for b in range(state_bits)] + [Gate("const1"), Gate("input", 0, 0), Gate("input", 0, 1)]
    while len(gates) < P:
        i = len(gates) + 1
        gates.append(Gate(rng.choice(("and", "xor")), rng.randrange(1, i), rng.randrange(1, i)))
    return Circuit(tuple(gates), 1, 2, 1, state_bits, 1, (0, 1), ((0,), (3,)), name=f"random P={P}")


def _cot_cell(c: Circuit, n: int, model) -> str:
    bound = (c.size + 1) * n
    if n <= 4 and c.size <= 40:
        from .circuit_runners import simulation_record

        rec = simulation_record(c, model, [c.alphabet[k % len(c.alphabet)] for k in range(n)], n, FastEvaluator())
        if not rec["equal"]:
            raise AssertionError(f"{c.name}: the decoded chain of thought differs from the circuit evaluator")
        return f"measured {rec['cot_length']} (printed bound (P+1)n = {bound})"
    return f"{cot_length(c, n, n)} (not decoded; printed bound (P+1)n = {bound})"


def circuit_rows(sizes: Sequence[int] | None = None) -> list[ClaimRow]:
    """Rows for three automata (P = 13, 33, 63) and seeded random circuits (P = 256, 1024)."""
    del sizes  # the 4.8 rows use their own n (CIRCUIT_SIZES); P is the other axis
    rows = []
    circuits = [named_circuit("parity"), named_circuit("mod3"), named_circuit("dfa"),
                seeded_circuit(256), seeded_circuit(1024)]
    for c in circuits:
        for n in CIRCUIT_SIZES:
            m = circuit_transformer(c, n, n)
            sizes_n = measure(m)
            ratio = sizes_n["param_bits"] / (c.size * math.log2(max(c.size, n)))
            sizes_n["cot_steps"] = _cot_cell(c, n, m)
            rows.append(ClaimRow("4.8", f"{c.name} (P={c.size}); bits / (P log2 max(P,n)) = {ratio:.1f}",
                                 "transformer", n, sizes_n))
    return rows

