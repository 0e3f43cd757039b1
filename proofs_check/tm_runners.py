"""``proofs-check run tm --model rag-rnn|hybrid|cot-rnn --machine STRING [--input "1 0 1"] [--max-steps N] [--p P] [--json]``.

The Turing-machine :class:`~proofs_check.retrieval_runners.TaskRunner` (see
:mod:`proofs_check.run_command`).  An instance is ``{"machine": "1RB1LB_1LA1RZ", "input": [1, 0, 1],
"max_steps": N}`` (``input`` and ``max_steps`` optional), one per line with ``--input FILE.jsonl``;
or, with ``--machine``, one machine and ``--input "1 0 1"`` read as its tape (symbols separated by
spaces; empty or absent: a blank tape).  The step bound the model is built for is the instance's
``max_steps``, else ``--max-steps``, else :data:`DEFAULT_MAX_STEPS`.

Models (each a construction module with the protocol below; the runner never looks inside):

* ``rag-rnn``: Theorem 5.4, the retrieval-augmented linear RNN (``constructions.turing_rag``);
* ``hybrid``: Theorem 5.8, the linear RNN with one attention layer (``constructions.turing_hybrid``);
* ``cot-rnn``: Theorem 4.1, the linear RNN with CoT for a linear-space machine (``constructions.turing_cot_rnn``).

A construction module provides

* ``build(machine, n, max_steps, p=None) -> Model`` (p defaults to the declared one);
* ``prompt(model, tape) -> list[Token]``: the input sequence S_in for the input cells;
* ``chain_bound(model) -> int``: the most tokens to decode (generated and retrieved);
* ``STOP_TOKENS``: the tokens that end the run (the model's "halted" answer);
* ``read_back(model, result) -> dict``: ``halted, steps, state, head, tape, tape_start, ones``
  read *from the generated tokens only* (Lemma B.31: a cell's value is its last write).

Output per instance: ``{"halted": bool, "steps": int, "state": letter, "tape": [...], "ones": int,
"generated": [...], "retrievals": [...], "p": int}`` plus ``tape_start``, ``head``, ``n``,
``max_steps`` and ``model``, and any further fields ``read_back`` gives (cot-rnn: ``answer``,
``accepted``, ``left_tape``, ``m``, ``x``; there ``--input`` is Thm 4.1's whole S_in = 0^(n-m) x and
the run is the machine's on x, see ``constructions.turing_cot_rnn``).  A run that reaches the bound without halting is printed with
``"halted": false``, never as the machine's result.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from constructions.decode import RegexOracle, chain_of_thought, retrieval_augmented
from constructions.errors import InputError, MachineError
from constructions.limits import require_steps
from constructions.turing_machine import parse_instance
from constructions.model import Model

from .plugins import import_construction
from .retrieval_runners import ModelCache
from .run_records import TM, RecordReader

DEFAULT_MAX_STEPS = 1000


@dataclass(frozen=True)
class TMSpec:
    module: str
    decoding: str  # "rag" | "cot"
    theorem: str


SPECS: dict[str, TMSpec] = {
    "rag-rnn": TMSpec("constructions.turing_rag", "rag", "5.4"),
    "hybrid": TMSpec("constructions.turing_hybrid", "cot", "5.8"),
    "cot-rnn": TMSpec("constructions.turing_cot_rnn", "cot", "4.1"),
}
MODELS: tuple[str, ...] = tuple(SPECS)


@dataclass(frozen=True)
class TMInstance:
    machine: Any
    tape: list[int]
    max_steps: int | None


def construction(model: str):
    """The construction module of a model name; a clear error where it is not built yet."""
    if model not in SPECS:
        raise InputError(f"task tm has no model {model!r}; choose one of {', '.join(MODELS)}")
    spec = SPECS[model]
    return import_construction(spec.module, f"the Turing-machine {model} model (Thm {spec.theorem}) is not built yet")


def build_model(model: str, machine, n: int, max_steps: int, p: int | None, cache: ModelCache) -> Model:
    key = ("tm", model, machine.to_text(), n, max_steps, p)
    if key not in cache.built:
        cache.built[key] = construction(model).build(machine, n, max_steps, p)
    return cache.built[key]


def decode_tm(model_name: str, model: Model, tape: list[int], evaluator, oracle: RegexOracle | None = None):
    """Decode the model on the tape's prompt until a stop token or its chain bound."""
    mod = construction(model_name)
    session = evaluator.session(model, mod.prompt(model, tape))
    bound = mod.chain_bound(model)
    if SPECS[model_name].decoding == "rag":
        return retrieval_augmented(session, model.vocab, bound, answers=mod.STOP_TOKENS, oracle=oracle)
    return chain_of_thought(session, bound, answers=mod.STOP_TOKENS)


