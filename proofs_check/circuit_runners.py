"""``proofs-check run circuit --model transformer --circuit FILE.json|NAME --input "1 0 1" [--steps N] [--json]``.

The Thm 4.8 :class:`~proofs_check.retrieval_runners.TaskRunner` (see :mod:`proofs_check.run_command`):
the circuit is a JSON file in the format of ``constructions.circuit`` or a named automaton of
``proofs_check.automata`` (parity, mod3, mod3-state, dfa); ``--input`` is the RNN's prompt
(tokens of the circuit's alphabet, separated by spaces); ``--steps`` the RNN chain-of-thought
tokens to simulate (default: n, i.e. n^A with A = 1).  As JSON lines (``--input FILE.jsonl`` or
``--instance``): ``{"circuit": NAME | PATH | {circuit JSON}, "input": [...], "steps": N}``.

Output: the Transformer's chain-of-thought length (P + 1)(n + steps - 1), the RNN outputs read
off it (one per RNN step, the last ``steps`` its chain of thought), the plain circuit
evaluator's (``proofs_check.circuits``) and whether they (and every gate value) agree.

This module also exports the catalog entry ``circuit-transformer`` (``proofs-check inspect
circuit-transformer --param circuit=parity --param n=4``).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructions.circuit import Circuit, circuit_from_json
from constructions.circuit_transformer import circuit_transformer, rnn_token, simulate
from constructions.errors import InputError
from constructions.model import Model
from constructions.vocab import Token

from .automata import NAMED, named_circuit
from .circuits import generated, run
from .run_records import CIRCUIT, RecordReader


def load_circuit(spec: Any) -> Circuit:
    """A circuit from a name of :data:`proofs_check.automata.NAMED`, a JSON file path or a JSON object."""
    if isinstance(spec, dict):
        return circuit_from_json(spec)
    if not isinstance(spec, str):
        raise InputError("circuit must be a name, a FILE.json path or a circuit JSON object")
    if spec in NAMED:
        return named_circuit(spec)
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"circuit {spec!r} is neither a named circuit ({', '.join(NAMED)}) nor an existing file")
    return circuit_from_json(path.read_text(encoding="utf-8"))


def _word(w: Any) -> Token:
    return int(w) if isinstance(w, str) and w.isascii() and w.isdigit() else w


@dataclass(frozen=True)
class CircuitInstance:
    circuit: Circuit
    prompt: list[Token]
    steps: int | None
    source: Any = None  # the circuit as given (name, path or JSON object): echoed so a record can be run again


def transformer_draft(c: Circuit, rnn_prompt: list[Token], steps: int) -> list[Token]:
    """The chain of thought Thm 4.8's Transformer should decode, from the circuit evaluator
    alone: per RNN step its P gate values, then the RNN's token (``rnn:t``)."""
    return [tok for sv in run(c, rnn_prompt, steps - 1) for tok in (*sv.values, rnn_token(sv.emitted))]


def simulation_record(c: Circuit, model: Model, rnn_prompt: list[Token], steps: int, evaluator, replay=None,
                      drafted: bool = False) -> dict:
    """The decode of Thm 4.8's Transformer beside the circuit evaluator's run.  ``drafted``:
    verify :func:`transformer_draft` in chunks (constructions.decode.drafted_chain_of_thought;
    the same chain as step-by-step decoding, every token the model's own argmax)."""
    draft = transformer_draft(c, rnn_prompt, steps) if drafted else None
    sim = simulate(c, model, rnn_prompt, steps, evaluator, replay, draft)
    ref = run(c, rnn_prompt, steps - 1)
    ref_out = [sv.emitted for sv in ref]
    chain = sim.rnn_tokens[len(rnn_prompt) - 1:]
    return {
        "circuit": c.name, "P": c.size, "n": len(rnn_prompt), "steps": steps, "p": model.p,
        "cot_length": sim.cot_length,
        "rnn_outputs": sim.rnn_tokens, "rnn_chain_of_thought": chain,
        "reference_outputs": ref_out, "reference_chain_of_thought": generated(c, rnn_prompt, steps),
        "equal": sim.rnn_tokens == ref_out and sim.gate_values == [sv.values for sv in ref],
        "answer": chain[-1] if chain else None,
        "generated": [str(t) for t in _flatten(sim.gate_values, sim.rnn_tokens)],
    }


