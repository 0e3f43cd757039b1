"""Claims rows for Theorem 4.1: the linear RNN with CoT running a linear-space Turing machine.

One row per n = 16, 64, 256, 1024, 4096, 65536 (m = floor(log2 n) = 4 .. 16) and tape (one dim
per cell as in the sketch; packed base S into one dim, T41-E3's fix, L + 2 layers), for the parity
sweep ``checks.turing_cot_rnn.PARITY`` on x = 0 1^(m-2) 0 (it stays within the m cells; YES
iff m is even; m (m + 1) / 2 steps).  Sizes are ``claims.measure`` of the built model; state
bits are printed as "bits (dims x p)" beside the theorem's Theta(log n) (T41-E3: the state
has Theta(log n) dims of p = Theta(log n) bits).  The CoT column is

* **measured** from the decode records (:mod:`proofs_check.decode_records`), an unrecorded
  chain decoded now for n <= :data:`DECODE_UP_TO` (256; packed tape: 64; every n with
  ``--decode-all``): the model is decoded by the exact fast evaluator,
  every step and the answer are checked against the bounded reference, and the chain is
  reported next to the step count: ``"measured 41 (10 steps: 4 T + 1)"``;
* otherwise ``"4 T + 1 = 545 (T = 136 from simulate; not decoded)"``: decoding a 65536-token
  prompt takes minutes (n = 4096: ~30 s, 65536: ~5 min on one core).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .claims import ClaimRow, measure
from .decode_records import DecodeOptions, measured
from .sweep import cell_key

TM_SIZES: tuple[int, ...] = (16, 64, 256, 1024, 4096, 65536)
DECODE_UP_TO: dict[str, int] = {"cells": 256, "packed": 64}  # the packed tape has L + 2 layers


def decode_cell(cell: dict) -> dict:
    """Decode the parity sweep at ``cell["n"]`` on ``cell["tape"]`` with the exact fast
    evaluator; every step and the answer are checked against the bounded reference
    (``checks.turing_cot_rnn.compare``).  Top-level: runs on Dask workers."""
    import torch

    from constructions.errors import ProofsCheckError
    from constructions.evaluate_fast import FastEvaluator
    from proofs_check.checks.turing_cot_rnn import compare, decode

    from .decode_records import require_cell_model, stamp

    torch.set_num_threads(1)
    case, model = _case_model(cell["n"], cell["tape"])
    require_cell_model(model, cell, f"cot-rnn at n = {cell['n']}")
    _, res = decode(case, FastEvaluator(), {(case.machine.to_text(), case.n, case.max_steps, case.cells, case.tape): model})
    try:
        ref = compare(case, model, res)
    except AssertionError as exc:
        raise ProofsCheckError(f"cot-rnn at n = {cell['n']}: {exc}") from None
    return {"generated": len(res.generated), "steps": ref.run.steps, "answer": res.answer,
            **stamp("FastEvaluator exact (checked: every step against the bounded reference)")}


def _case_model(n: int, tape: str):
    from constructions.turing_cot_rnn import turing_cot_rnn
    from proofs_check.checks.turing_cot_rnn import parity_case

    case = replace(parity_case(n.bit_length() - 1), tape=tape)
    return case, turing_cot_rnn(case.machine, case.n, case.max_steps, cells=case.cells, tape=tape)


def tm_cot_rows(sizes: Sequence[int] = (), decode: DecodeOptions | None = None) -> list[ClaimRow]:
    """Thm 4.1 rows (the table's own n; ``sizes`` is the retrieval rows' list, not used): the
    sketch's tape (one dim per cell) and the packed one (T41-E3's fix).  Chains from ``decode``'s
    records (proofs_check.decode_records); an unrecorded one is decoded now for n <=
    :data:`DECODE_UP_TO` (every n with ``decode_all``)."""
    from constructions.modelfile import model_digest

    decode = decode or DecodeOptions()
    plans = []
    for tape in ("cells", "packed"):
        for n in TM_SIZES:
            case, model = _case_model(n, tape)
            plans.append((case, model, {"source": "cot-rnn", "theorem": "4.1", "n": n, "tape": tape,
                                        "mode": "exact", "model": model_digest(model)}))
    got = measured([pl[-1] for pl in plans], lambda cell: cell["n"] <= DECODE_UP_TO[cell["tape"]], decode_cell,
                   decode, desc="4.1 decodes")
    return [_row(*pl, got.get(cell_key(pl[-1]))) for pl in plans]


def _row(case, model, cell: dict, got: dict | None) -> ClaimRow:
    from constructions.turing_cot_rnn import TOKENS_PER_STEP

    n, tape = cell["n"], cell["tape"]
    sizes = measure(model)
    steps = case.max_steps  # the sweep halts on exactly its step bound (checked when decoded)
    if got is not None:
        cot = f"measured {got['generated']} ({got['steps']} steps: 4 T + 1; answer {got['answer']})"
    else:
        cot = f"4 T + 1 = {TOKENS_PER_STEP * steps + 1} (T = {steps}; not decoded)"
    sizes.update({
        "cot_steps": cot,
        "state_bits": f"{sizes['state_bits']} ({sizes['state_dims']} x {sizes['p']}; claim Theta(log n))",
    })
    model_name = "cot-rnn" if tape == "cells" else "cot-rnn, packed tape (T41-E3 fix)"
    return ClaimRow("4.1", "tm parity sweep, m = floor(log2 n)", model_name, n, sizes)
