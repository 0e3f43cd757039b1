"""Precision limits: which number formats each construction survives, and how many bits p it needs.

Two measurements, both on a *seeded sample* of task instances (hard cases first, see
:func:`retrieval_cases` and :func:`graph_cases`), both judged against the plain-Python
reference answer of the task (``proofs_check.tasks`` ``answer()``, ``graphs.istree_answer``),
never against the exact model:

1. :func:`float_format_rows`: the model built at its declared p (the smallest p its builder
   accepts) is decoded in each number format of :class:`constructions.evaluate_fast.FastEvaluator`:
   ``exact`` (R_p, A.2) and the same weights decoded to reals in IEEE ``float64``, ``float32``,
   ``bfloat16`` with no R_p rounding.  Reported: instances answered correctly, and for
   chain-of-thought / retrieval models how many decoded chains (every generated and retrieved
   token after the prompt) equal the exact-mode chain.
2. :func:`minimal_p_rows`: the smallest odd p below the declared one at which the *exact*
   evaluation still answers the whole sample correctly, scanning p = declared - 2, - 4, ...
   a bounded number of steps (no binary search: success need not be monotone in p).  Two
   routes to a model at a lower p:

   * ``builder``: the construction's own builder called with that p.  Every builder of the
     listed constructions raises PrecisionError below its declared p; such rows say
     "refused below declared";
   * ``requantised``: the declared-p model's weights rounded to R_p' (each scaled weight
     ``q * 2^(F' - F)`` rounded to the nearest integer, ties even; a weight beyond R_p''s range
     fails the whole p'); the constants (score gaps, boosts) stay those chosen for the declared
     p.  This asks how many bits *this weight set* needs on the sample, a lower bound for the
     worst case the declared p is derived for.

   An overflow (PrecisionOverflow), a refused token, or any other ProofsCheckError while
   decoding counts as a failure at that p, as does a wrong or missing answer.

The decoding is the `run` command's: :func:`proofs_check.retrieval_runners.decode` (no CoT for
Transformer / hybrid, in-context retrieval for the retrieval-augmented RNN),
:func:`proofs_check.istree_runners.decode_graph` (CoT for 4.7 / 5.7 (a), retrieval for 5.3),
and one greedy step for 5.7 (b).

Writer::

    python -m proofs_check.precision --write notes/precision/formats.md [--large] [--records FILE|none]

CLI (``add_parser``; the sweep flags and the handler are in ``proofs_check/precision_sweep.py``,
the frontier in ``proofs_check/frontier.py``)::

    proofs-check precision NAME|all [--n N ...] [--instances K] [--min-p] [--steps S] [--json] [--frontier] ...
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from constructions.errors import InputError, ProofsCheckError, ReplayError
from constructions.model import FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros
from constructions.numerics import Precision, div_round
from constructions.vocab import Token

from .atomic_files import write_text
from .graphs import NO, YES, Graph, istree_answer, random_non_tree_n_minus_1, random_tree, shuffle_edges
from .lower_bounds import figure3_graph
from .tasks import ARInstance, CGramInstance, CountingInstance, IndexInstance

FORMATS: tuple[str, ...] = ("exact", "float64", "float32", "bfloat16")
FLOAT_FORMATS: tuple[str, ...] = FORMATS[1:]
CGRAM_C = 3  # the c-gram rows use c = 3 (as notes/claims.md)
SEED = 2024

#: the Figure 3 graph as the paper draws it (x = 0101, k = 2; Sec 4.2.2), n = 6
FIGURE3_TEXT = "2-6 1-5 3-5 4-6 2-3"


# =============================================================================================
# instances
# =============================================================================================


@dataclass(frozen=True)
class Case:
    """One sampled instance: a label saying which hard case it is, the prompt tokens, the
    plain-Python reference answer, and its JSON form (for reports)."""

    label: str
    tokens: tuple[Token, ...]
    answer: Token
    data: dict


def _seq(rng: random.Random, n: int, length: int, alphabet_size: int | None = None) -> list[int]:
    """A sequence over a random alphabet inside [n] (small alphabets make keys repeat); the
    largest number n is in the alphabet (multi-digit numbers, the readout's largest logit)."""
    size = alphabet_size or rng.choice([1, 2, 3, n])
    alphabet = rng.sample(range(1, n + 1), min(n, max(1, size)))
    if n not in alphabet:
        alphabet[-1] = n
    return [rng.choice(alphabet) for _ in range(length)]


def _index_cases(n: int, rng: random.Random):
    L = n
    yield "query 1", IndexInstance.make(_seq(rng, n, L), 1, n)
    yield "query L", IndexInstance.make(_seq(rng, n, L), L, n)
    seq = _seq(rng, n, L)
    i = rng.randint(1, L)
    seq[i - 1] = n
    yield "answer n", IndexInstance.make(seq, i, n)
    while True:
        yield "random", IndexInstance.make(_seq(rng, n, L), rng.randint(1, L), n)


def _ar_cases(n: int, rng: random.Random):
    L = n

    def at(seq: list[int], pos: int) -> ARInstance:
        return ARInstance.make(seq, seq[pos], n)

    yield "key first", at(_seq(rng, n, L), 0)
    yield "answer is t_L", at(_seq(rng, n, L), L - 2)
    yield "repeated key", at(_seq(rng, n, L, 2), rng.randint(0, L - 2))
    seq = _seq(rng, n, L)
    pos = rng.randint(0, L - 2)
    seq[pos + 1] = n
    inst = at(seq, pos)
    yield ("answer n" if inst.answer() == n else "random"), inst
    while True:
        yield "random", at(_seq(rng, n, L), rng.randint(0, L - 2))


def _cgram_cases(n: int, rng: random.Random):
    L, m = n, CGRAM_C - 1

    def at(seq: list[int], pos: int) -> CGramInstance:
        return CGramInstance.make(seq, seq[pos : pos + m], n)

    yield "gram first", at(_seq(rng, n, L), 0)
    yield "answer is t_L", at(_seq(rng, n, L), L - CGRAM_C)
    yield "repeated prefix", at(_seq(rng, n, L, 2), rng.randint(0, L - CGRAM_C))
    while True:
        yield "random", at(_seq(rng, n, L), rng.randint(0, L - CGRAM_C))


def _count_cases(n: int, rng: random.Random):
    L = n

    def make(seq: list[int], q: int, t: int) -> CountingInstance:
        return CountingInstance.make(seq, q, max(0, min(n, t)), n)

    def drawn() -> tuple[list[int], int, int]:
        seq = _seq(rng, n, L)
        q = rng.choice(seq)
        return seq, q, seq.count(q)

    seq, q, c = drawn()
    yield "t = count - 1", make(seq, q, c - 1)
    seq, q, c = drawn()
    yield "t = count", make(seq, q, c)
    seq, q, c = drawn()
    yield "t = count + 1", make(seq, q, c + 1)
    q = rng.randint(1, n)
    yield "all tokens q, t = L - 1", make([q] * L, q, L - 1)
    seq = _seq(rng, n, L)
    absent = [v for v in range(1, n + 1) if v not in seq]
    if absent:
        yield "query absent, t = 0", make(seq, rng.choice(absent), 0)
    while True:
        seq, q, c = drawn()
        yield "random", make(seq, q, rng.choice([c - 1, c, c + 1, rng.randint(0, n)]))


_TASK_CASES = {"index": _index_cases, "ar": _ar_cases, "cgram": _cgram_cases, "count": _count_cases}
_TASK_MIN_N = {"index": 1, "ar": 2, "cgram": CGRAM_C, "count": 1}


def retrieval_cases(task: str, n: int, k: int, seed: int = SEED) -> list[Case]:
    """k seeded instances of ``task`` with L = n data tokens over [n] (the default max_len of
    the builders): the hard cases first (key at the first / last usable position, repeated
    keys, answer n, Counting thresholds at count - 1, count, count + 1), then random ones."""
    if task not in _TASK_CASES:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(_TASK_CASES)}")
    if n < _TASK_MIN_N[task]:
        raise InputError(f"{task} needs n >= {_TASK_MIN_N[task]} for its sample, got n = {n}")
    rng = random.Random(f"{task}:{n}:{seed}")
    gen = _TASK_CASES[task](n, rng)
    out = []
    for _ in range(k):
        label, inst = next(gen)
        out.append(Case(label, tuple(inst.tokens()), inst.answer(), inst.to_json()))
    return out