def _flatten(gates, toks) -> list:
    out: list = []
    for g, t in zip(gates, toks):
        out += list(g) + [t]
    return out


def human(out: dict) -> str:
    words = lambda ts: " ".join(map(str, ts))  # noqa: E731
    return (f"circuit {out['circuit']} (P={out['P']}), n={out['n']}, {out['steps']} steps, p={out['p']}: "
            f"chain of thought {out['cot_length']} tokens\n"
            f"  RNN outputs (Transformer): {words(out['rnn_outputs'])}\n"
            f"  RNN outputs (circuit):     {words(out['reference_outputs'])}\n"
            f"  RNN chain of thought: {words(out['rnn_chain_of_thought'])}; equal to the circuit evaluator "
            f"(every gate value and output): {'yes' if out['equal'] else 'NO'}")


@dataclass(frozen=True)
class CircuitRunner:
    name: str = "circuit"
    models: tuple[str, ...] = ("transformer",)
    steps: int | None = None  # --steps, bound by :meth:`bind`
    records: RecordReader = RecordReader("circuit", CIRCUIT, (("source", "circuit"),))  # a record read back

    def bind(self, args) -> "CircuitRunner":
        steps = getattr(args, "steps", None)
        if steps is not None and steps < 1:
            raise InputError(f"--steps must be a positive integer, got {steps}")
        return dataclasses.replace(self, steps=steps)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--circuit", metavar="FILE.json|NAME", default=None,
                            help=f"circuit only: an RNN circuit (JSON file, or one of {', '.join(NAMED)}); "
                                 "--input is then the RNN's prompt (\"1 0 1\")")
        parser.add_argument("--steps", type=int, default=None,
                            help="circuit only: RNN chain-of-thought tokens to simulate (default n)")

    def instances_from_args(self, args) -> list[Any] | None:
        spec = getattr(args, "circuit", None)
        if spec is None:
            return None
        if getattr(args, "task", "circuit") != "circuit":
            return [InputError("--circuit is only for the circuit task")]
        if getattr(args, "instance", None) is not None:
            return [InputError("give either --circuit (with --input as the prompt) or --instance, not both")]
        text = getattr(args, "input", None) or ""
        return [{"circuit": spec, "input": text.replace(",", " ").split()}]

    def parse(self, data: Any, n: int | None) -> CircuitInstance:
        if not isinstance(data, dict) or "circuit" not in data:
            raise InputError('a circuit instance is {"circuit": NAME | PATH | {...}, "input": [...], "steps": N}')
        c = load_circuit(data["circuit"])
        words = data.get("input", [])
        if not isinstance(words, list) or not words:
            raise InputError("the RNN's prompt (--input) must be a non-empty list of tokens of the circuit's alphabet")
        prompt = [_word(w) for w in words]
        for t in prompt:
            c.code(t)
        if n is not None and n != len(prompt):
            raise InputError(f"--n {n} does not match the prompt's {len(prompt)} tokens; the model is built for the prompt length")
        steps = data.get("steps")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise InputError(f"steps must be a positive integer, got {steps!r}")
        return CircuitInstance(c, prompt, steps, data["circuit"])

    def run(self, instance: CircuitInstance, model: str, n: int | None, p: int | None, evaluator, cache, oracle) -> dict:
        c, prompt = instance.circuit, instance.prompt
        steps = instance.steps or self.steps or len(prompt)
        key = ("circuit", c.dumps(), len(prompt), steps, p)
        if key not in cache.built:
            cache.built[key] = circuit_transformer(c, len(prompt), steps, p)
        out = simulation_record(c, cache.built[key], prompt, steps, evaluator)
        return {**out, "source": instance.source, "input": list(prompt)}  # can be run again

    human = staticmethod(human)


RUNNERS: dict[str, CircuitRunner] = {"circuit": CircuitRunner()}


def catalog_builder(circuit: str = "parity", n: int = 4, steps: int | None = None, p: int | None = None) -> Model:
    """The Thm 4.8 Transformer simulating an RNN circuit (a named automaton or FILE.json), prompts of n tokens."""
    return circuit_transformer(load_circuit(circuit), n, steps or n, p)


CATALOG = {"circuit-transformer": catalog_builder}


def write_json(c: Circuit, path: str) -> None:
    Path(path).write_text(json.dumps(c.to_json(), indent=1) + "\n", encoding="utf-8")
