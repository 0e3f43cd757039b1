"""Check 4.8: the Transformer with chain of thought that runs an RNN's circuit gate by gate.

For each case, ``constructions.circuit_transformer.circuit_transformer(c, n, steps)`` is decoded
greedily (Def A.4) by the exact fast evaluator on the RNN's prompt for (P + 1)(n + steps - 1)
tokens, the tokens are split into blocks of P + 1, and compared with the plain-Python circuit
evaluator ``proofs_check.circuits.run`` (never with anything the construction computes):

* block j's P tokens are the values of gates 1..P of the RNN's step j + 1, its last token the
  RNN token that step emits;
* the last ``steps`` RNN tokens are the RNN's chain of thought (``circuits.generated``);
* where a case has an independent reference of the RNN itself (a plain DFA run for the automata;
  the original linear RNN's run for a compiled one), the RNN tokens equal that reference too.

Sources: random circuits (``strategies.circuit_runs``), the automata of ``proofs_check.automata``,
and :func:`extra_cases`: a module that compiles other RNNs into circuits may export
``THM48_CASES``, a list of :class:`CircuitCase` (or tuples of its fields); it is included when
importable (``constructions.rnn_circuit_cases``: this project's own linear RNNs compiled to
circuits, issue 9 part 1 (c); the reference is the original model on the reference evaluator).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from hypothesis import strategies as st

from constructions.circuit import Circuit
from constructions.circuit_transformer import circuit_transformer, cot_length, declared_p, simulate
from constructions.evaluate_fast import FastEvaluator
from constructions.model import Model
from constructions.vocab import Token
from proofs_check.automata import (
    dfa_chain, dfa_circuit, dfa_outputs, mod_count_dfa, named_circuit, named_dfa, parity_dfa, random_dfa,
)
from proofs_check.circuits import generated, run
from proofs_check.claims import measure
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import circuit_runs

EXTRA_CASE_MODULES: tuple[str, ...] = ("constructions.rnn_circuit_cases",)
Reference = Callable[[Sequence[Token], int], list[Token]]


@dataclass(frozen=True)
class CircuitCase:
    """A named RNN circuit, a prompt, the chain-of-thought steps, and optionally an independent
    reference ``reference(prompt, steps)`` of the RNN's emitted tokens (one per token it reads:
    len(prompt) + steps - 1 of them)."""

    name: str
    circuit: Callable[[], Circuit]
    prompt: tuple[Token, ...]
    steps: int
    reference: Reference | None = None


def _dfa_reference(dfa, emits: str) -> Reference:
    def ref(prompt: Sequence[Token], steps: int) -> list[Token]:
        chain = dfa_chain(dfa, prompt, emits, steps)
        return dfa_outputs(dfa, list(prompt) + chain[:-1], emits)
    return ref


def automata_cases(profile: Profile) -> list[CircuitCase]:
    cases = [
        CircuitCase("parity", lambda: named_circuit("parity"), (1, 0, 1), 2, _dfa_reference(parity_dfa(), "accept")),
        CircuitCase("mod3", lambda: named_circuit("mod3"), (1, 1), 1, _dfa_reference(mod_count_dfa(3), "accept")),
        CircuitCase("dfa", lambda: named_circuit("dfa"), (2,), 1, _dfa_reference(named_dfa("dfa"), "accept")),
    ]
    if profile.name != "ci":
        for seed in range(1, 4 if profile.name == "dev" else 12):
            dfa = random_dfa(seed, 2 + seed % 2, 2 + seed % 3)
            cases.append(CircuitCase(dfa.name, lambda d=dfa: dfa_circuit(d), tuple(range(len(dfa.alphabet))), 2,
                                     _dfa_reference(dfa, "accept")))
    return cases


def extra_cases(profile_name: str = "ci") -> list[CircuitCase]:
    """``THM48_CASES[profile]`` (or ``["ci"]``) of every importable module in :data:`EXTRA_CASE_MODULES`."""
    out: list[CircuitCase] = []
    for name in EXTRA_CASE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        table = getattr(module, "THM48_CASES", {})
        out.extend(c if isinstance(c, CircuitCase) else CircuitCase(*c) for c in table.get(profile_name, table.get("ci", [])))
    return out


@lru_cache(maxsize=32)
def _model(c: Circuit, n: int, steps: int) -> Model:
    return circuit_transformer(c, n, steps)


def check_run(c: Circuit, prompt: Sequence[Token], steps: int, reference: Reference | None = None,
              evaluator=None) -> dict:
    """Decode and compare (module docstring); returns the sizes seen."""
    prompt = list(prompt)
    model = _model(c, len(prompt), steps)
    sim = simulate(c, model, prompt, steps, evaluator or FastEvaluator())
    ref = run(c, prompt, steps - 1)
    where = f"circuit {c.name} (P={c.size}) on prompt {prompt}, {steps} steps"
    assert sim.cot_length == cot_length(c, len(prompt), steps), f"{where}: CoT length {sim.cot_length}"
    for j, sv in enumerate(ref):
        assert sim.gate_values[j] == sv.values, f"{where}: step {j + 1} gates {sim.gate_values[j]}, reference {sv.values}"
        assert sim.rnn_tokens[j] == sv.emitted, f"{where}: step {j + 1} emits {sim.rnn_tokens[j]!r}, reference {sv.emitted!r}"
    assert sim.rnn_tokens[len(prompt) - 1:] == generated(c, prompt, steps), f"{where}: chain of thought differs"
    if reference is not None:
        want = reference(prompt, steps)
        assert sim.rnn_tokens == want, f"{where}: RNN tokens {sim.rnn_tokens}, the RNN's own reference {want}"
    return {"P": c.size, "n": len(prompt), "steps": steps, "p": model.p, "cot_length": sim.cot_length,
            "param_bits": model.parameter_bits()}


RANDOM: dict[str, tuple[int, int, int, int]] = {  # examples, max middle gates, max n, max steps
    "ci": (3, 6, 2, 2),
    "dev": (15, 10, 3, 3),
    "thorough": (80, 16, 4, 4),
}


def run_check(profile: Profile) -> CheckOutcome:
    seen: list[dict] = []
    k, middle, max_n, max_steps = RANDOM.get(profile.name, RANDOM["ci"])

    def body(case) -> None:
        c, prompt, steps = case
        seen.append(check_run(c, prompt, steps))

    outcomes = [property_check(circuit_runs(middle, max_n, max_steps), body, profile, max_examples=k)]
    for case in automata_cases(profile) + extra_cases(profile.name):
        c = case.circuit()
        outcomes.append(property_check(
            st.just(case), lambda cs, c=c: seen.append(check_run(c, cs.prompt, cs.steps, cs.reference)),
            profile, max_examples=1))
    out = combine(outcomes)
    out.measured["runs"] = seen
    parity = named_circuit("parity")
    out.measured["parity_sizes"] = {n: {**measure(circuit_transformer(parity, n, n)), "declared_p": declared_p(parity, n, n)}
                                    for n in (2, 8, 32)}
    return out


CHECKS = [
    Check(
        "4.8",
        "A Transformer with CoT simulates an RNN given as a circuit, gate by gate (Thm 4.8)",
        "For an RNN whose step is a circuit of size P <= 2^(p/2), a constant-depth Transformer with "
        "O(P log max(P, n)) parameter bits and p = O(log(P n)) emits the P gate values of every RNN step "
        "and then the RNN's token ((P + 1) tokens per step), so its chain of thought reproduces the RNN's.",
        run_check,
    )
]