def _graph_case(label: str, g: Graph) -> Case:
    return Case(label, tuple(g.tokens()), istree_answer(g), {"edges": g.to_text(), "n": g.n})


def _figure3_instance(rng: random.Random, n: int, tree: bool) -> Graph:
    """A Figure 3 family graph (x, k) that is a tree iff ``tree`` (tree iff x_k != x_(k+1))."""
    x = [rng.randint(0, 1) for _ in range(n - 2)]
    k = rng.randint(1, n - 3)
    if (x[k - 1] != x[k]) != tree:
        x[k] = 1 - x[k]
    return shuffle_edges(rng, figure3_graph(tuple(x), k))


def _path(rng: random.Random, n: int) -> Graph:
    perm = list(range(1, n + 1))
    rng.shuffle(perm)
    return shuffle_edges(rng, Graph(n, tuple(zip(perm, perm[1:]))))


def _star(rng: random.Random, n: int) -> Graph:
    c = rng.randint(1, n)
    return shuffle_edges(rng, Graph(n, tuple((c, v) for v in range(1, n + 1) if v != c)))


def _forest(rng: random.Random, n: int) -> Graph:
    t = random_tree(rng, n)
    return Graph(n, t.edges[: n - 2])


def graph_cases(n: int, k: int, seed: int = SEED, family_only: bool = False) -> list[Case]:
    """k seeded graphs on n >= 4 vertices.  At n = 6 the first is Figure 3 itself.  General
    IsTree: a random tree, a non-tree with n - 1 edges (a cycle and two components), a random
    path (the longest DFS), Figure 3 family tree and non-tree, a star, a forest, then random
    trees / non-trees alternately.  ``family_only`` (Thm 5.7 (b)'s precondition): Figure 3
    family instances only, trees and non-trees alternately."""
    if n < 4:
        raise InputError(f"the IsTree sample needs n >= 4 (non-trees with n - 1 edges, Figure 3 family), got n = {n}")
    rng = random.Random(f"istree:{n}:{seed}:{family_only}")
    out: list[Case] = []
    if n == 6:
        out.append(_graph_case("Figure 3", Graph.parse(FIGURE3_TEXT)))
    if family_only:
        i = 0
        while len(out) < k:
            tree = i % 2 == 0
            out.append(_graph_case(f"Figure 3 family ({'tree' if tree else 'non-tree'})", _figure3_instance(rng, n, tree)))
            i += 1
        return out[:k]
    makers: list[tuple[str, Callable[[], Graph]]] = [
        ("random tree", lambda: random_tree(rng, n)),
        ("non-tree, n - 1 edges", lambda: random_non_tree_n_minus_1(rng, n)),
        ("path", lambda: _path(rng, n)),
        ("Figure 3 family (tree)", lambda: _figure3_instance(rng, n, True)),
        ("Figure 3 family (non-tree)", lambda: _figure3_instance(rng, n, False)),
        ("star", lambda: _star(rng, n)),
        ("forest", lambda: _forest(rng, n)),
    ]
    for label, make in makers:
        if len(out) >= k:
            break
        out.append(_graph_case(label, make()))
    i = 0
    while len(out) < k:
        out.append(_graph_case("random tree", random_tree(rng, n)) if i % 2 == 0
                   else _graph_case("non-tree, n - 1 edges", random_non_tree_n_minus_1(rng, n)))
        i += 1
    return out


# =============================================================================================
# the constructions
# =============================================================================================


