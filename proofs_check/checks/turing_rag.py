"""Checks "5.4" and "B.31": the retrieval-augmented linear RNN of Theorem 5.4 simulates a Turing
machine; Lemma B.31 (the last triple of a cell is its value) is checked on 5.4's decodes and on
its own (check "B.31": bb2, bb3 and a few drawn machines, the sequence only).

Property, on Hypothesis-drawn halting machines (``strategies.tm_cases``: B = 2..4 states,
2..3 symbols, random inputs up to 6 cells, transitions drawn lazily along the run, ``---``
included) and on the busy-beaver champions bb2, bb3, bb2x3 from a blank tape:

* the run read back from the *generated* tokens (``turing_rag.read_back``) equals the reference
  simulator's (``proofs_check.turing.simulate``): halted, steps, final state, head, the whole
  tape span, ones;
* every step agrees with the reference trace: the retrieval result is the symbol under the
  head (FAILED only for a never-written cell, read as blank), the triple ``p w p`` has the
  head and the written symbol, then the next state and the move;
* **Lemma B.31** (as fixed, B31-E1..E3 in notes/errata/turing_rag.md): in the prefix before
  step t's ``<StartSearch>``, for every cell i of the reference span, the last token triple
  ``i x i`` with x a symbol token is ``i TAPE[t,i] i`` if cell i was written before step t
  (an input cell, or a step's write), and there is none otherwise; and the last occurrence of
  ``i * i`` with *any* middle token (``measured["b31_other_i_x_i"]`` counts those that are not
  triples: the queries' own ``p Q2 p``) is that triple.  Checked by scanning the token
  sequence, independently of the model's regexes;
* the chain is at most 9 n + 13 steps + 1 tokens.

Machines that do not halt within their bound: one fixed case per run (``NON_HALTING``), which
must read back ``halted: false`` with the simulator's state after ``max_steps`` steps.

Sizes: ci draws 12 cases with at most 12 steps (each ~150 tokens at ~5 ms a token with the fast
evaluator) plus the three busy beavers (about 780 tokens); dev and thorough draw more and longer.
"""
from __future__ import annotations

from typing import Any

from constructions.decode import FAILED, RegexOracle, START, retrieval_augmented
from constructions.turing_machine import Machine, parse_machine
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import TMCase, tm_cases
from proofs_check.turing import KNOWN_MACHINES, TMRun, simulate

#: per profile: (cases drawn, their step limit); a drawn machine may halt only from step limit // 3 on
DRAWS: dict[str, tuple[int, int]] = {"ci": (12, 12), "dev": (40, 40), "thorough": (300, 80)}
BUSY_BEAVERS: tuple[str, ...] = ("bb2", "bb3", "bb2x3")
NON_HALTING = TMCase(parse_machine("1RB1LA_1LA1RB"), (1, 0), 9)  # loops forever from any tape


def decode_case(case: TMCase, evaluator, oracle: RegexOracle):
    from constructions import turing_rag

    model = turing_rag.build(case.machine, len(case.tape), case.max_steps)
    session = evaluator.session(model, turing_rag.prompt(model, list(case.tape)))
    res = retrieval_augmented(session, model.vocab, turing_rag.chain_bound(model),
                              answers=turing_rag.STOP_TOKENS, oracle=oracle)
    return model, res


def _tape_before(run: TMRun, tape: tuple[int, ...], t: int) -> dict[int, int]:
    """Cells written before step t (input cells and the writes of steps 1..t-1): plain replay."""
    cells = {i: s for i, s in enumerate(tape, start=1)}
    for step in run.trace[: t - 1]:
        cells[step.head] = step.write
    return cells


def _is_step_search(seq: list, k: int) -> bool:
    """``<StartSearch> Q1 p Q2 p``: a step's query (an index query holds ``{i}``, not a number)."""
    return seq[k] == START and k + 4 < len(seq) and isinstance(seq[k + 2], int) and seq[k + 2] == seq[k + 4]


def _is_symbol(tok) -> bool:
    return isinstance(tok, str) and tok.startswith("s") and tok[1:].isdigit()


