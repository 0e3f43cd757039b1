"""Task formats, references and validation (Defs 4.2-4.5), against independent references."""
from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given

from constructions.errors import InputError
from proofs_check import strategies as S
from proofs_check.tasks import (
    ARInstance,
    CGramInstance,
    CountingInstance,
    IndexInstance,
    from_json,
)

# ---- independent references (written separately from proofs_check.tasks) --------------------


def ref_ar(seq, q):
    """Next token after the first q, by str.split on a text rendering."""
    if q not in seq:
        return None
    i = seq.index(q)
    return seq[i + 1] if i + 1 < len(seq) else None


def ref_cgram(seq, query):
    text = " " + " ".join(map(str, seq)) + " "
    key = " " + " ".join(map(str, query)) + " "
    pos = text.find(key)
    if pos < 0:
        return None
    after = text[pos + len(key):].split()
    return int(after[0]) if after else None


# ---- hand-worked examples ----------------------------------------------------------------------


def test_index_format_and_answer():
    inst = IndexInstance.make([7, 3, 12, 3], 3)
    assert inst.n == 12
    assert inst.tokens() == ["<s>", 7, 3, 12, 3, 3]
    assert inst.answer() == 12


def test_ar_first_occurrence_and_format():
    inst = ARInstance.make([5, 1, 5, 2, 9], 5)
    assert inst.tokens() == ["<s>", 5, 1, 5, 2, 9, 5]
    assert inst.answer() == 1  # first occurrence wins
    assert ARInstance.make([5, 1, 5, 2, 9], 2).answer() == 9  # answer is the last token


def test_ar_without_answer():
    absent = ARInstance.make([1, 2, 3], 4, validate=False)
    assert absent.answer() is None
    with pytest.raises(InputError, match="does not occur"):
        absent.validate()
    at_end = ARInstance.make([1, 2, 3], 3, validate=False)
    assert at_end.answer() is None
    with pytest.raises(InputError, match="last position"):
        at_end.validate()
    assert at_end.validate(require_answer=False) is at_end


def test_cgram_examples():
    inst = CGramInstance.make([1, 1, 1, 2, 1, 1, 3], [1, 1])
    assert inst.c == 3
    assert inst.tokens() == ["<s>", 1, 1, 1, 2, 1, 1, 3, 1, 1]
    assert inst.answer() == 1  # overlapping occurrence at positions 1-2, next is t_3 = 1
    assert CGramInstance.make([4, 2, 4, 3, 7], [4, 3]).answer() == 7
    with pytest.raises(InputError, match="not the prefix"):
        CGramInstance.make([4, 2, 4, 3], [4, 3])


def test_counting_examples_and_threshold_zero():
    inst = CountingInstance.make([2, 5, 2, 2], 2, 2)
    assert inst.tokens() == ["<s>", 2, 5, 2, 2, 2, 2]
    assert inst.count() == 3 and inst.answer() == 1
    assert CountingInstance.make([2, 5, 2, 2], 2, 3).answer() == 0
    assert CountingInstance.make([], 1, 0).answer() == 0
    assert CountingInstance.make([1], 1, 0).answer() == 1
    assert inst.vocabulary().min_number == 0


@pytest.mark.parametrize(
    "task,data,match",
    [
        ("index", {"tokens": [1, 2], "query": 3}, "past the sequence"),
        ("index", {"tokens": [1, 9], "query": 1, "n": 5}, "token 2 = 9 is outside 1..5"),
        ("index", {"tokens": [], "query": 1}, "at least one token"),
        ("index", {"tokens": [1, 2], "query": 0}, "query = 0"),
        ("index", {"tokens": [1, "a"], "query": 1}, "whole number"),
        ("index", {"tokens": [1, True], "query": 1}, "whole number"),
        ("index", {"tokens": "1 2", "query": 1}, "list of numbers"),
        ("ar", {"tokens": [1, 2]}, "missing"),
        ("ar", {"tokens": [1, 2], "query": 1, "extra": 0}, "unknown keys"),
        ("ar", {"tokens": [1, 2], "query": 7, "n": 3}, "query = 7"),
        ("cgram", {"tokens": [1, 2, 3], "query": 1}, "must be a list"),
        ("cgram", {"tokens": [1, 2, 3], "query": []}, "c >= 2"),
        ("count", {"tokens": [1, 2], "query": 1, "threshold": -1}, "threshold = -1"),
        ("count", {"tokens": [1, 2], "query": 1, "threshold": 9, "n": 3}, "threshold = 9"),
        ("count", {"tokens": [1, 2], "query": 1, "n": 0, "threshold": 0}, "n must be at least 1"),
        ("nope", {}, "unknown task"),
        ("index", [1, 2], "JSON object"),
    ],
)
def test_bad_input_is_a_clear_error(task, data, match):
    with pytest.raises(InputError, match=match):
        from_json(task, data)


def test_json_shapes():
    assert from_json("index", {"tokens": [3, 1], "query": 2}).to_json() == {"tokens": [3, 1], "query": 2, "n": 3}
    assert from_json("cgram", {"tokens": [3, 1, 2], "query": [3, 1]}).answer() == 2
    assert from_json("count", {"tokens": [3, 1], "query": 3, "threshold": 0}).answer() == 1


# ---- properties against the independent references --------------------------------------------


@given(S.index_instances(max_n=24))
def test_index_reference(inst):
    assert inst.answer() == inst.tokens()[inst.query]  # <s> is token 0, t_i is token i
    assert IndexInstance.from_json(inst.to_json()) == inst


@given(S.ar_instances(max_n=24))
def test_ar_reference(inst):
    assert inst.answer() is not None
    assert inst.answer() == ref_ar(list(inst.seq), inst.query)
    assert ARInstance.from_json(inst.to_json()) == inst


@given(S.ar_unanswerable(max_n=24))
def test_ar_unanswerable_reference(inst):
    assert inst.answer() is None and ref_ar(list(inst.seq), inst.query) is None
    with pytest.raises(InputError):
        inst.validate()


@given(S.cgram_instances(max_n=24))
def test_cgram_reference(inst):
    assert inst.answer() is not None
    assert inst.answer() == ref_cgram(inst.seq, inst.query)
    assert CGramInstance.from_json(inst.to_json()) == inst


@given(S.counting_instances(max_n=24))
def test_counting_reference(inst):
    assert inst.answer() == int(Counter(inst.seq)[inst.query] > inst.threshold)
    assert CountingInstance.from_json(inst.to_json()) == inst
    vocab = inst.vocabulary()
    assert [vocab.check(t) for t in inst.tokens()] == inst.tokens()
