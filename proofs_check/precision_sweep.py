"""``proofs-check precision`` as a sweep (issue #11): one cell per (construction, n, measurement),
run on the Dask executor of :mod:`proofs_check.sweep`, appended to a JSONL file as they finish.

    proofs-check precision NAME|all [--n 8,16,32 ...] [--instances K] [--formats exact,float64,...]
        [--min-p] [--frontier] [--route rebuild|requantise] [--out FILE.jsonl] [--resume]
        [--plot FILE.png] [--workers N] [--scheduler ADDRESS] [--device cpu|cuda] [--quiet] [--json]

Measurements: the number formats (``precision.format_row``; run unless ``--frontier`` is given
without ``--formats``), the minimal-p scan (``--min-p``, ``precision.min_p_row``) and the
frontier (``--frontier``, ``frontier.frontier_row``).  Sizes: ``--n`` takes space-separated
values, comma lists, or both (``--n 8,16 32``); without it each measurement's plan.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

from constructions.errors import InputError

from . import precision as P
from . import precision_machines as PM
from .frontier import ROUTES, FrontierRow, frontier_cell
from .sweep import Executor, results_or_raise, run_cells

ALL = "all"

#: (sizes, instances) of the frontier per construction (the notes' plan with
#: precision_machines.FRONTIER_PLAN, about 40 min on 2 busy cores: the retrieval models go to
#: n = 1024, IsTree's long CoT / retrieval chains stop earlier, see notes/precision/frontier.md)
FRONTIER_PLAN: dict[str, tuple[tuple[int, ...], int]] = {
    **{c.name: ((8, 16, 32, 64, 128, 256, 512, 1024), 3) for c in P.CONSTRUCTIONS if c.theorem in ("4.6", "5.6")},
    **{c.name: ((8, 16, 32, 64, 128, 256, 512, 1024), 3) for c in P.CONSTRUCTIONS if c.theorem == "5.2"},
    "dfs-transformer": ((6, 8, 16, 32, 64), 3),
    "istree-rag-rnn": ((6, 8, 16, 32), 2),
    "istree-hybrid": ((6, 8, 16), 2),
    "istree-binary-hybrid": ((8, 16, 32, 64, 128, 256), 3),
}


# ---- argument types (argparse calls them: a ValueError / ArgumentTypeError is exit 2) -------


def size_list(text: str) -> list[int]:
    """One ``--n`` word: ``64`` or ``8,16,32`` (positive integers)."""
    parts = [t.strip() for t in text.split(",")]
    try:
        sizes = [int(t) for t in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be positive integers such as 8,16,32; got {text!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive integers; got {text!r}")
    return sizes


def format_list(text: str) -> list[str]:
    """``--formats exact,float32``: a comma list of :data:`precision.FORMATS`."""
    got = [t.strip() for t in text.split(",") if t.strip()]
    bad = [f for f in got if f not in P.FORMATS]
    if bad or not got:
        raise argparse.ArgumentTypeError(f"unknown number format(s) {', '.join(bad) or repr(text)}; use a comma list of {', '.join(P.FORMATS)}")
    return list(dict.fromkeys(got))


def positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The sweep flags of ``proofs-check precision`` (beside the original ones in precision.add_parser)."""
    p.add_argument("--formats", type=format_list, default=None, help=f"comma list of {', '.join(P.FORMATS)} (default: all; with --frontier: none unless given)")
    p.add_argument("--frontier", action="store_true", help="measure the smallest I, F and p at which the rebuilt model answers every instance")
    p.add_argument("--route", choices=ROUTES, default="rebuild", help="frontier models: rebuilt for the bits (default) or the declared weights requantised")
    p.add_argument("--out", metavar="FILE.jsonl", default=None, help="append one JSON record per finished cell")
    p.add_argument("--resume", action="store_true", help="skip cells already finished in --out (error records run again)")
    p.add_argument("--plot", metavar="FILE.png", default=None, help="draw declared and measured bits and the float formats' breaking n against n")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None, help="an existing Dask scheduler (default: a local cluster when --workers > 1)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device of the fast evaluator")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---- cells ---------------------------------------------------------------------------------


def names_of(name: str, frontier: bool = False) -> list[str]:
    """The constructions a NAME means: ``all`` is every token-task construction, and with
    ``--frontier`` every machine family too (they have only the frontier measurement)."""
    if name == ALL:
        return [c.name for c in P.CONSTRUCTIONS] + (list(PM.NAMES) if frontier else [])
    if name in PM.NAMES:
        return [name]
    P.construction(name)  # refuses an unknown name with the list
    return [name]


def _machine_cells(name: str, args: argparse.Namespace, sizes: Sequence[int]) -> list[dict]:
    """A machine family's cells: the frontier only (its models are built per sample, so the
    number-format table and the min-p scan of one declared model do not apply)."""
    if args.name != ALL and (not args.frontier or args.formats is not None or args.min_p):
        raise InputError(f"{name} (Thm {PM.family(name).theorem}) has only the frontier measurement: "
                         f"use proofs-check precision {name} --frontier (without --formats / --min-p)")
    if not args.frontier:
        return []
    plan_n, plan_k = PM.FRONTIER_PLAN[name]
    return [{"kind": "frontier", "name": name, "n": n, "k": args.instances or plan_k, "seed": args.seed,
             "route": args.route, "device": args.device} for n in PM.check_sizes(name, list(sizes) if sizes else list(plan_n))]


