"""``proofs-check``: verify the paper's claims, inspect models, run a model on tokens.

Subcommands::

    proofs-check list [--models]
    proofs-check verify [--only ID ...] [--profile ci|dev|thorough] [--json] [--quiet]
    proofs-check inspect MODEL_FILE_OR_NAME [--n N] [--p P] [--param KEY=VALUE ...]
                         [--matrix NAME ...] [--all] [--export FILE.json] [--plot FILE.png]
    proofs-check run-model MODEL_FILE_OR_NAME --tokens "..." [--step | --cot | --rag] [--max-steps N]
                           [--answers "..."] [--evaluator fast|reference] [--quiet]
                           [--number-format exact|float64|float32|bfloat16] [--json]
    proofs-check errata [--json] [--run] [ID ...]
    proofs-check build NAME [--n N] [--p P] [--param KEY=VALUE ...] --out FILE.safetensors

Exit status: 0 success (every selected check passed), 1 a check failed, 2 bad input (every
:class:`ProofsCheckError` and every usage error is one ``error: ...`` line on stderr, never a
traceback).

Adding a subcommand: write a module exporting ``add_parser(subparsers)``, which adds its parser
and sets ``handler=fn`` (``fn(args) -> int``) with ``set_defaults``, and list it in
:data:`SUBCOMMAND_MODULES`; modules not written yet are skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from constructions.errors import InputError, ProofsCheckError
from proofs_check.device_option import add_device_argument
from proofs_check.plugins import import_modules

PROG = "proofs-check"

# Further subcommands, each a module with add_parser(subparsers).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "proofs_check.run_command",
    "proofs_check.data",
    "proofs_check.precision",
    "proofs_check.compile_rnn",
    "proofs_check.errata",
    "proofs_check.build_command",
)


class UsageError(ProofsCheckError):
    """A command line argparse could not read."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so main() owns the output."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _json_default(value: Any) -> Any:
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return str(value)


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=1, default=_json_default)


