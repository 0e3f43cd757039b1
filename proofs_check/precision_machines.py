"""The precision frontier of the machine-simulating constructions (issue #11): Thm 5.4
(``tm-rag``), Thm 5.8 (``tm-hybrid``), Thm 4.1 (``tm-cot-rnn``) and Thm 4.8
(``circuit-transformer``).

These models carry their machine (a Turing machine's transition table, a circuit) in their
weights, so the frontier of :mod:`proofs_check.frontier` (one model per format, K token
instances) does not fit them as is: here each of the K seeded **samples** is a (machine, input)
pair with its own model, and a format passes when, for every sample, the model *rebuilt for that
format* by the construction's own builder (``Precision.split(I, F, below_declared_ok=True)``:
every constant re-derived, e.g. Thm 4.8's hard-attention gap from F) decodes a run equal to the
plain-Python reference: ``proofs_check.turing.simulate`` for 5.4 / 5.8, the bounded-tape
reference of check 4.1 (``checks.turing_cot_rnn.bounded_reference``, every written step, the
answer and the read-back run) for 4.1, and the circuit evaluator ``proofs_check.circuits.run``
(every gate value and emitted token) for 4.8.  Any ProofsCheckError (builder refusal, overflow,
a chain that does not parse) or a disagreement fails the format.  Route ``requantise`` rounds
each sample's declared model instead.

The declared bits of a cell are the componentwise largest ``meta["declared_precision"]`` of its
samples' models (the format must serve them all).  The search, bisection, "non-monotone" report
and the rows are :mod:`proofs_check.frontier`'s (:class:`~proofs_check.frontier.FrontierRow`).

Samples at n (:func:`samples`; seeded, hard case first):

* **tm-rag, tm-hybrid** (TIME(n^A), A = 2): every model is built for S = ``time_bound(n, 2)``
  = n^2 steps on inputs of n cells.  Sample 1 is the ``zigzag`` machine (4 states) on 1^n, which
  runs (n + 1)(n + 2)/2 steps, the most of the claims' machines; the others are random halting
  machines (2-4 states, 2-3 symbols, :func:`random_halting_machine`) on random tapes of n cells,
  halting within S steps after at least n.
* **tm-cot-rnn** (Thm 4.1's task 0^(n - m) x, m = floor(log2 n), the tape = the m cells of x):
  sample 1 is check 4.1's parity sweep (x = 0 1^(m-2) 0, every cell visited, (m)(m + 1)/2
  steps), the others random machines (2 symbols) on random x, all models built for the parity
  run's step bound (rejecting on leaving the tape, as check 4.1's bounded-tape variant).
* **circuit-transformer** (T = n RNN steps, A = 1): seeded random circuits of P = 16 gates
  (``circuit_claims.seeded_circuit``, 4 state bits) on random bit prompts of length n.

CLI: ``proofs-check precision tm-rag --frontier --n 4,8`` (and ``all --frontier``); the notes:
``python -m proofs_check.frontier --write notes/precision/frontier.md --plot ...``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from constructions.errors import InputError, ProofsCheckError
from constructions.model import Model
from constructions.numerics import Precision

from .frontier import AXES, MARGIN, FrontierRow, Judge, Trial, axis_precision, searched_row

SEED = 2024
ZIGZAG = "0RZ0RB_0LC1RB_0RZ0LD_0RA1LD"  # turing_claims' A = 2 family: (n + 1)(n + 2)/2 steps on 1^n
TM_A = 2  # TIME(n^A): the models are built for n^A steps
CIRCUIT_P = 16


@dataclass(frozen=True)
class Sample:
    """One (machine, input) pair: ``label`` for the report, ``data`` what the family reads."""

    label: str
    data: dict


@dataclass(frozen=True)
class MachineFamily:
    """A construction whose model is made per sample: its catalog name, theorem, the smallest n,
    how samples are drawn, how a sample's model is built at a format (None: the declared one),
    and the check of one decode (None when it equals the reference, else what differs)."""

    name: str
    theorem: str
    claim: str
    min_n: int
    draw: Callable[[int, int, int], list[Sample]]
    build: Callable[[Sample, "Precision | None"], Model]
    check: Callable[[Sample, Model, Any, Any], "str | None"]


# ---- seeded machines ------------------------------------------------------------------------


def random_machine(rng: random.Random, states: int, symbols: int) -> Any:
    """A random table: each transition writes any symbol, moves either way and goes to a live
    state, one in five halting (``Z``), one in twelve undefined (``---``, halts in place)."""
    from constructions.turing_machine import HALT, Machine, Transition

    def cell():
        r = rng.random()
        if r < 1 / 12:
            return None
        nxt = HALT if r < 1 / 12 + 1 / 5 else rng.randint(1, states)
        return Transition(rng.randrange(symbols), rng.choice((-1, 1)), nxt)

    return Machine(states, symbols, tuple(tuple(cell() for _ in range(symbols)) for _ in range(states)))


def random_halting_machine(rng: random.Random, tape: Sequence[int] | None, n: int, max_steps: int,
                           min_steps: int, symbols: Sequence[int] = (2, 3), tries: int = 20000) -> tuple[Any, list[int]]:
    """A seeded random machine (2-4 states) and a random tape of n cells on which it halts within
    ``max_steps`` steps, after at least ``min_steps`` (relaxed by half when ``tries`` draws find
    none; the reference simulator decides)."""
    from .turing import simulate

    while True:
        for _ in range(tries):
            m = random_machine(rng, rng.randint(2, 4), rng.choice(tuple(symbols)))
            t = list(tape) if tape is not None else [rng.randrange(m.n_symbols) for _ in range(n)]
            run = simulate(m, t, max_steps)
            if run.halted and run.steps >= min_steps:
                return m, t
        min_steps //= 2


# ---- Thm 5.4 / 5.8: the Turing-machine RNNs ----------------------------------------------------


def tm_samples(n: int, k: int, seed: int = SEED) -> list[Sample]:
    """The zigzag run on 1^n, then k - 1 random halting machines on random tapes (module docstring)."""
    S = _tm_steps(n)
    out = [Sample(f"zigzag on 1^{n}", {"machine": ZIGZAG, "tape": [1] * n, "max_steps": S})]
    rng = random.Random(f"{seed}/tm/{n}")
    for i in range(1, k):
        m, tape = random_halting_machine(rng, None, n, S, n)
        out.append(Sample(f"random {m.to_text()} on {''.join(map(str, tape))}", {"machine": m.to_text(), "tape": tape, "max_steps": S}))
    return out


def _tm_steps(n: int) -> int:
    from constructions.turing_machine import time_bound

    return time_bound(n, TM_A)


def _tm_builder(module: str) -> Callable[[Sample, "Precision | None"], Model]:
    def build(sample: Sample, prec: "Precision | None") -> Model:
        import importlib

        d = sample.data
        return importlib.import_module(module).build(d["machine"], len(d["tape"]), d["max_steps"], prec)

    return build


def _tm_checker(model_name: str) -> Callable[[Sample, Model, Any, Any], "str | None"]:
    def check(sample: Sample, model: Model, evaluator, oracle) -> str | None:
        from .tm_runners import construction, decode_tm
        from .turing import parse_machine, simulate

        d = sample.data
        res = decode_tm(model_name, model, list(d["tape"]), evaluator, oracle)
        got = construction(model_name).read_back(model, res)
        want = simulate(parse_machine(d["machine"]), list(d["tape"]), d["max_steps"]).to_json()
        if got != want:
            diff = {key: (got.get(key), want[key]) for key in want if got.get(key) != want[key]}
            return f"run differs from the simulator (got, reference): {diff}"
        return None

    return check


# ---- Thm 4.1: the linear RNN with CoT on a linear-space machine ------------------------------


def cot_samples(n: int, k: int, seed: int = SEED) -> list[Sample]:
    """Check 4.1's parity sweep at m = floor(log2 n), then k - 1 random machines on random x,
    all with the parity run's step bound and the m cells of x as the tape."""
    from .checks.turing_cot_rnn import PARITY
    from constructions.turing_cot_rnn import input_cells

    m = input_cells(n)
    if m < 2:
        raise InputError(f"tm-cot-rnn's frontier needs m = floor(log2 n) >= 2 (the parity sweep), got n = {n}")
    T = m * (m + 1) // 2  # the parity run on x = 0 1^(m-2) 0
    out = [Sample(f"parity on x=0{'1' * (m - 2)}0", {"machine": PARITY, "n": n, "x": [0] + [1] * (m - 2) + [0], "max_steps": T})]
    rng = random.Random(f"{seed}/cot/{n}")
    for _ in range(1, k):
        mc = random_machine(rng, rng.randint(2, 4), 2)
        x = [rng.randrange(2) for _ in range(m)]
        out.append(Sample(f"random {mc.to_text()} on x={''.join(map(str, x))}", {"machine": mc.to_text(), "n": n, "x": x, "max_steps": T}))
    return out


