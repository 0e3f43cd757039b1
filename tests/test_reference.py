"""The reference evaluator on small hand-checkable models (Def 3.1, 3.5, A.3) against plain
Python Fraction computations written from the definitions, plus its error behaviour.

Every model here is built directly with constructions.model; the expected values are computed
by hand-written Fraction code (embedding of A.3, the one-head attention with a hard pattern,
the linear recurrence of Def 3.5, the ReGLU FFN), never by the evaluator.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from constructions.errors import PrecisionError, PrecisionOverflow, ProofsCheckError, TokenError, WeightError
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.layout import LayoutBuilder, special_dim
from constructions.model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros
from constructions.numerics import Arithmetic, Precision
from constructions.vocab import PAPER_SPECIALS, Vocabulary

# ---- plain-Python references ------------------------------------------------------------------


def rnd(x: Fraction, p: int, tie: str = "even") -> Fraction:
    """ROUND(x, p) (A.2): nearest multiple of 2^-(p-1)/2; fails the test on overflow."""
    F = (p - 1) // 2
    t = x * 2**F
    lo = math.floor(t)
    r = lo if t - lo < Fraction(1, 2) else lo + 1
    if t - lo == Fraction(1, 2):
        r = (lo if lo % 2 == 0 else lo + 1) if tie == "even" else (lo + 1 if t > 0 else lo)
    assert abs(r) <= 2 ** (p - 1) - 1, f"reference value {x} overflows R_{p}"
    return Fraction(r, 2**F)


def embedding_ref(tokens, vocab: Vocabulary, names: tuple[str, ...]) -> list[dict[str, Fraction]]:
    """A.3: number i -> i w_1 ('num'), k-th special -> w_(2+k), position l -> l w_d ('pos')."""
    cols = []
    for l, tok in enumerate(tokens, start=1):
        col = {name: Fraction(0) for name in names}
        if isinstance(tok, int):
            col["num"] = Fraction(tok)
        else:
            col[special_dim(tok)] = Fraction(1)
        col["pos"] = Fraction(l)
        cols.append(col)
    return cols


def residual_as_fractions(model: Model, residual: np.ndarray) -> list[dict[str, Fraction]]:
    scale = model.precision.scale
    return [
        {name: Fraction(int(residual[i, k]), scale) for i, name in enumerate(model.layout.names)}
        for k in range(residual.shape[1])
    ]


def argmax_lowest(logits: list[Fraction]) -> int:
    best = max(logits)
    return logits.index(best)


def enc(prec: Precision, x) -> int:
    return prec.encode(Fraction(x))


def sequences(vocab: Vocabulary, max_len: int, numbers_only: bool = False):
    toks = list(range(vocab.min_number, vocab.n + 1)) + ([] if numbers_only else list(vocab.specials))
    return st.lists(st.sampled_from(toks), min_size=1, max_size=max_len)


# ---- model 1: zero attention + a ReGLU FFN; the output is fixed by the embedding ------------------

P1, N1, LEN1 = 15, 6, 6


def zero_attention_model() -> Model:
    """One Transformer layer: a head with all-zero weights (A = 0) and an FFN
    g: out += R(w3 * R(ReLU(R(num - 2)) * R(pos / 2))) with w3 = ROUND(1/3)."""
    vocab = Vocabulary(N1)
    lb = LayoutBuilder(vocab)
    lb.alloc("out")
    layout = lb.build()
    prec, d = Precision(P1), layout.d
    head = AttentionHead(zeros(1, d), zeros(1, d), zeros(d, d), "zero")
    ffn = FeedForward(zeros(1, d), zeros(1), zeros(1, d), zeros(1), zeros(d, 1), zeros(d), ("h",))
    ffn.W1[0, layout.index("num")] = enc(prec, 1)
    ffn.b1[0] = enc(prec, -2)
    ffn.W2[0, layout.index("pos")] = enc(prec, Fraction(1, 2))
    ffn.W3[layout.index("out"), 0] = prec.encode(Fraction(1, 3), exact=False)
    return Model("transformer", P1, layout, vocab, [TransformerLayer([head], ffn)], LEN1).validate()


@given(sequences(Vocabulary(N1), LEN1))
def test_zero_attention_model(tokens):
    model = zero_attention_model()
    res = ReferenceEvaluator().forward(model, tokens)
    cols = embedding_ref(tokens, model.vocab, model.layout.names)
    w3 = rnd(Fraction(1, 3), P1)
    for col in cols:  # Y = X + 0; Z = Y + g(Y)
        h1 = rnd(col["num"] - 2, P1)
        h2 = rnd(col["pos"] / 2, P1)
        col["out"] += rnd(w3 * rnd(max(h1, Fraction(0)) * h2, P1), P1)
    assert residual_as_fractions(model, res.residual) == cols
    # tied unembedding W_E of A.3: number i scores i * num, special k scores its own dim
    last = cols[-1]
    logits = [i * last["num"] for i in range(1, N1 + 1)] + [last[special_dim(s)] for s in model.vocab.specials]
    assert [Fraction(q, model.precision.scale) for q in res.logits] == logits
    expected = N1 if isinstance(tokens[-1], int) else tokens[-1]
    assert res.next_token == expected == model.vocab.token_of(argmax_lowest(logits))


def test_output_argmax_ties_go_to_lowest_id():
    """A zero residual gives all logits 0: the next token is the lowest id (number 1)."""
    model = zero_attention_model()
    model.unembed = zeros(len(model.vocab), model.d)
    assert ReferenceEvaluator().forward(model, ["<s>"]).next_token == 1


# ---- model 2: one head with a hard attention pattern ----------------------------------------------

P2, N2, LEN2, C = 31, 8, 6, 16


def argmax_position_model() -> Model:
    """Key c*num, query c*pos: column k attends hard to the largest number among S_1..S_k
    (gap >= c^2 k / sqrt(d) >> (F + 2) ln 2), values copy pos into 'where'.  The FFN (width 0)
    sets the constant dim 'one'; the unembedding scores number i as i*where - i^2/2*one, so the
    next token is the position of the largest number."""
    vocab = Vocabulary(N2)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(["where", "one"])
    layout = lb.build()
    prec, d = Precision(P2), layout.d
    head = AttentionHead(zeros(1, d), zeros(1, d), zeros(d, d), "argmax", ("key",))
    head.W_K[0, layout.index("num")] = enc(prec, C)
    head.W_Q[0, layout.index("pos")] = enc(prec, C)
    head.W_V[layout.index("where"), layout.index("pos")] = enc(prec, 1)
    ffn = FeedForward.empty(d)
    ffn.b3[layout.index("one")] = enc(prec, 1)
    unembed = zeros(len(vocab), d)
    for i in range(1, N2 + 1):
        unembed[vocab.id_of(i), layout.index("where")] = enc(prec, i)
        unembed[vocab.id_of(i), layout.index("one")] = enc(prec, Fraction(-i * i, 2))
    return Model("transformer", P2, layout, vocab, [TransformerLayer([head], ffn)], LEN2, unembed).validate()


@st.composite
def distinct_numbers_with_specials(draw):
    nums = draw(st.permutations(range(1, N2 + 1)))
    length = draw(st.integers(1, LEN2))
    out, it = [], iter(nums)
    for _ in range(length):
        out.append(draw(st.sampled_from(["<s>", "~", "number", "number"])))
    return [next(it) if t == "number" else t for t in out]


@given(distinct_numbers_with_specials(), st.sampled_from(["round_once", "round_products"]))
def test_hard_attention_model(tokens, matmul):
    model = argmax_position_model()
    res = ReferenceEvaluator(Arithmetic(matmul=matmul)).forward(model, tokens)
    cols = embedding_ref(tokens, model.vocab, model.layout.names)
    for k, col in enumerate(cols, start=1):
        prefix = [c["num"] for c in cols[:k]]
        if max(prefix) > 0:  # hard attention on the unique largest number: P[:, k] one-hot
            col["where"] = Fraction(prefix.index(max(prefix)) + 1)
        else:  # all scores 0: uniform weights ROUND(1/k), head output ROUND(sum_j w j)
            w = rnd(Fraction(1, k), P2)
            col["where"] = rnd(sum(w * j for j in range(1, k + 1)), P2)
        col["one"] = Fraction(1)
    assert residual_as_fractions(model, res.residual) == cols
    last = cols[-1]
    logits = [i * last["where"] - Fraction(i * i, 2) for i in range(1, N2 + 1)] + [Fraction(0)] * len(model.vocab.specials)
    assert [Fraction(q, model.precision.scale) for q in res.logits] == logits
    assert res.next_token == model.vocab.token_of(argmax_lowest(logits))
    if any(isinstance(t, int) for t in tokens):
        nums = [t if isinstance(t, int) else 0 for t in tokens]
        assert res.next_token == nums.index(max(nums)) + 1


# ---- model 3: linear RNNs (Def 3.5) ---------------------------------------------------------------

P3, N3, LEN3 = 7, 4, 7


def summing_rnn(p: int = P3, n: int = N3, max_len: int = LEN3, tied: bool = False) -> Model:
    """h_t = h_(t-1) + num_t in dim 'sum' (A = 1, B = 1 on num).  Unless ``tied``, the readout
    is an explicit all-zero unembedding (the tied one, i * num, would overflow at p = 7)."""
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    lb.alloc("sum")
    layout = lb.build()
    prec, d = Precision(p), layout.d
    A, B = zeros(d, d), zeros(d, d)
    s = layout.index("sum")
    A[s, s] = enc(prec, 1)
    B[s, layout.index("num")] = enc(prec, 1)
    unembed = None if tied else zeros(len(vocab), d)
    return Model("linear_rnn", p, layout, vocab, [LinearRNNLayer(A, B, FeedForward.empty(d))], max_len, unembed).validate()


@given(sequences(Vocabulary(N3), LEN3))
def test_summing_rnn(tokens):
    model = summing_rnn()
    prec = model.precision
    partial, first_overflow = Fraction(0), None
    for t, tok in enumerate(tokens, start=1):
        partial += tok if isinstance(tok, int) else 0
        if partial > prec.max_value and first_overflow is None:
            first_overflow = t
    if first_overflow is not None:
        with pytest.raises(PrecisionOverflow) as info:
            ReferenceEvaluator().forward(model, tokens)
        where = info.value.where
        assert (where.layer, where.sublayer, where.position, where.dim) == (1, "linear_unit", first_overflow, "sum")
        return
    res = ReferenceEvaluator().forward(model, tokens)
    cols = embedding_ref(tokens, model.vocab, model.layout.names)
    h = Fraction(0)
    for col in cols:
        h = h + col["num"]
        col["sum"] = h
    assert residual_as_fractions(model, res.residual) == cols
    assert res.logits == [0] * len(model.vocab) and res.next_token == 1  # ties -> lowest id


def two_state_rnn(p: int = P3) -> Model:
    """s2_t = 1/2 num_t;  s1_t = 3/4 s1_(t-1) + 3/4 s2_(t-1): products below the grid."""
    vocab = Vocabulary(N3)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(["s1", "s2"])
    layout = lb.build()
    prec, d = Precision(p), layout.d
    s1, s2 = layout.index("s1"), layout.index("s2")
    A, B = zeros(d, d), zeros(d, d)
    A[s1, s1] = A[s1, s2] = enc(prec, Fraction(3, 4))
    B[s2, layout.index("num")] = enc(prec, Fraction(1, 2))
    unembed = zeros(len(vocab), d)
    return Model("linear_rnn", p, layout, vocab, [LinearRNNLayer(A, B, FeedForward.empty(d))], LEN3, unembed).validate()


def two_state_ref(tokens, p: int, matmul: str, tie: str) -> list[tuple[Fraction, Fraction]]:
    """Def 3.5 with A.2: one rounding per output (round_once) or per scalar product."""
    s1 = s2 = Fraction(0)
    out = []
    for tok in tokens:
        x = Fraction(tok) if isinstance(tok, int) else Fraction(0)
        a, b, c = Fraction(3, 4) * s1, Fraction(3, 4) * s2, Fraction(1, 2) * x
        if matmul == "round_once":
            s1, s2 = rnd(a + b, p, tie), rnd(c, p, tie)
        else:
            s1, s2 = rnd(a, p, tie) + rnd(b, p, tie), rnd(c, p, tie)
        out.append((s1, s2))
    return out


@given(
    sequences(Vocabulary(N3), LEN3, numbers_only=True),
    st.sampled_from(["round_once", "round_products"]),
    st.sampled_from(["even", "away"]),
)
def test_two_state_rnn_both_readings(tokens, matmul, tie):
    model = two_state_rnn()
    res = ReferenceEvaluator(Arithmetic(tie=tie, matmul=matmul)).forward(model, tokens)
    cols = residual_as_fractions(model, res.residual)
    assert [(c["s1"], c["s2"]) for c in cols] == two_state_ref(tokens, P3, matmul, tie)


def test_round_once_and_round_products_differ():
    """s1_3 = 3/4 * 1/2 + 3/4 * 1/2: exactly 3/4 once, but 1/2 + 1/2 = 1 product by product
    (3/8 is half-way between 1/4 and 1/2 at p = 5; ties to even give 1/2)."""
    model = two_state_rnn(p=5)
    s1 = model.layout.index("s1")
    once = ReferenceEvaluator(Arithmetic(matmul="round_once")).forward(model, [1, 1, 1])
    prods = ReferenceEvaluator(Arithmetic(matmul="round_products")).forward(model, [1, 1, 1])
    scale = model.precision.scale
    assert Fraction(once.residual[s1, 2], scale) == Fraction(3, 4)
    assert Fraction(prods.residual[s1, 2], scale) == Fraction(1)
    assert two_state_ref([1, 1, 1], 5, "round_once", "even")[2][0] == Fraction(3, 4)
    assert two_state_ref([1, 1, 1], 5, "round_products", "even")[2][0] == Fraction(1)


# ---- overflow locations -----------------------------------------------------------------------------


def test_embedding_overflow_location():
    """At p = 5 the largest magnitude is 3.75: position 4 and number 4 do not fit."""
    model = summing_rnn(p=5, n=5, max_len=6, tied=True)
    with pytest.raises(PrecisionOverflow) as info:
        ReferenceEvaluator().forward(model, ["<s>", "<s>", "<s>", "<s>"])
    w = info.value.where
    assert (w.sublayer, w.position, w.dim) == ("embedding", 4, "pos")
    with pytest.raises(PrecisionOverflow) as info:
        ReferenceEvaluator().forward(model, ["<s>", 4])
    w = info.value.where
    assert (w.sublayer, w.position, w.dim) == ("embedding", 2, "num")
    assert "position 2" in str(info.value) and "'num'" in str(info.value)


def test_logit_overflow_location():
    """Tied unembedding at p = 15 (max ~128): logit of number 7 = 7 * 20 overflows first."""
    model = summing_rnn(p=15, n=20, max_len=4, tied=True)
    with pytest.raises(PrecisionOverflow) as info:
        ReferenceEvaluator().forward(model, [3, 20])
    w = info.value.where
    assert (w.sublayer, w.dim) == ("output logits", "7")


def test_ffn_overflow_location():
    """The zero-attention model's FFN at p = 7 (max 7.875): h2 = pos/2 is fine, but the
    ReLU product (num - 2) * pos/2 = 4 * 2.5 overflows at position 5."""
    model = zero_attention_model()
    model.p = 7
    model.vocab = Vocabulary(6)
    prec = Precision(7)
    ffn = model.layers[0].ffn  # re-encode the FFN weights at p = 7
    names = model.layout
    ffn.W1[0, names.index("num")], ffn.b1[0] = enc(prec, 1), enc(prec, -2)
    ffn.W2[0, names.index("pos")] = enc(prec, Fraction(1, 2))
    ffn.W3[names.index("out"), 0] = enc(prec, Fraction(1, 8))
    model.validate()
    with pytest.raises(PrecisionOverflow) as info:
        ReferenceEvaluator().forward(model, ["<s>", "~", "<s>", "~", 6])
    w = info.value.where
    assert (w.layer, w.sublayer, w.position, w.dim) == (1, "ffn.product", 5, "h")


# ---- one error family for bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "tokens, match",
    [
        (["<s>", "foo"], "unknown special token 'foo'"),
        ([0], "outside this model's vocabulary"),
        ([N3 + 1], "outside this model's vocabulary"),
        ([1.5], "neither a number nor a special token"),
        ([True], "neither a number nor a special token"),
        ([1] * (LEN3 + 1), "longer than this model's position range"),
        ([], "empty"),
    ],
)
def test_bad_tokens(tokens, match):
    with pytest.raises(TokenError, match=match) as info:
        ReferenceEvaluator().forward(summing_rnn(), tokens)
    assert isinstance(info.value, ProofsCheckError)


def test_bad_text_tokens():
    vocab = Vocabulary(5)
    with pytest.raises(TokenError, match="unknown token"):
        vocab.tokenize("<s> 1 ~ bogus")
    with pytest.raises(TokenError, match="outside"):
        vocab.tokenize("<s> 6")


def test_nan_weight_at_encode():
    with pytest.raises(WeightError, match="not finite"):
        Precision(11).encode(float("nan"))


def _broken(mutate) -> Model:
    model = argmax_position_model()
    mutate(model)
    return model


@pytest.mark.parametrize(
    "mutate, error, match",
    [
        (lambda m: setattr(m.layers[0].heads[0], "W_V", zeros(3, 3)), WeightError, "W_V has shape"),
        (lambda m: setattr(m.layers[0].heads[0], "W_Q", zeros(2, m.d)), WeightError, "W_Q has shape"),
        (lambda m: setattr(m.layers[0].ffn, "b3", zeros(m.d + 1)), WeightError, "b3 has shape"),
        (lambda m: setattr(m, "unembed", zeros(3, m.d)), WeightError, "unembed has shape"),
        (lambda m: m.layers[0].heads[0].W_K.__setitem__((0, 0), 0.5), WeightError, "not a scaled integer"),
        (lambda m: m.layers[0].heads[0].W_K.__setitem__((0, 0), 2**30), WeightError, "outside R_31"),
        (lambda m: setattr(m, "arch", "linear_rnn"), WeightError, "only linear-RNN layers"),
        (lambda m: setattr(m, "arch", "rnn"), WeightError, "unknown architecture"),
        (lambda m: setattr(m, "max_len", 0), WeightError, "max_len"),
        (lambda m: setattr(m, "p", 32), PrecisionError, "even"),
        (lambda m: setattr(m, "p", 1), PrecisionError, "too small"),
    ],
)
def test_validate_rejects(mutate, error, match):
    model = _broken(mutate)
    with pytest.raises(error, match=match) as info:
        model.validate()
    assert isinstance(info.value, ProofsCheckError)


def test_rnn_shape_and_hybrid_order():
    model = summing_rnn()
    model.layers[0].A = zeros(2, 2)
    with pytest.raises(WeightError, match="layer 1 A has shape"):
        model.validate()
    rnn = summing_rnn()
    hybrid = Model("hybrid", P3, rnn.layout, rnn.vocab, [rnn.layers[0]], LEN3)
    with pytest.raises(WeightError, match="Def 5.5"):
        hybrid.validate()


def test_even_p_in_evaluator():
    model = summing_rnn()
    model.p = 8
    with pytest.raises(PrecisionError, match="even"):
        ReferenceEvaluator().forward(model, [1])


def test_paper_specials_first():
    assert Vocabulary(3).specials[:6] == PAPER_SPECIALS[:6]


# ---- errata of the foundation (notes/errata/foundation.md) -------------------------------------


def test_erratum_A3_E1_example_embedding_of_tilde_is_w4_by_the_rule():
    """A.3: "the k-th special token -> w_(2+k); for example, the embedding of ~ is w_2".  ~ is the
    second special token, so the rule gives w_4, not the example's w_2.  Lemmas B.14-B.18 read
    X_(3,k) = 1[k = 1], i.e. <s> (the first special token) in w_3 = w_(2+1): the proofs use the
    rule.  We follow it: <s> is row 3, ~ row 4, and no token embeds in w_2."""
    vocab = Vocabulary(3)
    assert vocab.specials[:2] == ("<s>", "~")
    model = summing_rnn(n=3)
    stage, X = ReferenceEvaluator().forward(model, ["<s>", "~", 2], trace=True).trace[0]
    assert stage == "embedding"
    rows = [[k + 1 for k in range(model.d) if X[k, col] != 0] for col in range(3)]
    assert rows[0][0] == 3 and rows[1][0] == 4  # w_3 for <s>, w_4 (not the example's w_2) for ~
    assert all(X[1, col] == 0 for col in range(3)) and model.layout.names[1] == "w2"


def test_erratum_D32_E1_tied_readout_names_only_1_or_n():
    """Def 3.2 reads the output through A.3's tied W_E: number i's logit is i * x_1, linear in i,
    so whatever the residual holds the best number is 1 or n; no construction can output a
    vertex or a retrieved number in between this way (hence the explicit unembedding)."""
    n = 5
    model = summing_rnn(p=15, n=n, max_len=4, tied=True)
    from constructions.evaluate_reference import tied_unembed

    W = tied_unembed(model)
    numbers = [t for t in range(len(model.vocab)) if isinstance(model.vocab.token_of(t), int)]
    for x1 in range(-4, 5):
        for rest in (0, 3, -7):
            x = [x1] + [rest] * (model.d - 1)
            logits = {model.vocab.token_of(t): sum(int(W[t, j]) * x[j] for j in range(model.d)) for t in numbers}
            best = max(logits.values())
            winners = {i for i, v in logits.items() if v == best}
            assert winners <= {1, n} or x1 == 0, (x1, rest, winners)  # x1 = 0: all numbers tie at 0
    # e.g. asking for 3 = the middle number: no x_1 makes it the unique best number
    assert all(max(range(1, n + 1), key=lambda i: (i * x1, -i)) in (1, n) for x1 in range(-4, 5))
