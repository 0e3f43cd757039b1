"""IsTree data files in Section 6's three formats (JSONL, seeded, reproducible).

``proofs-check data istree --n N --count K --format vanilla|cot|retrieval --out F.jsonl
[--seed S] [--family figure3|random]``

Each line is one JSON object::

    {"n": N, "edges": [[u, v], ...], "input": "<s> u ~ v ...", "label": "YES"|"NO",
     "format": ..., "target": ...}

* ``input``  - Detokenize(Tokenize(G)) (Eq. 4, edges in the sampled order);
* ``target`` - what the model must generate after the input:
  ``vanilla``: the label alone; ``cot``: Algorithm 1's yielded sequence A(G) then the label
  (:func:`algorithms.cot_algorithm1`); ``retrieval``: Algorithm 2's list L with compact
  queries and their retrieval results (:func:`algorithms.algorithm2`), ending with the label.

Graphs (Section 6: "we follow the procedure described in the proof of Theorem 4.7"): the
default ``figure3`` family draws x in {0,1}^(n-2) and k in [n-3], edges
``a ~ x_a + n - 1`` and ``k ~ k + 1`` in a random order, each written u < v (A.3); the label
is exactly balanced by alternating YES/NO and setting x_(k+1) accordingly.  ``random`` mixes
uniform random trees (YES) with random non-trees that also have n - 1 edges (NO), edges in a
random order and orientation.  The only randomness is ``random.Random(seed)``.
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

from constructions.errors import InputError
from constructions.limits import require_data_size
from constructions.vocab import detokenize

from .algorithms import algorithm2, cot_algorithm1
from .atomic_files import atomic_text, check_target
from .graphs import NO, YES, Graph, istree_answer, random_non_tree_n_minus_1, random_tree, shuffle_edges
from .lower_bounds import figure3_graph

FORMATS = ("vanilla", "cot", "retrieval")
FAMILIES = ("figure3", "random")


def sample_graph(rng: random.Random, n: int, want_tree: bool, family: str = "figure3") -> Graph:
    if family == "figure3":
        x = [rng.randint(0, 1) for _ in range(n - 2)]
        k = rng.randint(1, n - 3)
        x[k] = 1 - x[k - 1] if want_tree else x[k - 1]  # x_(k+1) vs x_k (1-based)
        g = shuffle_edges(rng, figure3_graph(x, k), orient=False)
        return g.canonical()
    if family == "random":
        return random_tree(rng, n) if want_tree else random_non_tree_n_minus_1(rng, n)
    raise InputError(f"unknown graph family {family!r}; choose one of {', '.join(FAMILIES)}")


def record(g: Graph, fmt: str) -> dict:
    label = istree_answer(g)
    if fmt == "vanilla":
        target = [label]
    elif fmt == "cot":
        target = cot_algorithm1(g)
    elif fmt == "retrieval":
        target = algorithm2(g).tokens
    else:
        raise InputError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if target[-1] != label:
        raise AssertionError(f"{fmt} target ends with {target[-1]} but IsTree(G) = {label} for {g.to_text()}")
    return {
        "n": g.n,
        "edges": [list(e) for e in g.edges],
        "input": detokenize(g.tokens()),
        "label": label,
        "format": fmt,
        "target": detokenize(target),
    }


def write_istree_data(n: int, count: int, fmt: str, seed: int, path: str | Path, family: str = "figure3") -> int:
    """Write ``count`` JSONL records; returns the number of YES records (count // 2 rounded up)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if family not in FAMILIES:
        raise InputError(f"unknown graph family {family!r}; choose one of {', '.join(FAMILIES)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 4:
        raise InputError(f"--n must be at least 4 (the Figure-3 family needs k in [n-3]; non-trees with n-1 edges need n >= 4), got {n!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"--count must be a whole number >= 0, got {count!r}")
    require_data_size(count, n)
    rng = random.Random(seed)
    yes = 0
    path = check_target(path)  # before any sampling: a bad --out is refused up front
    with atomic_text(path) as fh:  # a crash half-way leaves no partial file
        for i in range(count):
            want_tree = i % 2 == 0
            g = sample_graph(rng, n, want_tree, family)
            rec = record(g, fmt)
            if (rec["label"] == YES) != want_tree:
                raise AssertionError(f"sampled a {'non-' if want_tree else ''}tree by mistake: {g.to_text()}")
            yes += rec["label"] == YES
            fh.write(json.dumps(rec) + "\n")
    return yes


# ---- reading the records back (``run istree --input``) ------------------------------------------

RECORD_KEYS = frozenset({"n", "edges", "input", "label", "format", "target"})


@dataclass(frozen=True)
class LabelledGraph:
    """A graph read from a ``data istree`` record, with the record's label and format.

    The label travels beside the graph only to be *compared* with the model's answer after
    decoding (``run``'s ``"label"`` / ``"correct"`` fields); the model sees ``graph.tokens()``."""

    graph: Graph
    label: str
    fmt: str


def is_data_record(data: object) -> bool:
    """A JSON object with any key only a ``data istree`` record has."""
    return isinstance(data, dict) and bool(set(data) & (RECORD_KEYS - {"n", "edges"}))


def read_record(data: dict, n: int | None = None) -> LabelledGraph:
    """One ``data istree`` line back as a graph; every field must agree with the edges, so a
    hand-edited line cannot carry an input the graph does not tokenize to."""
    extra = set(data) - RECORD_KEYS
    if extra:
        raise InputError(f"unknown keys {sorted(extra)} in a data istree record; expected {sorted(RECORD_KEYS)}")
    g = Graph.from_json({"n": data.get("n") if n is None else n, "edges": data.get("edges")})
    fmt, label = data.get("format", "vanilla"), data.get("label")
    if fmt not in FORMATS:
        raise InputError(f"unknown data format {fmt!r} in the record; choose one of {', '.join(FORMATS)}")
    if label not in (YES, NO):
        raise InputError(f"the record's label must be \"YES\" or \"NO\", got {label!r}")
    if "input" in data and data["input"] != detokenize(g.tokens()):
        raise InputError(f"the record's input {data['input']!r} is not the tokenized edges "
                         f"{detokenize(g.tokens())!r}; fix or drop the \"input\" field")
    target = data.get("target")
    if target is not None and (not isinstance(target, str) or target.split()[-1:] != [label]):
        raise InputError(f"the record's target must be a string ending with its label {label}, got {target!r}")
    return LabelledGraph(g, label, fmt)


# ---- CLI ---------------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``data istree`` on an argparse subparsers object; the handler is ``args.handler``
    (takes the parsed args, returns an exit code)."""
    data = subparsers.add_parser("data", help="write training/evaluation data files")
    sub = data.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("istree", help="IsTree JSONL in Section 6's formats (vanilla, cot, retrieval)")
    p.add_argument("--n", type=int, required=True, help="number of vertices (>= 4)")
    p.add_argument("--count", type=int, required=True, help="number of examples (half YES, half NO)")
    p.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    p.add_argument("--out", required=True, help="output .jsonl file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--family", choices=FAMILIES, default="figure3",
                   help="figure3: Theorem 4.7's construction (Section 6); random: random trees vs non-trees with n-1 edges")
    p.set_defaults(handler=run_data_istree)
    return data


def run_data_istree(args: argparse.Namespace) -> int:
    yes = write_istree_data(args.n, args.count, args.fmt, args.seed, args.out, args.family)
    print(f"wrote {args.count} {args.fmt} examples (n = {args.n}, {yes} YES, {args.count - yes} NO, "
          f"seed {args.seed}, family {args.family}) to {args.out}")
    return 0
