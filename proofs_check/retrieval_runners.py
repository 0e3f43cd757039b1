"""Running the retrieval-task constructions on task instances: one place for checks and CLI.

:class:`TaskRunner` is the plug-in shape ``proofs-check run`` uses (see
:mod:`proofs_check.run_command`): a task name, the models it offers, how to read one JSON
instance, and how to run one instance on one model.  This module exports
``RUNNERS: dict[str, TaskRunner]`` for index, ar, cgram, count.

The path from instance to answer is generic: the instance's tokens (proofs_check.tasks), a
model from constructions.retrieval_tasks, an evaluator session, and the decoding loops of
constructions.decode (no CoT for Transformer/hybrid; in-context retrieval for rag-rnn).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from constructions import retrieval_tasks as rt
from constructions.decode import (DecodeResult, RegexOracle, batch_session, chain_of_thought_batch,
                                  retrieval_augmented_batch)
from constructions.errors import InputError
from constructions.limits import require_length, require_n
from constructions.model import Model
from constructions.vocab import Token

from . import tasks
from .run_records import RETRIEVAL, RecordReader

MODELS: tuple[str, ...] = ("transformer", "hybrid", "rag-rnn")


def make_evaluator(name: str = "fast", device: str = "cpu"):
    """``fast`` (constructions.evaluate_fast, same bits, batched torch, on ``device``) or
    ``reference`` (CPU only; another device is an InputError, see proofs_check.device_option)."""
    from .device_option import require_device

    if name == "reference":
        from constructions.evaluate_reference import ReferenceEvaluator

        require_device(device, name)
        return ReferenceEvaluator()
    if name == "fast":
        from constructions.evaluate_fast import FastEvaluator

        return FastEvaluator(device=require_device(device, name))
    raise InputError(f"unknown evaluator {name!r}; use 'fast' or 'reference'")


def is_number_token(tok: Token) -> bool:
    return isinstance(tok, int)


def model_size_for(task: str, inst: Any, n: int | None = None) -> tuple[int, int, int]:
    """(n, c, max_len) of the model an instance needs: n = the instance's n (or the given one),
    max_len = the builder's default for n, or longer when the instance is longer."""
    n = require_n(inst.n if n is None else n)
    c = inst.c if task == "cgram" else 2
    return n, c, require_length(max(rt.default_max_len(task, n, c), len(inst.tokens())), "the instance's model")


def decode(model: Model, prompt: Sequence[Token], evaluator, oracle: RegexOracle | None = None) -> DecodeResult:
    """No CoT for Transformer / hybrid (Def A.4 with 0 steps: the first token is the answer);
    in-context retrieval (Def A.5) for the retrieval-augmented RNN, stopping at a number token
    emitted outside a search."""
    return decode_batch(model, [prompt], evaluator, oracle)[0]


def decode_batch(model: Model, prompts: Sequence[Sequence[Token]], evaluator,
                 oracle: RegexOracle | None = None) -> list[DecodeResult]:
    """:func:`decode` of many prompts in one batch session (constructions.decode.batch_session);
    raises what the first failing prompt raises."""
    bs = batch_session(evaluator, model, prompts)
    if model.arch == "linear_rnn":
        steps = int(model.meta.get("cot_steps", 16)) + 1
        return retrieval_augmented_batch(bs, model.vocab, steps, answers=is_number_token, oracle=oracle)
    return chain_of_thought_batch(bs, 0, answers=lambda t: True)


@dataclass
class ModelCache:
    """Models built once per (task, model, n, c, max_len, p) within one run (no global state)."""

    built: dict = field(default_factory=dict)

    def get(self, task: str, model: str, n: int, c: int, max_len: int, p: int | None = None) -> Model:
        key = (task, model, n, c, max_len, p)
        if key not in self.built:
            self.built[key] = rt.build(task, model, n, p=p, c=c, max_len=max_len)
        return self.built[key]


class TaskRunner(Protocol):
    """What ``proofs-check run TASK`` needs from a task (IsTree implements the same shape)."""

    name: str
    models: tuple[str, ...]

    def add_arguments(self, parser) -> None: ...

    def instances_from_args(self, args) -> list[Any] | None: ...

    def parse(self, data: Any, n: int | None) -> Any: ...

    def run(self, instance: Any, model: str, n: int | None, p: int | None, evaluator, cache: ModelCache,
            oracle: RegexOracle) -> dict: ...


@dataclass
class RetrievalRunner:
    """A TaskRunner for one of index, ar, cgram, count."""

    name: str
    models: tuple[str, ...] = MODELS

    def add_arguments(self, parser) -> None:
        """The retrieval tasks read only --input / --instance (added by run_command)."""

    def instances_from_args(self, args) -> list[Any] | None:
        return None

    @property
    def records(self) -> RecordReader:
        """How a `run` record of this task is read back (proofs_check.run_records)."""
        return RecordReader(self.name, RETRIEVAL)

    def parse(self, data: Any, n: int | None) -> Any:
        if isinstance(data, dict) and n is not None:
            data = {**data, "n": n}
        return tasks.from_json(self.name, data)

    def run(self, instance: Any, model: str, n: int | None, p: int | None, evaluator, cache: ModelCache,
            oracle: RegexOracle) -> dict:
        if model not in self.models:
            raise InputError(f"task {self.name} has no model {model!r}; choose one of {', '.join(self.models)}")
        n, c, max_len = model_size_for(self.name, instance, n)
        m = cache.get(self.name, model, n, c, max_len, p)
        out = answer_record(decode(m, instance.tokens(), evaluator, oracle), model, m.p, n)
        return {**out, **instance.to_json()}  # the instance beside its answer: a record can be run again


def answer_record(result: DecodeResult, model: str, p: int, n: int) -> dict:
    """The `run` command's output object for one answered instance."""
    if result.answer is None:
        raise InputError(f"the {model} model gave no answer within {len(result.generated)} tokens")
    return {
        "answer": result.answer,
        "generated": [str(t) for t in result.generated],
        "retrievals": [r.to_json() for r in result.retrievals],
        "p": p,
        "n": n,
    }


RUNNERS: dict[str, RetrievalRunner] = {name: RetrievalRunner(name) for name in rt.TASK_NAMES}