@dataclass(frozen=True)
class Construction:
    """One construction: its catalog name (``proofs-check list --models``), the theorem, the
    task, how its instances are drawn and decoded.  ``decoding``: ``none`` (the first token is
    the answer), ``cot`` (chain of thought until YES / NO), ``rag`` (in-context retrieval)."""

    name: str
    theorem: str
    task: str
    arch: str
    decoding: str
    min_n: int

    @property
    def is_istree(self) -> bool:
        return self.task.startswith("istree")

    @property
    def has_chain(self) -> bool:
        return self.decoding != "none"

    def builder(self) -> Callable[..., Model]:
        """The catalog builder (``proofs_check.catalog``), called as ``builder(n, p, ...)``."""
        from .catalog import catalog

        return catalog()[self.name]

    def build(self, n: int, p: int | None = None, relaxed: bool = False) -> Model:
        """The model at n and p (default: the declared p).  ``relaxed``: pass ``strict=False``
        where the builder has that parameter (a builder without it refuses as it always does)."""
        builder = self.builder()
        kwargs: dict[str, Any] = {"c": CGRAM_C} if self.task == "cgram" else {}
        if relaxed and "strict" in inspect.signature(builder).parameters:
            kwargs["strict"] = False
        return builder(n, p, **kwargs)

    def cases(self, n: int, k: int, seed: int = SEED) -> list[Case]:
        if self.is_istree:
            return graph_cases(n, k, seed, family_only=self.name == "istree-binary-hybrid")
        return retrieval_cases(self.task, n, k, seed)

    def decode(self, model: Model, case: Case, evaluator, oracle) -> Any:
        """The `run` command's decoding of one instance (a constructions.decode.DecodeResult)."""
        return self.decode_all(model, [case], evaluator, oracle)[0]

    def decode_all(self, model: Model, cases: Sequence[Case], evaluator, oracle) -> list[Any]:
        """:meth:`decode` of every case in one batch session; raises what a failing case raises."""
        if self.name == "istree-binary-hybrid":
            from constructions.decode import batch_session, chain_of_thought_batch

            return chain_of_thought_batch(batch_session(evaluator, model, [list(c.tokens) for c in cases]), 0,
                                          answers={YES, NO})
        if self.is_istree:
            from .istree_runners import decode_graphs

            graphs = [Graph.from_tokens(list(c.tokens), model.vocab.n) for c in cases]
            return decode_graphs(self.arch, model, graphs, self._chain_bound(model), evaluator, oracle)
        from .retrieval_runners import decode_batch

        return decode_batch(model, [list(c.tokens) for c in cases], evaluator, oracle)

    @property
    def resumable(self) -> bool:
        """A chain of thought long enough to checkpoint (4.7 and 5.7 (a); 5.7 (b) stops at once)."""
        return self.decoding == "cot" and self.is_istree and self.name != "istree-binary-hybrid"

    def decode_resumable(self, model: Model, case: Case, evaluator, oracle, replay=None) -> Any:
        """:meth:`decode` of one instance that continues an interrupted decode
        (``replay``, a constructions.decode.Replay) where the construction is :attr:`resumable`:
        the instance alone in one session, the chain of thought of :meth:`decode_all` (the same
        bound and answers; a batch of one decodes as the sequence alone).  Others: :meth:`decode`."""
        if replay is None or not self.resumable:
            return self.decode(model, case, evaluator, oracle)
        from constructions.decode import chain_of_thought

        session = evaluator.session(model, list(case.tokens))
        return chain_of_thought(session, self._chain_bound(model), answers={YES, NO}, replay=replay)

    def _chain_bound(self, model: Model) -> int:
        """The theorem's bound on the IsTree chain of thought (the `run` command's max_steps)."""
        from .istree_runners import SPECS

        return SPECS[self.arch].bound(importlib.import_module(SPECS[self.arch].module), model.vocab.n)


def _retrieval_constructions() -> list[Construction]:
    out = []
    for theorem, arch, decoding in (("4.6", "transformer", "none"), ("5.6", "hybrid", "none"), ("5.2", "rag-rnn", "rag")):
        for task in ("index", "ar", "cgram", "count"):
            out.append(Construction(f"{task}-{arch}", theorem, task, arch, decoding, _TASK_MIN_N[task]))
    return out


CONSTRUCTIONS: tuple[Construction, ...] = (
    *_retrieval_constructions(),
    # Thm 4.6's Index Transformer with tightened Match constants (beyond the paper, issue #11):
    # its own frontier row shows how much of the declared p is the lemma's slack
    Construction("index-transformer-tight", "4.6", "index", "transformer", "none", _TASK_MIN_N["index"]),
    Construction("dfs-transformer", "4.7", "istree", "transformer", "cot", 4),
    Construction("istree-rag-rnn", "5.3", "istree", "rag-rnn", "rag", 4),
    Construction("istree-hybrid", "5.7 (a)", "istree", "hybrid", "cot", 4),
    Construction("istree-binary-hybrid", "5.7 (b)", "istree (Figure 3 family)", "hybrid", "none", 4),
)


def construction(name: str) -> Construction:
    for c in CONSTRUCTIONS:
        if c.name == name:
            return c
    raise InputError(f"no construction named {name!r} for precision runs; choose one of "
                     f"{', '.join(c.name for c in CONSTRUCTIONS)}")


#: (sizes, instances) per construction for the generated table (about 5 minutes on 2 cores;
#: the exact decodes of the long CoT / retrieval IsTree chains dominate, so those get small n;
#: --large uses :data:`LARGE_PLAN` for them)
TABLE_PLAN: dict[str, tuple[tuple[int, ...], int]] = {
    **{c.name: ((16, 64, 256, 1024), 6) for c in CONSTRUCTIONS if c.theorem in ("4.6", "5.6")},
    **{c.name: ((16, 64, 256), 6) for c in CONSTRUCTIONS if c.theorem == "5.2"},
    "dfs-transformer": ((6, 16, 32), 6),
    "istree-rag-rnn": ((6, 8), 4),
    "istree-hybrid": ((6, 8), 4),
    "istree-binary-hybrid": ((6, 16, 64, 256), 6),
}

