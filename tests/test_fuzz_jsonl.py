"""Fuzz: JSONL (``--input``) and ``--instance`` input of ``proofs-check run`` for every
retrieval task and model (issue #12).

A file is a shuffle of good instances (small, with a plain-Python answer from the task's
definition, written below and independent of proofs_check.tasks), bad lines of many kinds
(bytes that are not UTF-8, binary junk, JSON of the wrong shape or type, huge or negative
numbers, floats, NaN, deep nesting, numbers beyond n or beyond the tool's size bound) and blank
lines, with LF or CRLF endings and an optional BOM.  Property: exit 0 or 2, no traceback, one
``error: instance K: line L:`` line per bad line (K its index among the non-blank lines, L its
line in the file, blank lines counted) and nothing else on stderr; on stdout (``--json``) one
record per instance in order, each with ``"instance": K`` and ``"line": L``, the good ones
otherwise exactly the record the same instance gives when run alone (``--instance``, which has
``"instance": 1`` and no line) and carrying the reference answer.
"""
from __future__ import annotations

import json
import os
import tempfile

from hypothesis import event, given, strategies as st

from fuzz_support import CliRun, assert_clean, examples, run_cli

TASKS = ("index", "ar", "cgram", "count")
MODELS = ("transformer", "hybrid", "rag-rnn")


# ---- plain-Python answers (Defs 4.2-4.5) ------------------------------------------------------


def reference_answer(task: str, inst: dict) -> int:
    seq, q = inst["tokens"], inst["query"]
    if task == "index":
        return seq[q - 1]
    if task == "count":
        return int(seq.count(q) > inst["threshold"])
    key = [q] if task == "ar" else q
    for i in range(len(seq) - len(key)):
        if seq[i : i + len(key)] == key:
            return seq[i + len(key)]
    raise AssertionError("generated a good instance without an answer")


# ---- good instances (n <= 3, at most 4 tokens: cheap to build and decode) ---------------------


@st.composite
def good_instance(draw, task: str) -> dict:
    n = draw(st.integers(2, 3))
    seq = draw(st.lists(st.integers(1, n), min_size=2, max_size=4))
    if task == "index":
        return {"tokens": seq, "query": draw(st.integers(1, len(seq)))}
    if task == "count":
        return {"tokens": seq, "query": draw(st.integers(1, n)), "threshold": draw(st.integers(0, n))}
    start = draw(st.integers(0, len(seq) - 2))  # a key that occurs with a next token
    if task == "ar":
        return {"tokens": seq, "query": seq[start]}
    return {"tokens": seq, "query": seq[start : start + 1]}  # cgram, c = 2


def good_line(task: str) -> st.SearchStrategy[tuple[str, bytes, dict]]:
    """('good', the line's bytes, the instance): compact or spaced JSON, maybe a BOM or padding."""

    def render(inst: dict, spaced: bool, bom: bool, pad: str) -> tuple[str, bytes, dict]:
        text = json.dumps(inst) if spaced else json.dumps(inst, separators=(",", ":"))
        return "good", (b"\xef\xbb\xbf" if bom else b"") + (pad + text + pad).encode(), inst

    return st.builds(render, good_instance(task), st.booleans(), st.booleans(), st.sampled_from(["", " ", "\t"]))


# ---- bad lines, each of a kind that must be refused -------------------------------------------

NUMBER_JUNK = st.one_of(
    st.integers(-(10**3), 0),  # zero and negative numbers
    st.integers(10**5, 10**40),  # beyond the size bound (and far beyond)
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x) if abs(x) < 1e300 else True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(1, 3), max_size=2).map(lambda x: [x]),  # nested one level too deep
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _wrong_field(task: str) -> st.SearchStrategy[bytes]:
    """A good instance with one field replaced by junk of the wrong type or range."""

    def spoil(inst: dict, field: str, junk) -> bytes:
        spoilt = dict(inst)
        if field == "tokens[0]":
            spoilt["tokens"] = [junk, *inst["tokens"][1:]]
        else:
            spoilt[field] = junk
        return json.dumps(spoilt).encode()

    fields = ["tokens", "tokens[0]", "query"] + (["threshold"] if task == "count" else [])
    return st.builds(spoil, good_instance(task), st.sampled_from(fields), NUMBER_JUNK)


