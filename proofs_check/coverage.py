"""Which of the paper's constructive theorems and lemmas are built and checked, and which not yet.

:data:`PAPER_ITEMS` is the fixed list of the paper's constructive statements (those whose proof
builds a network, a reduction or an algorithm), each with the ids of the registered checks that
would cover it.  An item counts as built and checked when one of those checks is in
:func:`proofs_check.registry.all_checks`; the README's coverage block is generated from that:

    python -m proofs_check.coverage --write README.md

A test fails while the README's block differs from what this writes now (after a branch adds a
check, the block is regenerated).  Statements without a construction (Thm B.30, cited; Lemma
B.25, PSPACE vs P/poly; the RNN lower bounds' counting arguments beyond the reductions) are not
listed.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

COVERAGE_BLOCK = "coverage"


@dataclass(frozen=True)
class PaperItem:
    label: str  # as the paper names it, e.g. "Thm 4.7", "Lemma B.27"
    what: str  # a few words
    checks: tuple[str, ...]  # registry ids that cover it


def _lemmas(first: int, last: int, names: Sequence[str]) -> list[PaperItem]:
    return [PaperItem(f"Lemma B.{k}", name, (f"B.{k}",)) for k, name in zip(range(first, last + 1), names)]


PAPER_ITEMS: tuple[PaperItem, ...] = (
    PaperItem("Thm 4.1", "with CoT a log n-bit linear RNN solves a task no log n-bit RNN solves without (a linear-space TM)", ("4.1",)),
    PaperItem("Thm 4.6", "Index, AR, c-gram, Counting on a constant-size Transformer", ("4.6",)),
    PaperItem("Thm 4.7", "IsTree by a Transformer with DFS chain of thought", ("4.7",)),
    PaperItem("Thm 4.8", "a Transformer with CoT simulates an RNN gate by gate", ("4.8",)),
    PaperItem("Prop 5.1", "the AR oracle simulated by an O(log n)-bit RNN", ("5.1",)),
    PaperItem("Thm 5.2", "retrieval tasks by a retrieval-augmented linear RNN", ("5.2",)),
    PaperItem("Thm 5.3", "IsTree by a retrieval-augmented linear RNN", ("5.3",)),
    PaperItem("Thm 5.4", "a retrieval-augmented linear RNN simulates a polynomial-time TM", ("5.4",)),
    PaperItem("Thm 5.6", "retrieval tasks by a hybrid linear RNN + one Transformer layer", ("5.6",)),
    PaperItem("Thm 5.7", "IsTree by a hybrid linear RNN + one Transformer layer", ("5.7",)),
    PaperItem("Thm 5.8", "a hybrid linear RNN simulates a polynomial-time TM", ("5.8",)),
    *_lemmas(1, 6, ("multiplication", "linear operations", "indicator", "lookup table", "threshold", "interval")),
    *_lemmas(13, 23, ("COPY", "COUNT", "Match", "MatchClose", "MatchNearest", "MatchNext", "next approximation",
                      "recent input memorizing", "summation", "special position memorizing", "recite a fixed sequence")),
    PaperItem("Lemma B.24", "Index needs Omega(n) one-way communication; the task reductions", ("B.24",)),
    PaperItem("Lemma B.26", "IsTree lower bound, the Figure 3 family", ("B.26",)),
    PaperItem("Lemma B.27", "the DFS Transformer", ("4.7",)),
    PaperItem("Lemma B.28", "the prefix-XOR reduction", ("B.26",)),
    PaperItem("Lemma B.29", "IsTree iff m = n - 1 and the tour has 2n - 1 vertices; the DFS models answer by it", ("B.29", "4.7")),
    PaperItem("Lemma B.31", "the last record of a cell in the retrieval TM simulation", ("B.31",)),
)


def _line(item: PaperItem, by: list[str]) -> str:
    return f"- {item.label} ({item.what})" + (f": check {', '.join(f'`{c}`' for c in by)}" if by else "")


def render(checks) -> str:
    """The README block for the registered ``checks`` (a list of registry.Check)."""
    ids = {c.id: c for c in checks}
    built = [(item, [c for c in item.checks if c in ids]) for item in PAPER_ITEMS]
    done = [(item, by) for item, by in built if by]
    todo = [item for item, by in built if not by]
    covered = {c for item in PAPER_ITEMS for c in item.checks}
    extra = [c for c in checks if c.id not in covered]
    lines = [f"Built and checked ({len(done)} of the paper's {len(PAPER_ITEMS)} constructive statements; "
             "`proofs-check verify --only ID` runs a check):", ""]
    lines += [_line(item, by) for item, by in done]
    lines += ["", f"Not built and checked yet ({len(todo)}): " + (", ".join(item.label for item in todo) if todo else "none") + "."]
    if extra:
        lines += ["", "Also checked: " + "; ".join(f"`{c.id}` {c.title}" for c in extra) + "."]
    return "\n".join(lines) + "\n"


def write(path: Path) -> bool:
    from .generated_block import write_block
    from .registry import all_checks

    return write_block(path, COVERAGE_BLOCK, render(all_checks()))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proofs_check.coverage",
                                 description="the README's list of built and not-yet-built theorems and lemmas")
    ap.add_argument("--write", metavar="FILE", help="rewrite the coverage block of FILE (e.g. README.md); else print it")
    args = ap.parse_args(argv)
    if args.write:
        print(f"{'wrote' if write(Path(args.write)) else 'up to date:'} {args.write}")
    else:
        from .registry import all_checks

        print(render(all_checks()), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