#: issue #10's sizes for 4.7 (up to n = 2048), 5.3 and 5.7 (a) (up to n = 512) (``--large``: hours on 2 cores at
#: the exact engine's present speed; the float formats decode incrementally, constructions.evaluate_float)
LARGE_PLAN: dict[str, tuple[tuple[int, ...], int]] = {
    **TABLE_PLAN,
    "dfs-transformer": ((6, 16, 32, 128, 512, 1024, 2048), 4),
    "istree-rag-rnn": ((6, 8, 32, 128, 512), 4),
    "istree-hybrid": ((6, 8, 32, 128, 512), 4),
}

#: (sizes, instances, steps) for the minimal-p scan of the generated table
MIN_P_PLAN: dict[str, tuple[tuple[int, ...], int, int]] = {
    **{c.name: ((16, 64, 256), 6, 10) for c in CONSTRUCTIONS if not c.is_istree},
    "dfs-transformer": ((6, 16, 32), 4, 10),
    "istree-rag-rnn": ((6, 16), 4, 6),
    "istree-hybrid": ((6,), 4, 10),
    "istree-binary-hybrid": ((16, 64, 256), 6, 10),
}


# =============================================================================================
# running one sample
# =============================================================================================


@dataclass
class Outcome:
    """One instance in one format: the answer, whether it is the reference answer, the chain
    (tokens after the prompt, as text), and the error (a ProofsCheckError) if decoding raised."""

    label: str
    answer: str | None
    correct: bool
    chain: list[str] = field(default_factory=list)
    error: str | None = None

    def short(self) -> str:
        got = f"error ({self.error})" if self.error else (f"answered {self.answer}" if self.answer is not None else "no answer")
        return f"{self.label}: {got}"


def _run_case(con: Construction, model: Model, case: Case, evaluator, oracle, replay=None) -> Outcome:
    try:
        res = con.decode(model, case, evaluator, oracle) if replay is None else con.decode_resumable(model, case, evaluator, oracle, replay)
    except ReplayError:
        raise  # a checkpoint that is not this decode's: refused, never recorded as the format's failure
    except ProofsCheckError as exc:
        kind = type(exc).__name__
        first = " ".join(str(exc).split())  # whole: a cut message hides where it failed (issue 15)
        return Outcome(case.label, None, False, [], f"{kind}: {first}")
    return _outcome(case, res)


def _outcome(case: Case, res) -> Outcome:
    chain = [str(t) for t in res.sequence[len(res.prompt):]]
    return Outcome(case.label, None if res.answer is None else str(res.answer), res.answer == case.answer, chain)


def run_sample(con: Construction, model: Model, cases: Sequence[Case], fmt: str, oracle, device: str = "cpu") -> list[Outcome]:
    """Decode every case in one number format (torch pinned to one thread by the caller): all
    in one batch; if any case raises, one by one, so that each gets its own outcome."""
    from constructions.evaluate_fast import FastEvaluator

    ev = FastEvaluator(mode=fmt, device=device)
    try:
        return [_outcome(c, r) for c, r in zip(cases, con.decode_all(model, cases, ev, oracle))]
    except ProofsCheckError:
        return [_run_case(con, model, c, ev, oracle) for c in cases]


# =============================================================================================
# 1. number formats
# =============================================================================================


@dataclass
class FormatResult:
    correct: int
    total: int
    chain_equal: int | None  # chains equal to the exact chain (None: no chain, or exact itself)
    failures: list[str] = field(default_factory=list)  # Outcome.short() of the wrong instances


@dataclass
class FormatRow:
    theorem: str
    name: str
    task: str
    arch: str
    n: int
    p: int
    instances: int
    results: dict[str, FormatResult]
    labels: list[str]
    seconds: float = 0.0
    error: str | None = None  # the model could not be built / the sample drawn

    def to_json(self) -> dict:
        return asdict(self)


def format_row(name: str, n: int, k: int, seed: int = SEED, formats: Sequence[str] = FORMATS, device: str = "cpu") -> FormatRow:
    """One construction at one n: the declared-p model decoded in every format (top level so
    that it runs in a worker)."""
    import torch

    from constructions.decode import RegexOracle

    torch.set_num_threads(1)
    t0 = time.time()
    con = construction(name)
    formats = tuple(dict.fromkeys(["exact", *formats]))  # exact first: the chains compare with it
    try:
        model = con.build(n)
        cases = con.cases(n, k, seed)
    except ProofsCheckError as exc:
        return FormatRow(con.theorem, name, con.task, con.arch, n, 0, 0, {}, [], 0.0, " ".join(str(exc).split()))
    results: dict[str, FormatResult] = {}
    exact_chains: list[list[str]] = []
    with RegexOracle() as oracle:
        for fmt in formats:
            outs = run_sample(con, model, cases, fmt, oracle, device)
            if fmt == "exact":
                exact_chains = [o.chain for o in outs]
            chain_equal = None
            if con.has_chain and fmt != "exact":
                chain_equal = sum(1 for o, ch in zip(outs, exact_chains) if o.error is None and o.chain == ch)
            results[fmt] = FormatResult(sum(o.correct for o in outs), len(outs), chain_equal,
                                        [o.short() for o in outs if not o.correct])
    return FormatRow(con.theorem, name, con.task, con.arch, n, model.p, len(cases), results,
                     [c.label for c in cases], round(time.time() - t0, 2))


def _call_job(fn: Callable, cell: dict) -> Any:
    return fn(*cell["job"])


def _pool_map(fn: Callable, jobs: list[tuple], workers: int | None) -> list:
    """fn(*job) for every job on the sweep executor (proofs_check.sweep: Dask, or in this
    process for one worker); a job that raises raises here."""
    from functools import partial

    from .sweep import Executor, results_or_raise, run_cells

    workers = min(len(jobs), workers or os.cpu_count() or 1)
    records = run_cells([{"job": list(job)} for job in jobs], partial(_call_job, fn), executor=Executor(max(1, workers)))
    return results_or_raise(records)