def _sizes(con: P.Construction, given: Sequence[int] | None, plan: Sequence[int]) -> list[int]:
    return P._check_sizes(con, list(given) if given else list(plan))


def build_cells(args: argparse.Namespace) -> list[dict]:
    sizes = [n for words in (args.n or []) for n in (words if isinstance(words, list) else [words])]
    want_formats = args.formats is not None or not args.frontier
    cells = []
    for name in names_of(args.name, args.frontier):
        if name in PM.NAMES:
            cells += _machine_cells(name, args, sizes)
            continue
        con = P.construction(name)
        if want_formats:
            plan_n, plan_k = P.TABLE_PLAN[name]
            cells += [{"kind": "formats", "name": name, "n": n, "k": args.instances or plan_k, "seed": args.seed,
                       "formats": args.formats or list(P.FORMATS), "device": args.device} for n in _sizes(con, sizes, plan_n)]
        if args.min_p:
            plan_n, plan_k, plan_steps = P.MIN_P_PLAN[name]
            cells += [{"kind": "min_p", "name": name, "n": n, "k": args.instances or plan_k, "seed": args.seed,
                       "steps": args.steps or plan_steps} for n in _sizes(con, sizes, plan_n)]
        if args.frontier:
            plan_n, plan_k = FRONTIER_PLAN[name]
            cells += [{"kind": "frontier", "name": name, "n": n, "k": args.instances or plan_k, "seed": args.seed,
                       "route": args.route, "device": args.device} for n in _sizes(con, sizes, plan_n)]
    return cells


def precision_cell(cell: dict) -> dict:
    """One sweep cell of ``proofs-check precision`` (top level: sent to Dask workers)."""
    if cell["kind"] == "formats":
        return P.format_row(cell["name"], cell["n"], cell["k"], cell["seed"], tuple(cell["formats"]), cell.get("device", "cpu")).to_json()
    if cell["kind"] == "min_p":
        return P.min_p_row(cell["name"], cell["n"], cell["k"], cell["steps"], cell["seed"]).to_json()
    if cell["kind"] == "frontier":
        return frontier_cell(cell)
    raise InputError(f"unknown precision cell kind {cell['kind']!r}")


# ---- rows back from JSON -------------------------------------------------------------------


def format_row_of(d: dict) -> P.FormatRow:
    return P.FormatRow(**{**d, "results": {k: P.FormatResult(**v) for k, v in d["results"].items()}})


def min_p_row_of(d: dict) -> P.MinPRow:
    keep = {k: v for k, v in d.items() if not k.endswith("_summary")}
    return P.MinPRow(**{**keep, "builder_scan": [P.ScanStep(**s) for s in d["builder_scan"]],
                        "requantised_scan": [P.ScanStep(**s) for s in d["requantised_scan"]]})


def rows_by_kind(cells: Sequence[dict], results: Sequence[dict]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"formats": [], "min_p": [], "frontier": []}
    readers = {"formats": format_row_of, "min_p": min_p_row_of, "frontier": FrontierRow.from_json}
    for cell, res in zip(cells, results):
        out[cell["kind"]].append(readers[cell["kind"]](res))
    return out


# ---- the command ---------------------------------------------------------------------------


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available to torch here; use --device cpu")


def run_sweep(args: argparse.Namespace) -> dict[str, list[Any]]:
    """Validate, build the cells, run them (resuming from --out) and read the rows back."""
    if args.instances is not None and args.instances < 1:
        raise InputError("--instances must be a positive integer")
    if args.steps is not None and args.steps < 1:
        raise InputError("--steps must be a positive integer")
    if args.resume and not args.out:
        raise InputError("--resume needs --out FILE.jsonl (the records to resume from)")
    if args.plot:
        from .atomic_files import check_target

        check_target(args.plot)
    check_device(args.device)
    executor = Executor(workers=args.workers, scheduler=args.scheduler, quiet=args.quiet)
    cells = build_cells(args)
    records = run_cells(cells, precision_cell, out=args.out, resume=args.resume, executor=executor, desc="precision")
    return rows_by_kind(cells, results_or_raise(records))


def cmd_precision(args: argparse.Namespace) -> int:
    from .frontier_notes import frontier_markdown, plot_frontier

    rows = run_sweep(args)
    if args.json:
        for kind in ("formats", "min_p", "frontier"):
            for r in rows[kind]:
                print(json.dumps({"kind": kind, **r.to_json()}), flush=True)
    else:
        blocks = []
        if rows["formats"]:
            blocks += [P.formats_markdown(rows["formats"]), P.failures_markdown(rows["formats"])]
        if rows["min_p"]:
            blocks.append(P.min_p_markdown(rows["min_p"]))
        if rows["frontier"]:
            blocks.append(frontier_markdown(rows["frontier"]))
        print("\n\n".join(blocks))
    if args.plot:
        plot_frontier(args.plot, rows["frontier"], rows["formats"], args.route)
    errors = any(r.error for kind in rows.values() for r in kind)
    return 2 if errors else 0