def _keys_wrong(task: str) -> st.SearchStrategy[bytes]:
    def spoil(inst: dict, how: str, extra: str) -> bytes:
        spoilt = dict(inst)
        if how == "missing":
            spoilt.pop("query")
        elif how == "extra":
            spoilt["x" + extra] = 1
        elif how == "n too small":
            spoilt["n"] = max(inst["tokens"]) - 1 or -1
        elif how == "n not a number":
            spoilt["n"] = extra or 2.5
        else:  # not an object
            return json.dumps(list(inst.values())).encode()
        return json.dumps(spoilt).encode()

    hows = ["missing", "extra", "n too small", "n not a number", "array"]
    return st.builds(spoil, good_instance(task), st.sampled_from(hows), st.text(max_size=3))


def bad_line(task: str) -> st.SearchStrategy[tuple[str, bytes, str]]:
    """('bad', the line's bytes, its kind)."""
    junk = st.binary(max_size=40).map(lambda b: b"\x00" + b.replace(b"\n", b"?"))
    not_utf8 = st.tuples(good_line(task), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"]),
                         st.integers(0, 200)).map(lambda t: t[0][1][: t[2]] + t[1] + t[0][1][t[2]:])
    deep = st.integers(600, 40000).map(lambda d: b"[" * d + b"]" * d)
    constants = st.sampled_from([b'{"tokens": [NaN], "query": 1}', b'{"tokens": [1], "query": Infinity}',
                                 b'{"tokens": [1, 2], "query": -Infinity}'])
    huge_int = st.integers(101, 6000).map(lambda k: b'{"tokens": [1], "query": 1' + b"0" * k + b"}")
    truncated = good_instance(task).map(lambda i: json.dumps(i).encode()).flatmap(
        lambda b: st.integers(1, len(b) - 1).map(lambda k: b[:k]))  # a proper prefix of an object
    named = {"binary junk": junk, "not UTF-8": not_utf8, "deep nesting": deep, "NaN/Infinity": constants,
             "huge integer": huge_int, "truncated JSON": truncated, "wrong field": _wrong_field(task),
             "wrong keys or n": _keys_wrong(task)}
    return st.one_of(*(s.map(lambda b, k=k: ("bad", b, k)) for k, s in named.items()))


def any_line(task: str) -> st.SearchStrategy:
    """Good or bad with even odds (st.one_of would flatten the bad kinds and favour them 8:1)."""
    return st.booleans().flatmap(lambda good: good_line(task) if good else bad_line(task))


@st.composite
def jsonl_file(draw, task: str) -> tuple[bytes, list[tuple[str, bytes, dict | None]], list[int]]:
    """(file bytes, the non-blank lines in order as ('good', bytes, instance) or ('bad', bytes, kind),
    the file line number of each: counted here as the file is assembled, blank lines included)"""
    lines = draw(st.lists(any_line(task), min_size=1, max_size=5))
    goods = [ln for ln in lines if ln[0] == "good"]
    if len(goods) > 3:  # keep the model runs few
        lines = [ln for ln in lines if ln[0] == "bad"] + goods[:3]
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    parts: list[bytes] = []
    numbers: list[int] = []
    for ln in lines:
        parts += [b""] * draw(st.integers(0, 1)) + [ln[1]]  # blank lines between
        numbers.append(len(parts))  # 1-based: the line just appended
    body = eol.join(parts) + (eol if draw(st.booleans()) else b"")
    return body, lines, numbers


# ---- the property ---------------------------------------------------------------------------

_ALONE: dict[tuple[str, str, str], dict] = {}


def alone(task: str, model: str, inst: dict) -> dict:
    """The record ``--instance`` gives for ``inst`` alone (memoised: deterministic)."""
    key = (task, model, json.dumps(inst, sort_keys=True))
    if key not in _ALONE:
        run = run_cli(["run", task, "--model", model, "--instance", json.dumps(inst), "--json"])
        assert_clean(run, bad=0)
        (line,) = run.out_lines
        _ALONE[key] = json.loads(line)
        assert _ALONE[key]["answer"] == reference_answer(task, inst), (task, model, inst, line)
        assert _ALONE[key]["instance"] == 1 and "line" not in _ALONE[key], line
    return _ALONE[key]


def check_mixed_run(run: CliRun, task: str, model: str, lines, numbers: list[int]) -> None:
    bad = [(k, numbers[k - 1]) for k, ln in enumerate(lines, 1) if ln[0] == "bad"]
    assert_clean(run, bad=len(bad))
    for line, (k, lineno) in zip(run.err_lines, bad):
        head = f"error: instance {k}: line {lineno}: "
        assert line.startswith(head), (line, k, lineno)
        assert len(line) > len(head) + 10, line  # says what is wrong
    records = [json.loads(x) for x in run.out_lines]
    assert len(records) == len(lines), run.out
    for k, (rec, (kind, raw, inst), lineno) in enumerate(zip(records, lines, numbers), 1):
        assert (rec.get("instance"), rec.get("line")) == (k, lineno), (rec, k, lineno)
        if kind == "bad":
            event(f"bad line: {inst}")
            assert set(rec) == {"instance", "line", "error"}, (rec, raw)
        else:
            event("good line")
            expected = {**alone(task, model, inst), "instance": k, "line": lineno}  # alone: instance 1, no line
            assert rec == expected, (rec, inst)