def _check_sizes(con: Construction, sizes: Sequence[int]) -> list[int]:
    bad = [n for n in sizes if isinstance(n, bool) or not isinstance(n, int) or n < con.min_n]
    if bad:
        raise InputError(f"{con.name} needs n >= {con.min_n} for its sample; got {bad}")
    return list(sizes)


def float_format_rows(constructions: Sequence[str] | None = None, sizes: Sequence[int] | None = None,
                      instances: int | None = None, seed: int = SEED, workers: int | None = None,
                      formats: Sequence[str] = FORMATS,
                      plan: dict[str, tuple[tuple[int, ...], int]] = TABLE_PLAN) -> list[FormatRow]:
    """Rows for each construction (catalog names; default all of :data:`CONSTRUCTIONS`) and n
    (default :data:`TABLE_PLAN`'s sizes; given sizes apply to every construction), each with
    ``instances`` seeded cases (default the plan's).  Runs in ``workers`` processes."""
    for fmt in formats:
        if fmt not in FORMATS:
            raise InputError(f"unknown number format {fmt!r}; use {', '.join(FORMATS)}")
    names = list(constructions) if constructions else [c.name for c in CONSTRUCTIONS]
    jobs = []
    for name in names:
        con = construction(name)
        plan_sizes, plan_k = plan[name]
        ns = _check_sizes(con, sizes if sizes else plan_sizes)
        for n in ns:
            jobs.append((name, n, instances or plan_k, seed, tuple(formats)))
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i][0], jobs[i][1]))
    results = _pool_map(format_row, [jobs[i] for i in order], workers)
    by_job = dict(zip(order, results))
    return [by_job[i] for i in range(len(jobs))]


def _cost(name: str, n: int) -> float:
    """Rough seconds of one instance decoded exactly on one core (scheduling only), fitted to
    the n = 32 .. 128 records of notes/precision/formats_large.jsonl: 5.3 decodes about
    11 n log2 n tokens at a constant ~10 ms (its layers are RNNs); 5.7 (a) about 2.3 n^2
    tokens, each costing more as the chain grows (attention over it): ~80 s at n = 32,
    growing as n^2.5; 4.7 about 2n tokens at ~0.1 s."""
    con = construction(name)
    if con.name == "istree-rag-rnn":
        return 0.11 * n * math.log2(max(n, 2))
    if con.name == "istree-hybrid":
        return 80.0 * (n / 32) ** 2.5
    if con.name == "dfs-transformer":
        return 0.2 * n * max(1.0, n / 128) ** 0.5
    return 0.01 * n * (4.0 if con.arch == "rag-rnn" else 1.0)


# =============================================================================================
# 2. minimal p
# =============================================================================================


def requantise(model: Model, p: "int | Precision") -> Model:
    """The model's weights rounded to R_p (an odd p, or any R(I, F)): each scaled weight q
    (2^-F grid) becomes the nearest multiple of 2^-F' (ties even; exact when F' >= F); a weight
    beyond the new format's largest magnitude raises PrecisionError naming it.  Layout,
    vocabulary, max_len and meta are kept."""
    old, new = model.precision, Precision.of(p)
    shift = old.F - new.F

    def conv(arr, what: str):
        out = zeros(*arr.shape)
        flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
        for i, q in enumerate(flat_in):
            v = div_round(int(q), 1 << shift, "even") if shift > 0 else int(q) << -shift
            if abs(v) > new.max_scaled:
                from constructions.errors import PrecisionError

                raise PrecisionError(f"weight {what} = {float(old.decode(int(q))):.6g} is beyond {new.label} "
                                     f"(largest magnitude {float(new.max_value):.6g})")
            flat_out[i] = v
        return out

    layers = []
    for li, layer in enumerate(model.layers, start=1):
        f = layer.ffn
        ffn = FeedForward(*(conv(getattr(f, k), f"layer{li}.ffn.{k}") for k in ("W1", "b1", "W2", "b2", "W3", "b3")),
                          hidden_names=f.hidden_names)
        if isinstance(layer, TransformerLayer):
            from constructions.model import AttentionHead

            heads = [AttentionHead(conv(h.W_K, f"layer{li}.{h.name}.W_K"), conv(h.W_Q, f"layer{li}.{h.name}.W_Q"),
                                   conv(h.W_V, f"layer{li}.{h.name}.W_V"), h.name, h.key_names) for h in layer.heads]
            layers.append(TransformerLayer(heads, ffn, layer.name))
        else:
            layers.append(LinearRNNLayer(conv(layer.A, f"layer{li}.A"), conv(layer.B, f"layer{li}.B"), ffn, layer.name))
    unembed = conv(model.unembed, "unembed") if model.unembed is not None else None
    meta = {**model.meta, "requantised_from_p": model.p}
    return Model(model.arch, new.p, model.layout, model.vocab, layers, model.max_len, unembed, meta, new.frac).validate()


@dataclass
class ScanStep:
    """One scanned p: passes when all ``total`` instances are answered correctly.  The scan
    stops at a p's first failing instance (``tried`` = instances decoded, the last one failed)."""

    p: int
    ok: bool
    tried: int
    total: int
    first_failure: str | None = None


@dataclass
class MinPRow:
    theorem: str
    name: str
    n: int
    declared_p: int
    instances: int
    builder: str  # "refused below declared" | "accepts lower p"
    builder_scan: list[ScanStep]
    requantised_scan: list[ScanStep]
    error: str | None = None

    @staticmethod
    def _min(scan: list[ScanStep], contiguous: bool) -> int | None:
        """Smallest passing p in the scan (``contiguous``: with every scanned p above it passing too)."""
        best = None
        for step in scan:  # descending p
            if step.ok:
                best = step.p
            elif contiguous:
                break
        return best

    def summary(self, route: str) -> dict:
        scan = self.builder_scan if route == "builder" else self.requantised_scan
        return {"min_p_contiguous": self._min(scan, True), "min_p_any": self._min(scan, False),
                "scanned": [s.p for s in scan], "passing": [s.p for s in scan if s.ok]}

    def to_json(self) -> dict:
        out = asdict(self)
        out["builder_summary"] = self.summary("builder")
        out["requantised_summary"] = self.summary("requantised")
        return out