def _cot_case(sample: Sample):
    from .checks.turing_cot_rnn import Case
    from .turing import parse_machine

    d = sample.data
    return Case(parse_machine(d["machine"]), d["n"], tuple(d["x"]), len(d["x"]), d["max_steps"])


def cot_build(sample: Sample, prec: "Precision | None") -> Model:
    from constructions.turing_cot_rnn import turing_cot_rnn

    case = _cot_case(sample)
    return turing_cot_rnn(case.machine, case.n, case.max_steps, prec, cells=case.cells)


def cot_check(sample: Sample, model: Model, evaluator, oracle) -> str | None:
    from constructions.decode import chain_of_thought
    from constructions.turing_cot_rnn import STOP_TOKENS, chain_bound

    from .checks.turing_cot_rnn import compare

    case = _cot_case(sample)
    res = chain_of_thought(evaluator.session(model, case.prompt), chain_bound(model), answers=STOP_TOKENS)
    try:
        compare(case, model, res)
    except AssertionError as exc:  # compare's message says what differs from the bounded reference
        return " ".join(str(exc).split())
    return None


# ---- Thm 4.8: the circuit-simulating Transformer ----------------------------------------------


def circuit_samples(n: int, k: int, seed: int = SEED) -> list[Sample]:
    """k seeded random circuits of :data:`CIRCUIT_P` gates on random bit prompts of length n (T = n)."""
    rng = random.Random(f"{seed}/circuit/{n}")
    out = []
    for _ in range(k):
        cs = rng.randrange(10**6)
        prompt = [rng.randrange(2) for _ in range(n)]
        out.append(Sample(f"circuit P={CIRCUIT_P} seed {cs} on {''.join(map(str, prompt))}",
                          {"circuit_seed": cs, "prompt": prompt, "steps": n}))
    return out


