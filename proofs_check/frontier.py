"""The precision frontier (issue #11): how many integer bits I, fractional bits F and symmetric
bits p each construction really needs at n, against what its proof declares.

For a construction (``precision.Construction``) and n, with the K seeded instances of
``Construction.cases`` (hard cases first), a format **passes** when the model *made for it*
answers all K instances with the task's plain-Python answer (``Case.answer``), decoded by the
`run` command's decoding (``precision._run_case``) on the exact evaluator.  Any
ProofsCheckError (the builder refusing, an overflow, a token outside the format) fails it.

How a model is made for a format (``route``):

* ``rebuild`` (the frontier proper): the construction's builder called with
  ``Precision.split(I, F, below_declared_ok=True)``, every constant re-derived for those bits;
* ``requantise``: the declared model's weights rounded to the format
  (``precision.requantise``), constants kept: how many bits *this weight set* needs.

Three axes, each searched by bisection over ``1 .. declared`` (p: the odd p in ``3 ..
declared p``), ample = declared + :data:`MARGIN` bits on the other side:

* ``I``: the smallest I at F = declared F + margin;
* ``F``: the smallest F at I = declared I + margin;
* ``p``: the smallest odd p of R_p (I = F = (p - 1)/2).

Bisection assumes passing is monotone; after it the two values below the answer are run too
and ``monotone`` is False when one of them passes (the answer is then the bisection's, and
``also_passes`` lists the lower passing values).  When the declared value itself fails,
``answer`` is None and ``fails_at_declared`` is True (a contradiction of the proof's claim,
recorded as an erratum).

:func:`fit` fits ``bits ~ a log2 n + b`` (least squares) per construction and axis.

Writer (the notes; about 40 min on 2 cores, busy with other work: about 80 min of worker time)::

    python -m proofs_check.frontier --write notes/precision/frontier.md --plot notes/precision/frontier.png
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from constructions.errors import InputError, ProofsCheckError
from constructions.model import Model
from constructions.numerics import Precision

from .precision import CGRAM_C, CONSTRUCTIONS, SEED, Case, Construction, _run_case, cell_setup, requantise

MARGIN = 16  # "ample": the declared bits plus this many
AXES: tuple[str, ...] = ("I", "F", "p")
ROUTES: tuple[str, ...] = ("rebuild", "requantise")


# ---- one format ----------------------------------------------------------------------------


def axis_precision(axis: str, value: int, declared: dict, margin: int = MARGIN) -> Precision:
    """The format tried at ``value`` on ``axis`` (the other side ample), builders told to build below declared."""
    if axis == "I":
        return Precision.split(value, declared["F"] + margin, below_declared_ok=True)
    if axis == "F":
        return Precision.split(declared["I"] + margin, value, below_declared_ok=True)
    if axis == "p":
        return Precision.split((value - 1) // 2, (value - 1) // 2, below_declared_ok=True)
    raise InputError(f"unknown frontier axis {axis!r}; use one of {', '.join(AXES)}")


def declared_bits(model: Model) -> dict:
    """The proof's declared need: ``meta["declared_precision"]`` when the builder records it,
    else the built model's own format (the smallest p its builder accepts)."""
    got = model.meta.get("declared_precision")
    if isinstance(got, dict) and {"p", "I", "F"} <= set(got):
        return {"p": int(got["p"]), "I": int(got["I"]), "F": int(got["F"])}
    prec = model.precision
    return {"p": prec.p, "I": prec.I, "F": prec.F}


def maker(con: Construction, n: int, route: str, declared_model: Model) -> Callable[[Precision], Model]:
    """How a model is made for a format (module docstring, ``route``)."""
    if route == "rebuild":
        kwargs = {"c": CGRAM_C} if con.task == "cgram" else {}
        return lambda prec: con.builder()(n, prec, **kwargs)
    if route == "requantise":
        return lambda prec: requantise(declared_model, prec)
    raise InputError(f"unknown frontier route {route!r}; use one of {', '.join(ROUTES)}")


@dataclass
class Trial:
    """One tried format: passes when all ``total`` instances are correct; ``tried`` = instances
    decoded (the last one failed when not ok)."""

    value: int
    label: str
    ok: bool
    tried: int
    total: int
    first_failure: str | None = None


