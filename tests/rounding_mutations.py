"""The rounding mutations of issue 16, applied as source edits for the length of a ``with``.

Each mutation is one textual edit of one function (``old`` -> ``new``, ``old`` occurring exactly
once in its source): the edited source is compiled and its code object replaces the function's,
so every module that imported the function (``from .numerics import div_round``) runs the
mutant, as if the file had been edited.  Used by ``tests/test_rounding_mutations.py`` (the
meta-tests that the checks catch them) and ``benchmarks/rounding_mutations.py`` (which check
fails under which mutation, recorded in ``notes/testing.md``).
"""
from __future__ import annotations

import contextlib
import inspect
import textwrap
from dataclasses import dataclass
from typing import Callable, Iterator

import constructions.fast_limbs as fl
import constructions.fast_softmax as fs
import constructions.evaluate_reference as er
import constructions.numerics as nm


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    owner: object  # the module that defines the function
    function: str
    old: str
    new: str
    rebind: tuple = ()  # (module, name) pairs to point at the mutant instead (a local import's copy)


def _floor_div_round(num: int, den: int, tie: str = "even") -> int:
    """div_round with round-to-nearest replaced by floor (mutation ``reference_floor``)."""
    if den <= 0:
        raise ValueError("den must be positive")
    return num // den


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation("div_round_floor", "numerics.div_round: round-to-nearest replaced by floor (every user)",
                 nm, "div_round", "    if twice < den:\n        return q\n", "    if True:\n        return q\n"),
        Mutation("reference_floor", "evaluate_reference's div_round (its products and fine sums) by floor; "
                 "numerics (softmax) and the fast evaluator unchanged", er, "div_round", "", "",
                 rebind=((er, "div_round"),)),
        Mutation("fast_tie_raw", "fast_limbs._round_raw: ties to odd instead of even",
                 fl, "_round_raw", "inc = half & (sticky | (Q[0] & 1).bool())",
                 "inc = half & (sticky | ~(Q[0] & 1).bool())"),
        Mutation("fast_tie_word", "fast_limbs._finish_word (the one-word path, p <= 61): ties to odd",
                 fl, "_finish_word", "inc = half & (sticky | (q & 1).bool())",
                 "inc = half & (sticky | ~(q & 1).bool())"),
        Mutation("fast_softmax_no_bound", "fast_softmax._certify: the float64 softmax error bound dropped "
                 "(the mutation tests/test_softmax_band.py catches)", fs, "_certify",
                 "(0.5 - dist) * (1 - 1e-12) > E)", "(0.5 - dist) * (1 - 1e-12) > 0 * E)"),
    )
}


def _mutant_code(fn: Callable, old: str, new: str):
    src = textwrap.dedent(inspect.getsource(fn))
    assert src.count(old) == 1, f"mutation site {old!r} occurs {src.count(old)} times in {fn.__qualname__}"
    ns: dict = dict(fn.__globals__)
    exec(compile(src.replace(old, new), inspect.getsourcefile(fn), "exec"), ns)  # noqa: S102 - test-only
    return ns[fn.__name__].__code__


@contextlib.contextmanager
def applied(name: str) -> Iterator[Mutation]:
    """Run the body with mutation ``name`` in place; restore the original code afterwards."""
    m = MUTATIONS[name]
    saved: list[tuple[object, str, object]] = []
    try:
        if m.rebind:
            for mod, attr in m.rebind:
                saved.append((mod, attr, getattr(mod, attr)))
                setattr(mod, attr, _floor_div_round)
        else:
            fn = getattr(m.owner, m.function)
            saved.append((fn, "__code__", fn.__code__))
            fn.__code__ = _mutant_code(fn, m.old, m.new)
        yield m
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)
