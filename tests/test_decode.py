"""Decoding loops (Def A.4, Def A.5 / Sec 5.1) with a scripted fake session.

The decode loop only needs ``tokens``, ``append`` and ``next_token``; the fake session emits a
fixed script, so these tests pin down the loop and RETRIEVE semantics independently of any model.
Expected retrieval results come from a direct ``re.search`` written out in the test.
"""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from constructions.decode import FAILED, RegexOracle, chain_of_thought, retrieval_augmented, retrieve
from constructions.errors import ProofsCheckError, RetrievalError
from constructions.vocab import Vocabulary, detokenize

S, E = "<StartSearch>", "<EndSearch>"
CATASTROPHIC = "a" * 28 + "b"
EXTRAS = (r"\b", r"\b(\S+)\b", r"(\S+)", "(<StartSearch>)", "(x)?", "(a+)+$", "no-group", "(unclosed", CATASTROPHIC, "(~)")
VOCAB = Vocabulary.with_extras(20, EXTRAS)


class ScriptedSession:
    """next_token pops the next scripted token; append records everything."""

    def __init__(self, prompt, script):
        self.tokens = list(prompt)
        self.script = list(script)
        self.calls = 0

    def append(self, tokens):
        self.tokens.extend(tokens)

    def next_token(self):
        self.calls += 1
        if not self.script:
            raise AssertionError("the decode loop asked for more tokens than scripted")
        return self.script.pop(0)


class _LazyOracle:
    """One oracle shared by the Hypothesis test above (fixtures do not mix with @given)."""

    _o = None

    def __getattr__(self, name):
        if _LazyOracle._o is None:
            _LazyOracle._o = RegexOracle(timeout_s=5.0)
        return getattr(_LazyOracle._o, name)


_SHARED = _LazyOracle()


@pytest.fixture(scope="module")
def oracle():
    with RegexOracle(timeout_s=5.0) as o:
        yield o


def direct_group1(pattern: str, string: str):
    """The paper's `re.search(pattern, string).group(1)`, FAILED when nothing matches."""
    m = re.search(pattern, string)
    return [FAILED] if m is None or m.group(1) is None else VOCAB.tokenize(m.group(1))


# ---- chain of thought ---------------------------------------------------------------------------


@given(st.lists(st.integers(1, 20), max_size=8), st.sampled_from(["YES", "NO"]), st.integers(0, 10))
def test_chain_of_thought_step_limit(thoughts, answer, max_steps):
    session = ScriptedSession(["<s>", 1], thoughts + [answer])
    res = chain_of_thought(session, max_steps)
    if len(thoughts) <= max_steps:  # Def A.4: terminates at S_i with i <= T
        assert res.answer == answer and res.stopped == "answer"
        assert res.generated == thoughts + [answer] and res.steps == len(thoughts)
        assert res.sequence == ["<s>", 1] + thoughts + [answer]
    else:
        assert res.answer is None and res.stopped == "max_steps"
        assert res.generated == thoughts[: max_steps + 1] and session.calls == max_steps + 1


def test_chain_of_thought_custom_answers():
    res = chain_of_thought(ScriptedSession([1], [2, 3, 4]), 5, answers=lambda t: t == 3)
    assert res.answer == 3 and res.steps == 1


# ---- RETRIEVE ---------------------------------------------------------------------------------------


def test_first_match_group1(oracle):
    prompt = ["<s>", 2, 3, 7, 5, 3, 4]
    script = [S, r"\b", 3, r"\b(\S+)\b", E, "YES"]
    res = retrieval_augmented(ScriptedSession(prompt, script), VOCAB, 10, oracle=oracle)
    string = "<s> 2 3 7 5 3 4"
    assert re.search(r"\b 3 \b(\S+)\b", string).group(1) == "7"  # the first match, not "4"
    assert [r.result for r in res.retrievals] == [[7]]
    assert res.retrievals[0].pattern == r"\b 3 \b(\S+)\b"
    assert res.sequence == prompt + [S, r"\b", 3, r"\b(\S+)\b", E, 7, "YES"]
    assert res.answer == "YES" and res.generated == script


