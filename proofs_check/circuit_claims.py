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

from constructions.circuit import Circuit, Gate, circuit_from_json
from constructions.circuit_transformer import circuit_transformer, cot_length
from constructions.evaluate_fast import FastEvaluator

from .automata import named_circuit
from .claims import ClaimRow, measure
from .decode_checkpoints import progress_note, saved_tokens
from .decode_records import DecodeOptions, measured
from .sweep import cell_key

CIRCUIT_SIZES: tuple[int, ...] = (4, 16, 64, 256)


def seeded_circuit(P: int, seed: int = 0, state_bits: int = 4) -> Circuit:
    """A seeded random circuit of exactly P gates (state_bits state bits, 1 output bit, 2 input bits)."""
    rng = random.Random(seed)
    gates = [Gate("state", 0, b) for b in range(state_bits)] + [Gate("const1"), Gate("input", 0, 0), Gate("input", 0, 1)]
    while len(gates) < P:
        i = len(gates) + 1
        gates.append(Gate(rng.choice(("and", "xor")), rng.randrange(1, i), rng.randrange(1, i)))
    return Circuit(tuple(gates), 1, 2, 1, state_bits, 1, (0, 1), ((0,), (3,)), name=f"random P={P}")


def decode_cell(cell: dict, checkpoint=None) -> dict:
    """Decode the Thm 4.8 Transformer of ``cell["circuit"]`` at ``cell["n"]`` (T = n) with the
    exact fast evaluator, the circuit evaluator's chain verified in chunks as a draft
    (constructions.decode.drafted_chain_of_thought: the step-by-step greedy chain, every token
    the model's own argmax, in far fewer passes); every gate value and RNN output is then
    checked against the circuit evaluator.  ``checkpoint`` (proofs_check.decode_checkpoints): resume from it and save
    progress there (P = 1024 at n = 256 is hours).  Top-level: runs on Dask workers."""
    import torch

    from constructions.errors import ProofsCheckError

    from .circuit_runners import simulation_record
    from .decode_records import require_cell_model, stamp

    torch.set_num_threads(1)
    c, n = circuit_from_json(cell["circuit"]), cell["n"]
    model = circuit_transformer(c, n, n)
    require_cell_model(model, cell, f"{c.name} at n = {n}")
    replay = checkpoint.replay(model.vocab) if checkpoint is not None else None
    rec = simulation_record(c, model, _rnn_prompt(c, n), n, FastEvaluator(), replay, drafted=True)
    if not rec["equal"]:
        raise ProofsCheckError(f"{c.name} at n = {n}: the decoded chain of thought differs from the circuit evaluator")
    return {"cot_length": rec["cot_length"],
            **stamp("FastEvaluator exact, draft-verified (checked: the circuit evaluator, every gate)")}


def _rnn_prompt(c: Circuit, n: int) -> list:
    return [c.alphabet[k % len(c.alphabet)] for k in range(n)]


def _decode_cheap(cell: dict) -> bool:
    """What the default run decodes when unrecorded: n = 4 for P <= 40 (seconds)."""
    return cell["n"] <= 4 and cell["P"] <= 40


def _cot_cell(c: Circuit, n: int, got: dict | None, note: str = "") -> str:
    bound = (c.size + 1) * n
    if got is not None:
        return f"measured {got['cot_length']} (printed bound (P+1)n = {bound})"
    return f"{cot_length(c, n, n)} (not decoded{note}; printed bound (P+1)n = {bound})"


def circuit_rows(sizes: Sequence[int] | None = None, decode: DecodeOptions | None = None) -> list[ClaimRow]:
    """Rows for three automata (P = 13, 33, 63) and seeded random circuits (P = 256, 1024).
    Chains from ``decode``'s records (proofs_check.decode_records); an unrecorded one is decoded
    now where cheap (:func:`_decode_cheap`; every row with ``decode_all``)."""
    from constructions.modelfile import model_digest

    del sizes  # the 4.8 rows use their own n (CIRCUIT_SIZES); P is the other axis
    decode = decode or DecodeOptions()
    circuits = [named_circuit("parity"), named_circuit("mod3"), named_circuit("dfa"),
                seeded_circuit(256), seeded_circuit(1024)]
    plans = []
    for c in circuits:
        for n in CIRCUIT_SIZES:
            m = circuit_transformer(c, n, n)
            plans.append((c, n, m, {"source": "circuit", "theorem": "4.8", "circuit": c.to_json(), "P": c.size,
                                    "n": n, "mode": "exact", "model": model_digest(m)}))
    got = measured([pl[-1] for pl in plans], _decode_cheap, decode_cell, decode, desc="4.8 decodes", checkpoints=True)
    saved = saved_tokens(decode.records, [pl[-1] for pl in plans])
    rows = []
    for c, n, m, cell in plans:
        sizes_n = measure(m)
        ratio = sizes_n["param_bits"] / (c.size * math.log2(max(c.size, n)))
        sizes_n["cot_steps"] = _cot_cell(c, n, got.get(cell_key(cell)), progress_note(saved, [cell]))
        rows.append(ClaimRow("4.8", f"{c.name} (P={c.size}); bits / (P log2 max(P,n)) = {ratio:.1f}",
                             "transformer", n, sizes_n))
    return rows
