"""constructions/decode.py drafted_chain_of_thought and FastSession.predictions: verifying a
reference's draft in chunks gives the step-by-step greedy decode, token for token, whatever
the draft (right, wrong at any point, short, long)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from constructions import decode as D
from constructions.circuit_transformer import circuit_transformer, cot_length, prompt
from constructions.decode import Replay, chain_of_thought, drafted_chain_of_thought
from constructions.errors import ProofsCheckError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from proofs_check.circuit_claims import _rnn_prompt, seeded_circuit
from proofs_check.circuit_runners import simulation_record, transformer_draft
from tests.random_models import drawn_spec, random_model, random_tokens

torch.set_num_threads(1)


@st.composite
def specs(draw):
    return drawn_spec(draw, p=draw(st.sampled_from((11, 61, 201))), scale_log2=draw(st.sampled_from((0, 0, 2))))


@settings(max_examples=30, deadline=None)
@given(specs(), st.integers(1, 6), st.integers(1, 6), st.integers(0, 1000))
def test_predictions_are_the_reference_next_tokens(spec, before, new, tseed):
    """The next token after each appended token, from one pass, against the reference
    evaluator asked after each prefix."""
    model = random_model(spec)
    tokens = random_tokens(model, before + new, tseed)
    ref = ReferenceEvaluator()
    try:
        ref.forward(model, tokens)
        want = [ref.next_token(model, tokens[:k]) for k in range(before + 1, before + new + 1)]
    except ProofsCheckError:
        assume(False)
    session = FastEvaluator().session(model, tokens[:before])
    assert session.predictions(tokens[before:]) == want
    assert session.next_token() == want[-1] and session.tokens == tokens


@settings(max_examples=30, deadline=None)
@given(specs(), st.integers(1, 4), st.integers(0, 12), st.integers(0, 1000), st.data())
def test_a_drafted_decode_is_the_greedy_decode_whatever_the_draft(spec, plen, max_steps, tseed, data):
    """The draft is the greedy chain itself, cut short, run on past its end, or changed at one
    token: the drafted decode's DecodeResult is always the step-by-step one (a decode that
    trusted the draft would return the changed chain)."""
    model = random_model(spec)
    toks = model.vocab.all_tokens()
    answers = {toks[data.draw(st.integers(0, len(toks) - 1))]}
    start = random_tokens(model, plen, tseed)
    try:
        want = chain_of_thought(FastEvaluator().session(model, start), max_steps, answers)
    except ProofsCheckError:
        assume(False)
    draft = list(want.generated)
    how = data.draw(st.sampled_from(["same", "short", "long", "changed"]))
    if how == "short":
        draft = draft[: data.draw(st.integers(0, len(draft)))]
    elif how == "long":
        draft += random_tokens(model, 5, tseed + 1)
    elif how == "changed" and draft:
        i = data.draw(st.integers(0, len(draft) - 1))
        draft[i] = data.draw(st.sampled_from([t for t in toks if t != draft[i]]))
    got = drafted_chain_of_thought(lambda: FastEvaluator().session(model, start), draft, max_steps, answers)
    assert got == want


def _circuit_case(P: int = 24, n: int = 4):
    c = seeded_circuit(P)
    model, rp = circuit_transformer(c, n, n), _rnn_prompt(c, n)
    return c, model, rp, cot_length(c, n, n)


def test_thm_4_8_drafted_from_the_circuit_evaluator_is_the_stepped_decode():
    """Thm 4.8 (random P = 24 at n = 4): the circuit evaluator's draft, verified in chunks,
    gives the chain of one-step-at-a-time decoding, and the record checks every gate."""
    c, model, rp, total = _circuit_case()
    new = lambda: FastEvaluator().session(model, prompt(c, rp))  # noqa: E731
    stepped = chain_of_thought(new(), total - 1, answers=lambda t: False)
    assert drafted_chain_of_thought(new, transformer_draft(c, rp, 4), total - 1, answers=lambda t: False) == stepped
    assert simulation_record(c, model, rp, 4, FastEvaluator(), drafted=True)["equal"]


def test_a_draft_the_model_leaves_is_decoded_on_step_by_step(monkeypatch):
    """A draft wrong from token 40 on: the first 40 tokens come from one chunk, then a fresh
    session replays them and steps; the result is the model's chain, not the draft's."""
    c, model, rp, total = _circuit_case()
    new = lambda: FastEvaluator().session(model, prompt(c, rp))  # noqa: E731
    stepped = chain_of_thought(new(), total - 1, answers=lambda t: False)
    draft = list(stepped.generated)
    draft[40:] = draft[40:][::-1]
    assert draft[40] != stepped.generated[40]
    resumed = []
    real = D.chain_of_thought

    def counted(session, max_steps, answers, replay):
        resumed.append(len(replay.tokens))
        return real(session, max_steps, answers, replay)

    monkeypatch.setattr(D, "chain_of_thought", counted)
    got = drafted_chain_of_thought(new, draft, total - 1, answers=lambda t: False)
    assert got == stepped and resumed == [40]


def test_a_checkpoint_on_the_draft_is_replayed_and_saved_again():
    c, model, rp, total = _circuit_case()
    new = lambda: FastEvaluator().session(model, prompt(c, rp))  # noqa: E731
    stepped = chain_of_thought(new(), total - 1, answers=lambda t: False)
    saved = []
    replay = Replay(stepped.generated[:30], on_token=lambda g: saved.append(len(g)))
    got = drafted_chain_of_thought(new, transformer_draft(c, rp, 4), total - 1, answers=lambda t: False, replay=replay)
    assert got == stepped and saved and saved[-1] == total and all(a < b for a, b in zip(saved, saved[1:]))


@pytest.mark.parametrize("mode", ["float64"])
def test_a_session_without_exact_predictions_decodes_step_by_step(mode):
    c, model, rp, total = _circuit_case()
    new = lambda: FastEvaluator(mode=mode).session(model, prompt(c, rp))  # noqa: E731
    stepped = chain_of_thought(new(), total - 1, answers=lambda t: False)
    assert drafted_chain_of_thought(new, transformer_draft(c, rp, 4), total - 1, answers=lambda t: False) == stepped