class Judge:
    """Decides (and caches) pass / fail of each value of one axis."""

    def __init__(self, con: Construction, cases: Sequence[Case], make: Callable[[Precision], Model],
                 declared: dict, axis: str, evaluator, oracle, margin: int = MARGIN) -> None:
        self.con, self.cases, self.make, self.declared, self.axis = con, cases, make, declared, axis
        self.evaluator, self.oracle, self.margin = evaluator, oracle, margin
        self.trials: dict[int, Trial] = {}

    def __call__(self, value: int) -> bool:
        if value not in self.trials:
            self.trials[value] = self._trial(value)
        return self.trials[value].ok

    def _trial(self, value: int) -> Trial:
        prec = axis_precision(self.axis, value, self.declared, self.margin)
        try:
            model = self.make(prec)
        except ProofsCheckError as exc:
            return Trial(value, prec.label, False, 0, len(self.cases), f"no model: {type(exc).__name__}: {' '.join(str(exc).split())}")
        trial = Trial(value, prec.label, True, 0, len(self.cases))
        for case in self.cases:
            out = _run_case(self.con, model, case, self.evaluator, self.oracle)
            trial.tried += 1
            if not out.correct:
                trial.ok, trial.first_failure = False, out.short()
                break
        return trial


# ---- the search ----------------------------------------------------------------------------


def axis_values(axis: str, declared: dict) -> list[int]:
    """The values searched on an axis, ascending: 1 .. declared (p: odd 3 .. declared p)."""
    return list(range(3, declared["p"] + 1, 2)) if axis == "p" else list(range(1, declared[axis] + 1))


def bisect_smallest(values: Sequence[int], passes: Callable[[int], bool]) -> int | None:
    """The smallest value v with passes(v), assuming passing is monotone (fails below, passes
    from v up); None when the largest value fails."""
    if not values or not passes(values[-1]):
        return None
    lo, hi = 0, len(values) - 1  # invariant: values[hi] passes, every index < lo fails
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(values[mid]):
            hi = mid
        else:
            lo = mid + 1
    return values[hi]


def downward_scan(values: Sequence[int], passes: Callable[[int], bool]) -> int | None:
    """Brute force: from the largest value down, the last value before the first failure
    (every value from it up passes); None when the largest fails.  The reference of the tests."""
    best = None
    for v in reversed(values):
        if not passes(v):
            break
        best = v
    return best


@dataclass
class AxisResult:
    axis: str
    declared: int
    answer: int | None
    fails_at_declared: bool
    monotone: bool
    also_passes: list[int]
    trials: list[Trial] = field(default_factory=list)


def search_axis(axis: str, declared: dict, judge: Judge) -> AxisResult:
    """Bisection on one axis, then the two values below the answer confirmed to fail."""
    values = axis_values(axis, declared)
    answer = bisect_smallest(values, judge)
    below: list[int] = []
    if answer is not None:
        i = values.index(answer)
        below = [v for v in values[max(0, i - 2):i] if judge(v)]
    trials = sorted(judge.trials.values(), key=lambda t: t.value)
    return AxisResult(axis, declared[axis], answer, answer is None, not below, below, trials)


@dataclass
class FrontierRow:
    theorem: str
    name: str
    n: int
    route: str
    instances: int
    declared: dict
    axes: dict[str, AxisResult]
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "FrontierRow":
        axes = {k: AxisResult(**{**a, "trials": [Trial(**t) for t in a["trials"]]}) for k, a in d["axes"].items()}
        return FrontierRow(**{**d, "axes": axes})


def frontier_row(name: str, n: int, k: int, seed: int = SEED, route: str = "rebuild", device: str = "cpu",
                 axes: Sequence[str] = AXES, margin: int = MARGIN) -> FrontierRow:
    """The frontier of one construction at one n (top level: runs in a sweep worker)."""
    con, model, cases, error = cell_setup(name, n, k, seed)
    if error:
        return FrontierRow(con.theorem, name, n, route, 0, {}, {}, error)
    declared = declared_bits(model)
    make = maker(con, n, route, model)
    return searched_row(con.theorem, name, n, route, len(cases), declared,
                        lambda: make(Precision.split(declared["I"], declared["F"], below_declared_ok=True)),
                        lambda axis, ev, oracle: Judge(con, cases, make, declared, axis, ev, oracle, margin), axes, device)


