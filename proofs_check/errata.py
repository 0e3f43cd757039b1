"""The errata catalogue: every place where the paper as printed fails, as data.

Each topic keeps its errata twice: as prose in ``notes/errata/<topic>.md`` and as a JSON list in
``notes/errata/<topic>.json``, one object per erratum with exactly the fields

    id, title, location, paper, counterexample, fix, kind, test[, fix_test]

``id`` is ``{item}-E{k}``: item is the paper's compact label of where the erratum lives (Thm 5.4
-> ``T54``, Lemma B.31 -> ``B31``, Def A.5 -> ``A5``, Prop 5.1 -> ``P51``, Algorithm 2 ->
``Alg2``, Def 3.2 -> ``D32``), k = 1, 2, ... within the item; ids are unique across all files.
``kind`` is one of :data:`KINDS` ("reading": the reading of a mangled formula decides it; the
entry then says what the other reading gives).  ``test`` is the pytest node id of the test that
shows the literal version failing (it passes while the paper's version still fails), named
``test_erratum_<id with - as _>_<slug>``; ``fix_test`` (optional) the node that shows the fix.

Every ``notes/errata/*.json`` is loaded; a new topic needs no code change.  ``proofs-check errata``
lists the catalogue; ``--run`` runs every entry's tests with pytest in one subprocess.
``python -m proofs_check.errata --write-index`` regenerates the index in ``notes/errata.md``.
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from constructions.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
ERRATA_DIR = ROOT / "notes" / "errata"
INDEX_FILE = ROOT / "notes" / "errata.md"
INDEX_BLOCK = "errata index"

KINDS = ("error", "typo", "missing precondition", "reading")
REQUIRED = ("id", "title", "location", "paper", "counterexample", "fix", "kind", "test")
OPTIONAL = ("fix_test",)
ID_RE = re.compile(r"^(?P<item>[A-Z][A-Za-z]*[0-9]+)-E(?P<k>[1-9][0-9]*)$")
NODE_RE = re.compile(r"^(?P<file>tests/[\w/]+\.py)::(?P<func>(?:\w+::)?test_\w+)(?P<param>\[.*\])?$")


class ErrataError(InputError):
    """The catalogue is malformed (a bad entry, a duplicate id) or asked for an unknown id."""


@dataclass(frozen=True)
class Erratum:
    id: str
    title: str
    location: str
    paper: str
    counterexample: str
    fix: str
    kind: str
    test: str
    fix_test: str | None
    file: str  # the catalogue file, relative to the repository root

    def nodes(self) -> list[str]:
        return [self.test] + ([self.fix_test] if self.fix_test else [])

    def to_json(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in REQUIRED}
        if self.fix_test:
            out["fix_test"] = self.fix_test
        out["file"] = self.file
        return out


# ---- loading and validation ----------------------------------------------------------------


def _entry_error(where: str, index: int, entry: Any, message: str) -> ErrataError:
    name = entry.get("id") if isinstance(entry, dict) else None
    label = f"entry {index + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
    return ErrataError(f"{where}, {label}: {message}")


def _validate_fields(entry: Any) -> str | None:
    """The first thing wrong with the shape of one entry, or None."""
    if not isinstance(entry, dict):
        return f"an entry must be a JSON object, got {type(entry).__name__}"
    missing = [f for f in REQUIRED if f not in entry]
    if missing:
        return f"missing field(s) {', '.join(missing)} (every entry has {', '.join(REQUIRED)}; fix_test is optional)"
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        return f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(REQUIRED + OPTIONAL)}"
    empty = [f for f in entry if not isinstance(entry[f], str) or not entry[f].strip()]
    if empty:
        return f"field(s) {', '.join(empty)} must be non-empty strings"
    return None


def _validate_values(entry: dict[str, str]) -> str | None:
    if not ID_RE.match(entry["id"]):
        return f"id {entry['id']!r} is not of the form ITEM-Ek (e.g. B27-E2, T54-E1, Alg2-E1)"
    if entry["kind"] not in KINDS:
        return f"kind {entry['kind']!r} is not one of {', '.join(repr(k) for k in KINDS)}"
    for field in ("test", "fix_test"):
        node = entry.get(field)
        if node is not None and not NODE_RE.match(node):
            return f"{field} {node!r} is not a pytest node id like tests/test_x.py::test_name"
    if entry["kind"] == "reading" and "other reading" not in " ".join(entry[f] for f in REQUIRED).lower():
        return "a 'reading' entry must say what the other reading gives (the words 'other reading')"
    func = NODE_RE.match(entry["test"]).group("func").split("::")[-1]
    prefix = "test_erratum_" + entry["id"].replace("-", "_") + "_"
    if not func.startswith(prefix):
        return f"the demonstrating test {func!r} must be named {prefix}<slug>"
    return None


def parse_entries(data: Any, where: str) -> list[Erratum]:
    """Validate one catalogue file's JSON (a list of entries); ``where`` names it in errors."""
    if not isinstance(data, list):
        raise ErrataError(f"{where}: the catalogue must be a JSON list of errata, got {type(data).__name__}")
    out = []
    for i, entry in enumerate(data):
        problem = _validate_fields(entry) or _validate_values(entry)
        if problem:
            raise _entry_error(where, i, entry, problem)
        out.append(Erratum(**{f: entry[f] for f in REQUIRED}, fix_test=entry.get("fix_test"), file=where))
    return out


