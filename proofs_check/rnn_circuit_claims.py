"""Claims rows for issue 9 part 1 (c): this project's linear RNNs compiled to circuits (Thm 4.8's P(n)).

One :class:`proofs_check.claims.ClaimRow` per compiled model: the model's sizes
(:func:`proofs_check.claims.measure`) plus the circuit's gate count P (``gates``) and its state
bits K (``circuit_state_bits``: the model's h at the dims its linear units write, the position
counter and the overflow flags, p bits each).  The counter mod k (``rnn_circuit_cases``) grows
with n = max_len: p = O(log n) and an FFN of O(n) ReLU units, so P = O(n p^2) (one p x p array
multiplier per unit).  Its own n values (the compiler takes p <= ``rnn_circuit.MAX_P``), not the
table's ``sizes``.
"""
from __future__ import annotations

from typing import Sequence

from constructions.rnn_circuit import MAX_P, compile_rnn
from constructions.rnn_circuit_cases import counter_mod_model, counter_mod_precision
from proofs_check.claims import ClaimRow, measure

LENGTHS: tuple[int, ...] = (6, 14, 30, 62)


def rnn_circuit_rows(sizes: Sequence[int] = ()) -> list[ClaimRow]:
    rows = []
    for k in (2, 3):
        for n in LENGTHS:
            p = counter_mod_precision(k, n)
            if p > MAX_P:
                continue
            model = counter_mod_model(k, p, n)
            c = compile_rnn(model).circuit
            sizes_ = measure(model) | {"gates": c.size, "circuit_state_bits": c.state_bits}
            rows.append(ClaimRow("4.8 (c)", f"counter mod {k}, compiled", "circuit", n, sizes_))
    return rows
