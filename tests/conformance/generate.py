"""Generate the conformance vectors (run once; the outputs are committed):

    PYTHONPATH=. python tests/conformance/generate.py

Writes ``tests/conformance/<model>.safetensors`` (small model files, notes/model-format.md) and
``tests/conformance/vectors.json``: for every case (a model, an input, one reading of A.2 =
tie rule x matmul reading) the expected final residual, logits and next token, or the expected
overflow (location text and exact value), all as exact rationals ("n/d" strings).

Where the expected values come from: :mod:`spec_eval` (an independent implementation of the
spec, Fractions + mpmath, its own file reader).  The hand-written edge cases also carry facts
derived by hand (``HAND`` below, Fractions worked out in the comments); the generator refuses to
write anything unless spec_eval reproduces every hand fact.  It then runs the project's
ReferenceEvaluator and FastEvaluator on every case and reports any disagreement (a finding: the
code is fixed, not the vectors).  The tests (tests/test_conformance.py) check both evaluators
against the committed JSON.  Rerunning gives the same vectors.json; the .safetensors bytes may
differ (safetensors writes its two metadata keys in hash order), their contents do not.
"""
from __future__ import annotations

import json
import sys
from fractions import Fraction as Fr
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from spec_eval import Spec, SpecOverflow, read_model  # noqa: E402

from constructions.layout import LayoutBuilder  # noqa: E402
from constructions.model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros  # noqa: E402
from constructions.modelfile import DIGEST_KEY, HEADER_KEY, digest, save_model, to_limbs  # noqa: E402
from constructions.numerics import Precision  # noqa: E402
from constructions.vocab import PAPER_SPECIALS, Vocabulary  # noqa: E402

READINGS = [(t, m) for m in ("round_once", "round_products") for t in ("even", "away")]
ALL = tuple(READINGS)


# ---- building small models by dimension name -----------------------------------------------


class Build:
    """A layout (num, w2, specials, extra dims, pos) and exact weight matrices by name."""

    def __init__(self, p: int, extra=(), n: int = 3, specials: int = 0, max_len: int = 4):
        self.p, self.prec = p, Precision(p)
        self.vocab = Vocabulary(n, PAPER_SPECIALS[:specials])
        lb = LayoutBuilder(self.vocab)
        for name in extra:
            lb.alloc(name)
        self.layout = lb.build()
        self.d, self.max_len = self.layout.d, max_len

    def ix(self, key):
        return key if isinstance(key, int) else self.layout.index(key)

    def mat(self, rows: int, cols: int, entries: dict | None = None) -> np.ndarray:
        M = zeros(rows, cols)
        for (r, c), v in (entries or {}).items():
            M[self.ix(r), self.ix(c)] = self.prec.encode(Fr(v))
        return M

    def vec(self, size: int, entries: dict | None = None) -> np.ndarray:
        v = zeros(size)
        for i, x in (entries or {}).items():
            v[self.ix(i)] = self.prec.encode(Fr(x))
        return v

    def ffn(self, w: int = 0, W1=None, b1=None, W2=None, b2=None, W3=None, b3=None, names=()) -> FeedForward:
        d = self.d
        return FeedForward(self.mat(w, d, W1), self.vec(w, b1), self.mat(w, d, W2), self.vec(w, b2),
                           self.mat(d, w, W3), self.vec(d, b3), tuple(names))

    def head(self, k: int = 1, K=None, Q=None, V=None) -> AttentionHead:
        return AttentionHead(self.mat(k, self.d, K), self.mat(k, self.d, Q), self.mat(self.d, self.d, V))

    def rnn(self, A=None, B=None, ffn=None) -> LinearRNNLayer:
        return LinearRNNLayer(self.mat(self.d, self.d, A), self.mat(self.d, self.d, B), ffn or self.ffn())

    def model(self, arch: str, layers, unembed: dict | None = None, note: str = "") -> Model:
        U = None
        if unembed is not None:
            U = zeros(len(self.vocab), self.d)
            for (tok, c), v in unembed.items():
                U[self.vocab.id_of(tok), self.ix(c)] = self.prec.encode(Fr(v))
        return Model(arch, self.p, self.layout, self.vocab, list(layers), self.max_len, U,
                     {"construction": "conformance vector", "note": note}).validate()