def run_record(model_name: str, model: Model, result, n: int, max_steps: int) -> dict:
    run = construction(model_name).read_back(model, result)
    record = {
        "halted": run["halted"],
        "steps": run["steps"],
        "state": run["state"],
        "tape": run["tape"],
        "ones": run["ones"],
        "generated": [str(t) for t in result.generated],
        "retrievals": [r.to_json() for r in result.retrievals],
        "p": model.p,
        "tape_start": run["tape_start"],
        "head": run["head"],
        "n": n,
        "max_steps": max_steps,
        "model": model_name,
    }
    record.update({k: v for k, v in run.items() if k not in record})  # a model's extra fields (e.g. "accepted")
    return record


def _tape_words(text: str | None) -> list[Any]:
    if text is None or not text.strip():
        return []
    out: list[Any] = []
    for word in text.replace(",", " ").split():
        out.append(int(word) if word.isascii() and word.isdigit() else word)
    return out


@dataclass(frozen=True)
class TMRunner:
    name: str = "tm"
    models: tuple[str, ...] = MODELS
    max_steps: int | None = None  # --max-steps, bound by :meth:`bind`
    records: RecordReader = RecordReader("tm", TM)  # a `run tm` record read back

    def bind(self, args) -> "TMRunner":
        """This runner with the command line's ``--max-steps``."""
        steps = getattr(args, "max_steps", None)
        if steps is not None and steps < 1:
            raise MachineError(f"--max-steps must be a positive integer, got {steps}")
        return dataclasses.replace(self, max_steps=steps)

    def add_arguments(self, parser) -> None:
        parser.add_argument("--machine", metavar="STRING", default=None,
                            help="tm only: one machine in the bbchallenge format, e.g. 1RB1LB_1LA1RZ; "
                                 "--input is then its tape (\"1 0 1\"; absent: blank)")
        parser.add_argument("--max-steps", type=int, default=None, dest="max_steps",
                            help=f"tm only: the step bound the model is built for (default {DEFAULT_MAX_STEPS})")

    def instances_from_args(self, args) -> list[Any] | None:
        text = getattr(args, "machine", None)
        if text is None:
            if getattr(args, "max_steps", None) is not None and getattr(args, "task", "tm") != "tm":
                return [InputError("--max-steps is only for the tm task")]
            return None
        if getattr(args, "task", "tm") != "tm":
            return [InputError("--machine is only for the tm task")]
        if getattr(args, "instance", None) is not None:
            return [InputError("give either --machine (with --input as its tape) or --instance, not both")]
        data: dict[str, Any] = {"machine": text, "input": _tape_words(getattr(args, "input", None))}
        return [data]

    def human(self, out: dict) -> str:
        """One line per run: halted, steps, state, ones, the tape span, p, the generated tokens."""
        head = [f"answer: {out['answer']}"] if "answer" in out else []
        parts = head + [f"halted: {out['halted']}", f"steps={out['steps']}", f"state={out['state']}",
                        f"ones={out['ones']}", f"tape[{out['tape_start']}..]={''.join(map(str, out['tape']))}",
                        f"n={out['n']}", f"p={out['p']}", "generated: " + " ".join(out["generated"])]
        parts += [f"retrieval: {r['pattern']!r} -> {r['result']!r}" for r in out.get("retrievals", [])]
        return "  ".join(parts)

    def parse(self, data: Any, n: int | None) -> TMInstance:
        machine, tape, steps = parse_instance(data)
        if n is not None and n != len(tape):
            raise MachineError(f"--n {n} does not match the input's {len(tape)} cells; the model is built for the input length")
        return TMInstance(machine, tape, steps)

    def run(self, instance: TMInstance, model: str, n: int | None, p: int | None, evaluator, cache: ModelCache,
            oracle: RegexOracle) -> dict:
        steps = require_steps(instance.max_steps or self.max_steps or DEFAULT_MAX_STEPS)
        built = build_model(model, instance.machine, len(instance.tape), steps, p, cache)
        result = decode_tm(model, built, instance.tape, evaluator, oracle)
        out = run_record(model, built, result, len(instance.tape), steps)
        return {**out, "machine": instance.machine.to_text(), "input": list(instance.tape)}  # can be run again


RUNNERS: dict[str, TMRunner] = {"tm": TMRunner()}
