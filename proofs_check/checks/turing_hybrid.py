"""Check 5.8: a hybrid linear RNN with one attention layer simulates a Turing machine (Thm 5.8, App B.13).

``constructions.turing_hybrid.build(machine, n, max_steps)`` is decoded greedily (Def A.4) on
the prompt ``<s> TAPE[1,1] .. TAPE[1,n]`` and the run is read back from the generated tokens
only (``read_back``).  The reference is the plain-Python simulator ``proofs_check.turing.simulate``
(it knows nothing of any model):

* halted, step count (the halting step included), final state, head, the whole final tape
  (the span of the input cells and every cell read) and the non-blank count agree;
* every generated group ``POINTER[t] TAPE[t+1,POINTER[t]] POINTER[t] State[t+1] Direction[t+1]``
  equals the simulator's step t (head, written symbol, next state, move);
* the CoT has at most 5 S + 1 tokens (S = the step bound; O(n^A) for S = n^A).

Cases: Hypothesis ``strategies.tm_cases`` (B = 2..4 states, 2..3 symbols, inputs of <= 6
cells, lazily drawn transitions with a reachable halt); every second case is also built with a
step bound one below its halting step and must report ``halted: false`` with the simulator's
state after that many steps; the busy-beaver champions bb2, bb3, bb2x3 from a blank tape.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from hypothesis import strategies as st

from constructions.decode import chain_of_thought
from constructions.evaluate_fast import FastEvaluator
from constructions.model import Model
from constructions.turing_hybrid import GROUP, MOVE_TOKEN, STOP_TOKENS, build, chain_bound, prompt, read_back, state_token, sym_token
from constructions.turing_machine import Machine, parse_machine
from proofs_check.claims import measure
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check
from proofs_check.strategies import TMCase, tm_cases
from proofs_check.turing import KNOWN_MACHINES, simulate

torch.set_num_threads(1)

BLANK_TAPE_MACHINES = ("bb2", "bb3", "bb2x3")


@lru_cache(maxsize=64)
def _model(text: str, n: int, max_steps: int) -> Model:
    return build(parse_machine(text), n, max_steps)


def decode(machine: Machine, tape, max_steps: int, evaluator=None):
    """(model, DecodeResult) of the hybrid on ``tape`` with step bound ``max_steps``."""
    model = _model(machine.to_text(), len(tape), max_steps)
    ev = evaluator or FastEvaluator()
    return model, chain_of_thought(ev.session(model, prompt(model, list(tape))), chain_bound(model), answers=STOP_TOKENS)


def expected_groups(trace) -> list[list]:
    """The B.13 sequence of a simulator trace: one group of five tokens per step."""
    out = []
    for s in trace:
        out.append([s.head, sym_token(s.write), s.head, state_token(s.next_state), MOVE_TOKEN[s.move]])
    return out


def check_run(machine: Machine, tape, max_steps: int, stats: dict | None = None) -> dict:
    model, result = decode(machine, tape, max_steps)
    ref = simulate(machine, list(tape), max_steps, record=True)
    where = f"machine {machine} input {list(tape)} bound {max_steps}"
    got = read_back(model, result)
    exp = ref.to_json()
    assert got == exp, f"{where}: model {got} vs simulator {exp}"
    gen = list(result.generated)
    body = gen[:-1] if got["halted"] else gen
    groups = [body[i:i + GROUP] for i in range(0, GROUP * ref.steps, GROUP)]
    assert groups == expected_groups(ref.trace), f"{where}: a group differs from the simulator's step"
    assert len(gen) <= chain_bound(model) + 1, f"{where}: {len(gen)} tokens > bound {chain_bound(model) + 1}"
    if stats is not None:
        stats["runs"] = stats.get("runs", 0) + 1
        stats["steps"] = stats.get("steps", 0) + ref.steps
        stats["halted"] = stats.get("halted", 0) + int(ref.halted)
    return got


def _case_body(stats: dict):
    def body(case: TMCase) -> None:
        run = check_run(case.machine, case.tape, case.max_steps, stats)
        if run["steps"] >= 2 and stats.get("runs", 0) % 2 == 0:  # the same run cut one step short
            cut = check_run(case.machine, case.tape, run["steps"] - 1, stats)
            assert cut["halted"] is False, f"{case.machine}: a bound below the halting step reported a halt"
    return body


def _blank_tape_body(stats: dict):
    def body(name: str) -> None:
        mc = parse_machine(KNOWN_MACHINES[name])
        ref = simulate(mc, [], 10**4)
        run = check_run(mc, [], ref.steps + 1, stats)
        stats.setdefault("blank_tape", {})[name] = {"steps": run["steps"], "ones": run["ones"]}
    return body


#: per profile: (max input cells, max step bound, examples)
MIN_STEPS = 5  # a transition is drawn halting only from this step on (when the state graph allows)
SIZES: dict[str, tuple[int, int, int]] = {"ci": (6, 16, 8), "dev": (6, 30, 30), "thorough": (8, 60, 150)}


def run(profile: Profile) -> CheckOutcome:
    """ci: 8 random machines (bounds <= 16 steps, half also cut short) and the three blank-tape
    champions, ~30 s with the fast evaluator."""
    max_n, max_steps, examples = SIZES.get(profile.name, SIZES["ci"])
    stats: dict = {}
    outcomes = [
        property_check(tm_cases(max_n=max_n, max_steps=max_steps, min_steps=MIN_STEPS), _case_body(stats), profile, max_examples=examples),
        property_check(st.sampled_from(BLANK_TAPE_MACHINES), _blank_tape_body(stats), profile,
                       max_examples=len(BLANK_TAPE_MACHINES)),
    ]
    out = combine(outcomes)
    out.measured.update({k: stats.get(k, 0) for k in ("runs", "steps", "halted")})
    out.measured["blank_tape"] = stats.get("blank_tape", {})
    bb = parse_machine(KNOWN_MACHINES["bb2"])
    out.measured["sizes_bb2"] = {S: _sizes(build(bb, 0, S)) for S in (8, 64, 512)}
    return out


def _sizes(model: Model) -> dict:
    keep = ("p", "layers", "heads", "active_width", "ffn_width", "params", "param_bits", "state_dims", "state_bits")
    return {k: v for k, v in measure(model).items() if k in keep}


CHECKS = [
    Check(
        "5.8",
        "Turing machine simulation by a hybrid linear RNN with one attention layer (Thm 5.8, App B.13)",
        "For a Turing machine T with B states, a hybrid linear RNN (Def 5.5) whose RNN layers keep "
        "the pointer and state and whose one attention layer (MatchClose, Lemma B.16) fetches the "
        "last value written at the pointer writes B.13's sequence of (pointer, written value, "
        "pointer, state, direction) and so simulates T, with O(A log n) bits of precision and "
        "memory, O(A B^2 log n) parameter bits and O(n^A) CoT steps.",
        run,
    )
]
