"""``proofs-check run TASK --model M [--n N] [--p P] (--input FILE.jsonl | --instance JSON) [--json]``.

Runs a construction on task instances, one JSON object per instance in and out.

Tasks come from plug-in modules listed in :data:`RUNNER_MODULES`; each exports
``RUNNERS: dict[str, TaskRunner]`` (see :class:`proofs_check.retrieval_runners.TaskRunner`):
``name``, ``models``, ``add_arguments(parser)`` (extra options, e.g. IsTree's ``--edges``),
``instances_from_args(args)`` (instances given by those options, or None), ``parse(data, n)``
(one JSON object -> instance) and ``run(instance, model, n, p, evaluator, cache, oracle) -> dict``;
optionally ``bind(args)``, a copy of the runner carrying its own options (tm's ``--max-steps``).
Modules not written yet are skipped.

Output per instance (``--json``: one JSON line each)::

    {"answer": ..., "generated": [...], "retrievals": [{"pattern": ..., "result": ...}], "p": P, "n": N,
     ...the instance's own fields..., "instance": K, "line": L}

``"line"`` (the --input file line, blank lines counted) only for instances read from a file.  A
record given back as input is run again (:mod:`proofs_check.run_records`).

An instance that cannot be run (bad JSON, a number above n, p too small, ...) gives one
``error: instance K: ...`` line on stderr (and ``{"instance": K, "error": "..."}`` on stdout
with ``--json``); the other instances still run, and the exit status is then 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from constructions.decode import RegexOracle
from constructions.errors import InputError, ProofsCheckError
from constructions.json_text import decode_utf8, parse_json
from constructions.numerics import check_p
from proofs_check.device_option import add_device_argument
from proofs_check.plugins import import_modules
from proofs_check.progress import BarEvaluator, each, wanted
from proofs_check.run_records import is_run_record, refuse_error_record

RUNNER_MODULES: tuple[str, ...] = (
    "proofs_check.retrieval_runners",
    "proofs_check.istree_runners",
    "proofs_check.tm_runners",
    "proofs_check.circuit_runners",
)


def load_runners() -> dict[str, Any]:
    runners: dict[str, Any] = {}
    for module in import_modules(RUNNER_MODULES):
        for task, runner in module.RUNNERS.items():
            if task in runners:
                raise RuntimeError(f"task {task!r} is provided by two runner modules")
            runners[task] = runner
    return runners


def add_parser(subparsers) -> None:
    runners = load_runners()
    models = sorted({m for r in runners.values() for m in r.models})
    p = subparsers.add_parser(
        "run",
        help="run a construction on task instances (JSON in, JSON out)",
        description="Run a task's construction on instances. Index: {\"tokens\": [...], \"query\": i}; "
        "AR: {\"tokens\": [...], \"query\": q}; cgram: {\"tokens\": [...], \"query\": [q1, ..., q_(c-1)]} "
        "(c = len(query) + 1); count: {\"tokens\": [...], \"query\": q, \"threshold\": t}.",
    )
    p.add_argument("task", choices=sorted(runners), metavar="TASK", help=f"one of {', '.join(sorted(runners))}")
    p.add_argument("--model", required=True, choices=models, help=f"one of {', '.join(models)}")
    p.add_argument("--n", type=int, default=None, help="build the model for this n (default: the largest number in each instance)")
    p.add_argument("--p", type=int, default=None, help="precision (default: the smallest the construction accepts)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE.jsonl", help="one JSON instance per line ('-' for stdin)")
    src.add_argument("--instance", metavar="JSON", help="one instance as a JSON object")
    p.add_argument("--json", action="store_true", help="one JSON object per instance on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none anyway off a terminal)")
    p.add_argument("--evaluator", choices=("fast", "reference"), default="fast",
                   help="fast (default; same bits) or reference (slow, obviously exact)")
    add_device_argument(p)
    seen: set[int] = set()
    for runner in runners.values():  # task-specific options (IsTree's --edges); each added once
        if id(type(runner)) not in seen:
            seen.add(id(type(runner)))
            runner.add_arguments(p)
    p.set_defaults(handler=cmd_run)


def _raw_instances(args: argparse.Namespace, runner) -> Iterator[tuple[int, Any, int | None]]:
    """(1-based index, JSON object or the error that line gives, its --input file line or None)."""
    from_args = runner.instances_from_args(args)
    if from_args is not None:
        yield from ((k, item, None) for k, item in enumerate(from_args, 1))
        return
    if args.instance is not None:
        try:
            yield 1, parse_json(args.instance, what="--instance"), None
        except InputError as exc:
            yield 1, exc, None
        return
    if args.input is None:
        raise InputError("give the instances with --input FILE.jsonl or --instance JSON")
    data = _input_bytes(args.input)
    if not data.strip():
        raise InputError(f"--input {args.input} holds no instances (it is empty); write one JSON object per line")
    yield from _jsonl_instances(data)


def _input_bytes(name: str) -> bytes:
    """The raw bytes of --input (a file, or '-' for stdin); decoding is per line."""
    if name == "-":
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    path = Path(name)
    if path.is_dir():
        raise InputError(f"--input {name} is a directory; give a .jsonl file (one JSON instance per line)")
    if not path.is_file():
        raise InputError(f"input file {name} does not exist (or is not a regular file)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read input file {name}: {exc.strerror or exc}") from None


def _jsonl_instances(data: bytes) -> Iterator[tuple[int, Any, int]]:
    """JSON Lines: one instance per b"\\n"-separated line (a trailing \\r and a leading BOM are
    dropped, blank lines skipped); a line that is not UTF-8 or not JSON is that instance's error.
    Yields (instance number K among the non-blank lines, object or error, file line number)."""
    k = 0
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        raw = raw[:-1] if raw.endswith(b"\r") else raw
        try:
            line = decode_utf8(raw, what="the line")
        except InputError as exc:
            k += 1
            yield k, exc, lineno
            continue
        if not line.strip():
            continue
        k += 1
        try:
            yield k, parse_json(line, what="the line"), lineno
        except InputError as exc:
            yield k, exc, lineno


def _position(k: int, lineno: int | None) -> dict:
    """``{"instance": K}`` and, for an --input file, ``"line": L`` (its line, blank lines counted)."""
    return {"instance": k} if lineno is None else {"instance": k, "line": lineno}


def _instance_data(runner, data: Any) -> Any:
    """The instance a line holds: itself, or, for an earlier ``run`` record, its instance fields
    (:mod:`proofs_check.run_records`: the earlier outputs are dropped unread)."""
    refuse_error_record(data)
    if not is_run_record(data):
        return data
    reader = getattr(runner, "records", None)
    if reader is None:
        raise InputError(f"task {runner.name} does not read `run` records back; give the instance itself")
    return reader.instance(data)


def _answer(runner, data: Any, args: argparse.Namespace, evaluator, cache, oracle) -> dict:
    """One instance through the runner (its decode bars, if any, closed before anything is printed)."""
    try:
        if isinstance(data, Exception):
            raise data
        instance = runner.parse(_instance_data(runner, data), args.n)
        return runner.run(instance, args.model, args.n, args.p, evaluator, cache, oracle)
    finally:
        if isinstance(evaluator, BarEvaluator):  # progress on a terminal
            evaluator.close()


def _human(out: dict) -> str:
    head = [f"answer: {out['answer']}"] if "answer" in out else [  # a tm record has no single answer
        f"halted: {out['halted']}", f"steps={out['steps']}", f"state={out['state']}", f"ones={out['ones']}",
        f"tape[{out['tape_start']}..]={''.join(map(str, out['tape']))}"]
    parts = head + [f"n={out['n']}", f"p={out['p']}", "generated: " + " ".join(out["generated"])]
    if "label" in out:  # a `data istree` record: its label beside the answer
        parts.insert(1, f"label: {out['label']} ({'correct' if out['correct'] else 'WRONG'})")
    for r in out.get("retrievals", []):
        parts.append(f"retrieval: {r['pattern']!r} -> {r['result']!r}")
    return "  ".join(parts)


def cmd_run(args: argparse.Namespace) -> int:
    from .retrieval_runners import ModelCache, make_evaluator

    runners = load_runners()
    runner = runners[args.task]
    if hasattr(runner, "bind"):  # a runner with options of its own (tm's --max-steps)
        runner = runner.bind(args)
    if args.model not in runner.models:
        raise InputError(f"task {args.task} has no model {args.model!r}; choose one of {', '.join(runner.models)}")
    if args.n is not None and args.n < 1:
        raise InputError(f"--n must be a positive integer, got {args.n}")
    if args.p is not None:
        check_p(args.p)  # an even, tiny or enormous p is refused once, before any instance
    show = wanted(args.quiet)
    evaluator = make_evaluator(args.evaluator, args.device)
    evaluator = BarEvaluator(evaluator) if show else evaluator  # a per-token bar for each decode
    cache = ModelCache()
    failures = 0
    with RegexOracle() as oracle:
        for k, data, lineno in each(_raw_instances(args, runner), show, f"run {args.task}", "instance"):
            try:
                out = {**_answer(runner, data, args, evaluator, cache, oracle), **_position(k, lineno)}
            except ProofsCheckError as exc:
                failures += 1
                message = " ".join(str(exc).split())
                where = "" if lineno is None else f"line {lineno}: "  # the file line, blank lines counted
                print(f"error: instance {k}: {where}{message}", file=sys.stderr)
                if args.json:
                    print(json.dumps({**_position(k, lineno), "error": message}), flush=True)
                continue
            print(json.dumps(out) if args.json else getattr(runner, "human", _human)(out), flush=True)
    return 2 if failures else 0