# ---- list ----------------------------------------------------------------------------------


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="every registered check with its title and claim")
    p.add_argument("--models", action="store_true", help="list the catalog of named models instead")
    p.set_defaults(handler=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    if args.models:
        from . import catalog

        for name in catalog.names():
            print(catalog.describe(name))
        return 0
    from . import registry

    checks = registry.all_checks()
    if not checks:
        print("no checks are registered yet")
    for c in checks:
        print(f"{c.id}  {c.title}{'  [slow]' if c.slow else ''}")
        print(f"    claim: {c.claim}")
    return 0


# ---- verify --------------------------------------------------------------------------------


def _add_verify(sub) -> None:
    p = sub.add_parser("verify", help="run the registered property checks")
    p.add_argument("--only", nargs="+", metavar="ID", help="check ids to run (default: all), e.g. B.13 4.6")
    p.add_argument("--profile", default="ci", help="ci (default, derandomized), dev or thorough")
    p.add_argument("--json", action="store_true", help="print a JSON list of outcomes instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--workers", type=int, default=1, help="run checks in parallel on N Dask worker processes (default 1: in order, here)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None, help="run the checks on an existing Dask cluster")
    p.set_defaults(handler=cmd_verify)


def _run_one(check, profile) -> dict[str, Any]:
    """Run one check; a crash is a failed check with the exception in its detail."""
    start = time.perf_counter()
    try:
        outcome = check.run(profile)
        passed, cases, detail, measured = outcome.passed, outcome.cases, outcome.detail, dict(outcome.measured)
    except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
        passed, cases, measured = False, 0, {}
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        detail = f"the check raised {type(exc).__name__}: {exc}{where}"
    return {
        "id": check.id,
        "title": check.title,
        "claim": check.claim,
        "cases": cases,
        "passed": bool(passed),
        "seconds": round(time.perf_counter() - start, 3),
        "detail": detail,
        "measured": measured,
    }


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def verify_table(results: list[dict[str, Any]], profile_name: str) -> str:
    header = ["check", "claim", "cases", "result", "time"]
    rows = [
        [r["id"], _clip(r["claim"], 72), str(r["cases"]), "PASS" if r["passed"] else "FAIL", f"{r['seconds']:.2f}s"]
        for r in results
    ]
    widths = [max(len(x[c]) for x in [header, *rows]) for c in range(len(header))]
    right = {2, 4}

    def fmt(row: list[str]) -> str:
        return "  ".join(v.rjust(w) if c in right else v.ljust(w) for c, (v, w) in enumerate(zip(row, widths))).rstrip()

    lines = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    failed = [r for r in results if not r["passed"]]
    for r in failed:
        lines.append("")
        lines.append(f"FAILED {r['id']} {r['title']}")
        lines += ["    " + line for line in (r["detail"] or "(no detail)").splitlines()]
    total = sum(r["seconds"] for r in results)
    lines.append("")
    lines.append(f"{len(results) - len(failed)} of {len(results)} checks passed in {total:.1f}s (profile {profile_name})")
    return "\n".join(lines)


def _run_with_progress(check, profile, quiet: bool) -> dict[str, Any]:
    """_run_one with a per-example bar (Profile.on_case, called by property_check) on a terminal."""
    import dataclasses

    from .progress import bar, wanted

    progress = bar(wanted(quiet), None, check.id, "case")
    if progress is None:
        return _run_one(check, profile)
    try:
        return _run_one(check, dataclasses.replace(profile, on_case=lambda: progress.update(1)))
    finally:
        progress.close()


def verify_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """One check as a sweep cell ``{"id", "profile"}`` (top level: runs in a Dask worker)."""
    from . import registry

    (check,) = [c for c in registry.select([cell["id"]]) if c.id == cell["id"]]
    return _run_one(check, registry.get_profile(cell["profile"]))


def _verify_parallel(checks, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The checks on the sweep executor (proofs_check.sweep), results in the registry's order."""
    from .sweep import Executor, run_cells

    cells = [{"id": c.id, "profile": args.profile} for c in checks]
    records = run_cells(cells, verify_cell, executor=Executor(args.workers, args.scheduler, args.quiet), desc="checks")
    return [r["result"] if r["status"] == "ok" else
            {"id": c.id, "title": c.title, "claim": c.claim, "cases": 0, "passed": False, "seconds": r["seconds"] or 0.0,
             "detail": f"the check's worker failed: {r['error']}", "measured": {}} for c, r in zip(checks, records)]


def _verify_here(i: int, total: int, check, profile, quiet: bool) -> dict[str, Any]:
    """One check in this process, with its progress line on stderr."""
    if not quiet:
        print(f"[{i}/{total}] {check.id} {check.title} ...", end="", file=sys.stderr, flush=True)
    result = _run_with_progress(check, profile, quiet)
    if not quiet:
        print(f" {'PASS' if result['passed'] else 'FAIL'} ({result['seconds']:.1f}s)", file=sys.stderr, flush=True)
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    from . import registry

    profile = registry.get_profile(args.profile)
    checks = registry.select(args.only)
    if not checks:
        raise ProofsCheckError("no checks are registered yet, so there is nothing to verify")
    if args.workers < 1:
        raise InputError("--workers must be a positive integer")
    if args.workers > 1 or args.scheduler:
        results = _verify_parallel(checks, args)
    else:
        results = [_verify_here(i, len(checks), check, profile, args.quiet) for i, check in enumerate(checks, start=1)]
    if args.json:
        print(_dumps(results))
    else:
        print(verify_table(results, profile.name))
    return 0 if all(r["passed"] for r in results) else 1


# ---- models: file or catalog name ----------------------------------------------------------


def _add_model_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL_FILE_OR_NAME", help="a model file, or a catalog name (`list --models`)")
    p.add_argument("--n", type=int, help="catalog models: problem size n")
    p.add_argument("--p", type=int, help="catalog models: precision p (odd)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="catalog models: builder parameter")


def load_model_arg(args: argparse.Namespace):
    """An existing path is a model file; anything else is a catalog name built with the params."""
    from . import catalog

    params = dict(catalog.parse_param(t) for t in args.param)
    for key in ("n", "p"):
        value = getattr(args, key)
        if value is not None:
            if key in params:
                raise ProofsCheckError(f"{key} is given twice (--{key} and --param {key}=...)")
            params[key] = value
    path = Path(args.model)
    if path.exists():
        if params:
            raise ProofsCheckError(
                f"{args.model} is a model file; --n, --p and --param apply only to catalog names"
            )
        if path.is_dir():
            raise ProofsCheckError(f"{args.model} is a directory, not a model file")
        from constructions.modelfile import load_model

        try:
            return load_model(path), str(path)
        except OSError as exc:
            raise ProofsCheckError(f"cannot read model file {args.model}: {exc.strerror or exc}") from None
    if path.suffix == ".safetensors" or "/" in args.model or "\\" in args.model:
        raise ProofsCheckError(f"no model file {args.model!r}; check the path")
    model = catalog.build(args.model, **params)
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return model, f"{args.model}({shown})" if shown else args.model


# ---- inspect -------------------------------------------------------------------------------


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="report a model's architecture, sizes, dimensions and weights")
    _add_model_source(p)
    p.add_argument("--matrix", action="append", default=[], metavar="NAME",
                   help="print this weight matrix (exact name or glob, e.g. 'layer1.head1.W_K', 'layer2.*')")
    p.add_argument("--all", action="store_true",
                   help="print every matrix (or the --matrix ones) with all-zero rows and columns kept")
    p.add_argument("--export", metavar="FILE", help="write every weight (exact, as strings), names and meta as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write the non-empty weight matrices as symlog heatmaps")
    p.set_defaults(handler=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from . import inspect_model

    model, label = load_model_arg(args)
    print(inspect_model.report(model, args.matrix, args.all, title=label), end="")
    if args.export:
        print(f"exported: {inspect_model.write_export(model, args.export)}")
    if args.plot:
        print(f"plotted: {inspect_model.plot(model, args.plot, args.matrix, args.all)}")
    return 0


# ---- run-model -----------------------------------------------------------------------------


def _add_run_model(sub) -> None:
    p = sub.add_parser("run-model", help="run a model on a token sequence: one step, chain of thought or retrieval")
    _add_model_source(p)
    p.add_argument("--tokens", required=True, help='the prompt, tokens separated by spaces, e.g. "<s> 3 1 2 ~"')
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--cot", action="store_true", help="greedy chain of thought until an answer token (Def A.4)")
    mode.add_argument("--rag", action="store_true", help="chain of thought with in-context retrieval (Def A.5)")
    mode.add_argument("--step", action="store_true", help="one forward step: the next token (default unless the model declares a decoding)")
    p.add_argument("--max-steps", type=int, help="most generated tokens before the answer (default: to max_len)")
    p.add_argument("--answers", default=None,
                   help='tokens that end decoding (default: the model\'s declared answers, see `inspect`; else "YES NO")')
    p.add_argument("--evaluator", choices=("reference", "fast"), default="fast",
                   help="fast (default: the same bits as reference, by the cross-checks) or reference (slow, plain Python)")
    p.add_argument("--number-format", choices=("exact", "float64", "float32", "bfloat16"), default="exact",
                   help="exact R_p (default), or the same weights in an IEEE format without R_p rounding "
                        "(fast evaluator): where real hardware differs")
    add_device_argument(p)
    p.add_argument("--tie", choices=("even", "away"), default="even", help="rounding of exact ties (A.2)")
    p.add_argument("--matmul", choices=("round_once", "round_products"), default="round_once",
                   help="one rounding per matrix-product entry, or one per scalar product")
    p.add_argument("--overflow", choices=("raise", "saturate"), default="raise",
                   help="on leaving R_p: raise (default) or, one step only, clip and report where")
    p.add_argument("--json", action="store_true", help="print {generated, answer, retrievals, p} as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none anyway off a terminal)")
    p.set_defaults(handler=cmd_run_model)


def make_evaluator(kind: str, arith, number_format: str = "exact", device: str = "cpu"):
    from .device_option import require_device

    device = require_device(device, "fast" if number_format != "exact" else kind)
    if number_format != "exact":
        from constructions.evaluate_fast import FastEvaluator

        return FastEvaluator(arith, device=device, mode=number_format)
    if kind == "reference":
        from constructions.evaluate_reference import ReferenceEvaluator

        return ReferenceEvaluator(arith)
    from constructions.evaluate_fast import FastEvaluator

    return FastEvaluator(arith, device=device)


def _answers_text(args: argparse.Namespace, model) -> str:
    if args.answers is not None:
        return args.answers
    declared = model.meta.get("answers")
    return " ".join(map(str, declared)) if declared else "YES NO"


def _apply_declared_decoding(args: argparse.Namespace, model) -> None:
    """No mode flag: decode as the model declares (``meta["decoding"]``, see proofs_check.prompts)."""
    if not (args.cot or args.rag or args.step):
        decoding = model.meta.get("decoding")
        args.cot = decoding == "chain_of_thought"
        args.rag = decoding == "retrieval_augmented"


def cmd_run_model(args: argparse.Namespace) -> int:
    from constructions import decode
    from constructions.numerics import Arithmetic

    model, label = load_model_arg(args)
    prompt = model.vocab.tokenize(args.tokens)
    if not prompt:
        raise ProofsCheckError('--tokens is empty; give at least one token, e.g. --tokens "<s> 1 2"')
    answers = set(model.vocab.tokenize(_answers_text(args, model)))
    _apply_declared_decoding(args, model)
    if args.max_steps is not None and args.max_steps < 0:
        raise ProofsCheckError("--max-steps must be >= 0")
    max_steps = args.max_steps if args.max_steps is not None else max(0, model.max_len - len(prompt))
    if args.overflow == "saturate" and (args.cot or args.rag):
        raise ProofsCheckError("--overflow saturate is for one step only (each clipped value is reported); drop --cot/--rag")
    evaluator = make_evaluator(
        args.evaluator, Arithmetic(tie=args.tie, matmul=args.matmul, overflow=args.overflow), args.number_format,
        args.device,
    )
    saturations: list[str] = []
    if args.cot or args.rag:
        from .progress import decoding_session, wanted

        session, progress = decoding_session(evaluator.session(model, prompt), wanted(args.quiet), max_steps + 1)
        try:
            if args.cot:
                result = decode.chain_of_thought(session, max_steps, answers)
            else:
                result = decode.retrieval_augmented(session, model.vocab, max_steps, answers)
        finally:
            if progress is not None:
                progress.close()
        generated, answer, retrievals, stopped = result.generated, result.answer, result.retrievals, result.stopped
    else:
        forward = evaluator.forward(model, prompt)
        generated, answer, retrievals, stopped = [forward.next_token], forward.next_token, [], "one step"
        saturations = list(getattr(forward, "saturations", []))
    if args.json:
        out = {
            "generated": generated,
            "answer": answer,
            "retrievals": [r.to_json() for r in retrievals],
            "p": model.p,
            "stopped": stopped,
            "number_format": args.number_format,
            "evaluator": "fast" if args.number_format != "exact" else args.evaluator,
        }
        if args.overflow == "saturate":
            out["saturations"] = saturations
        print(_dumps(out))
        return 0
    from constructions.vocab import detokenize

    fmt = (f"IEEE {args.number_format}, no R_p rounding" if args.number_format != "exact"
           else f"evaluator {args.evaluator}" + (", exact, same bits as reference" if args.evaluator == "fast" else ""))
    print(f"model: {label} (p = {model.p}, {fmt})")
    print(f"prompt: {detokenize(prompt)}")
    print(f"generated: {detokenize(generated)}")
    for k, r in enumerate(retrievals, start=1):
        print(f"retrieval {k}: pattern {r.pattern!r} -> {detokenize(r.result)}")
    limit = "--max-steps" if args.max_steps is not None else f"reaching the model's max_len of {model.max_len} tokens"
    print(f"answer: {answer if answer is not None else f'(none: stopped after {limit})'}")
    if saturations:
        print(f"saturated (clipped to the largest magnitude of R_{model.p}) at {len(saturations)} place(s):")
        for where in saturations[:20]:
            print(f"  {where}")
        if len(saturations) > 20:
            print(f"  ... and {len(saturations) - 20} more")
    return 0


# ---- parser and main -----------------------------------------------------------------------

BUILTIN: tuple[Callable[[Any], None], ...] = (_add_list, _add_verify, _add_inspect, _add_run_model)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Constructive verifier for 'RNNs are not Transformers (Yet)': hand-weighted networks "
        "in exact p-bit fixed point, property-checked against the paper's claims.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in BUILTIN:
        add(sub)
    for module in import_modules(SUBCOMMAND_MODULES):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args))
    except SystemExit as exc:  # --help / --version print and exit 0
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except ProofsCheckError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
