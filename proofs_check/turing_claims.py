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
from decode records (:mod:`proofs_check.decode_records`), an unrecorded one decoded now where
that is affordable (n <= ``decode_up_to``; every n with ``--decode-all``): the model is decoded
by the exact fast evaluator, the run read back from its tokens is checked against the
simulator, and the chain (generated + retrieved tokens after the prompt) is shown as
``measured L = 13/step x T + 9n + 1``; otherwise the formula's value labelled ``(not decoded)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from constructions.errors import ProofsCheckError

from .claims import ClaimRow, measure
from .decode_records import DecodeOptions, measured
from .sweep import cell_key
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


def decode_cell(cell: dict) -> dict:
    """Decode ``cell``'s machine on 1^n with the exact fast evaluator (retrieval-augmented), check
    the run read back from the tokens against the simulator, return the chain after the prompt
    (generated + retrieved) and the generated tokens.  Top-level: runs on Dask workers."""
    import torch

    from constructions import turing_rag as tr
    from constructions.decode import retrieval_augmented
    from constructions.evaluate_fast import FastEvaluator

    from .decode_records import require_cell_model, stamp

    torch.set_num_threads(1)
    tape = [1] * cell["n"]
    model = tr.build(cell["machine"], cell["n"], cell["steps"])
    m = parse_machine(model.meta["machine"])
    require_cell_model(model, cell, f"tm-rag {m} at n = {cell['n']}")
    session = FastEvaluator().session(model, tr.prompt(model, tape))
    res = retrieval_augmented(session, model.vocab, tr.chain_bound(model), answers=tr.STOP_TOKENS)
    if tr.read_back(model, res) != simulate(m, tape, model.meta["max_steps"]).to_json():
        raise ProofsCheckError(f"tm-rag on {m} with n = {len(tape)} disagrees with the simulator")
    return {"chain": len(res.sequence) - len(res.prompt), "generated": len(res.generated),
            **stamp("FastEvaluator exact (checked: the simulator's run)")}


def _plan(fam: Family, n: int):
    from constructions import turing_rag as tr
    from constructions.modelfile import model_digest

    steps = simulate(parse_machine(fam.machine), [1] * n, 10**7).steps
    model = tr.build(fam.machine, n, steps)
    cell = {"source": "tm-rag", "theorem": "5.4", "machine": fam.machine, "n": n, "steps": steps,
            "mode": "exact", "model": model_digest(model)}
    return fam, model, cell


def family_row(fam: Family, model, cell: dict, got: dict | None) -> ClaimRow:
    n, steps = cell["n"], cell["steps"]
    sizes = measure(model)
    formula = 13 * steps + 9 * n + 1
    if got is not None:
        sizes["cot_steps"] = f"measured {got['chain']} = 13 x {steps} steps + 9n + 1 (n^A = {n ** fam.A})"
    else:
        sizes["cot_steps"] = f"{formula} = 13 x {steps} steps + 9n + 1 (not decoded; n^A = {n ** fam.A})"
    sizes.update(steps=steps, A=fam.A, states=model.meta["machine"].count("_") + 1)
    return ClaimRow("5.4", f"TM {fam.name} on 1^n (A={fam.A}, T={steps})", "rag-rnn", n, sizes)


def turing_rows(sizes: Sequence[int] = (), decode: DecodeOptions | None = None) -> list[ClaimRow]:
    """Rows for Thm 5.4 (the table's global sizes are not used: each family has its own n).
    Chains from ``decode``'s records (proofs_check.decode_records); an unrecorded one is decoded
    now for n <= its family's ``decode_up_to`` (every n with ``decode_all``)."""
    decode = decode or DecodeOptions()
    plans = [_plan(fam, n) for fam in FAMILIES for n in fam.sizes]
    up_to = {fam.machine: fam.decode_up_to for fam in FAMILIES}
    got = measured([pl[-1] for pl in plans], lambda cell: cell["n"] <= up_to[cell["machine"]], decode_cell, decode,
                   desc="5.4 decodes")
    return [family_row(*pl, got.get(cell_key(pl[-1]))) for pl in plans]
