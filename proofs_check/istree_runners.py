"""``proofs-check run istree --model transformer|rag-rnn|hybrid [--p P] (--input FILE.jsonl | --edges "1-5 2-6") [--json]``.

The IsTree :class:`~proofs_check.retrieval_runners.TaskRunner` (see :mod:`proofs_check.run_command`).
An instance is a graph: ``{"n": N, "edges": [[u, v], ...]}`` (n defaults to the largest vertex;
``--n`` overrides it) or, with ``--edges``, the text form ``"1-5 2-6 3-5"`` (``"n=6: 1-5 ..."``).
The model gets ``Tokenize(G) = <s> u_1 ~ v_1 ...`` (Eq. 4/6, edges as given) and decodes:

* ``transformer``: Theorem 4.7 / Lemma B.27 (``constructions.dfs_transformer``), greedy chain of
  thought (Def A.4) until YES or NO;
* ``rag-rnn``: Theorem 5.3 (``constructions.istree_rag``), decoding with in-context retrieval
  (Def A.5 / Sec 5.1) until YES or NO outside a search;
* ``hybrid``: Theorem 5.7's hybrid (``constructions.istree_hybrid``), chain of thought.

Output: ``{"answer": "YES"|"NO", "generated": [every generated token], "retrievals": [...],
"p": P, "n": N}``.  The path from graph to answer is generic: tokens, weights, an evaluator
session, the decoding loop; nothing here looks at the graph beyond tokenizing it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from constructions.decode import (DecodeResult, RegexOracle, batch_session, chain_of_thought_batch,
                                  retrieval_augmented_batch)
from constructions.errors import InputError, ProofsCheckError
from constructions.limits import require_n
from constructions.model import Model

from .data import LabelledGraph, is_data_record, read_record
from .graphs import NO, YES, Graph
from .plugins import import_construction
from .retrieval_runners import ModelCache, answer_record
from .run_records import ISTREE, RecordReader

MODELS: tuple[str, ...] = ("transformer", "rag-rnn", "hybrid")
ANSWERS = frozenset({YES, NO})


@dataclass(frozen=True)
class _Spec:
    module: str
    builder: str
    decoding: str  # "cot" | "rag"
    bound: Callable[[Any, int], int]  # (module, n) -> max CoT steps


def _transformer_bound(mod: Any, n: int) -> int:
    return mod.cot_bound(n)


def _rag_bound(mod: Any, n: int) -> int:
    return mod.max_chain(n)


def _hybrid_bound(mod: Any, n: int) -> int:
    bound = getattr(mod, "cot_bound", None)
    return bound(n) if bound is not None else 2 * n - 1


SPECS: dict[str, _Spec] = {
    "transformer": _Spec("constructions.dfs_transformer", "dfs_transformer", "cot", _transformer_bound),
    "rag-rnn": _Spec("constructions.istree_rag", "istree_rag_rnn", "rag", _rag_bound),
    "hybrid": _Spec("constructions.istree_hybrid", "istree_hybrid", "cot", _hybrid_bound),
}


def _module(model: str):
    spec = SPECS[model]
    return import_construction(spec.module, f"the IsTree {model} model is not built yet ({spec.module} does not exist)")


def build_model(model: str, n: int, p: int | None, cache: ModelCache) -> tuple[Model, int]:
    """The model for graphs on n vertices at precision p (default: the builder's), and the
    CoT bound to decode with; built once per (model, n, p) within one run."""
    if model not in SPECS:
        raise InputError(f"task istree has no model {model!r}; choose one of {', '.join(MODELS)}")
    key = ("istree", model, n, p)
    require_n(n, "the number of vertices n")
    if key not in cache.built:
        mod = _module(model)
        built = getattr(mod, SPECS[model].builder)(n, p)
        cache.built[key] = (built, SPECS[model].bound(mod, n))
    return cache.built[key]


def decode_graph(model_name: str, model: Model, g: Graph, bound: int, evaluator, oracle: RegexOracle | None = None) -> DecodeResult:
    return decode_graphs(model_name, model, [g], bound, evaluator, oracle)[0]


def decode_graphs(model_name: str, model: Model, graphs: Sequence[Graph], bound: int, evaluator,
                  oracle: RegexOracle | None = None) -> list[DecodeResult]:
    """:func:`decode_graph` of many graphs in one batch session (constructions.decode.batch_session)."""
    bs = batch_session(evaluator, model, [g.tokens() for g in graphs])
    if SPECS[model_name].decoding == "rag":
        return retrieval_augmented_batch(bs, model.vocab, bound, answers=ANSWERS, oracle=oracle)
    return chain_of_thought_batch(bs, bound, answers=ANSWERS)


@dataclass
class IsTreeRunner:
    name: str = "istree"
    models: tuple[str, ...] = MODELS
    records: RecordReader = RecordReader("istree", ISTREE)  # a `run istree` record read back

    def add_arguments(self, parser) -> None:
        parser.add_argument("--edges", metavar="EDGES", default=None,
                            help='istree only: one graph as text, e.g. "1-5 2-6 3-5" (optionally "n=6: 1-5 ...")')

    def instances_from_args(self, args) -> list[Any] | None:
        text = getattr(args, "edges", None)
        if text is None:
            return None
        if getattr(args, "task", "istree") != "istree":
            return [InputError("--edges is only for the istree task")]
        try:
            return [Graph.parse(text).to_json()]
        except ProofsCheckError as exc:
            return [exc]

    def parse(self, data: Any, n: int | None) -> Graph | LabelledGraph:
        if is_data_record(data):  # a line written by `data istree` (any of the three formats)
            return read_record(data, n)
        if isinstance(data, dict) and n is not None:
            data = {**data, "n": n}
        return Graph.from_json(data)

    def run(self, instance: Graph | LabelledGraph, model: str, n: int | None, p: int | None, evaluator,
            cache: ModelCache, oracle: RegexOracle) -> dict:
        if isinstance(instance, LabelledGraph):  # the label is compared only after decoding
            out = self.run(instance.graph, model, n, p, evaluator, cache, oracle)
            return {**out, "label": instance.label, "correct": out["answer"] == instance.label}
        g = instance if n is None or n == instance.n else Graph.make(n, instance.edges)
        built, bound = build_model(model, g.n, p, cache)
        out = answer_record(decode_graph(model, built, g, bound, evaluator, oracle), model, built.p, g.n)
        return {**out, **g.to_json()}  # the graph beside its answer: a record can be run again


RUNNERS: dict[str, IsTreeRunner] = {"istree": IsTreeRunner()}
