"""FastEvaluator == ReferenceEvaluator, bit for bit, on random small models.

The independent reference is constructions/evaluate_reference.py (plain Python ints, one entry
at a time).  Compared: the residual, the logits, the next token, the saturation list, and for
overflows the exception type, Location and message.  Models: tests/random_models.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from constructions import fast_softmax
from constructions.errors import EvaluatorError, PrecisionOverflow, ProofsCheckError, TokenError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.numerics import Arithmetic, Precision
from tests.random_models import ModelSpec, drawn_spec, random_model, random_tokens

torch.set_num_threads(1)

PS = (11, 61, 201)


@st.composite
def specs(draw, ps=PS, scales=(0, 0, 2, -2)):
    return drawn_spec(draw, p=draw(st.sampled_from(ps)), scale_log2=draw(st.sampled_from(scales)))


ariths = st.builds(
    Arithmetic,
    st.sampled_from(["even", "away"]),
    st.sampled_from(["round_once", "round_products"]),
    st.sampled_from(["raise", "saturate"]),
)


def outcome(evaluator, model, tokens):
    """Everything observable of one forward pass (or its error)."""
    try:
        r = evaluator.forward(model, tokens)
    except ProofsCheckError as exc:
        return ("error", type(exc).__name__, str(getattr(exc, "where", None)), str(exc))
    return ("ok", [[int(v) for v in row] for row in r.residual], r.logits, r.next_token, r.saturations)


@given(specs(), ariths, st.integers(1, 8), st.integers(0, 1000))
def test_fast_equals_reference(spec, arith, length, tseed):
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)


@given(specs(scales=(3, 5, 8)), st.sampled_from(["round_once", "round_products"]), st.integers(2, 6), st.integers(0, 1000))
def test_overflow_same_location_and_saturation(spec, matmul, length, tseed):
    """Large weights: raise mode raises at the same Location; saturate mode clips the same way."""
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    for mode in ("raise", "saturate"):
        arith = Arithmetic("even", matmul, mode)
        assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)


def test_overflow_example_is_an_overflow():
    """A concrete model that overflows: both raise PrecisionOverflow at the same place."""
    spec = ModelSpec("transformer", 11, extra_dims=2, scale_log2=4, density=0.8, seed=3)
    model = random_model(spec)
    tokens = random_tokens(model, 5, 1)
    with pytest.raises(PrecisionOverflow) as ref:
        ReferenceEvaluator().forward(model, tokens)
    with pytest.raises(PrecisionOverflow) as fast:
        FastEvaluator().forward(model, tokens)
    assert fast.value.where == ref.value.where and str(fast.value) == str(ref.value)
    sat = Arithmetic(overflow="saturate")
    r, f = ReferenceEvaluator(sat).forward(model, tokens), FastEvaluator(sat).forward(model, tokens)
    assert r.saturations and f.saturations == r.saturations
    assert (f.residual == r.residual).all() and f.logits == r.logits


@given(specs(), ariths, st.lists(st.integers(1, 9), min_size=1, max_size=4), st.integers(0, 1000))
def test_batch_equals_one_by_one(spec, arith, lengths, tseed):
    model = random_model(spec)
    seqs = [random_tokens(model, n, tseed + i) for i, n in enumerate(lengths)]
    fast = FastEvaluator(arith)
    singles = [outcome(fast, model, s) for s in seqs]
    try:
        batch = fast.forward_batch(model, seqs)
    except ProofsCheckError as exc:
        first = next(o for o in singles if o[0] == "error")  # the first failing sequence's error
        assert ("error", type(exc).__name__, str(getattr(exc, "where", None)), str(exc)) == first
        return
    assert all(o[0] == "ok" for o in singles)
    got = [("ok", [[int(v) for v in row] for row in r.residual], r.logits, r.next_token, r.saturations) for r in batch]
    assert got == singles
    assert fast.next_tokens(model, seqs) == [o[3] for o in singles]


@given(specs(), ariths, st.integers(1, 4), st.lists(st.integers(1, 3), min_size=1, max_size=3), st.integers(0, 1000))
def test_session_equals_recomputation(spec, arith, prompt_len, chunks, tseed):
    model = random_model(spec)
    total = prompt_len + sum(chunks)
    tokens = random_tokens(model, total, tseed)
    ref = ReferenceEvaluator(arith)

    def ref_next(prefix):
        try:
            return ref.next_token(model, prefix)
        except ProofsCheckError as exc:
            return ("error", str(getattr(exc, "where", None)))

    session = FastEvaluator(arith).session(model, tokens[:prompt_len])
    upto = prompt_len
    for step in [0] + chunks:
        if step:
            session.append(tokens[upto : upto + step])
            upto += step
        try:
            got = session.next_token()
        except ProofsCheckError as exc:
            got = ("error", str(getattr(exc, "where", None)))
        assert got == ref_next(tokens[:upto])
        assert session.tokens == tokens[:upto]


@given(st.sampled_from(["linear_rnn", "hybrid"]), st.integers(0, 10**6), st.integers(1, 5))
def test_float64_mode_agrees_when_nothing_rounds(arch, seed, length):
    """Integer weights, no attention heads: every exact op is an integer operation that needs no
    rounding at p = 61 (values far below 2^30), and float64 holds the same integers exactly."""
    spec = ModelSpec(arch, 61, extra_dims=2, n_layers=1 if arch == "linear_rnn" else 2, n_heads=0,
                     ffn_width=2, density=0.3, fractional=0.0, seed=seed, integer_only=True)
    model = random_model(spec)
    tokens = random_tokens(model, length, seed)
    try:
        exact = FastEvaluator().forward(model, tokens)
    except PrecisionOverflow:  # integer recurrences can grow past 2^30: not this test's subject
        assume(False)
    flt = FastEvaluator(mode="float64").forward(model, tokens)
    F = Precision(61).F
    want = np.array([[float(int(v)) * 2.0**-F for v in row] for row in exact.residual])
    assert isinstance(flt.residual, torch.Tensor) and flt.residual.dtype == torch.float64
    assert np.array_equal(flt.residual.numpy(), want)
    assert flt.next_token == exact.next_token


@pytest.mark.parametrize("mode", ["float32", "bfloat16"])
def test_low_precision_modes_run(mode):
    model = random_model(ModelSpec("hybrid", 61, n_layers=2, seed=5))
    tokens = random_tokens(model, 6, 2)
    r = FastEvaluator(mode=mode).forward(model, tokens, trace=True)
    assert r.residual.shape == (model.d, 6) and r.residual.dtype == getattr(torch, mode)
    assert r.next_token in model.vocab.all_tokens() and len(r.logits) == len(model.vocab)


@pytest.mark.parametrize("p", [11, 61, 201, 301])
@pytest.mark.parametrize("arch", ["transformer", "linear_rnn", "hybrid"])
def test_each_required_p(p, arch):
    model = random_model(ModelSpec(arch, p, n_layers=2, n_heads=2, fractional=0.5, seed=p))
    tokens = random_tokens(model, 7, p)
    arith = Arithmetic(overflow="saturate")
    assert outcome(FastEvaluator(arith), model, tokens) == outcome(ReferenceEvaluator(arith), model, tokens)


def test_trace_and_forward_residual_match():
    model = random_model(ModelSpec("hybrid", 61, n_layers=2, fractional=0.5, seed=9))
    tokens = random_tokens(model, 6, 4)
    r, f = ReferenceEvaluator().forward(model, tokens, True), FastEvaluator().forward(model, tokens, True)
    assert [n for n, _ in f.trace] == [n for n, _ in r.trace]
    assert all((a == b).all() for (_, a), (_, b) in zip(f.trace, r.trace))
    X = r.trace[1][1]
    rr, ff = ReferenceEvaluator().forward_residual(model, X), FastEvaluator().forward_residual(model, X)
    assert (rr.residual == ff.residual).all() and rr.logits == ff.logits
    rr, ff = ReferenceEvaluator().forward_residual(model, X, readout=False), FastEvaluator().forward_residual(model, X, readout=False)
    assert (rr.residual == ff.residual).all() and ff.logits == [] and ff.next_token is None


def test_bad_input_errors_match():
    model = random_model(ModelSpec("transformer", 11, seed=1))
    for tokens in ([], [1, "nope"], [99], list(range(1, 6)) * 4):
        with pytest.raises(TokenError) as ref:
            ReferenceEvaluator().forward(model, tokens)
        with pytest.raises(TokenError) as fast:
            FastEvaluator().forward(model, tokens)
        assert str(fast.value) == str(ref.value)


def test_refuses_what_it_cannot_hold():
    model = random_model(ModelSpec("linear_rnn", 4001, seed=1))
    with pytest.raises(EvaluatorError, match="4001"):
        FastEvaluator().forward(model, [1, 2])
    with pytest.raises(EvaluatorError):
        FastEvaluator(mode="float16")


# ---- semantics shared by both evaluators: check order, one listing per entry, tied W_E ----------


def _position(where: str) -> int:
    return int(where.split("position ")[1].split(",")[0])


def _operator(where: str) -> str:
    return where.split(", position ")[0]


@given(specs(scales=(3, 5, 8)), st.sampled_from(["round_once", "round_products"]), st.integers(2, 6), st.integers(0, 1000))
def test_saturations_position_first_and_listed_once(spec, matmul, length, tseed):
    """Every operator (affine maps, residual adds, the ReGLU product, scores, logits) is checked
    position by position, and an entry clipped several times (several rounded products and its
    sum) is listed once: with <= 2 heads no Location repeats within a pass."""
    model = random_model(spec)
    tokens = random_tokens(model, length, tseed)
    arith = Arithmetic("even", matmul, "saturate")
    for ev in (ReferenceEvaluator(arith), FastEvaluator(arith)):
        try:
            sat = ev.forward(model, tokens).saturations
        except ProofsCheckError:  # e.g. a token the embedding cannot hold: not this test's subject
            assume(False)
        assert len(set(sat)) == len(sat), sat
        for a, b in zip(sat, sat[1:]):
            if _operator(a) == _operator(b):
                assert _position(a) <= _position(b), (a, b)


def test_round_products_entry_listed_once():
    """p = 5 (largest magnitude 3.75): h_1 = 7/2 * 3 (token 3) + 7/2 * 1 (position 1): the
    rounded product 10.5 is clipped to 3.75 and the sum 3.75 + 3.5 clipped again; listed once."""
    from constructions.model import FeedForward, LinearRNNLayer, Model, int_array
    from constructions.layout import LayoutBuilder
    from constructions.vocab import Vocabulary

    vocab = Vocabulary(3, ())
    layout = LayoutBuilder(vocab).build()
    d = layout.d
    A = int_array(np.zeros((d, d), dtype=object))
    B = int_array(np.zeros((d, d), dtype=object))
    B[0, 0] = 14  # 3.5
    B[0, d - 1] = 14
    empty = int_array(np.zeros((0, d), dtype=object))
    ffn = FeedForward(empty, int_array(np.zeros(0, dtype=object)), empty, int_array(np.zeros(0, dtype=object)),
                      int_array(np.zeros((d, 0), dtype=object)), int_array(np.zeros(d, dtype=object)), ())
    model = Model("linear_rnn", 5, layout, vocab, [LinearRNNLayer(A, B, ffn)], 3, None).validate()
    arith = Arithmetic("even", "round_products", "saturate")
    for ev in (ReferenceEvaluator(arith), FastEvaluator(arith)):
        sat = ev.forward(model, [3]).saturations
        assert sat.count(f"layer 1, linear_unit, position 1, dim {layout.names[0]!r}") == 1, sat


def test_input_overflow_reported_position_first():
    """forward_residual: out-of-range inputs at (dim 0, position 2) and (last dim, position 1):
    the first overflow reported is at position 1."""
    model = random_model(ModelSpec("linear_rnn", 11, seed=2))
    M = Precision(11).max_scaled
    X = np.zeros((model.d, 2), dtype=object)
    X[0, 1] = M + 5
    X[model.d - 1, 0] = -(M + 9)
    for ev in (ReferenceEvaluator(), FastEvaluator()):
        with pytest.raises(PrecisionOverflow) as exc:
            ev.forward_residual(model, X)
        assert exc.value.where.position == 1 and exc.value.where.dim == model.layout.names[-1]


def test_tied_unembed_follows_the_arithmetic():
    """p = 11 holds integers up to 31; numbers 32..40 of the vocabulary overflow in the tied W_E.
    Raise: the first such row (32) at the last position; saturate: each listed, rows clipped."""
    model = random_model(ModelSpec("transformer", 11, n=40, seed=1))
    tokens = [1, 2, 3]
    for ev in (ReferenceEvaluator(), FastEvaluator()):
        with pytest.raises(PrecisionOverflow) as exc:
            ev.forward(model, tokens)
        assert str(exc.value.where) == "output embedding W_E, position 3, dim '32'"
        with pytest.raises(PrecisionOverflow):
            ev.session(model, tokens).next_token()
    sat = Arithmetic(overflow="saturate")
    want = [f"output embedding W_E, position 3, dim '{t}'" for t in range(32, 41)]
    r, f = ReferenceEvaluator(sat).forward(model, tokens), FastEvaluator(sat).forward(model, tokens)
    assert [w for w in r.saturations if "W_E" in w] == want
    assert f.saturations == r.saturations and f.logits == r.logits
    assert FastEvaluator(sat).session(model, tokens).next_token() == r.next_token


# ---- softmax: certified and fallback columns in one head --------------------------------------


@pytest.mark.parametrize("tie", ["even", "away"])
def test_softmax_head_mixed_certified_and_fallback_columns(tie, monkeypatch):
    """One head at p = 201 (F = 100) with five query columns of known kinds: a single entry, a
    gap of 60 sqrt(d) (certified in float64 would be possible, here the fixed-point path takes
    it), soft scores (certified in fixed point: float64 cannot hold 100 fractional bits), an
    entry 2^-70 from a rounding midpoint (no bound certifies it: arb fallback), and all-equal
    scores (exact 1/m).  Each column must equal numerics.softmax_column (the reference's own
    operator) and exactly the near-midpoint column may reach the fallback."""
    import random
    from fractions import Fraction

    import constructions.evaluate_fast as ef
    from constructions.numerics import softmax_column
    from proofs_check.softmax_columns import midpoint_distance, near_midpoint_column

    model = random_model(ModelSpec("transformer", 201, seed=7))
    prec, d = Precision(201), model.d
    F = prec.F
    arith = Arithmetic(tie=tie)
    prep = ef._prepare(model, arith, 5, torch.device("cpu"))
    eng = ef._Engine(prep, arith, ef._Checker(1, prep.prec, arith))
    one = 1 << (2 * F)  # score integers are reals times 2^(2F)
    far = (60 * one * math.isqrt(d * 10**12)) // 10**6  # ~ 60 sqrt(d)
    tight = near_midpoint_column(random.Random(5), F, d, 4, 2, Fraction(1, 1 << 70))
    assert midpoint_distance(tight, 2, F, d) < 2.0**-68
    cols = [
        [5 * one],  # single entry
        [3 * one, 3 * one - far],
        [one // 3, -(one // 7), one // 5],  # soft
        tight,  # fallback
        [-(one // 9)] * 5,  # equal scores
    ]
    n = len(cols)
    S = np.zeros((n, n), dtype=object)
    for k, col in enumerate(cols):
        S[: len(col), k] = col
    causal = torch.arange(n).reshape(n, 1) <= torch.arange(n).reshape(1, n)
    digits = ef._ints_to_digits(S, eng.b, ef.Limbs(eng.b).count(3 * F + 2), eng.dev)
    calls = []

    def spy(scores, *args, **kwargs):
        calls.append(list(scores))
        return softmax_column(scores, *args, **kwargs)

    monkeypatch.setattr(fast_softmax, "softmax_column", spy)
    P = ef._digits_to_ints(eng.softmax(digits, causal, d), eng.b)
    assert calls == [cols[3]], calls
    for k, col in enumerate(cols):
        want = softmax_column(col, 2 * F, d, prec, tie)
        assert [int(v) for v in P[: len(col), k]] == want, k
        assert all(int(v) == 0 for v in P[len(col) :, k])
    assert [int(v) for v in P[:2, 1]] != [0, 1 << F]  # the certified column is not a trivial 0/1


def test_p201_model_needs_no_softmax_fallback(monkeypatch):
    """A random p = 201 Transformer (soft attention everywhere): the fast evaluator equals the
    reference and never calls the arb fallback (every column certifies in fixed point)."""
    import constructions.evaluate_fast as ef

    calls = []
    real = fast_softmax.softmax_column

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fast_softmax, "softmax_column", spy)
    spec = ModelSpec("transformer", 201, extra_dims=4, n_layers=2, n_heads=2, key_dim=3, ffn_width=2,
                     density=0.6, fractional=0.3, scale_log2=-1, max_len=24, seed=11)
    model = random_model(spec)
    tokens = random_tokens(model, 20, 3)
    assert outcome(FastEvaluator(), model, tokens) == outcome(ReferenceEvaluator(), model, tokens)
    assert not calls
