"""Fuzz: pathological regular expressions reaching the retriever (issue #12).

RETRIEVE (Def A.5) runs ``re.search`` on a pattern the model wrote; CPython's ``re`` cannot be
interrupted, so :class:`constructions.decode.RegexOracle` runs it in a worker process under a time
bound.  Patterns here are nested quantifiers of the catastrophic kind (``(a+)+b`` on ``aaa...``)
mixed with benign ones.  Property: every search returns within the bound (plus process start-up)
or raises RetrievalError naming the bound, and the oracle answers a plain query correctly right
after (the killed worker is replaced).  Through :func:`retrieve`, the same holds for a pattern
spelled in tokens.
"""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import event, given, strategies as st

from constructions.decode import END, START, RegexOracle, retrieve
from constructions.errors import RetrievalError
from constructions.vocab import Vocabulary
from fuzz_support import examples

BOUND_S = 0.3
SLACK_S = 5.0  # fork + pipe on a loaded 2-core machine

ATOM = st.sampled_from(["a", "a?", "(a|aa)", "(a|a)", ".", r"\w", "[ab]", "(?:a*)"])
QUANT = st.sampled_from(["+", "*", "{1,30}", "+?", ""])


@st.composite
def nested(draw, depth: int = 3) -> str:
    atom = draw(ATOM)
    for _ in range(draw(st.integers(1, depth))):
        atom = f"({atom}{draw(QUANT)}){draw(QUANT)}"
    return "(" + atom + draw(st.sampled_from(["b", "$", "c", "", "(b)"])) + ")"


@examples(15)
@given(nested(), st.integers(5, 40))
def test_fuzz_catastrophic_patterns_stay_within_the_bound(pattern, length):
    with RegexOracle(timeout_s=BOUND_S) as oracle:
        start = time.perf_counter()
        try:
            oracle.search(pattern, "a" * length + "!")
            event("answered")
        except RetrievalError as exc:
            assert f"{BOUND_S} s" in str(exc) or "invalid regular expression" in str(exc), exc
            event("abandoned at the bound" if f"{BOUND_S} s" in str(exc) else "invalid")
        assert time.perf_counter() - start < BOUND_S + SLACK_S
        assert oracle.search(r"(b+)", "aabbb") == re.search(r"(b+)", "aabbb").group(1)  # a fresh worker answers


def test_a_known_catastrophic_pattern_is_abandoned_then_the_oracle_recovers():
    with RegexOracle(timeout_s=BOUND_S) as oracle:
        start = time.perf_counter()
        with pytest.raises(RetrievalError, match="ran longer than"):
            oracle.search(r"((a+)+)+b", "a" * 40)
        assert time.perf_counter() - start < BOUND_S + SLACK_S
        assert oracle.search(r"x(\d)", "x1 x2") == "1"


@examples(10)
@given(st.lists(st.sampled_from(["(a+)+", "(?:", ")", "[", "(b)", "*", "a{2,}", "\\"]), min_size=1, max_size=5))
def test_fuzz_patterns_in_tokens_through_retrieve(words):
    """A pattern spelled in the model's tokens: FAILED, a token sequence, or RetrievalError."""
    vocab = Vocabulary.with_extras(3, sorted(set(words)))
    with RegexOracle(timeout_s=BOUND_S) as oracle:
        start = time.perf_counter()
        try:
            pattern, result = retrieve(["<s>", 1, 2, 1, START, *words, END], vocab, oracle)
            assert result == ["FAILED"] or all(vocab.check(t) == t for t in result)
        except RetrievalError:
            pass
        assert time.perf_counter() - start < BOUND_S + SLACK_S