def _circuit(sample: Sample):
    from .circuit_claims import seeded_circuit

    return seeded_circuit(CIRCUIT_P, sample.data["circuit_seed"])


def circuit_build(sample: Sample, prec: "Precision | None") -> Model:
    from constructions.circuit_transformer import circuit_transformer

    d = sample.data
    return circuit_transformer(_circuit(sample), len(d["prompt"]), d["steps"], prec)


def circuit_check(sample: Sample, model: Model, evaluator, oracle) -> str | None:
    from .circuit_runners import simulation_record

    d = sample.data
    rec = simulation_record(_circuit(sample), model, list(d["prompt"]), d["steps"], evaluator)
    if not rec["equal"]:
        return f"the chain differs from the circuit evaluator: outputs {rec['rnn_outputs']}, reference {rec['reference_outputs']}"
    return None


# ---- the registry -----------------------------------------------------------------------------

FAMILIES: tuple[MachineFamily, ...] = (
    MachineFamily("tm-rag", "5.4", "O(A log n) bits (Thm 5.4)", 1, tm_samples, _tm_builder("constructions.turing_rag"), _tm_checker("rag-rnn")),
    MachineFamily("tm-hybrid", "5.8", "O(A log n) bits (Thm 5.8)", 1, tm_samples, _tm_builder("constructions.turing_hybrid"), _tm_checker("hybrid")),
    MachineFamily("tm-cot-rnn", "4.1", "Theta(log n) bits memory (Thm 4.1)", 4, cot_samples, cot_build, cot_check),
    MachineFamily("circuit-transformer", "4.8", "p = Theta(A log n) (Thm 4.8)", 1, circuit_samples, circuit_build, circuit_check),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)

#: (sizes, samples) of the notes' frontier per family (seconds a cell: the zigzag run of tm-rag /
#: tm-hybrid is 13 / 5 tokens a step over n^2/2 steps; tm-cot-rnn's chain is 4 tokens a step
#: over m^2/2 steps, so it goes to n = 1024; 4.8's chain is (P + 1)(2n - 1) tokens)
FRONTIER_PLAN: dict[str, tuple[tuple[int, ...], int]] = {
    "tm-rag": ((4, 8, 16), 3),
    "tm-hybrid": ((4, 8, 16), 3),
    "tm-cot-rnn": ((8, 16, 32, 64, 128, 256, 512, 1024), 3),
    "circuit-transformer": ((4, 8, 16), 3),
}