def _read_json(path: Path, where: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ErrataError(f"{where} is not valid JSON: {exc}") from None


def load(directory: Path = ERRATA_DIR) -> list[Erratum]:
    """Every entry of every ``*.json`` in ``directory``, ids checked unique across files."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise ErrataError(f"no errata catalogue files (*.json) in {directory}")
    entries: list[Erratum] = []
    seen: dict[str, str] = {}
    for path in files:
        where = _relative(path)
        for e in parse_entries(_read_json(path, where), where):
            if e.id in seen:
                raise ErrataError(f"erratum id {e.id} is used twice: in {seen[e.id]} and in {where}; ids are global")
            seen[e.id] = where
            entries.append(e)
    return sorted(entries, key=id_sort_key)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def id_sort_key(e: Erratum) -> tuple[str, int, int]:
    m = ID_RE.match(e.id)
    label = m.group("item")
    letters = label.rstrip("0123456789")
    return letters, int(label[len(letters):]), int(m.group("k"))


def select(entries: list[Erratum], ids: Sequence[str] | None) -> list[Erratum]:
    if not ids:
        return entries
    known = {e.id: e for e in entries}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ErrataError(
            f"no erratum with id {', '.join(unknown)}; `proofs-check errata` lists them all "
            f"(old ids such as AB-3 or E-T5 are mapped to new ones in notes/errata.md)"
        )
    return [known[i] for i in ids]


# ---- test nodes, resolved by parsing the test files ------------------------------------------


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions in a test file: ``test_x`` and ``Class::test_x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test")}
    return names


def missing_nodes(entries: Iterable[Erratum], root: Path = ROOT) -> list[str]:
    """'ID: node' for every test / fix_test whose file or function does not exist."""
    cache: dict[str, set[str] | None] = {}
    out = []
    for e in entries:
        for node in e.nodes():
            m = NODE_RE.match(node)
            file = m.group("file")
            if file not in cache:
                cache[file] = defined_tests(root / file) if (root / file).is_file() else None
            if cache[file] is None or m.group("func") not in cache[file]:
                out.append(f"{e.id}: {node}")
    return out


def unnamed_erratum_tests(entries: Iterable[Erratum], root: Path = ROOT) -> list[str]:
    """Every ``test_erratum_*`` function in tests/ that no entry's ``test`` names."""
    named = {(m.group("file"), m.group("func")) for m in (NODE_RE.match(e.test) for e in entries)}
    out = []
    for path in sorted((root / "tests").rglob("test_*.py")):
        file = str(path.relative_to(root))
        for func in sorted(defined_tests(path)):
            if func.split("::")[-1].startswith("test_erratum_") and (file, func) not in named:
                out.append(f"{file}::{func}")
    return out


# ---- running the tests -----------------------------------------------------------------------


def _case_outcome(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def _node_outcome(node: str, cases: list[tuple[str, str, str, float]]) -> tuple[str, float]:
    """'passed' only if every case of the node ran and passed; its total seconds."""
    m = NODE_RE.match(node)
    module = m.group("file")[: -len(".py")].replace("/", ".")
    parts = m.group("func").split("::")
    classname = ".".join([module] + parts[:-1])
    func, param = parts[-1], m.group("param") or ""
    mine = [c for c in cases if c[0] == classname and (c[1] == func + param or (not param and c[1].startswith(func + "[")))]
    outcomes = {c[2] for c in mine}
    status = "not run" if not mine else ("passed" if outcomes == {"passed"} else ("failed" if "failed" in outcomes else "skipped"))
    return status, sum(c[3] for c in mine)


def run_pytest(nodes: Sequence[str], root: Path = ROOT) -> dict[str, tuple[str, float]]:
    """Run the nodes in one pytest subprocess; node -> (outcome, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *dict.fromkeys(nodes)]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if proc.returncode not in (0, 1) or not report.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ErrataError(f"pytest could not run the errata tests (exit {proc.returncode}):\n{tail}")
        cases = [
            (c.get("classname", ""), c.get("name", ""), _case_outcome(c), float(c.get("time", 0) or 0))
            for c in ET.parse(report).getroot().iter("testcase")
        ]
    return {node: _node_outcome(node, cases) for node in nodes}


def run_entries(entries: list[Erratum], root: Path = ROOT) -> list[dict[str, Any]]:
    """Per entry: does the literal version still fail (its test passes), does the fix hold."""
    outcomes = run_pytest([n for e in entries for n in e.nodes()], root)
    results = []
    for e in entries:
        test, t_sec = outcomes[e.test]
        fix, f_sec = outcomes[e.fix_test] if e.fix_test else (None, 0.0)
        results.append({
            **e.to_json(),
            "test_outcome": test,
            "fix_test_outcome": fix,
            "literal_fails": test == "passed",
            "fix_holds": None if fix is None else fix == "passed",
            "seconds": round(t_sec + f_sec, 2),
        })
    return results


def entry_ok(result: dict[str, Any]) -> bool:
    return bool(result["literal_fails"]) and result["fix_holds"] is not False


# ---- text output -----------------------------------------------------------------------------


def listing(entries: list[Erratum]) -> str:
    lines = []
    for e in entries:
        lines.append(f"{e.id}  [{e.kind}]  {e.title}")
        lines.append(f"    {e.location}  ({e.file})")
        lines.append(f"    test: {e.test}" + (f"\n    fix:  {e.fix_test}" if e.fix_test else ""))
    lines.append(f"{len(entries)} errata; {summary(entries)}")
    return "\n".join(lines)


def summary(entries: list[Erratum]) -> str:
    counts = {k: sum(e.kind == k for e in entries) for k in KINDS}
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v)


def run_table(results: list[dict[str, Any]], seconds: float) -> str:
    def mark(ok: bool | None, outcome: str | None) -> str:
        return "-" if ok is None else ("yes" if ok else f"NO ({outcome})")

    rows = [("erratum", "literal still fails", "fix holds", "time")]
    rows += [(r["id"], mark(r["literal_fails"], r["test_outcome"]), mark(r["fix_holds"], r["fix_test_outcome"]), f"{r['seconds']:.2f}s") for r in results]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    bad = [r["id"] for r in results if not entry_ok(r)]
    lines.append("")
    lines.append(f"{len(results) - len(bad)} of {len(results)} errata reproduce with their fix holding ({seconds:.1f}s)")
    if bad:
        lines.append(f"NOT reproduced or fix broken: {', '.join(bad)}")
    return "\n".join(lines)


# ---- the index in notes/errata.md ------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_index(entries: list[Erratum]) -> str:
    """The markdown table of every entry (the body of the generated block)."""
    lines = [
        f"{len(entries)} errata ({summary(entries)}), from `notes/errata/*.json`.",
        "",
        "| id | title | kind | file | test |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        topic = Path(e.file).with_suffix(".md").name
        test = Path(e.test.split("::")[0]).name + "::" + e.test.split("::", 1)[1]
        lines.append(f"| {e.id} | {_cell(e.title)} | {e.kind} | [{topic}](errata/{topic}) | `{test}` |")
    return "\n".join(lines) + "\n"


def write_index(path: Path = INDEX_FILE, entries: list[Erratum] | None = None) -> bool:
    from .generated_block import write_block

    return write_block(path, INDEX_BLOCK, render_index(load() if entries is None else entries))


# ---- command line ----------------------------------------------------------------------------


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="*", metavar="ID", help="errata to show or run (default: all), e.g. B27-E2 T46-E1")
    p.add_argument("--json", action="store_true", help="print the entries (and with --run the outcomes) as JSON")
    p.add_argument("--run", action="store_true",
                   help="run each entry's demonstrating test and fix_test with pytest; exit 1 unless every "
                        "literal version still fails and every fix holds")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("errata", help="the errata catalogue: list it, or re-run each erratum's tests",
                              description="The catalogue of notes/errata/*.json: where the paper as printed fails.")
    _add_arguments(p)
    p.set_defaults(handler=cmd_errata)


def cmd_errata(args: argparse.Namespace) -> int:
    entries = select(load(), args.ids)
    if not args.run:
        print(json.dumps([e.to_json() for e in entries], indent=1) if args.json else listing(entries))
        return 0
    missing = missing_nodes(entries)
    if missing:
        raise ErrataError(f"test nodes named by the catalogue do not exist: {'; '.join(missing)}")
    start = time.perf_counter()
    results = run_entries(entries)
    print(json.dumps(results, indent=1) if args.json else run_table(results, time.perf_counter() - start))
    return 0 if all(entry_ok(r) for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    from .cli import main as cli_main

    ap = argparse.ArgumentParser(prog="python -m proofs_check.errata", description="the errata catalogue and its index")
    ap.add_argument("--write-index", action="store_true", help=f"regenerate the index block of {_relative(INDEX_FILE)}")
    args, rest = ap.parse_known_args(argv)
    if args.write_index:
        changed = write_index()
        print(f"{'wrote' if changed else 'up to date:'} {_relative(INDEX_FILE)}")
        return 0
    return cli_main(["errata", *rest])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
