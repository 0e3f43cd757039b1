"""The check registry: property checks keyed by the paper's numbering ("B.13", "4.7", ...).

A check is data: an id, a title, the claim it tests (the paper's statement in words) and a
``run(profile)`` function returning a :class:`CheckOutcome`.  Check modules in
``proofs_check/checks/`` each export ``CHECKS: list[Check]``; :func:`all_checks` collects
them from the explicit list ``CHECK_MODULES`` (no import-time side effects, no global
mutable registry).

:func:`property_check` turns a Hypothesis strategy and a body into a check run: the body
raises AssertionError (or any ProofsCheckError) on a counterexample; the outcome counts the
cases tried and carries Hypothesis' falsifying example in its detail.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from .plugins import import_modules

CHECK_MODULES: tuple[str, ...] = (
    "proofs_check.checks.foundation",
    "proofs_check.checks.ffn_blocks",
    "proofs_check.checks.attention_blocks",
    "proofs_check.checks.rnn_blocks",
    "proofs_check.checks.retrieval_tasks",
    "proofs_check.checks.lower_bounds",
    "proofs_check.checks.dfs_transformer",
    "proofs_check.checks.istree_rag",
    "proofs_check.checks.turing_rag",
    "proofs_check.checks.istree_hybrid",
    "proofs_check.checks.turing_hybrid",
    "proofs_check.checks.circuit_transformer",
    "proofs_check.checks.turing_cot_rnn",
)


@dataclass(frozen=True)
class Profile:
    """How hard to try. ``ci`` is derandomized and bounded; ``thorough`` is for long runs."""

    name: str
    max_examples: int
    max_n: int  # largest problem size a check should draw
    derandomize: bool
    on_case: Callable[[], None] | None = field(default=None, compare=False)  # progress: one call per example

    def hypothesis_settings(self, max_examples: int | None = None) -> settings:
        return settings(
            max_examples=max_examples or self.max_examples,
            derandomize=self.derandomize,
            deadline=None,
            database=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.generate, Phase.shrink) if self.name != "ci" else (Phase.explicit, Phase.generate),
        )


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", max_examples=20, max_n=64, derandomize=True),
    "dev": Profile("dev", max_examples=60, max_n=64, derandomize=False),
    "thorough": Profile("thorough", max_examples=400, max_n=256, derandomize=False),
}


def get_profile(name: str) -> Profile:
    from constructions.errors import ProofsCheckError

    try:
        return PROFILES[name]
    except KeyError:
        raise ProofsCheckError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


@dataclass
class CheckOutcome:
    passed: bool
    cases: int
    detail: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Check:
    id: str  # the paper's numbering, e.g. "B.13"
    title: str  # e.g. "COPY block (Def B.7, Lemma B.13)"
    claim: str  # the statement being tested, in words
    run: Callable[[Profile], CheckOutcome]
    slow: bool = False


def property_check(
    strategy: st.SearchStrategy,
    body: Callable[[Any], None],
    profile: Profile,
    max_examples: int | None = None,
    examples: Sequence[Any] = (),
) -> CheckOutcome:
    """Run ``body`` on examples drawn from ``strategy``; count them; report the first failure.
    ``examples`` are run first, as Hypothesis explicit examples (``@example``)."""
    count = 0

    def counted(example: Any) -> None:
        nonlocal count
        count += 1
        if profile.on_case is not None:
            profile.on_case()
        body(example)

    test = given(strategy)(counted)
    for ex in reversed(examples):
        test = example(ex)(test)
    test = profile.hypothesis_settings(max_examples)(test)
    start = time.perf_counter()
    try:
        test()
    except Exception as exc:  # noqa: BLE001 - any failure of the property is a failed check
        notes = getattr(exc, "__notes__", [])
        detail = f"{type(exc).__name__}: {exc}" + ("\n" + "\n".join(notes) if notes else "")
        return CheckOutcome(False, count, detail, seconds=time.perf_counter() - start)
    return CheckOutcome(True, count, seconds=time.perf_counter() - start)


def combine(outcomes: list[CheckOutcome]) -> CheckOutcome:
    """Several property runs reported as one check."""
    failed = [o for o in outcomes if not o.passed]
    measured: dict[str, Any] = {}
    for o in outcomes:
        measured.update(o.measured)
    return CheckOutcome(
        not failed,
        sum(o.cases for o in outcomes),
        "\n".join(o.detail for o in failed),
        measured,
        sum(o.seconds for o in outcomes),
    )


def all_checks() -> list[Check]:
    """Every registered check, in module order."""
    checks: list[Check] = []
    for module in import_modules(CHECK_MODULES):
        checks.extend(module.CHECKS)
    ids = [c.id for c in checks]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuntimeError(f"check ids registered twice: {sorted(dupes)}")
    return checks


def select(ids: list[str] | None) -> list[Check]:
    from constructions.errors import ProofsCheckError

    checks = all_checks()
    if not ids:
        return checks
    known = {c.id: c for c in checks}
    missing = [i for i in ids if i not in known]
    if missing:
        raise ProofsCheckError(f"no registered check with id {', '.join(missing)}; `proofs-check list` shows them all")
    return [known[i] for i in ids]
