"""Claims rows for Theorem 4.1: the linear RNN with CoT running a linear-space Turing machine.

One row per n = 16, 64, 256, 1024, 4096, 65536 (m = floor(log2 n) = 4 .. 16), for the parity
sweep ``checks.turing_cot_rnn.PARITY`` on x = 0 1^(m-2) 0 (it stays within the m cells; YES
iff m is even; m (m + 1) / 2 steps).  Sizes are ``claims.measure`` of the built model; state
bits are printed as "bits (dims x p)" beside the theorem's Theta(log n) (T41-E3: the state
has Theta(log n) dims of p = Theta(log n) bits).  The CoT column is

* **measured** for n <= :data:`DECODE_UP_TO` (256): the model is decoded by the exact fast evaluator,
  every step and the answer are checked against the bounded reference, and the chain is
  reported next to the step count: ``"measured 41 (10 steps: 4 T + 1)"``;
* otherwise ``"4 T + 1 = 545 (T = 136 from simulate; not decoded)"``: decoding a 65536-token
  prompt takes minutes (n = 4096: ~30 s, 65536: ~5 min on one core).
"""
from __future__ import annotations

from typing import Sequence

from .claims import ClaimRow, measure

TM_SIZES: tuple[int, ...] = (16, 64, 256, 1024, 4096, 65536)
DECODE_UP_TO = 256


def tm_cot_rows(sizes: Sequence[int] = ()) -> list[ClaimRow]:
    """Thm 4.1 rows (the table's own n; ``sizes`` is the retrieval rows' list, not used)."""
    from constructions.evaluate_fast import FastEvaluator
    from constructions.turing_cot_rnn import TOKENS_PER_STEP, turing_cot_rnn
    from proofs_check.checks.turing_cot_rnn import compare, decode, parity_case

    rows = []
    for n in TM_SIZES:
        case = parity_case(n.bit_length() - 1)
        model = turing_cot_rnn(case.machine, case.n, case.max_steps, cells=case.cells)
        sizes = measure(model)
        steps = case.max_steps  # the sweep halts on exactly its step bound (checked when decoded)
        if n <= DECODE_UP_TO:
            _, res = decode(case, FastEvaluator(), {(case.machine.to_text(), n, steps, case.cells): model})
            ref = compare(case, model, res)
            cot = f"measured {len(res.generated)} ({ref.run.steps} steps: 4 T + 1; answer {res.answer})"
        else:
            cot = f"4 T + 1 = {TOKENS_PER_STEP * steps + 1} (T = {steps}; not decoded)"
        sizes.update({
            "cot_steps": cot,
            "state_bits": f"{sizes['state_bits']} ({sizes['state_dims']} x {sizes['p']}; claim Theta(log n))",
        })
        rows.append(ClaimRow("4.1", "tm parity sweep, m = floor(log2 n)", "cot-rnn", n, sizes))
    return rows