def test_group_one_not_the_whole_match(oracle):
    prompt = ["<s>", 1, "~", 2, 3, "~", 4]
    script = [S, 3, "(~)", E, "NO"]
    res = retrieval_augmented(ScriptedSession(prompt, script), VOCAB, 10, oracle=oracle)
    assert res.retrievals[0].result == ["~"]  # group(1) = "~", not the whole match "3 ~"


def test_failed_when_no_match(oracle):
    prompt = ["<s>", 1, "~", 2]
    res = retrieval_augmented(ScriptedSession(prompt, [S, 7, r"(\S+)", E, "NO"]), VOCAB, 10, oracle=oracle)
    assert res.retrievals[0].result == [FAILED]
    assert res.sequence[-2:] == [FAILED, "NO"]


def test_failed_when_group_does_not_participate(oracle):
    # "(x)? 1" matches "1" with group 1 unset: re's group(1) is None -> FAILED
    res = retrieval_augmented(ScriptedSession(["<s>", 1], [S, "(x)?", 1, E, "NO"]), VOCAB, 5, oracle=oracle)
    assert re.search("(x)? 1", "<s> 1").group(1) is None
    assert res.retrievals[0].result == [FAILED]


def test_pattern_between_last_start_and_end_and_string_before_it(oracle):
    """The string is everything before the *last* <StartSearch>; the pattern excludes the markers."""
    prompt = ["<s>", 1, "~", 2]
    # first query: "(<StartSearch>)" cannot match, since the string stops before its own <StartSearch>
    # second query: the string now holds the first query, so the same pattern matches
    script = [S, "(<StartSearch>)", E, S, "(<StartSearch>)", E, "YES"]
    res = retrieval_augmented(ScriptedSession(prompt, script), VOCAB, 10, oracle=oracle)
    assert [r.result for r in res.retrievals] == [[FAILED], [S]]
    assert [r.pattern for r in res.retrievals] == ["(<StartSearch>)", "(<StartSearch>)"]
    # an unterminated earlier <StartSearch>: the pattern starts after the last one only
    seq = ["<s>", 5, "~", 6, S, 5, S, 5, r"(\S+)", E]
    pattern, result = retrieve(seq, VOCAB, oracle)
    assert pattern == r"5 (\S+)"
    assert result == direct_group1(pattern, "<s> 5 ~ 6 <StartSearch> 5") == ["~"]


def test_erratum_A5_E1_pattern_with_its_markers_never_matches(oracle):
    """Def A.5 read literally: the pattern is Detokenize(S_(l_s:l_e)), the two markers included;
    the string searched (everything before <StartSearch>) never contains <EndSearch>, so that
    pattern never matches.  The tokens strictly between the markers retrieve the answer."""
    seq = ["<s>", 5, "~", 6, S, 5, r"(\S+)", E]
    literal = detokenize(seq[4:])  # S_(l_s:l_e): "<StartSearch> 5 (\S+) <EndSearch>"
    assert re.search(literal, detokenize(seq[:4])) is None
    pattern, result = retrieve(seq, VOCAB, oracle)
    assert pattern == r"5 (\S+)" and result == ["~"]


def test_answer_tokens_inside_a_query_are_not_answers(oracle):
    prompt = ["<s>", 1, "~", "YES", 7]
    script = [S, "YES", r"(\S+)", E, "NO"]
    res = retrieval_augmented(ScriptedSession(prompt, script), VOCAB, 10, oracle=oracle)
    assert res.retrievals[0].pattern == r"YES (\S+)" and res.retrievals[0].result == [7]
    assert res.answer == "NO" and res.generated == script