@examples(40)
@given(st.data())
def test_fuzz_jsonl_every_task_and_model(data):
    task = data.draw(st.sampled_from(TASKS), label="task")
    model = data.draw(st.sampled_from(MODELS), label="model")
    body, lines, numbers = data.draw(jsonl_file(task), label="file")
    fd, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        run = run_cli(["run", task, "--model", model, "--input", path, "--json"])
    finally:
        os.unlink(path)
    check_mixed_run(run, task, model, lines, numbers)


@examples(10)
@given(st.data())
def test_fuzz_jsonl_on_stdin(data):
    task = data.draw(st.sampled_from(TASKS), label="task")
    body, lines, numbers = data.draw(jsonl_file(task), label="stdin")
    check_mixed_run(run_cli(["run", task, "--model", "transformer", "--input", "-", "--json"], stdin=body),
                    task, "transformer", lines, numbers)


@examples(30)
@given(st.data())
def test_fuzz_instance_argument(data):
    """--instance TEXT: a bad one is one error line; a good one is the reference answer.  The
    text may hold lone surrogates (what Python makes of non-UTF-8 bytes in argv)."""
    task = data.draw(st.sampled_from(TASKS), label="task")
    kind, raw, inst = data.draw(any_line(task), label="line")
    text = raw.decode("utf-8", "surrogateescape")
    run = run_cli(["run", task, "--model", "transformer", "--instance", text, "--json"])
    if kind == "bad":
        assert_clean(run, bad=1)
        assert run.err_lines[0].startswith("error: instance 1: ")
    else:
        assert_clean(run, bad=0)
        assert json.loads(run.out_lines[0]) == alone(task, "transformer", inst)


def test_the_reported_defect_non_utf8_file_is_one_error_line_and_the_rest_still_runs(tmp_path):
    """Issue #12's report: a non-UTF-8 byte made `run index --input` end in a traceback."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xff\xfe{"tokens": [1, 2], "query": 1}\n{"tokens": [2, 1], "query": 1}\n')
    run = run_cli(["run", "index", "--model", "transformer", "--input", str(path)])
    assert_clean(run, bad=1)
    assert "not UTF-8" in run.err_lines[0] and "instance 1" in run.err_lines[0]
    assert run.out_lines == ["answer: 2  n=2  p=39  generated: 2"]


def test_line_numbers_with_blank_lines_a_bom_and_crlf(tmp_path):
    """Issue 15: every record names its file line (blank and whitespace-only lines counted, the BOM
    and CRLF endings not shifting it), success and error alike; the human error line says it too."""
    good1, good2 = {"tokens": [3, 1, 4, 1, 5], "query": 3}, {"tokens": [2, 1], "query": 2}
    body = (b"\xef\xbb\xbf" + json.dumps(good1).encode() + b"\r\n"  # line 1, after a BOM
            b"\r\n \t\r\n\r\n"  # lines 2-4 blank
            b'{"tokens": [1], "query": 7}\r\n'  # line 5: query past the sequence
            + json.dumps(good2).encode() + b"\r\n\r\n"  # line 6, then a blank line 7
            b"\xff\r\n")  # line 8: not UTF-8
    path = tmp_path / "in.jsonl"
    path.write_bytes(body)
    run = run_cli(["run", "index", "--model", "transformer", "--input", str(path), "--json"])
    assert_clean(run, bad=2)
    records = [json.loads(x) for x in run.out_lines]
    assert [(r["instance"], r["line"]) for r in records] == [(1, 1), (2, 5), (3, 6), (4, 8)]
    assert [r.get("answer") for r in records] == [reference_answer("index", good1), None,
                                                  reference_answer("index", good2), None]
    assert [e.split(":")[:3] for e in run.err_lines] == [["error", " instance 2", " line 5"],
                                                         ["error", " instance 4", " line 8"]]
    human = run_cli(["run", "index", "--model", "transformer", "--input", str(path)])
    assert human.err_lines == run.err_lines and human.out_lines[0].startswith("answer: 4  ")