def _scan(con: Construction, make: Callable[[int], Model], cases: Sequence[Case], ps: Sequence[int], oracle) -> list[ScanStep]:
    from constructions.evaluate_fast import FastEvaluator

    ev = FastEvaluator(mode="exact")
    steps = []
    for p in ps:
        try:
            model = make(p)
        except ProofsCheckError as exc:
            steps.append(ScanStep(p, False, 0, len(cases), f"no model: {' '.join(str(exc).split())}"))
            continue
        step = ScanStep(p, True, 0, len(cases))
        for case in cases:
            out = _run_case(con, model, case, ev, oracle)
            step.tried += 1
            if not out.correct:
                step.ok, step.first_failure = False, out.short()
                break
        steps.append(step)
    return steps


def cell_setup(name: str, n: int, k: int, seed: int = SEED) -> tuple["Construction", Model | None, list[Case], str]:
    """A sweep worker's start (min-p scan, frontier): torch on one thread, the construction, its
    model at the declared precision and its K seeded cases, or the build error as one line."""
    import torch

    torch.set_num_threads(1)
    con = construction(name)
    try:
        return con, con.build(n), con.cases(n, k, seed), ""
    except ProofsCheckError as exc:
        return con, None, [], " ".join(str(exc).split())


def min_p_row(name: str, n: int, k: int, steps: int, seed: int = SEED) -> MinPRow:
    """The downward scan for one construction at one n (top level: runs in a worker)."""
    from constructions.decode import RegexOracle
    from constructions.errors import PrecisionError

    con, model, cases, error = cell_setup(name, n, k, seed)
    if error:
        return MinPRow(con.theorem, name, n, 0, 0, "", [], [], error)
    declared = model.p
    ps = [p for p in range(declared - 2, declared - 2 * steps - 1, -2) if p >= 3]
    with RegexOracle() as oracle:
        try:
            if ps:
                con.build(n, ps[0], relaxed=True)
            builder = "accepts lower p"
        except PrecisionError:
            builder = "refused below declared"
        builder_scan = _scan(con, lambda p: con.build(n, p, relaxed=True), cases, ps, oracle) if builder == "accepts lower p" and ps else []
        requant_scan = _scan(con, lambda p: requantise(model, p), cases, ps, oracle)
    return MinPRow(con.theorem, name, n, declared, len(cases), builder, builder_scan, requant_scan)


def minimal_p_rows(constructions: Sequence[str] | None = None, sizes: Sequence[int] | None = None,
                   instances: int | None = None, steps: int | None = None, seed: int = SEED,
                   workers: int | None = None) -> list[MinPRow]:
    """Minimal-p rows (module docstring, item 2) for each construction and n (defaults:
    :data:`MIN_P_PLAN`), scanning ``steps`` odd p below the declared one."""
    names = list(constructions) if constructions else [c.name for c in CONSTRUCTIONS]
    jobs = []
    for name in names:
        con = construction(name)
        plan_sizes, plan_k, plan_steps = MIN_P_PLAN[name]
        for n in _check_sizes(con, sizes if sizes else plan_sizes):
            jobs.append((name, n, instances or plan_k, steps or plan_steps, seed))
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i][0], jobs[i][1]) * jobs[i][3])
    results = _pool_map(min_p_row, [jobs[i] for i in order], workers)
    by_job = dict(zip(order, results))
    return [by_job[i] for i in range(len(jobs))]


# =============================================================================================
# markdown
# =============================================================================================


def _frac(r: FormatResult | None) -> str:
    return "" if r is None else f"{r.correct}/{r.total}"


def _chains(row: FormatRow) -> str:
    if not construction(row.name).has_chain:
        return "-"
    return " / ".join(_frac_chain(row.results.get(f)) for f in FLOAT_FORMATS)


def _frac_chain(r: FormatResult | None) -> str:
    return "" if r is None or r.chain_equal is None else f"{r.chain_equal}/{r.total}"


def formats_markdown(rows: Sequence[FormatRow]) -> str:
    head = "| Thm | construction | n | declared p | K | exact | float64 | float32 | bfloat16 | chain = exact (f64 / f32 / bf16) |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if r.error:
            what = r.error if r.error.startswith("in progress") else f"error: {r.error}"
            lines.append(f"| {r.theorem} | {r.name} | {r.n} | | | {what} | | | | |")
            continue
        cells = [_frac(r.results.get(f)) for f in FORMATS]
        marked = [c if c.split("/")[0] == c.split("/")[-1] or not c else f"**{c}**" for c in cells]
        lines.append(f"| {r.theorem} | {r.name} | {r.n} | {r.p} | {r.instances} | " + " | ".join(marked) + f" | {_chains(r)} |")
    return "\n".join(lines)


def failures_markdown(rows: Sequence[FormatRow], per_cell: int = 3) -> str:
    out = []
    for r in rows:
        for fmt in FORMATS:
            res = r.results.get(fmt)
            if res and res.failures:
                shown = "; ".join(res.failures[:per_cell]) + (f"; ... ({len(res.failures) - per_cell} more)" if len(res.failures) > per_cell else "")
                out.append(f"- {r.name} n={r.n} {fmt}: {shown}")
    return "\n".join(out) or "- none"


def breaking_points(rows: Sequence[FormatRow]) -> list[str]:
    """Per construction: the smallest n of the table at which each format is not 100% correct."""
    out = []
    for con in CONSTRUCTIONS:
        rs = sorted((r for r in rows if r.name == con.name and not r.error), key=lambda r: r.n)
        if not rs:
            continue
        parts = []
        for fmt in FORMATS:
            bad = [r.n for r in rs if fmt in r.results and r.results[fmt].correct < r.results[fmt].total]
            parts.append(f"{fmt}: " + (f"first wrong at n={bad[0]}" if bad else f"all correct (n <= {rs[-1].n})"))
        out.append(f"- Thm {con.theorem} {con.name}: " + "; ".join(parts))
    return out


