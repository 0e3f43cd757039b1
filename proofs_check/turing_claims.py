"""Claims rows for Theorem 5.4: the retrieval-augmented linear RNN simulating a Turing machine.

Two machine families on the input 1^n, with the step bound T the model is built for equal to the
run's own length (the smallest bound that works; the reference simulator gives it):

* ``scan`` = ``1RZ1RA`` (one state: walk right over the 1s, halt on the first blank): T = n + 1,
  a TIME(n^A) machine with A = 1;
* ``zigzag`` = ``0RZ0RB_0LC1RB_0RZ0LD_0RA1LD`` (4 states: erase the leftmost 1, walk right, erase
  the rightmost 1, walk back): T = (n + 1)(n + 2) / 2, A = 2.

Sizes come from the built model (:func:`proofs_check.claims.measure`): p, state bits (state dims
x p) and parameter bits (the layers' non-zero weights x p; the explicit readout has one row per
number, Theta(n^A) rows like W_E, and is listed apart).  The theorem's claims: precision and
memory O(A log n), parameters O(A B^2 log n) bits, CoT O(n^A).  The CoT column is *measured*
where decoding is affordable (n <= ``decode_up_to``): the model is decoded by the exact fast
evaluator, the run read back from its tokens is checked against the simulator, and the chain
(generated + retrieved tokens after the prompt) is shown as ``measured L = 13/step x T + 9n + 1``;
otherwise the formula's value labelled ``(not decoded)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from constructions.errors import ProofsCheckError

from .claims import ClaimRow, measure
from .turing import parse_machine, simulate


@dataclass(frozen=True)
class Family:
    name: str
    machine: str
    A: int
    sizes: tuple[int, ...]
    decode_up_to: int


FAMILIES: tuple[Family, ...] = (
    Family("scan", "1RZ1RA", 1, (4, 16, 64, 256, 1024), 64),
    Family("zigzag", "0RZ0RB_0LC1RB_0RZ0LD_0RA1LD", 2, (2, 4, 8, 16, 32), 16),
)


def measured_chain(model, tape: list[int]) -> tuple[int, int]:
    """Decode once; (chain length after the prompt, generated tokens); the run must agree with
    the reference simulator (else ProofsCheckError: a claims row is never a wrong run)."""
    import torch

    from constructions import turing_rag as tr
    from constructions.decode import retrieval_augmented
    from constructions.evaluate_fast import FastEvaluator

    torch.set_num_threads(1)
    session = FastEvaluator().session(model, tr.prompt(model, tape))
    res = retrieval_augmented(session, model.vocab, tr.chain_bound(model), answers=tr.STOP_TOKENS)
    m = parse_machine(model.meta["machine"])
    if tr.read_back(model, res) != simulate(m, tape, model.meta["max_steps"]).to_json():
        raise ProofsCheckError(f"tm-rag on {m} with n = {len(tape)} disagrees with the simulator")
    return len(res.sequence) - len(res.prompt), len(res.generated)


def family_row(fam: Family, n: int) -> ClaimRow:
    from constructions import turing_rag as tr

    tape = [1] * n
    steps = simulate(parse_machine(fam.machine), tape, 10**7).steps
    model = tr.build(fam.machine, n, steps)
    sizes = measure(model)
    formula = 13 * steps + 9 * n + 1
    if n <= fam.decode_up_to:
        chain, _ = measured_chain(model, tape)
        sizes["cot_steps"] = f"measured {chain} = 13 x {steps} steps + 9n + 1 (n^A = {n ** fam.A})"
    else:
        sizes["cot_steps"] = f"{formula} = 13 x {steps} steps + 9n + 1 (not decoded; n^A = {n ** fam.A})"
    sizes.update(steps=steps, A=fam.A, states=model.meta["machine"].count("_") + 1)
    return ClaimRow("5.4", f"TM {fam.name} on 1^n (A={fam.A}, T={steps})", "rag-rnn", n, sizes)


def turing_rows(sizes: Sequence[int] = ()) -> list[ClaimRow]:
    """Rows for Thm 5.4 (the table's global sizes are not used: each family has its own n)."""
    return [family_row(fam, n) for fam in FAMILIES for n in fam.sizes]