def test_answer_inside_query_then_answer(oracle):
    prompt = ["<s>", 1, "~", 2]
    script = [S, "NO", r"(\S+)", E, "YES"]
    res = retrieval_augmented(ScriptedSession(prompt, script), VOCAB, 10, oracle=oracle)
    assert res.answer == "YES" and res.generated == script
    assert res.retrievals[0].pattern == r"NO (\S+)" and res.retrievals[0].result == [FAILED]


@given(st.integers(0, 6), st.integers(0, 6))
def test_retrieval_step_limit(n_thoughts, max_steps):
    script = [1] * n_thoughts + ["YES"]
    session = ScriptedSession(["<s>"], script)
    res = retrieval_augmented(session, VOCAB, max_steps, oracle=_SHARED)
    if n_thoughts <= max_steps:
        assert res.answer == "YES" and res.steps == n_thoughts
    else:
        assert res.stopped == "max_steps" and session.calls == max_steps + 1 and res.answer is None


# ---- retrieval against a direct re.search ------------------------------------------------------------


@given(
    st.lists(st.sampled_from([1, 2, 3, 12, 20, "~"]), min_size=1, max_size=12),
    st.sampled_from([1, 2, 3, 12, 20]),
    st.sampled_from(["ar", "plain"]),
)
def test_retrieve_matches_direct_search(context, q, form):
    prompt = ["<s>"] + context
    pattern_tokens = [r"\b", q, r"\b(\S+)\b"] if form == "ar" else [q, r"(\S+)"]
    seq = prompt + [S] + pattern_tokens + [E]
    pattern, result = retrieve(seq, VOCAB, _SHARED)
    assert pattern == detokenize(pattern_tokens)
    assert result == direct_group1(pattern, detokenize(prompt))


# ---- errors -------------------------------------------------------------------------------------------


def test_pattern_without_group_is_an_error(oracle):
    with pytest.raises(RetrievalError, match="no capturing group"):
        retrieve(["<s>", 1, S, 1, E], VOCAB, oracle)
    with pytest.raises(RetrievalError, match="invalid regular expression"):
        retrieve(["<s>", 1, S, "(unclosed", E], VOCAB, oracle)


def test_malformed_retrieve_calls(oracle):
    with pytest.raises(RetrievalError, match="ends with <EndSearch>"):
        retrieve(["<s>", 1], VOCAB, oracle)
    with pytest.raises(RetrievalError, match="without a preceding"):
        retrieve(["<s>", 1, E], VOCAB, oracle)


def test_result_that_is_not_a_token_sequence(oracle):
    # \b(\S+)\b on "<s> 1 2" first matches inside "<s>": group(1) = "s" is not a token
    assert re.search(r"\b(\S+)\b", "<s> 1 2").group(1) == "s"
    with pytest.raises(RetrievalError, match="not a token sequence"):
        retrieve(["<s>", 1, 2, S, r"\b(\S+)\b", E], VOCAB, oracle)


def test_catastrophic_pattern_is_bounded_and_oracle_recovers():
    with RegexOracle(timeout_s=0.5) as oracle:
        start = time.perf_counter()
        with pytest.raises(RetrievalError, match="ran longer than 0.5 s") as info:
            oracle.search("(a+)+$", "a" * 40 + "b")
        assert time.perf_counter() - start < 5.0
        assert isinstance(info.value, ProofsCheckError)
        assert oracle.search(r"(\d+)", "x 12 y") == "12"  # a fresh worker answers
        # the same through the decode loop, with the pattern and string as tokens
        session = ScriptedSession(["<s>", CATASTROPHIC, 1], [S, "(a+)+$", E, "YES"])
        start = time.perf_counter()
        with pytest.raises(RetrievalError, match="ran longer"):
            retrieval_augmented(session, VOCAB, 10, oracle=oracle)
        assert time.perf_counter() - start < 5.0
        assert oracle.search(r"\b(\S+)$", "<s> 1 2") == "2"