def _assert_b31(t: int, run: TMRun, tape, seq: list, last_triple: dict, last_any: dict) -> None:
    written = _tape_before(run, tape, t)
    for i in range(run.lo, run.hi + 1):
        want = f"s{written[i]}" if i in written else None
        assert last_triple.get(i) == want, \
            f"Lemma B.31, before step {t}, cell {i}: the last triple holds {last_triple.get(i)}, TAPE[{t},{i}] = {want}"
        if want is not None:
            j = last_any[i]
            assert seq[j + 1] == want, f"Lemma B.31, before step {t}, cell {i}: the last '{i} * {i}' is {seq[j:j + 3]}"


def check_lemma_b31(seq: list, run: TMRun, tape: tuple[int, ...]) -> int:
    """Lemma B.31 on a decoded sequence (see module docstring), before every step's search and
    at the end (TAPE after the last step); returns how many ``i x i`` with a non-symbol middle
    token (the queries' own text) the sequence holds."""
    last_triple: dict[int, str] = {}
    last_any: dict[int, int] = {}  # cell -> index of its last "i * i"
    others, t = 0, 0
    for k, tok in enumerate(seq):
        if _is_step_search(seq, k):
            t += 1
            _assert_b31(t, run, tape, seq, last_triple, last_any)
        if k >= 2 and isinstance(tok, int) and seq[k - 2] == tok and not isinstance(seq[k - 1], int):
            last_any[tok] = k - 2
            if _is_symbol(seq[k - 1]):
                last_triple[tok] = seq[k - 1]
            else:
                others += 1
    assert t == len(run.trace), f"{t} step searches, the run has {len(run.trace)} steps"
    _assert_b31(t + 1, run, tape, seq, last_triple, last_any)
    return others


def check_steps(model, res, run: TMRun) -> None:
    """Every step's retrieval, triple, state and move against the reference trace."""
    from constructions import turing_rag

    _, steps = turing_rag.parse_generated(model, res.generated)
    assert len(steps) == len(run.trace), f"{len(steps)} steps written, the simulator took {len(run.trace)}"
    step_results = [r for r in res.retrievals if r.pattern.startswith(turing_rag.FIXED_FRAGMENTS["Q1"])]
    assert len(step_results) == len(steps), f"{len(step_results)} step retrievals for {len(steps)} steps"
    for got, ref, r in zip(steps, run.trace, step_results):
        read = 0 if r.result == [FAILED] else int(str(r.result[0])[1:])
        assert (got.pointer, got.write, got.next_state, got.move, read) == (ref.head, ref.write, ref.next_state, ref.move, ref.read), \
            f"step {ref.t}: wrote {got}, retrieved {r.result}; reference {ref}"


def check_case(case: TMCase, evaluator, oracle: RegexOracle, seen: dict) -> None:
    model, res = decode_case(case, evaluator, oracle)
    from constructions import turing_rag

    run = simulate(case.machine, case.tape, case.max_steps, record=True)
    got, want = turing_rag.read_back(model, res), run.to_json()
    where = f"machine {case.machine} on {list(case.tape)} (max_steps {case.max_steps})"
    assert got == want, f"{where}: read back {got}, simulator {want}"
    check_steps(model, res, run)
    chain = len(res.sequence) - len(res.prompt)
    bound = 9 * len(case.tape) + 13 * run.steps + 1
    assert chain <= bound, f"{where}: chain of {chain} tokens > {bound}"
    seen["b31_other_i_x_i"] = seen.get("b31_other_i_x_i", 0) + check_lemma_b31(res.sequence, run, case.tape)
    seen["cases"] = seen.get("cases", 0) + 1
    seen["max_steps_run"] = max(seen.get("max_steps_run", 0), run.steps)
    seen["max_chain"] = max(seen.get("max_chain", 0), chain)
    seen["max_p"] = max(seen.get("max_p", 0), model.p)
    seen.setdefault("tokens_per_step", set()).add((chain - 9 * len(case.tape) - 1) / max(run.steps, 1))


def busy_beaver_cases() -> list[TMCase]:
    out = []
    for name in BUSY_BEAVERS:
        m: Machine = parse_machine(KNOWN_MACHINES[name])
        steps = simulate(m, (), 10**4).steps  # the bound the model is built for: the run's own length
        out.append(TMCase(m, (), steps))
    return out