# ---- the hand-written models ---------------------------------------------------------------


def hand_models() -> dict[str, Model]:
    out = {}
    # p = 5: F = 2, R_5 = multiples of 1/4 with |v| <= 15/4; products of two R_5 values live on 1/16.
    b = Build(5, ["a"])
    # score at position 1: (7/4)(7/4) + (3/2)(1/2) = 49/16 + 12/16 = 61/16 > 15/4 = 60/16 (exact), but
    # ROUND(61/16) = 15/4 (61/16 is 1/16 above 15/4, nearer than 4): the exact check raises.
    out["score_past_max_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(2, K={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(3, 2)}, Q={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(1, 2)})],
        b.ffn())], note="a score 1/16 past the largest magnitude")
    # 49/16 + (11/4)(1/4) = 60/16 = 15/4 exactly: in range.
    out["score_at_max_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(2, K={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(11, 4)}, Q={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(1, 4)})],
        b.ffn())], note="a score exactly the largest magnitude")
    # both factors 7/4: exact score 2 * 49/16 = 49/8 (reported exact under round_once); under
    # round_products each product R(49/16) = 3 is in range and their sum 6 is not (reported: 6)
    out["score_sum_overflow_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(2, K={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(7, 4)}, Q={(0, "pos"): Fr(7, 4), (1, "pos"): Fr(7, 4)})],
        b.ffn())], note="a score out of range: exact 49/8, product by product 6")
    # an affine map's range check is after its rounding: layer 1 writes a = 7/4, c = 1/2; layer 2:
    # H1 = R(7/4 a + 3/2 c) = R(61/16) = 15/4 (in range; 61/16 itself is above 15/4), H2 = 1/4,
    # G = R(15/4 * 1/4) = R(15/16) = 1 (15/16 = 3.75 quarters -> 4), out = G = 1.
    # Unit h1: R(7/4 a + 2 c) = R(65/16) = 4, out of range: reported as 4 (the rounded value).
    b = Build(5, ["a", "c", "out"])
    first = b.rnn(ffn=b.ffn(b3={"a": Fr(7, 4), "c": Fr(1, 2)}))
    out["affine_rounds_to_max_p5"] = b.model("linear_rnn", [first, b.rnn(ffn=b.ffn(
        1, W1={(0, "a"): Fr(7, 4), (0, "c"): Fr(3, 2)}, b2={0: Fr(1, 4)}, W3={("out", 0): 1}, names=["h0"]))],
        note="W1 x = 61/16 rounds to the largest magnitude 15/4: no overflow")
    out["affine_overflow_value_p5"] = b.model("linear_rnn", [first, b.rnn(ffn=b.ffn(
        2, W1={(0, "a"): Fr(7, 4), (0, "c"): Fr(3, 2), (1, "a"): Fr(7, 4), (1, "c"): 2}, names=["h0", "h1"]))],
        note="W1 x = 65/16 rounds to 4: the overflow reports 4")
    # within one entry only the rounded products and the total are range-checked, not partial
    # sums: layer 1 writes a = 1; layer 2: W1 x = 3 num + 3 a - 3 pos, terms in layout order
    # 3, 3 (partial sum 6 > 15/4), -3: total 3, in range.  H2 = 1/4, G = 3/4, out = 3/4.
    b = Build(5, ["a", "out"])
    out["dot_partial_sum_p5"] = b.model("linear_rnn", [b.rnn(ffn=b.ffn(b3={"a": 1})), b.rnn(ffn=b.ffn(
        1, W1={(0, "num"): 3, (0, "a"): 3, (0, "pos"): -3}, b2={0: Fr(1, 4)}, W3={("out", 0): 1}, names=["h0"]))],
        note="partial sum 6 of a dot product is not checked; its total 3 is")
    # bias on a rounding tie: layer 1 writes a = 1/2; layer 2: H1 = R(1/4 * a + 1/4) = R(3/8)
    b = Build(5, ["a", "out"])
    out["bias_tie_p5"] = b.model("linear_rnn", [
        b.rnn(ffn=b.ffn(b3={"a": Fr(1, 2)})),
        b.rnn(ffn=b.ffn(1, W1={(0, "a"): Fr(1, 4)}, b1={0: Fr(1, 4)}, b2={0: 1}, W3={("out", 0): 1}, names=["h0"])),
    ], note="W1 x + b1 = 1/8 + 1/4 = 3/8, a rounding tie")
    # p = 3: F = 1, R_3 = {0, +-1/2, +-1, +-3/2}.  Uniform softmax of m entries: R(1/m).
    b = Build(3, ["a", "b"], n=1, max_len=4)
    out["softmax_tie_p3"] = b.model("transformer", [TransformerLayer(
        [b.head(1, V={("b", "a"): Fr(1, 2)})], b.ffn())], note="all scores 0: softmax 1/4 at position 4, a tie")
    # weights in several 31-bit limbs: p = 101 (F = 50, up to 4 limbs)
    b = Build(101, ["h", "c"], max_len=4)
    out["limbs_p101"] = b.model("linear_rnn", [b.rnn(
        A={("h", "h"): Fr(1, 2) + Fr(1, 2**50)}, B={("h", "num"): Fr(2**40) + Fr(1, 2**50), ("h", "pos"): Fr(-3, 2**49)},
        ffn=b.ffn(1, W1={(0, "h"): Fr(1, 2**20)}, b1={0: Fr(-(2**50 // 3), 2**50)}, W2={(0, "pos"): Fr(2**20) + Fr(1, 2**50)},
                  W3={("c", 0): Fr(-1, 2**25) - Fr(1, 2**50)}, b3={"c": -(Fr(2**49) - Fr(1, 2**50))}))],
        note="weights of 2-4 limbs, one negative")
    # overflows, p = 5 (largest magnitude 15/4, largest integer 3)
    b = Build(5, [], n=5, max_len=4)
    out["vocab_beyond_integers_p5"] = b.model("transformer", [TransformerLayer([b.head()], b.ffn())],
                                              note="numbers 4, 5 are not in R_5")
    b = Build(5, [], n=3, max_len=5)
    out["position_overflow_p5"] = b.model("linear_rnn", [b.rnn()], note="position 4 is not in R_5")
    b = Build(5, [], n=3)
    out["ffn_operator_order_p5"] = b.model("linear_rnn", [b.rnn(ffn=b.ffn(
        1, W1={(0, "pos"): 2}, W2={(0, "pos"): 3, (0, "num"): 3}, names=["h0"]))],
        note="W1 overflows at position 2, W2 already at position 1: W1 is reported")
    b = Build(5, ["b"])
    out["heads_partial_sum_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(V={("b", "pos"): 3}), b.head(V={("b", "pos"): 3}), b.head(V={("b", "pos"): -3})], b.ffn())],
        note="heads 3 + 3 = 6 overflow before head 3's -3")
    out["head_order_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(V={("b", "pos"): 2}), b.head(V={("b", "pos"): 3, ("b", "num"): 3})], b.ffn())],
        note="head 1 values overflow at position 2, head 2 at position 1: head 1 is reported")
    b = Build(5, [])
    out["residual_after_attention_p5"] = b.model("transformer", [TransformerLayer(
        [b.head(V={("num", "pos"): 3})], b.ffn())], note="1 + 3 = 4 in dim num")
    b = Build(5, ["h"])
    out["linear_unit_step_p5"] = b.model("linear_rnn", [b.rnn(A={("h", "h"): 2}, B={("h", "pos"): 1})],
                                         note="h_2 = 2 h_1 + 2 = 4")
    b = Build(5, [])
    out["product_overflow_p5"] = b.model("linear_rnn", [b.rnn(ffn=b.ffn(1, W1={(0, "num"): 2, (0, "pos"): -3}, names=["h0"]))],
                                         unembed={(i, "num"): Fr(i, 4) for i in (1, 2, 3)}, note="2 * 2 = 4 overflows as a rounded product; the sum 4 - 3 = 1 does not")
    out["logits_overflow_p5"] = b.model("linear_rnn", [b.rnn()], unembed={(2, "num"): 1, (3, "num"): 3},
                                        note="explicit unembed: logit of 3 is 3 * 2 = 6")
    b = Build(11, ["x"], n=4, specials=3, max_len=6)
    out["special_tokens_p11"] = b.model("transformer", [TransformerLayer(
        [b.head(V={("x", "tok:~"): Fr(1, 2)})], b.ffn(1, W1={(0, "tok:<s>"): 1}, b2={0: 3}, W3={("tok:YES", 0): 1}))],
        note="special k (from 1) embeds in dim 1 + k (from 0): <s> in dim 2")
    return out


def random_models() -> dict[str, Model]:
    from tests.random_models import ModelSpec, random_model

    out = {}
    for arch in ("transformer", "linear_rnn", "hybrid"):
        for p, seed, scale in ((11, 1, -2), (21, 2, -1), (43, 3, 0), (11, 4, 1)):
            spec = ModelSpec(arch, p, extra_dims=2, n_layers=2, n_heads=2, key_dim=2, ffn_width=2, n=4,
                             n_specials=2, density=0.5, fractional=0.5, scale_log2=scale, max_len=6, seed=seed,
                             untied=seed % 2 == 0)
            out[f"random_{arch}_p{p}_s{seed}"] = random_model(spec)
    return out


# ---- cases and hand facts ------------------------------------------------------------------

Q = Fr


def tokens_case(name, _models, tokens, readings=ALL):
    return [{"model": name, "tokens": tokens, "tie": t, "matmul": m} for t, m in readings]


def input_case(name, columns, readings=ALL):
    """forward_residual input: a list of columns, each {dim: value}."""
    return [{"model": name, "input": columns, "tie": t, "matmul": m} for t, m in readings]


def err(where, value):
    return ("error", where, Fr(value))


# HAND[(model, reading)] = facts: ("error", where, value) or {(dim, position): value, "next_token": tok}
def hand_facts() -> dict:
    H = {}
    for r in ALL:
        H["score_past_max_p5", r] = (err("layer 1, attention.scores, head 1, position 1, dim 'key position 1'", Q(61, 16))
                                     if r[1] == "round_once" else {("num", 1): 1, ("pos", 1): 1, "next_token": 3})
        # round_products: R(49/16) = 3 (49/16 = 12.25 quarters -> 12), R(3/4) = 3/4: 15/4, in range
        H["score_at_max_p5", r] = {("num", 1): 1, ("pos", 1): 1, "next_token": 3}
        H["score_sum_overflow_p5", r] = err("layer 1, attention.scores, head 1, position 1, dim 'key position 1'",
                                            Q(49, 8) if r[1] == "round_once" else 6)
        H["affine_rounds_to_max_p5", r] = {("out", 1): 1, ("a", 1): Q(7, 4), "next_token": 3}
        H["affine_overflow_value_p5", r] = err("layer 2, ffn.W1, position 1, dim 'h1'", 4)
        H["dot_partial_sum_p5", r] = {("out", 1): Q(3, 4), "next_token": 3}
        H["vocab_beyond_integers_p5", r] = err("embedding, position 2, dim 'num'", 4)
        H["position_overflow_p5", r] = err("embedding, position 4, dim 'pos'", 4)
        H["ffn_operator_order_p5", r] = err("layer 1, ffn.W1, position 2, dim 'h0'", 4)
        H["heads_partial_sum_p5", r] = err("layer 1, attention (sum of heads), position 1, dim 'b'", 6)
        H["head_order_p5", r] = err("layer 1, attention.values, head 1, position 2, dim 'b'", 4)
        H["residual_after_attention_p5", r] = err("layer 1, residual after attention, position 1, dim 'num'", 4)
        H["linear_unit_step_p5", r] = err("layer 1, linear_unit, position 2, dim 'h'", 4)
        H["logits_overflow_p5", r] = err("output logits, position 1, dim '3'", 6)
        # p = 11 (F = 5): zero scores, P[:, 3] = R(1/3) = 11/32 each; V_x = 1/2 at position 3 only:
        # x_3 = R(1/2 * 11/32) = R(5.5/32): a tie, 6/32 under both rules (5 is odd; away: up).
        # FFN: H1 = tok:<s>, H2 = 3: tok:YES gets 3 at position 1 only.
        H["special_tokens_p11", r] = {("tok:<s>", 1): 1, ("tok:~", 3): 1, ("x", 3): Q(3, 16),
                                      ("tok:YES", 1): 3, ("tok:YES", 2): 0, "next_token": "~"}
    # bias tie: R(3/8) = 1/2 under round_once (both rules: 3/8 = 1.5 quarters -> 2 even; away 2);
    # round_products: R(1/8) + 1/4: 1/8 = 0.5 quarters -> 0 (even) / 1 (away): 1/4 / 1/2
    for r, v in zip(ALL, (Q(1, 2), Q(1, 2), Q(1, 4), Q(1, 2))):
        H["bias_tie_p5", r] = {("out", 1): v, ("a", 1): Q(1, 2)}
    # softmax tie at p = 3: V_b = a/2 = 1/2 per key; column k has k equal scores, P = R(1/k):
    # R(1) = 1, R(1/2) = 1/2, R(1/3) = 1/2 (2/3 ulp -> 1 ulp), R(1/4): 1/2 ulp, a tie -> 0 / 1/2.
    # round_once: out_k = R(k * 1/2 * P); round_products: sum of R(1/2 * P) over k keys.
    H["softmax_tie_p3", ("even", "round_once")] = {("b", 1): Q(1, 2), ("b", 2): Q(1, 2), ("b", 3): 1, ("b", 4): 0}
    H["softmax_tie_p3", ("away", "round_once")] = {("b", 1): Q(1, 2), ("b", 2): Q(1, 2), ("b", 3): 1, ("b", 4): 1}
    H["softmax_tie_p3", ("even", "round_products")] = {("b", 1): Q(1, 2), ("b", 2): 0, ("b", 3): 0, ("b", 4): 0}
    H["softmax_tie_p3", ("away", "round_products")] = err("layer 1, attention, head 1, position 4, dim 'b'", 2)
    for r in ALL:  # round_products: 2 * 2 = 4 > 15/4 is a rounded product out of range
        H["product_overflow_p5", r] = (err("layer 1, ffn.W1, position 1, dim 'h0'", 4) if r[1] == "round_products"
                                       else {("num", 1): 2, "next_token": 3})
        H["limbs_p101", r] = {("h", 1): Q(2**40) + Q(1, 2**50) - Q(3, 2**49)}
    return H


def cases(models: dict) -> list[dict]:
    out = []
    out += tokens_case("score_past_max_p5", models, [1])
    out += tokens_case("score_at_max_p5", models, [1])
    out += tokens_case("bias_tie_p5", models, [1, 1])
    out += tokens_case("score_sum_overflow_p5", models, [1])
    out += tokens_case("dot_partial_sum_p5", models, [1])
    out += tokens_case("affine_rounds_to_max_p5", models, [1])
    out += tokens_case("affine_overflow_value_p5", models, [1])
    out += input_case("softmax_tie_p3", [{"a": 1}] * 4)
    out += tokens_case("limbs_p101", models, [1, 3, 2])
    out += tokens_case("limbs_p101_extra_limbs", models, [1, 3, 2], READINGS[:1])
    out += tokens_case("vocab_beyond_integers_p5", models, [1, 4])
    out += [dict(c, id_suffix="we") for c in tokens_case("vocab_beyond_integers_p5", models, [1, 2])]
    out += tokens_case("position_overflow_p5", models, [1, 1, 1, 1])
    out += tokens_case("ffn_operator_order_p5", models, [1, 1])
    out += tokens_case("heads_partial_sum_p5", models, [1])
    out += tokens_case("head_order_p5", models, [1, 1])
    out += tokens_case("residual_after_attention_p5", models, [1])
    out += tokens_case("linear_unit_step_p5", models, [1, 1])
    out += tokens_case("product_overflow_p5", models, [2])
    out += tokens_case("logits_overflow_p5", models, [2])
    out += tokens_case("special_tokens_p11", models, ["<s>", 1, "~"])
    for name in models:
        if name.startswith("random_"):
            out += tokens_case(name, models, [1, "<s>", 3, 2, "~"][: 3 + len(name) % 3])
    return out


# ---- running, checking, writing -------------------------------------------------------------


def fr(v: Fr) -> str:
    return str(Fr(v))


def expected(spec_model, case) -> dict:
    ev = Spec(spec_model, case["tie"], case["matmul"])
    names = spec_model.header["layout"]
    try:
        if "input" in case:
            X = [[Fr(col.get(n, 0)) for n in names] for col in case["input"]]
            res = ev.run(X=X)
        else:
            res = ev.run(tokens=case["tokens"])
    except SpecOverflow as exc:
        return {"error": "PrecisionOverflow", "where": exc.where, "value": fr(exc.value)}
    out = {"residual": [[fr(col[r]) for col in res["residual"]] for r in range(len(names))],
           "logits": [fr(v) for v in res["logits"]]}
    if "input" not in case:
        out["next_token"] = res["next_token"]
    return out


def check_hand(case, exp, facts, names: list[str]) -> None:
    """Refuse a computed expectation that contradicts the facts worked out by hand."""
    key = f"{case['model']} {case['tie']} {case['matmul']}"
    if isinstance(facts, tuple):
        assert exp.get("where") == facts[1] and Fr(exp["value"]) == facts[2], (key, exp, facts)
        return
    assert "error" not in exp, (key, exp)
    for k, v in facts.items():
        if k == "next_token":
            assert exp["next_token"] == v, (key, exp["next_token"], v)
        else:
            dim, pos = k
            got = Fr(exp["residual"][names.index(dim)][pos - 1])
            assert got == Fr(v), (key, k, got, v)


def write_extra_limbs(model: Model, path: Path, n_limbs: int) -> None:
    """The same model with more 31-bit limbs than save_model writes (readers accept any L >= 1)."""
    from safetensors.numpy import save_file

    save_model(model, path)
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        header_json = f.metadata()[HEADER_KEY]
    tensors = {name: to_limbs(w, n_limbs) for name, w in model.all_weights().items()}
    save_file(tensors, str(path), metadata={HEADER_KEY: header_json, DIGEST_KEY: digest(header_json, tensors)})


def cross_check(models, all_cases, vectors) -> list[str]:
    """Both project evaluators against the vectors: the list of disagreements."""
    from tests.test_conformance import outcome_of, matches  # the tests' own comparison

    bad = []
    for case, exp in zip(all_cases, vectors):
        for kind in ("reference", "fast"):
            got = outcome_of(kind, models[case["model"]], case)
            why = matches(got, exp["expect"], models[case["model"]])
            if why:
                bad.append(f"{exp['id']} [{kind}]: {why}")
    return bad


def main() -> None:
    from constructions.modelfile import load_model

    models = {**hand_models(), **random_models()}
    for name, model in models.items():
        save_model(model, HERE / f"{name}.safetensors")
    write_extra_limbs(models["limbs_p101"], HERE / "limbs_p101_extra_limbs.safetensors", 6)
    models["limbs_p101_extra_limbs"] = load_model(HERE / "limbs_p101_extra_limbs.safetensors")
    hand = hand_facts()
    all_cases = cases(models)
    vectors, seen = [], set()
    for case in all_cases:
        spec_model = read_model(HERE / f"{case['model']}.safetensors")
        exp = expected(spec_model, case)
        facts = hand.get((case["model"], (case["tie"], case["matmul"])))
        suffix = case.pop("id_suffix", "")
        if suffix == "we":
            facts = err("output embedding W_E, position 2, dim '4'", 4)
        if facts is not None:
            check_hand(case, exp, facts, list(models[case["model"]].layout.names))
            seen.add(case["model"])
        cid = f"{case['model']}{'_' + suffix if suffix else ''}.{case['tie']}.{case['matmul']}"
        vectors.append({"id": cid, **case, "hand_checked": facts is not None, "expect": exp})
    missing = {m for m, _ in hand} - seen
    assert not missing, missing
    doc = {"format": "proofs-check-conformance", "version": 1,
           "spec": ["notes/model-format.md", "notes/numerics.md"],
           "values": "exact rationals as strings 'n' or 'n/d'; residual: rows = layout dims, columns = positions",
           "cases": vectors}
    (HERE / "vectors.json").write_text(json.dumps(doc, indent=1) + "\n")
    bad = cross_check(models, all_cases, vectors)
    print(f"{len(vectors)} cases, {sum(v['hand_checked'] for v in vectors)} hand-checked, "
          f"{len(models)} model files; evaluator disagreements: {len(bad)}")
    for line in bad:
        print("  ", line)


if __name__ == "__main__":
    main()