def searched_row(theorem: str, name: str, n: int, route: str, count: int, declared: dict,
                 reproduce: Callable[[], Any], judge: Callable[[str, Any, Any], "Judge"],
                 axes: Sequence[str], device: str) -> FrontierRow:
    """The row of one cell once its declared format is known: ``reproduce()`` must make the
    model(s) at the declared format by the route (else its failures below would mean nothing:
    an error row), then :func:`search_axis` on every axis with ``judge(axis, evaluator, oracle)``.
    Shared by the task constructions and the machine families
    (:func:`proofs_check.precision_machines.machine_frontier_row`)."""
    from constructions.decode import RegexOracle
    from constructions.evaluate_fast import FastEvaluator

    try:
        reproduce()
    except ProofsCheckError as exc:
        return FrontierRow(theorem, name, n, route, count, declared, {},
                           f"route {route} cannot make the model at its declared format: {' '.join(str(exc).split())}")
    ev = FastEvaluator(mode="exact", device=device)
    out: dict[str, AxisResult] = {}
    with RegexOracle() as oracle:
        for axis in axes:
            out[axis] = search_axis(axis, declared, judge(axis, ev, oracle))
    return FrontierRow(theorem, name, n, route, count, declared, out)


def frontier_cell(cell: dict) -> dict:
    """Sweep cell ``{"kind": "frontier", name, n, k, seed, route, device}`` -> a FrontierRow's JSON
    (a machine family's name: :func:`proofs_check.precision_machines.machine_frontier_row`)."""
    from .precision_machines import NAMES, machine_frontier_row

    row = machine_frontier_row if cell["name"] in NAMES else frontier_row
    return row(cell["name"], cell["n"], cell["k"], cell["seed"], cell["route"], cell.get("device", "cpu")).to_json()


def family_names() -> list[str]:
    """Every construction with a frontier, in the notes' order: the token-task constructions
    (``precision.CONSTRUCTIONS``), then the machine families (``precision_machines.FAMILIES``)."""
    from .precision_machines import NAMES

    return [c.name for c in CONSTRUCTIONS] + list(NAMES)


def family_theorem(name: str) -> str:
    from .precision import construction
    from .precision_machines import NAMES, family

    return family(name).theorem if name in NAMES else construction(name).theorem


# ---- the fit -------------------------------------------------------------------------------


@dataclass
class Fit:
    name: str
    axis: str
    what: str  # "measured" | "declared"
    a: float | None
    b: float | None
    points: int


def least_squares(ns: Sequence[int], bits: Sequence[int]) -> tuple[float, float] | None:
    """(a, b) of bits ~ a log2 n + b by least squares; None with fewer than two distinct n."""
    xs = [math.log2(n) for n in ns]
    if len(set(xs)) < 2:
        return None
    mx, my = sum(xs) / len(xs), sum(bits) / len(bits)
    sxx = sum((x - mx) ** 2 for x in xs)
    a = sum((x - mx) * (y - my) for x, y in zip(xs, bits)) / sxx
    return a, my - a * mx


def fit(rows: Sequence[FrontierRow]) -> list[Fit]:
    """Per construction and axis: the slope of the measured frontier and of the declared bits."""
    out = []
    for name in family_names():
        rs = sorted((r for r in rows if r.name == name and not r.error), key=lambda r: r.n)
        for axis in AXES:
            for what in ("measured", "declared"):
                pts = [(r.n, r.axes[axis].answer if what == "measured" else r.declared[axis])
                       for r in rs if axis in r.axes]
                pts = [(n, v) for n, v in pts if v is not None]
                if not pts:
                    continue
                ab = least_squares([n for n, _ in pts], [v for _, v in pts])
                out.append(Fit(name, axis, what, *(ab if ab else (None, None)), len(pts)))
    return out


# ---- sweep + CLI entry points live in proofs_check/precision_sweep.py; the notes writer here ----


def main(argv: Sequence[str] | None = None) -> int:
    from .frontier_notes import write_notes

    ap = argparse.ArgumentParser(prog="python -m proofs_check.frontier", description="write notes/precision/frontier.md")
    ap.add_argument("--write", metavar="FILE", required=True, help="the markdown file (a .json of the rows is written beside it)")
    ap.add_argument("--plot", metavar="FILE.png", default=None)
    ap.add_argument("--out", metavar="FILE.jsonl", default=None, help="sweep records (default: FILE.jsonl beside --write)")
    ap.add_argument("--resume", action="store_true", help="skip cells already in --out")
    ap.add_argument("--workers", type=int, default=None, help="Dask worker processes (default: all cores)")
    ap.add_argument("--scheduler", default=None, help="an existing Dask scheduler's address")
    ap.add_argument("--route", choices=ROUTES, default="rebuild")
    ap.add_argument("--quick", action="store_true", help="the small plan (n <= 32): a smoke run of the writer")
    args = ap.parse_args(argv)
    write_notes(args.write, args.plot, args.out, args.resume, args.workers, args.scheduler, args.route, args.quick)
    print(f"wrote {args.write}" + (f" and {args.plot}" if args.plot else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