def _scan_cell(row: MinPRow, route: str) -> str:
    if route == "builder" and row.builder != "accepts lower p":
        return row.builder
    s = row.summary(route)
    if not s["scanned"]:
        return "(nothing below declared)"
    lo = s["scanned"][-1]
    cont, anyp = s["min_p_contiguous"], s["min_p_any"]
    if cont is None and anyp is None:
        return f"none of {s['scanned'][0]}..{lo} passes"
    text = f"{cont if cont is not None else '-'}"
    if anyp is not None and anyp != cont:
        text += f" (also passes at {', '.join(str(p) for p in s['passing'] if cont is None or p < cont)})"
    if cont == lo:
        text += f" (scan stopped at {lo})"
    return text


def _first_fail(row: MinPRow) -> str:
    s = row.summary("requantised")
    cont = s["min_p_contiguous"]
    below = [st for st in row.requantised_scan if not st.ok and (cont is None or st.p < cont)]
    if not below:
        return ""
    st = below[0]
    where = f"instance {st.tried}/{st.total}, " if st.tried else ""
    return f"p={st.p}: {where}{st.first_failure}".replace("|", "\\|")


def min_p_markdown(rows: Sequence[MinPRow]) -> str:
    head = ("| Thm | construction | n | declared p | K | scanned | builder below declared | "
            "requantised: min p (all above pass) | bits saved | first failure below it |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if r.error:
            lines.append(f"| {r.theorem} | {r.name} | {r.n} | | | | error: {r.error} | | | |")
            continue
        summ = r.summary("requantised")
        cont = summ["min_p_contiguous"]
        saved = "" if cont is None else str(r.declared_p - cont)
        scanned = f"{summ['scanned'][0]}..{summ['scanned'][-1]}" if summ["scanned"] else "-"
        lines.append(f"| {r.theorem} | {r.name} | {r.n} | {r.declared_p} | {r.instances} | {scanned} | {_scan_cell(r, 'builder')} | "
                     f"{_scan_cell(r, 'requantised')} | {saved} | {_first_fail(r)} |")
    return "\n".join(lines)


SIZES_TEXT = """**Sizes.** Thm 4.6 / 5.6 at n = 16 .. 1024, 5.2 up to 256, 5.7 (b) up to 256, 4.7 up to 32,
5.3 and 5.7 (a) at n = 6 and 8 only: their long chains (hundreds to thousands of tokens) are
slow to decode exactly; `python -m proofs_check.precision --write FILE --large` takes 4.7 up to
n = 2048, 5.3 and 5.7 (a) up to n = 512 (hours: one record per instance and format in notes/precision/formats_large.jsonl,
so an interrupted run continues where it stopped), and `proofs-check precision NAME --n N` runs
any other size.

"""

SIZES_TEXT_LARGE = """**Sizes.** Thm 4.6 / 5.6 at n = 16 .. 1024, 5.2 up to 256, 5.7 (b) up to 256, and (`--large`,
`LARGE_PLAN`) 4.7 at n = 6 .. 2048, 5.3 and 5.7 (a) at n = 6 .. 512, decoded incrementally in every format (the
float formats too: `constructions.evaluate_float` caches keys and carried state).  Table 1 comes
from one record per instance and format in notes/precision/formats_large.jsonl (an hour or more
each at n = 512 for 5.7 (a); those chains checkpoint in notes/precision/partial/ and resume),
filled across sessions; a row whose records are not all there says "in progress".

"""

PREAMBLE = """# Precision limits: number formats and minimal p

Generated by `{command}` (do not edit
by hand; `proofs-check precision NAME [--n N ...] [--instances K] [--min-p] [--json]` runs one
construction).  Code: `proofs_check/precision.py`.

**Sample.** For each construction and n, K seeded instances (seed {seed}), hard cases first:
retrieval tasks with L = n data tokens over [n] (key at the first and at the last usable
position, repeated keys, the answer n, Counting thresholds at count - 1, count, count + 1,
a query made of all tokens, an absent query); IsTree graphs on n vertices (at n = 6 the
Figure 3 graph `{fig3}` first; a random tree, a non-tree with n - 1 edges, a path, Figure 3
family tree / non-tree, a star, a forest; Thm 5.7 (b) gets Figure 3 family graphs only, its
precondition).  Which instances were drawn is listed with each failure.

{sizes}**Correct** means the decoded answer equals the plain-Python reference answer of the task
(`proofs_check.tasks` `answer()`, `graphs.istree_answer`), never the exact model's answer.
Decoding is the `run` command's: no chain of thought for Thm 4.6 / 5.6 / 5.7 (b) (the first
token is the answer), greedy chain of thought for 4.7 and 5.7 (a) (until YES / NO, at most the
theorem's bound), in-context retrieval for 5.2 and 5.3 (Python `re` on the detokenized text).

## Table 1: number formats

The model is built at its **declared p** (the smallest p its builder accepts) and decoded with
`FastEvaluator(mode=...)`: `exact` is R_p with the rounding of A.2; `float64`, `float32`,
`bfloat16` decode the same weights to reals and run the same definitions in that IEEE type
with no R_p rounding (softmax with 1/sqrt(d), argmax ties to the lowest token id).  Cells:
correct / K (bold when not all correct).  "chain = exact": for CoT and retrieval models, how
many of the K decoded chains (every generated and retrieved token after the prompt) are equal
to the exact-mode chain, per float format; `-` for models that answer in one step.  A float
run that raises (a sequence beyond max_len, an invalid retrieval pattern) counts as wrong.

"""

MIN_P_TEXT = """
## Table 2: minimal p

Scan p = declared - 2, declared - 4, ... down to the row's "scanned" end (a bounded number of
odd p; no binary search: passing need not be monotone in p).  A p **passes** when the *exact* evaluation answers all K
instances correctly; an overflow (PrecisionOverflow), a token outside R_p, a weight outside
R_p or a wrong / missing answer fails it (the instances of a p are decoded in order and the
first failure ends that p: "instance i/K" in the last column).

* **builder below declared**: the construction's builder called with the lower p.  Every
  builder here raises PrecisionError below its declared p (it derives its constants from p and
  refuses a p its worst-case bounds do not cover), so this column reads "refused below declared".
* **requantised**: the declared-p model's weights rounded to R_p (nearest, ties even); the
  constants stay those chosen for the declared p.  The number is the smallest p such that every
  scanned p from it up to the declared one passes ("also passes at" lists passing p below a
  failure: non-monotone); "bits saved" = declared p - that p.  This is what the sample needs
  from this weight set: the declared p covers the worst case (longest sequences, largest
  scores), so the sample's minimum is a lower bound on what the construction needs, not a
  claim that the declared p is too large.

"""


def write_markdown(path: str, workers: int | None = None, seed: int = SEED, large: bool = False,
                   records: str | None = None, recorded_only: bool = False) -> str:
    """The whole notes/precision/formats.md.  ``records``: Table 1 from per-instance records in
    that JSONL file (proofs_check.precision_records: resumable; what ``--large`` uses), else
    one job per row as before; ``recorded_only``: decode nothing for Table 1, rows without all
    their records say "in progress"."""
    t0 = time.time()
    plan = LARGE_PLAN if large else TABLE_PLAN
    if records is not None:
        from .precision_records import recorded_format_rows

        rows = recorded_format_rows(plan, records, seed=seed, workers=workers, decode=not recorded_only)
    else:
        rows = float_format_rows(seed=seed, workers=workers, plan=plan)
    t1 = time.time()
    prows = minimal_p_rows(seed=seed, workers=workers)
    t2 = time.time()
    command = "python -m proofs_check.precision --write notes/precision/formats.md" + (" --large" if large else "")
    text = (PREAMBLE.format(seed=seed, fig3=FIGURE3_TEXT, command=command, sizes=SIZES_TEXT_LARGE if large else SIZES_TEXT)
            + formats_markdown(rows)
            + "\n\n### Where each format first fails (smallest n of the table)\n\n" + "\n".join(breaking_points(rows))
            + "\n\n### Failing instances\n\n" + failures_markdown(rows) + "\n"
            + MIN_P_TEXT + min_p_markdown(prows) + "\n"
            + f"\n_Generated in {t1 - t0:.0f} s (formats) + {t2 - t1:.0f} s (minimal p)._\n")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_text(path, text)  # temporary file + rename: no partial table on a crash
    return text


# =============================================================================================
# CLI
# =============================================================================================


def add_parser(subparsers) -> None:
    names = [c.name for c in CONSTRUCTIONS]
    p = subparsers.add_parser(
        "precision",
        help="number formats (exact / float64 / float32 / bfloat16) and minimal p of a construction",
        description="Decode a seeded sample of instances (hard cases first) with the named construction at its "
        "declared p in each number format and count the answers equal to the task's reference answer; "
        "with --min-p also scan p below the declared one (builder, and the weights requantised to R_p).",
    )
    from .precision_sweep import ALL, add_arguments, cmd_precision, size_list

    from .precision_machines import NAMES as machine_names

    p.add_argument("name", choices=[*names, *machine_names, ALL], metavar="NAME",
                   help=f"one of {', '.join(names)}; with --frontier also {', '.join(machine_names)}; or {ALL}")
    p.add_argument("--n", type=size_list, nargs="+", default=None, help="sizes, space- or comma-separated (default: the plan's sizes)")
    p.add_argument("--instances", type=int, default=None, help="instances per n (default: the table's)")
    p.add_argument("--seed", type=int, default=SEED, help=f"sample seed (default {SEED})")
    p.add_argument("--min-p", action="store_true", help="also scan p below the declared one (exact evaluation)")
    p.add_argument("--steps", type=int, default=None, help="odd p scanned below the declared one (default: the table's)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1: in this process; more: a local Dask cluster)")
    p.add_argument("--json", action="store_true", help="one JSON object per row")
    add_arguments(p)  # the sweep flags (proofs_check/precision_sweep.py)
    p.set_defaults(handler=cmd_precision)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proofs_check.precision", description="write the precision table")
    ap.add_argument("--write", metavar="FILE", help="write the markdown to FILE (else print it)")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--large", action="store_true",
                    help="Table 1 at issue #10's sizes: 4.7 up to n = 2048, 5.3, 5.7 (a) up to n = 512 (LARGE_PLAN; hours; "
                    "resumable: one record per instance and format, see --records)")
    ap.add_argument("--records", metavar="FILE",
                    help="read and append Table 1's per-instance records in FILE (default with --large: "
                    "notes/precision/formats_large.jsonl; 'none': one job per row, nothing kept); an "
                    "interrupted run continues where it stopped when run again")
    ap.add_argument("--recorded-only", action="store_true",
                    help="Table 1 from the records alone (no decoding; rows not all recorded say 'in progress')")
    args = ap.parse_args(argv)
    plan = LARGE_PLAN if args.large else TABLE_PLAN
    records = args.records
    if records is None and args.large:
        from .precision_records import LARGE_RECORDS

        records = LARGE_RECORDS
    if records == "none":
        records = None
    if args.recorded_only and records is None:
        ap.error("--recorded-only needs records (--large, or --records FILE)")
    if args.write:
        write_markdown(args.write, args.workers, args.seed, args.large, records, args.recorded_only)
        print(f"wrote {args.write}")
    elif records is not None:
        from .precision_records import recorded_format_rows

        rows = recorded_format_rows(plan, records, seed=args.seed, workers=args.workers, decode=not args.recorded_only)
        print(formats_markdown(rows))
        print("\n".join(breaking_points(rows)))
    else:
        rows = float_format_rows(seed=args.seed, workers=args.workers, plan=plan)
        print(formats_markdown(rows))
        print("\n".join(breaking_points(rows)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
