"""Claims rows for Theorem 5.8: the Turing-machine hybrid's sizes as n and the step bound grow.

Thm 5.8: for T in TIME(n^A) with B states, O(A log n) bits of precision and memory,
O(A B^2 log n) parameter bits, O(n^A) CoT steps.  The rows take A = 2 (step bound
S = ``time_bound(n, 2)`` = max(n, 2)^2) and two machines:

* ``1RZ1RA`` (B = 1, unary increment: walk right over the 1s, write 1 on the first blank) on
  the input 1^n: halts after n + 1 steps;
* BB(2) ``1RB1LB_1LA1RZ`` (B = 2) on the blank-padded input 0^n: 6 steps.

Sizes are read off the built model (:func:`proofs_check.claims.measure`).  The CoT column is
measured by decoding with the exact fast evaluator: the generated tokens (5 per simulated step
plus HALT), checked against the simulator, beside the bound 5 S.  Decodes are kept as records
(:mod:`proofs_check.decode_records`); an unrecorded one is decoded now for n <=
:data:`DECODE_UP_TO` (every n with ``--decode-all``), else the row gives the bound, labelled.  Extra keys per row: ``steps`` (simulated),
``tokens_per_step``, ``cot_bound``, ``claim_bits`` (A log2 n, the O(A log n) scale) and
``claim_param_bits`` (A B^2 log2 n).
"""
from __future__ import annotations

import math
from typing import Sequence

from constructions.decode import chain_of_thought
from constructions.evaluate_fast import FastEvaluator
from constructions.turing_hybrid import GROUP, STOP_TOKENS, build, chain_bound, prompt, read_back
from constructions.turing_machine import parse_machine, time_bound

from constructions.errors import ProofsCheckError
from constructions.modelfile import model_digest

from .claims import ClaimRow, measure
from .decode_records import DecodeOptions, measured
from .sweep import cell_key
from .turing import simulate

TM_SIZES: tuple[int, ...] = (4, 8, 16, 32, 64)
A = 2
DECODE_UP_TO = 16
MACHINES: tuple[tuple[str, str, int], ...] = (("1RZ1RA", "unary +1 on 1^n", 1), ("1RB1LB_1LA1RZ", "BB(2) on 0^n", 0))


def decode_cell(cell: dict) -> dict:
    """Decode ``cell``'s machine on its tape with the exact fast evaluator, check the run read back
    from the generated tokens against the simulator, return the chain (top-level: Dask workers)."""
    import torch


    from .decode_records import require_cell_model, stamp

    torch.set_num_threads(1)
    mc, n, S, tape = parse_machine(cell["machine"]), cell["n"], cell["S"], cell["tape"]
    model = build(mc, n, S)
    require_cell_model(model, cell, f"tm-hybrid {cell['machine']} at n = {n}")
    result = chain_of_thought(FastEvaluator().session(model, prompt(model, tape)), chain_bound(model), answers=STOP_TOKENS)
    got = read_back(model, result)
    if got != simulate(mc, tape, S).to_json():
        raise ProofsCheckError(f"tm-hybrid {cell['machine']} at n = {n} disagrees with the simulator: {got}")
    return {"generated": len(result.generated), "steps": got["steps"],
            **stamp("FastEvaluator exact (checked: the simulator's run)")}


def _plan(text: str, fill: int, n: int):
    mc = parse_machine(text)
    S = time_bound(n, A)
    model = build(mc, n, S)
    cell = {"source": "tm-hybrid", "theorem": "5.8", "machine": text, "n": n, "S": S, "tape": [fill] * n,
            "mode": "exact", "model": model_digest(model)}
    return mc, S, model, cell


def _row(text: str, label: str, mc, S: int, model, cell: dict, got: dict | None) -> ClaimRow:
    n = cell["n"]
    sizes = measure(model)
    ref = simulate(mc, cell["tape"], S)
    if got is None:
        cot = f"bound {GROUP * S} (not decoded)"
    else:
        cot = f"measured {got['generated'] - 1} = {GROUP} x {got['steps']} steps (bound {GROUP * S})"
    lg = math.log2(max(n, 2))
    sizes.update({"cot_steps": cot, "steps": ref.steps, "tokens_per_step": GROUP, "cot_bound": GROUP * S,
                  "claim_bits": round(A * lg, 1), "claim_param_bits": round(A * mc.n_states**2 * lg, 1)})
    return ClaimRow("5.8", f"tm {label}, S = n^{A}", "hybrid", n, sizes)


def tm_hybrid_rows(sizes: Sequence[int] | None = None, decode: DecodeOptions | None = None) -> list[ClaimRow]:
    """Rows at n in :data:`TM_SIZES` (the claims table's global sizes are for retrieval tasks
    and would mean S = 10^6 steps here, so they are not used).  The chains come from ``decode``'s
    records (proofs_check.decode_records); unrecorded ones are decoded now for n <=
    :data:`DECODE_UP_TO` (every n with ``decode_all``)."""
    decode = decode or DecodeOptions()
    plans = [(text, label, *_plan(text, fill, n)) for text, label, fill in MACHINES for n in TM_SIZES]
    got = measured([pl[-1] for pl in plans], lambda cell: cell["n"] <= DECODE_UP_TO, decode_cell, decode,
                   desc="5.8 decodes")
    return [_row(*pl, got.get(cell_key(pl[-1]))) for pl in plans]


if __name__ == "__main__":  # pragma: no cover
    from .claims import COLUMNS

    for r in tm_hybrid_rows():
        print(r.n, {k: r.sizes[k] for k, _ in COLUMNS}, r.sizes["claim_bits"], r.sizes["claim_param_bits"])