def family(name: str) -> MachineFamily:
    for f in FAMILIES:
        if f.name == name:
            return f
    raise InputError(f"no machine family named {name!r}; choose one of {', '.join(NAMES)}")


def check_sizes(name: str, sizes: Sequence[int]) -> list[int]:
    fam = family(name)
    bad = [n for n in sizes if n < fam.min_n]
    if bad:
        raise InputError(f"{name} needs n >= {fam.min_n}, got {', '.join(map(str, bad))}")
    return list(sizes)


# ---- one cell ---------------------------------------------------------------------------------


def declared_of(models: Sequence[Model]) -> dict:
    """The componentwise largest declared (p, I, F) of the samples' models."""
    from .frontier import declared_bits

    ds = [declared_bits(m) for m in models]
    return {key: max(d[key] for d in ds) for key in ("p", "I", "F")}


class SampleJudge(Judge):
    """frontier.Judge whose trial builds one model per sample (``make(i, prec)``) and runs the
    family's check on it; the first failing sample ends the trial."""

    def __init__(self, fam: MachineFamily, samples: Sequence[Sample], make: Callable[[int, Precision], Model],
                 declared: dict, axis: str, evaluator, oracle, margin: int = MARGIN) -> None:
        self.fam, self.samples, self.make_for, self.declared, self.axis = fam, samples, make, declared, axis
        self.evaluator, self.oracle, self.margin = evaluator, oracle, margin
        self.trials: dict[int, Trial] = {}

    def _trial(self, value: int) -> Trial:
        prec = axis_precision(self.axis, value, self.declared, self.margin)
        trial = Trial(value, prec.label, True, 0, len(self.samples))
        for i, sample in enumerate(self.samples):
            why = sample_failure(self.fam, sample, lambda: self.make_for(i, prec), self.evaluator, self.oracle)
            trial.tried += 1
            if why is not None:
                trial.ok, trial.first_failure = False, f"{sample.label}: {why}"
                break
        return trial


def sample_failure(fam: MachineFamily, sample: Sample, make: Callable[[], Model], evaluator, oracle) -> str | None:
    """None when the model ``make()`` gives decodes the sample as the reference does, else why not."""
    try:
        model = make()
    except ProofsCheckError as exc:
        return f"no model: {type(exc).__name__}: {' '.join(str(exc).split())}"
    try:
        return fam.check(sample, model, evaluator, oracle)
    except ProofsCheckError as exc:
        return f"error ({type(exc).__name__}: {' '.join(str(exc).split())})"


def machine_maker(fam: MachineFamily, samples: Sequence[Sample], route: str, declared_models: Sequence[Model]
                  ) -> Callable[[int, Precision], Model]:
    """How sample i's model is made for a format: rebuilt by the builder, or its declared model requantised."""
    from .frontier import ROUTES
    from .precision import requantise

    if route == "rebuild":
        return lambda i, prec: fam.build(samples[i], prec)
    if route == "requantise":
        return lambda i, prec: requantise(declared_models[i], prec)
    raise InputError(f"unknown frontier route {route!r}; use one of {', '.join(ROUTES)}")


def machine_frontier_row(name: str, n: int, k: int, seed: int = SEED, route: str = "rebuild", device: str = "cpu",
                         axes: Sequence[str] = AXES, margin: int = MARGIN) -> FrontierRow:
    """The frontier of one machine family at one n (top level: runs in a sweep worker)."""
    import torch

    torch.set_num_threads(1)
    fam = family(name)
    try:
        samples = fam.draw(n, k, seed)
        models = [fam.build(s, None) for s in samples]
    except ProofsCheckError as exc:
        return FrontierRow(fam.theorem, name, n, route, 0, {}, {}, " ".join(str(exc).split()))
    declared = declared_of(models)
    make = machine_maker(fam, samples, route, models)

    def reproduce() -> None:
        top = Precision.split(declared["I"], declared["F"], below_declared_ok=True)
        for i in range(len(samples)):
            make(i, top)

    return searched_row(fam.theorem, name, n, route, len(samples), declared, reproduce,
                        lambda axis, ev, oracle: SampleJudge(fam, samples, make, declared, axis, ev, oracle, margin),
                        axes, device)