def fixed_cases_outcome(cases: list[TMCase], body) -> CheckOutcome:
    """Each fixed case once (a busy beaver's decode takes seconds: no Hypothesis repeats)."""
    import time

    from constructions.errors import ProofsCheckError

    start = time.perf_counter()
    for i, case in enumerate(cases):
        try:
            body(case)
        except (AssertionError, ProofsCheckError) as exc:
            return CheckOutcome(False, i + 1, f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - start)
    return CheckOutcome(True, len(cases), seconds=time.perf_counter() - start)


def _decode_all(profile: Profile, case_fn, fixed: list, table: dict) -> tuple[CheckOutcome, dict]:
    """``case_fn(case, evaluator, oracle, seen)`` on the fixed cases once, then on drawn
    ``tm_cases`` ((draws, step limit) = ``table[profile]``), with one fast evaluator and oracle."""
    import torch

    from constructions.evaluate_fast import FastEvaluator

    torch.set_num_threads(1)
    evaluator = FastEvaluator()
    seen: dict[str, Any] = {}
    draws, limit = table.get(profile.name, table["ci"])
    with RegexOracle() as oracle:
        body = lambda case: case_fn(case, evaluator, oracle, seen)  # noqa: E731
        outcomes = [fixed_cases_outcome(fixed, body),
                    property_check(tm_cases(max_n=6, max_steps=limit, min_steps=limit // 3), body, profile,
                                   max_examples=draws)]
    return combine(outcomes), seen


def _run(profile: Profile) -> CheckOutcome:
    outcome, seen = _decode_all(profile, check_case, busy_beaver_cases() + [NON_HALTING], DRAWS)
    seen["tokens_per_step"] = sorted(seen.get("tokens_per_step", ()))
    outcome.measured = {**seen, "chain_bound": "9 n + 13 steps + 1", "busy_beavers": list(BUSY_BEAVERS),
                        "lemma_b31": "checked in this check on every decode (before each step and at the end)"}
    return outcome


def b31_case(case: TMCase, evaluator, oracle: RegexOracle, seen: dict) -> None:
    """Lemma B.31 alone on one decode (the sequence, not the read-back, is under test)."""
    _, res = decode_case(case, evaluator, oracle)
    run = simulate(case.machine, case.tape, case.max_steps, record=True)
    seen["b31_other_i_x_i"] = seen.get("b31_other_i_x_i", 0) + check_lemma_b31(res.sequence, run, case.tape)
    seen["steps_checked"] = seen.get("steps_checked", 0) + len(run.trace)


def _run_b31(profile: Profile) -> CheckOutcome:
    outcome, seen = _decode_all(profile, b31_case, busy_beaver_cases()[:2], DRAWS_B31)
    outcome.measured = {**seen, "reading": "last token triple 'i v i' (v a symbol) before step t's <StartSearch>, "
                        "cells in Z (B31-E1..E3)"}
    return outcome


#: check B.31 alone: (cases drawn, step limit) besides bb2 and bb3
DRAWS_B31: dict[str, tuple[int, int]] = {"ci": (6, 12), "dev": (20, 40), "thorough": (100, 80)}

CHECKS = [
    Check(
        id="5.4",
        title="Retrieval-augmented linear RNN simulating a Turing machine (Thm 5.4, App B.10, Lemma B.31)",
        claim="A linear RNN with O(A log n) bits of state, O(A B^2 log n) parameter bits and in-context "
        "retrieval by Python regular expressions simulates any machine in TIME(n^A) with O(n^A) CoT; "
        "the last triple 'i v i' of a cell is its value (Lemma B.31)",
        run=_run,
    ),
    Check(
        id="B.31",
        title="Lemma B.31: the last triple of a cell is its value (App B.10, read as B31-E1..E3)",
        claim="Before step t, the last 'i v i' in the sequence with v a symbol token is i, TAPE[t,i], i if cell i "
        "was written (input or an earlier step), and there is none otherwise; every cell i in Z of the span",
        run=_run_b31,
    ),
]
