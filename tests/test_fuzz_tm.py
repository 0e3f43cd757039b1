"""Fuzz: ``proofs-check run tm`` input (issue #12): machine strings, tapes, step bounds, JSONL.

The machine grammar is restated here independently of constructions.turing_machine (bbchallenge
standard text format: '_'-separated groups, one per state, 3 characters per symbol: a digit below
the symbol count, L or R, a state letter A-Z; or ``---``).  The Turing-machine models are built on
other branches; until they exist a well-formed instance is refused with "not built yet".  The
properties hold either way: exit 0 or 2, no traceback, one error line per refused instance, a
malformed machine or tape refused for what it is (never "not built yet"), and a well-formed one
either "not built yet" or the record of the reference simulator (halted or not within its
--max-steps, never a non-halting run reported as a result).
"""
from __future__ import annotations

import json
import os
import re
import string
import tempfile

from hypothesis import event, given, strategies as st

from fuzz_support import assert_clean, examples, run_cli
from proofs_check.turing import parse_machine, simulate

MODELS = ("rag-rnn", "hybrid", "cot-rnn")
NOT_BUILT = "not built yet"


def reference_valid(text: str) -> int | None:
    """The number of symbols of a well-formed machine string, else None."""
    text = text.strip()
    groups = text.split("_")
    if not text or len(groups) > 25 or len(groups[0]) % 3 or not 2 <= len(groups[0]) // 3 <= 10:
        return None
    k = len(groups[0]) // 3
    cell = rf"(?:[0-{k - 1}][LR][A-Z]|---)"
    return k if all(re.fullmatch(cell * k, g, re.ASCII) for g in groups) else None


@st.composite
def machine_text(draw) -> str:
    """Mostly well-formed 2-3 state machines, some with one character spoiled."""
    states, symbols = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    letters = string.ascii_uppercase[:states] + "Z"
    cell = st.one_of(st.just("---"), st.builds(lambda w, m, q: f"{w}{m}{q}", st.integers(0, symbols - 1),
                                               st.sampled_from("LR"), st.sampled_from(letters)))
    text = "_".join("".join(draw(st.lists(cell, min_size=symbols, max_size=symbols))) for _ in range(states))
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from(["", "x", "_", "9", "²", "a", "-", " ", "__", "1RB", "\x00", "Ω"]))
        text = text[:pos] + junk + text[pos + 1 :]
    return text


TAPE = st.one_of(st.lists(st.integers(0, 2), max_size=4),
                 st.lists(st.one_of(st.integers(-1, 12), st.booleans(), st.text(max_size=2), st.floats()), max_size=3))


def reference_tape_ok(tape, symbols: int) -> bool:
    return all(type(s) is int and 0 <= s < symbols for s in tape)


PARSE_FAULTS = ("delta(", "group ", "input cell", "max_steps must", "symbols", "states", "machine string")


def check_record_or_not_built(line: str, record: dict | None, text: str, tape: list, steps: int) -> None:
    """A well-formed instance: the simulator's record, or a refusal that is not a parse fault
    (today "not built yet"; once the models exist, e.g. a precision or size refusal)."""
    if record is None:
        assert NOT_BUILT in line or not any(f in line for f in PARSE_FAULTS), (text, line)
        return
    run = simulate(parse_machine(text), tape, steps)
    want = {"halted": run.halted, "steps": run.steps, "tape": run.tape, "ones": run.ones}
    assert {k: record[k] for k in want} == want, (text, tape, record)


@examples(40)
@given(machine_text(), TAPE, st.one_of(st.none(), st.integers(-2, 12)), st.sampled_from(MODELS))
def test_fuzz_machine_and_tape_arguments(text, tape, max_steps, model):
    tape_text = " ".join(str(s) for s in tape)
    argv = ["run", "tm", "--model", model, f"--machine={text}", f"--input={tape_text}", "--json"]
    if max_steps is not None:
        argv.append(f"--max-steps={max_steps}")
    run = run_cli(argv)
    assert_clean(run)
    assert len(run.err_lines) <= 1
    symbols = reference_valid(text)
    words = tape_text.replace(",", " ").split()
    tape_ok = symbols is not None and all(w.isascii() and w.isdigit() and int(w) < symbols for w in words)
    if max_steps is not None and max_steps < 1:
        assert run.code == 2 and "--max-steps" in run.err_lines[0]
        event("bad --max-steps")
    elif symbols is None or not tape_ok:
        assert run.code == 2 and NOT_BUILT not in run.err_lines[0], (text, tape_text, run.err)
        event("malformed machine or tape")
    else:
        event("well-formed")
        record = json.loads(run.out_lines[0]) if run.code == 0 else None
        line = run.err_lines[0] if run.err_lines else ""
        check_record_or_not_built(line, record, text, [int(w) for w in words], max_steps or 1000)


@examples(20)
@given(st.lists(st.tuples(machine_text(), TAPE, st.one_of(st.none(), st.integers(1, 12), st.just(0), st.just("5"))),
                min_size=1, max_size=4), st.sampled_from(MODELS))
def test_fuzz_tm_jsonl(instances, model):
    """One line per instance; each refused one names its own fault; non-halting machines
    (e.g. 1RA1RA) against max_steps are either refused as not built or reported halted=false."""
    lines = []
    for text, tape, steps in instances:
        inst = {"machine": text, "input": tape}
        if steps is not None:
            inst["max_steps"] = steps
        lines.append(inst)
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(json.dumps(i) for i in lines) + "\n")
    try:
        run = run_cli(["run", "tm", "--model", model, "--input", path, "--json"])
    finally:
        os.unlink(path)
    assert_clean(run)
    records = [json.loads(x) for x in run.out_lines]
    assert len(records) == len(lines)
    errors = iter(run.err_lines)
    for k, (inst, rec) in enumerate(zip(lines, records), 1):
        symbols = reference_valid(inst["machine"])
        steps = inst.get("max_steps")
        well_formed = (symbols is not None and reference_tape_ok(inst["input"], symbols)
                       and (steps is None or (type(steps) is int and steps >= 1)))
        if "error" in rec:
            line = next(errors)
            assert line.startswith(f"error: instance {k}: ") and rec["instance"] == k
            if well_formed:
                check_record_or_not_built(line, None, inst["machine"], inst["input"], steps or 1000)
            else:
                assert NOT_BUILT not in line, (inst, line)
        else:
            assert well_formed, inst
            check_record_or_not_built("", rec, inst["machine"], inst["input"], steps or 1000)
    assert next(errors, None) is None, run.err


def test_non_halting_machine_against_max_steps():
    """1RA1RA never halts: with --max-steps it is refused as not built or reported not halted."""
    run = run_cli(["run", "tm", "--model", "rag-rnn", "--machine", "1RA1RA", "--max-steps", "7", "--json"])
    assert_clean(run)
    if run.code == 0:
        rec = json.loads(run.out_lines[0])
        assert rec["halted"] is False and rec["steps"] == 7
    else:
        assert NOT_BUILT in run.err_lines[0]


def test_an_enormous_step_bound_is_refused_before_any_build():
    for argv in (["--machine", "1RB1LB_1LA1RZ", "--max-steps", str(10**12)],
                 ["--instance", json.dumps({"machine": "1RB1LB_1LA1RZ", "max_steps": 10**12})]):
        run = run_cli(["run", "tm", "--model", "hybrid", *argv])
        assert_clean(run, bad=1)
        assert "steps" in run.err_lines[0] and NOT_BUILT not in run.err_lines[0], run.err
