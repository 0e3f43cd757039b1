"""proofs_check/precision_machines.py: the frontier of Thm 5.4 / 5.8 / 4.1 / 4.8 (tiny cells).

Each family's p-axis frontier at its smallest n on one sample is checked against a *direct*
decode written here from the construction modules and the reference simulators (not the
family's own check): the model built at the measured p decodes the run the reference gives,
and at every tried p below it the direct decode is wrong or the model cannot be made or run.
"""
from __future__ import annotations

import pytest

from constructions.errors import ProofsCheckError
from constructions.numerics import Precision
from proofs_check import cli
from proofs_check import precision_machines as PM
from proofs_check.precision_sweep import build_cells


def _sym(p: int) -> Precision:
    return Precision.split((p - 1) // 2, (p - 1) // 2, below_declared_ok=True)


def _direct_tm(module: str, decoding: str, d: dict, prec: Precision) -> bool:
    import importlib

    from constructions.decode import RegexOracle, chain_of_thought, retrieval_augmented
    from constructions.evaluate_fast import FastEvaluator
    from proofs_check.turing import parse_machine, simulate

    mod = importlib.import_module(module)
    model = mod.build(d["machine"], len(d["tape"]), d["max_steps"], prec)
    session = FastEvaluator().session(model, mod.prompt(model, d["tape"]))
    if decoding == "rag":
        with RegexOracle() as oracle:
            res = retrieval_augmented(session, model.vocab, mod.chain_bound(model), answers=mod.STOP_TOKENS, oracle=oracle)
    else:
        res = chain_of_thought(session, mod.chain_bound(model), answers=mod.STOP_TOKENS)
    return mod.read_back(model, res) == simulate(parse_machine(d["machine"]), d["tape"], d["max_steps"]).to_json()


def _direct_cot(d: dict, prec: Precision) -> bool:
    from constructions.decode import chain_of_thought
    from constructions.evaluate_fast import FastEvaluator
    from constructions.turing_cot_rnn import STOP_TOKENS, chain_bound, steps_of, turing_cot_rnn
    from proofs_check.checks.turing_cot_rnn import bounded_reference
    from proofs_check.turing import parse_machine

    machine = parse_machine(d["machine"])
    model = turing_cot_rnn(machine, d["n"], d["max_steps"], prec, cells=len(d["x"]))
    res = chain_of_thought(FastEvaluator().session(model, [0] * (d["n"] - len(d["x"])) + d["x"]), chain_bound(model),
                           answers=STOP_TOKENS)
    ref = bounded_reference(machine, d["x"], len(d["x"]), d["max_steps"])
    return res.answer == ref.answer and steps_of(model, res.generated) == [(s.read, s.next_state, s.move, s.write) for s in ref.run.trace]


def _direct_circuit(d: dict, prec: Precision) -> bool:
    from constructions.circuit_transformer import circuit_transformer, simulate
    from constructions.evaluate_fast import FastEvaluator
    from proofs_check.circuit_claims import seeded_circuit
    from proofs_check.circuits import run

    c = seeded_circuit(PM.CIRCUIT_P, d["circuit_seed"])
    model = circuit_transformer(c, len(d["prompt"]), d["steps"], prec)
    sim = simulate(c, model, d["prompt"], d["steps"], FastEvaluator())
    ref = run(c, d["prompt"], d["steps"] - 1)
    return sim.rnn_tokens == [s.emitted for s in ref] and sim.gate_values == [s.values for s in ref]


DIRECT = {
    "tm-rag": lambda d, prec: _direct_tm("constructions.turing_rag", "rag", d, prec),
    "tm-hybrid": lambda d, prec: _direct_tm("constructions.turing_hybrid", "cot", d, prec),
    "tm-cot-rnn": _direct_cot,
    "circuit-transformer": _direct_circuit,
}
SMALL_N = {"tm-rag": 4, "tm-hybrid": 4, "tm-cot-rnn": 8, "circuit-transformer": 4}


def _direct_ok(name: str, data: dict, prec: Precision) -> bool:
    try:
        return DIRECT[name](data, prec)
    except ProofsCheckError:
        return False


@pytest.mark.parametrize("name", PM.NAMES)
def test_tiny_frontier_cell_agrees_with_a_direct_decode(name):
    n = SMALL_N[name]
    row = PM.machine_frontier_row(name, n, 1, axes=("p",))
    assert row.error is None and row.instances == 1 and row.theorem == PM.family(name).theorem
    res = row.axes["p"]
    assert res.answer is not None and res.monotone and 3 < res.answer <= row.declared["p"]
    (sample,) = PM.family(name).draw(n, 1, PM.SEED)
    assert _direct_ok(name, sample.data, _sym(res.answer)), f"{name}: the direct decode at p = {res.answer} is wrong"
    below = [t for t in res.trials if t.value < res.answer]
    assert below and all(not t.ok and t.first_failure for t in below)
    for t in below:  # one bit pair below the frontier (and any other failed p) is wrong when decoded directly
        assert not _direct_ok(name, sample.data, _sym(t.value)), f"{name}: p = {t.value} was reported wrong but decodes right"


def test_declared_bits_are_the_largest_of_the_samples():
    samples = PM.tm_samples(4, 3)
    models = [PM.family("tm-rag").build(s, None) for s in samples]
    got = PM.declared_of(models)
    for key in ("p", "I", "F"):
        assert got[key] == max(m.meta["declared_precision"][key] for m in models)


def test_samples_are_seeded_and_halt_within_the_bound():
    from proofs_check.turing import parse_machine, simulate

    a, b = PM.tm_samples(8, 4, seed=7), PM.tm_samples(8, 4, seed=7)
    assert a == b and a != PM.tm_samples(8, 4, seed=8)
    for s in a[1:]:
        run = simulate(parse_machine(s.data["machine"]), s.data["tape"], s.data["max_steps"])
        assert run.halted and run.steps <= s.data["max_steps"] and len(s.data["tape"]) == 8


# ---- the command line ------------------------------------------------------------------------


def _args(argv):
    return cli.build_parser().parse_args(["precision", *argv])


def test_machine_families_are_frontier_cells_of_all_and_by_name():
    cells = build_cells(_args(["all", "--n", "8", "--frontier"]))
    assert set(PM.NAMES) <= {c["name"] for c in cells}
    assert not [c for c in build_cells(_args(["all", "--n", "8"])) if c["name"] in PM.NAMES]  # formats only
    cells = build_cells(_args(["tm-cot-rnn", "--frontier"]))
    assert [c["n"] for c in cells] == list(PM.FRONTIER_PLAN["tm-cot-rnn"][0]) and {c["kind"] for c in cells} == {"frontier"}


@pytest.mark.parametrize("argv, message", [
    (["tm-rag", "--n", "4"], "has only the frontier measurement"),
    (["tm-rag", "--n", "4", "--frontier", "--min-p"], "has only the frontier measurement"),
    (["tm-cot-rnn", "--n", "2", "--frontier"], "n >= 4"),
])
def test_machine_family_refusals_exit_2(argv, message, capsys):
    assert cli.main(["precision", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
