"""Theorem 4.7 / Lemma B.27: a constant-size Transformer that solves IsTree with a DFS chain of thought.

Input (Eq. 4 / Eq. 6): ``<s> u_1 ~ v_1 u_2 ~ v_2 ... u_m ~ v_m`` (edges in any order and
orientation).  The model, built for a fixed n, generates Algorithm 1's sequence A(G) (the Euler
tour of vertex 1's component) one vertex per step and ends with YES or NO (App B.6.2).

What it emits (checked against ``proofs_check.algorithms``, never against this module):

* m = n - 1 and G a tree: exactly A(G) (2n - 1 vertices), then YES;
* m = n - 1, not a tree: the walk of B.6.2 (``lemma_b27_chain(g, literal_end_check=False)``):
  a prefix of A(G) that stops with NO at the first edge that closes a cycle in vertex 1's
  component, or the whole tour of that component followed by NO (position != 5n - 3);
* m != n - 1 (never a tree): NO at once, no vertex emitted (erratum B27-E3 in
  notes/errata/dfs_transformer.md: the proof assumes |Tokenize(G)| = 3n - 2).

Positions: <s> is 1, edge j is u_j at 3j-1, ~ at 3j, v_j at 3j+1; for m = n-1 the prompt ends
at 3n-2 and the tour token v_l sits at 3n-2+l.

Layers (the paper's nine steps of B.6.2, folded into seven layers; "step k" = the k-th item
of the proof's list, the paper's residual names i_1..i_25 in brackets):

1. FFN only (step 1: "attention at Layer 1 outputs zero"): ``one``, ``pos2``, ``num2`` and the
   position flags ``is_cot`` = [pos >= 3n-1], ``is_cot2`` = [pos >= 3n], ``is_end`` = [pos = 3n-2],
   ``is_final`` = [pos = 5n-3].
2. Attention: COUNT (step 1, Def B.8) -> ``cnt`` [i_1] = ROUND(1/(1 + #occurrences of this
   vertex so far)); COPY s=1 (step 2, Def B.7) -> ``prev_num`` [i_2], ``prev_tilde``; COPY s=2
   (steps 2+3 in one head) -> ``pp_num`` [i_4].  FFN (step 4): first-occurrence flag ``fo``,
   the edge record at v_j: ``e_a``, ``e_b`` [i_6, i_7] (+ squares), ``e_cb`` [i_9]; the tour
   record at v_l: ``cot_v`` = v_l, ``prev_v`` = v_(l-1) (0 for l = 1) [i_10, i_11] (+ squares
   [i_12, i_13]); ``C`` = this is a tour position.
3. Attention: COPY s=2 of ``cnt`` -> ``pp_cnt`` [i_5]; two "count-before" heads ->
   ``pc_a_raw``, ``pc_b_raw`` (ROUND(1/t) for the t-th edge of a vertex; replaces the
   ``next`` approximation, erratum B27-E2); Match first occurrence in the tour (step 6, Def B.9)
   -> ``par`` = f(v_l) [i_22].  FFN: ``e_ca`` [i_8], ``e_pa``, ``e_pb`` (+ scaled squares),
   ``fa`` = [v_(l-1) = f(v_l)] (first arrival, also l = 1), ``haspar`` = [f(v_l) >= 1].
4. Attention (step 5): two Match heads find the edge {v_l, v_(l-1)} in either orientation and
   copy v_l's count on it -> ``cv``.  FFN (end of step 6): ``s1`` = 1 on first arrival, else
   ``cv``; ``s1sq_s`` = lam_c * s1^2.
5. Attention (step 7, MatchNext of Def B.12 realised as an exact Match, erratum B27-E2): two heads
   (v_l as first / as second endpoint) find the edge whose count-before for v_l equals ``s1``
   -> other endpoint ``o1`` [i_14], its count ``c1`` [i_15, i_16], ``found1``.  FFN: ``skip`` =
   found1 and o1 = f(v_l) (the father edge), ``c1sq_s``.
6. Attention (step 8): the same two heads with ``c1`` -> ``o2``, ``found2``.  FFN (step 9):
   potential next vertex ``x`` [i_23] (+ ``x2`` [i_24]), ``child`` / ``up`` flags.
7. Attention (step 10): Match ``x`` against the tour -> ``visited`` [i_25].  FFN (step 11):
   the decision, written to ``out_val``, ``out_g``, ``out_yes``, ``out_no``.

Readout: the explicit ``unembed`` (erratum B27-E1: the tied W_E of A.3 gives number i the logit
i * x_num, which can only select 1 or n): number i gets ``2i*out_val - i^2*out_g`` (= v^2 -
(i - v)^2 when out_g = 1, out_val = v), YES gets ``out_yes``, NO gets ``out_no``.

Attention scores are -lam * sum (key - query)^2 (+ tie-break / <s>-default terms, Lemmas
B.13-B.15), with every constant derived from n and p (:func:`constants`): a score gap of at
least G = ceil((F + 2) ln 2 + ln L) + 2 between the attended keys and the rest makes every
softmax column round to the exact hard (or uniform) pattern.  :func:`declared_p` is the
smallest odd p for which every score and weight fits R_p.  The attention and FFN specs are
written here (the shared ``attention_blocks`` module did not exist when this was written);
they are Lemma B.13-B.15 heads and Lemma B.1/B.3/B.5 units specialised to this layout.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .blocks import FFNSpec, Form, HeadSpec, LayerSpec, Unit, assemble, padded_layout
from .errors import PrecisionError
from .layout import NUM, POS, LayoutBuilder, special_dim
from .model import Model
from .ffn_blocks import checked_format, declared_split
from .numerics import Precision
from .vocab import Vocabulary

BOS, TILDE = special_dim("<s>"), special_dim("~")
Readout = Literal["unembed", "tied"]

# residual dimensions allocated by the builder, in layer order (names are the documentation)
DIMS: tuple[str, ...] = (
    "one", "pos2", "num2", "is_cot", "is_cot2", "is_end", "is_final",  # layer 1 FFN
    "cnt", "prev_num", "prev_tilde", "pp_num",  # layer 2 attention
    "fo", "cot_v", "cot_v2", "prev_v", "prev_v2", "e_a", "e_b", "e_a2", "e_b2", "e_cb", "C",  # layer 2 FFN
    "pp_cnt", "pc_a_raw", "pc_b_raw", "par",  # layer 3 attention
    "e_ca", "e_pa", "e_pb", "e_pa2s", "e_pb2s", "fa", "haspar",  # layer 3 FFN
    "cv",  # layer 4 attention
    "s1", "s1sq_s",  # layer 4 FFN
    "o1", "c1", "found1",  # layer 5 attention
    "skip", "c1sq_s",  # layer 5 FFN
    "o2", "found2",  # layer 6 attention
    "x", "x2", "child", "up",  # layer 6 FFN
    "visited",  # layer 7 attention
    "out_val", "out_g", "out_yes", "out_no",  # layer 7 FFN
)


# ---- constants ------------------------------------------------------------------------------


def max_len_for(n: int) -> int:
    """Longest sequence the model accepts: any simple graph's prompt (3 C(n,2) + 1 tokens)
    plus, for m = n - 1, the 2n - 1 tour tokens (last evaluated position 5n - 3)."""
    return max(5 * n - 2, 3 * (n * (n - 1) // 2) + 1)


@functools.lru_cache(maxsize=None)
def _padded_d() -> int:
    vocab = Vocabulary(2)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(DIMS)
    return padded_layout(lb.build()).d


@dataclass(frozen=True)
class Constants:
    """Score constants of the heads (all integers), for one (n, p)."""

    n: int
    p: int
    L: int  # max_len
    G: int  # minimum score gap (nats) that makes a softmax column round to its hard pattern
    lam_pos: int  # COPY: -lam_pos (pos' - target)^2
    lam_v: int  # vertex matches: -lam_v (vertex' - vertex)^2; dominates the first-occurrence tie-break
    mu: int  # first-occurrence tie-break: -mu * pos'
    lam_c: int  # count matches: -lam_c (count' - count)^2, counts in ROUND(1/[n])
    s_d: int  # sqrt of the padded width (queries are multiplied by it in assemble)

    @property
    def score_bound(self) -> int:
        """Bound on |score| (and on every query entry) after the sqrt(d) compensation."""
        n, L = self.n, self.L
        designed = (self.lam_v * (n + 1) ** 2 * 2 + self.mu * (L + 2) + self.lam_c * 2
                    + self.lam_pos * L * L + 8 * self.G)
        return self.s_d * designed


def constants(n: int, p: "int | Precision") -> Constants:
    """The proof's constants at n for the fractional bits F of p (an odd p or R(I, F))."""
    F = Precision.of(p).F
    L = max_len_for(n)
    G = math.ceil((F + 2) * math.log(2) + math.log(L)) + 2
    lam_pos = G
    mu = G
    lam_v = G * (L + 4)
    # distinct values of ROUND(1/t), t <= n, differ by >= 1/(n(n+1)) - 2^-F >= 1/(2n(n+1))
    lam_c = 8 * G * (n * (n + 1)) ** 2
    return Constants(n, p, L, G, lam_pos, lam_v, mu, lam_c, math.isqrt(_padded_d()))


def precision_ok(n: int, p: "int | Precision") -> str | None:
    """None when p (an odd p or R(I, F)) suffices for this construction at n, else the reason:
    F for the constants and ROUND(1/t), I for the scores (which grow with F through G)."""
    prec = Precision.of(p)
    F, I = prec.F, prec.I
    if F < 3:
        return "the first-occurrence threshold uses the constant 3/8, which needs F >= 3"
    if (1 << F) < 2 * n * (n + 1):
        return f"ROUND(1/t) for t <= {n} must be pairwise >= 1/(2n(n+1)) apart, which needs 2^F >= 2n(n+1)"
    c = constants(n, p)
    if c.score_bound > (1 << I) - 1:
        return f"attention scores reach about {c.score_bound:.3g}, beyond {prec.label}'s largest magnitude 2^{I}"
    return None


def declared_p(n: int) -> int:
    """The smallest odd p with :func:`precision_ok` (O(log n): about 2 (4 log2 n + log2 G + 5))."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PrecisionError(f"n must be a whole number >= 1, got {n!r}")
    p = 7
    while precision_ok(n, p) is not None:
        p += 2
    return p


# ---- spec helpers ---------------------------------------------------------------------------


def unit(name: str, w1: Form, b1, w2: Form, b2, out: Form) -> Unit:
    """One ReGLU unit with exact (Fraction) constants; shared with istree_hybrid."""
    return Unit(name, dict(w1), Fraction(b1), dict(w2), Fraction(b2), dict(out))


def _lin(name: str, w2: Form, out: str, b2=0) -> Unit:
    """Lemma B.2: one unit ReLU(one) * (w2 . x + b2) = w2 . x + b2 (one = 1 everywhere)."""
    return unit(name, {"one": 1}, 0, w2, b2, {out: 1})


def flag_ge(name: str, var: str, T: int, out: str) -> list[Unit]:
    """[x >= T] for integer x (Lemma B.5 with eps = 1): ReLU(x - T + 1) - ReLU(x - T)."""
    return [unit(f"{name}.a", {var: 1}, -T + 1, {}, 1, {out: 1}), unit(f"{name}.b", {var: 1}, -T, {}, 1, {out: -1})]


def _eq0_times(name: str, x: Form, gate: Form, gate_b, out: Form) -> list[Unit]:
    """[x = 0] * (gate . y + gate_b) for integer x (Lemma B.3 as a ReGLU product):
    (ReLU(x + 1) - 2 ReLU(x) + ReLU(x - 1)) * gate."""
    outs = [(1, 1), (0, -2), (-1, 1)]
    return [
        unit(f"{name}.{i}", x, b, gate, gate_b, {k: v * c for k, v in out.items()})
        for i, (b, c) in enumerate(outs)
    ]


def _gated(name: str, flag: str, value: str, out: str) -> Unit:
    """flag * value for a 0/1 flag: ReLU(flag) * value (Lemma B.1)."""
    return unit(name, {flag: 1}, 0, {value: 1}, 0, {out: 1})


def _gated_square(name: str, flag: Form, flag_b, value: str, bound, out: str, scale=1) -> Unit:
    """scale * value^2 * [flag form = 1] for 0 <= value <= bound and a 0/1 flag form:
    ReLU(value - bound (1 - flag)) * scale * value."""
    w1 = {value: 1, **{k: bound * v for k, v in flag.items()}}
    return unit(name, w1, Fraction(bound) * (Fraction(flag_b) - 1), {value: scale}, 0, {out: 1})


@dataclass(frozen=True)
class Pair:
    """One matched coordinate: key dim K (key square K2), query form Q (query square Q2),
    penalty -lam (K - Q)^2; ``k2_scaled`` means K2 already holds lam * K^2 (and Q2 lam * Q^2)."""

    K: str
    K2: str
    Q: Form
    Q2: Form
    lam: int
    k2_scaled: bool = False


def match_head(name: str, pairs: list[Pair], values: dict[str, Form], c: Constants,
                bos: Literal["key", "sink", "default"] = "key", first: bool = False,
                drop_query_square: bool = False) -> HeadSpec:
    """A Lemma B.13-B.15 head: score(k', k) = -sum lam (K(k') - Q(k))^2 [- mu pos(k') if first].

    bos = "key": <s> is an ordinary key; "sink": <s> scores exactly like a match (COUNT, Def
    B.8); "default": <s> scores G (+ the tie-break range) below every match and G above every
    miss, so a query without a match reads <s> (zeros) as in Def B.9's "otherwise k* = 1".
    Keys must be 0 at <s> for "sink"/"default".
    """
    keys: list[tuple[str, Form]] = []
    queries: list[Form] = []
    for i, pr in enumerate(pairs):
        keys.append((f"{pr.K2}^2#{i}", {pr.K2: 1}))
        queries.append({"one": -1 if pr.k2_scaled else -pr.lam})
        keys.append((f"{pr.K}#{i}", {pr.K: 1}))
        queries.append({k: 2 * pr.lam * v for k, v in pr.Q.items()})
    if not drop_query_square:
        q2: dict[str, Fraction] = {}
        for pr in pairs:
            for k, v in pr.Q2.items():
                q2[k] = q2.get(k, 0) + (v if pr.k2_scaled else pr.lam * v)
        if bos == "key":
            keys.append(("one", {"one": 1}))
            queries.append({k: -v for k, v in q2.items()})
        else:
            keys.append(("not<s>", {"one": 1, BOS: -1}))
            queries.append({k: -v for k, v in q2.items()})
    if first:
        keys.append(("pos", {POS: 1}))
        queries.append({"one": -c.mu})
    if bos in ("sink", "default"):
        if drop_query_square:
            raise ValueError("the <s> sink/default needs the query square")
        const = 0 if bos == "sink" else -c.G - (c.mu * (c.L + 1) if first else 0)
        if first:
            const += c.mu  # <s> sits at position 1 and received -mu from the tie-break
        keys.append(("<s>", {BOS: 1}))
        queries.append({"one": const})
    return HeadSpec(name, keys, queries, values)


def _copy_head(name: str, s: int, values: dict[str, Form], c: Constants) -> HeadSpec:
    """COPY[s] (Def B.7, Lemma B.13): score -lam_pos (pos' - (pos - s))^2; k <= s reads <s>."""
    target = {POS: 1, "one": -s}
    target2 = {"pos2": 1, POS: -2 * s, "one": s * s}
    return match_head(name, [Pair(POS, "pos2", target, target2, c.lam_pos)], values, c, bos="key")


# ---- the builder ----------------------------------------------------------------------------


def _layer1(n: int) -> LayerSpec:
    """Layer 1: attention outputs zero; the FFN makes constants and position flags."""
    T_cot = 3 * n - 1  # first tour position when m = n - 1
    ffn1 = FFNSpec(
        [
            unit("pos2", {POS: 1}, 0, {POS: 1}, 0, {"pos2": 1}),
            unit("num2", {NUM: 1}, 0, {NUM: 1}, 0, {"num2": 1}),
            *flag_ge("is_cot", POS, T_cot, "is_cot"),
            *flag_ge("is_cot2", POS, T_cot + 1, "is_cot2"),
            *_eq0_times("is_end", {POS: 1}, {}, 1, {"is_end": 1}),
            *_eq0_times("is_final", {POS: 1}, {}, 1, {"is_final": 1}),
        ],
        bias={"one": 1},
    )
    # the two position equalities: shift x = pos - const through the bias of w1
    for u in ffn1.units:
        if u.name.startswith("is_end."):
            u.b1 += -(3 * n - 2)
        elif u.name.startswith("is_final."):
            u.b1 += -(5 * n - 3)
    return LayerSpec("transformer", [], None, ffn1, "L1 constants and position flags")


def _layer2(n: int, c: Constants) -> LayerSpec:
    """Layer 2: COUNT, COPY s=1, COPY s=2; the FFN writes the records."""
    count = match_head("count", [Pair(NUM, "num2", {NUM: 1}, {"num2": 1}, c.lam_v)],
                       {"cnt": {BOS: 1}}, c, bos="sink")
    copy1 = _copy_head("copy1", 1, {"prev_num": {NUM: 1}, "prev_tilde": {TILDE: 1}}, c)
    copy2 = _copy_head("copy2", 2, {"pp_num": {NUM: 1}}, c)
    ffn2 = FFNSpec([
        # first occurrence: cnt = 1/2 exactly, later occurrences cnt <= ROUND(1/3) < 3/8
        unit("fo.a", {"cnt": 1}, Fraction(-3, 8), {}, 8, {"fo": 1}),
        unit("fo.b", {"cnt": 1}, Fraction(-1, 2), {}, 8, {"fo": -1}),
        _gated("cot_v", "is_cot", NUM, "cot_v"),
        _gated_square("cot_v2", {"is_cot": 1}, 0, NUM, n, "cot_v2"),
        _gated("prev_v", "is_cot2", "prev_num", "prev_v"),
        _gated_square("prev_v2", {"is_cot2": 1}, 0, "prev_num", n, "prev_v2"),
        _gated("e_a", "prev_tilde", "pp_num", "e_a"),
        _gated("e_b", "prev_tilde", NUM, "e_b"),
        _gated_square("e_a2", {"prev_tilde": 1}, 0, "pp_num", n, "e_a2"),
        _gated_square("e_b2", {"prev_tilde": 1}, 0, NUM, n, "e_b2"),
        _gated("e_cb", "prev_tilde", "cnt", "e_cb"),
        unit("C", {"is_cot": 1, "prev_tilde": -1, BOS: -1}, 0, {}, 1, {"C": 1}),
    ])
    return LayerSpec("transformer", [count, copy1, copy2], None, ffn2, "L2 count, copy; records")


def _layer3(c: Constants) -> LayerSpec:
    """Layer 3: copy the first endpoint's count, count-before, father."""
    copy2c = _copy_head("copy2c", 2, {"pp_cnt": {"cnt": 1}}, c)
    pc_a = match_head("countbefore_a", [Pair(NUM, "num2", {"pp_num": 1}, {}, c.lam_v)],
                      {"pc_a_raw": {"fo": 1}}, c, drop_query_square=True)
    pc_b = match_head("countbefore_b", [Pair(NUM, "num2", {NUM: 1}, {}, c.lam_v)],
                      {"pc_b_raw": {"fo": 1}}, c, drop_query_square=True)
    father = match_head("father", [Pair("cot_v", "cot_v2", {"cot_v": 1}, {}, c.lam_v)],
                        {"par": {"prev_v": 1}}, c, first=True, drop_query_square=True)
    ffn3 = FFNSpec([
        _gated("e_ca", "prev_tilde", "pp_cnt", "e_ca"),
        _gated("e_pa", "prev_tilde", "pc_a_raw", "e_pa"),
        _gated("e_pb", "prev_tilde", "pc_b_raw", "e_pb"),
        _gated_square("e_pa2s", {"prev_tilde": 1}, 0, "pc_a_raw", 1, "e_pa2s", scale=c.lam_c),
        _gated_square("e_pb2s", {"prev_tilde": 1}, 0, "pc_b_raw", 1, "e_pb2s", scale=c.lam_c),
        *_eq0_times("fa", {"prev_v": 1, "par": -1}, {}, 1, {"fa": 1}),
        unit("haspar.a", {"par": 1}, 0, {}, 1, {"haspar": 1}),
        unit("haspar.b", {"par": 1}, -1, {}, 1, {"haspar": -1}),
    ])
    return LayerSpec("transformer", [copy2c, pc_a, pc_b, father], None, ffn3, "L3 counts; father")


def _vq() -> tuple[Form, Form]:
    """The query forms (value, square) of the current tour vertex v_l (fresh dicts per head)."""
    return {"cot_v": 1}, {"cot_v2": 1}


def _wq() -> tuple[Form, Form]:
    """The query forms (value, square) of the previous tour vertex v_(l-1)."""
    return {"prev_v": 1}, {"prev_v2": 1}


def _layer4(c: Constants) -> LayerSpec:
    """Layer 4: the edge {v_l, v_(l-1)} and v_l's count on it."""
    edge_a = match_head("edge_vw", [Pair("e_a", "e_a2", *_vq(), c.lam_v), Pair("e_b", "e_b2", *_wq(), c.lam_v)],
                        {"cv": {"e_ca": 1}}, c, bos="default")
    edge_b = match_head("edge_wv", [Pair("e_a", "e_a2", *_wq(), c.lam_v), Pair("e_b", "e_b2", *_vq(), c.lam_v)],
                        {"cv": {"e_cb": 1}}, c, bos="default")
    ffn4 = FFNSpec([
        _lin("s1.cv", {"cv": 1}, "s1"),
        unit("s1.fa", {"fa": 1}, 0, {"one": 1, "cv": -1}, 0, {"s1": 1}),
        unit("s1sq.fa", {"fa": 1}, 0, {"one": c.lam_c}, 0, {"s1sq_s": 1}),
        unit("s1sq.cv", {"cv": 1, "fa": -1}, 0, {"cv": c.lam_c}, 0, {"s1sq_s": 1}),
    ])
    return LayerSpec("transformer", [edge_a, edge_b], None, ffn4, "L4 edge lookup; search count")


def _next_heads(c: Constants, tag: str, s: str, s2: str, o: str, cc: str | None, found: str) -> list[HeadSpec]:
    """Layers 5 and 6: the next edge containing v_l after search count s (one head per side)."""
    heads = []
    for side, (K, K2, P, P2, other, cnt) in (
        ("a", ("e_a", "e_a2", "e_pa", "e_pa2s", "e_b", "e_ca")),
        ("b", ("e_b", "e_b2", "e_pb", "e_pb2s", "e_a", "e_cb")),
    ):
        vals: dict[str, Form] = {o: {other: 1}, found: {"prev_tilde": 1}}
        if cc:
            vals[cc] = {cnt: 1}
        heads.append(match_head(
            f"next{tag}_{side}",
            [Pair(K, K2, *_vq(), c.lam_v), Pair(P, P2, {s: 1}, {s2: 1}, c.lam_c, k2_scaled=True)],
            vals, c, bos="default"))
    return heads


def _layer5(c: Constants) -> LayerSpec:
    """Layer 5: the next edge containing v_l; is it the father edge?"""
    ffn5 = FFNSpec([
        *_eq0_times("skip", {"o1": 1, "par": -1}, {"found1": 1}, 0, {"skip": 1}),
        unit("c1sq", {"c1": 1}, 0, {"c1": c.lam_c}, 0, {"c1sq_s": 1}),
    ])
    return LayerSpec("transformer", _next_heads(c, "1", "s1", "s1sq_s", "o1", "c1", "found1"), None, ffn5,
                     "L5 next edge; father-edge test")


def _layer6(n: int, c: Constants) -> LayerSpec:
    """Layer 6: the next edge after the father edge; the potential next vertex x and x^2."""
    ffn6 = FFNSpec([
        unit("child.1", {"found1": 1, "skip": -1}, 0, {}, 1, {"child": 1}),
        unit("child.2", {"skip": 1, "found2": 1}, -1, {}, 1, {"child": 1}),
        unit("up.1", {"found1": -1}, 1, {}, 1, {"up": 1}),
        unit("up.2", {"skip": 1, "found2": -1}, 0, {}, 1, {"up": 1}),
        unit("x.1", {"found1": 1, "skip": -1}, 0, {"o1": 1}, 0, {"x": 1}),
        unit("x.2", {"skip": 1, "found2": 1}, -1, {"o2": 1}, 0, {"x": 1}),
        unit("x.3", {"found1": -1}, 1, {"par": 1}, 0, {"x": 1}),
        unit("x.4", {"skip": 1, "found2": -1}, 0, {"par": 1}, 0, {"x": 1}),
        _gated_square("x2.1", {"found1": 1, "skip": -1}, 0, "o1", n, "x2"),
        _gated_square("x2.2", {"skip": 1, "found2": 1}, -1, "o2", n, "x2"),
        _gated_square("x2.3", {"found1": -1}, 1, "par", n, "x2"),
        _gated_square("x2.4", {"skip": 1, "found2": -1}, 0, "par", n, "x2"),
    ])
    return LayerSpec("transformer", _next_heads(c, "2", "c1", "c1sq_s", "o2", None, "found2"), None, ffn6,
                     "L6 next edge after the father edge; potential next vertex")


def _layer7(c: Constants, edge_count_check: bool) -> LayerSpec:
    """Layer 7: has x appeared in the tour?  Then the decision (emit x, the father, YES / NO)."""
    visited = match_head("visited", [Pair("cot_v", "cot_v2", {"x": 1}, {"x2": 1}, c.lam_v)],
                         {"visited": {"is_cot": 1}}, c, bos="default")
    start = {"prev_tilde": 1, BOS: 1}  # S: an edge's second vertex or <s> (a possible prompt end)
    emit_child = ({"C": 1, "child": 1, "visited": -1}, -1)
    emit_up = ({"C": 1, "up": 1, "haspar": 1}, -2)
    emit_start = ({**start, "is_end": 1}, -1) if edge_count_check else (start, 0)
    units = []
    for tag, (w1, b1) in (("child", emit_child), ("up", emit_up)):
        units.append(unit(f"val.{tag}", w1, b1, {"x": 1}, 0, {"out_val": 1}))
        units.append(unit(f"g.{tag}", w1, b1, {}, 1, {"out_g": 1}))
    units.append(unit("val.start", emit_start[0], emit_start[1], {}, 1, {"out_val": 1, "out_g": 1}))
    units.append(unit("no.cycle", {"C": 1, "child": 1, "visited": 1}, -2, {}, 1, {"out_no": 1}))
    units.append(unit("no.length", {"C": 1, "up": 1, "haspar": -1, "is_final": -1}, -1, {}, 1, {"out_no": 1}))
    units.append(unit("yes", {"C": 1, "up": 1, "haspar": -1, "is_final": 1}, -2, {}, 1, {"out_yes": 1}))
    if edge_count_check:
        units.append(unit("no.edges", {**start, "is_end": -1}, 0, {}, 1, {"out_no": 1}))
    return LayerSpec("transformer", [visited], None, FFNSpec(units), "L7 visited; decision")


def _unembed(n: int, readout: Readout) -> dict | None:
    """The read-out: vertex i scores 2 i out_val - i^2 out_g (argmax at i = out_val when out_g
    = 1), YES / NO their flags; ``"tied"``: None, A.3's tied W_E (erratum B27-E1)."""
    if readout == "tied":
        return None
    if readout != "unembed":
        raise PrecisionError(f"readout must be 'unembed' or 'tied', got {readout!r}")
    unembed: dict = {i: {"out_val": 2 * i, "out_g": -i * i} for i in range(1, n + 1)}
    unembed["YES"] = {"out_yes": 1}
    unembed["NO"] = {"out_no": 1}
    return unembed


def dfs_transformer(n: int, p: int | None = None, readout: Readout = "unembed",
                    edge_count_check: bool = True) -> Model:
    """The Lemma B.27 Transformer for graphs on vertices 1..n (see the module docstring): seven
    layers, one builder each above (``_layer1`` .. ``_layer7``), and the read-out.

    ``p`` defaults to :func:`declared_p` (n); a smaller p raises PrecisionError naming the p
    needed.  ``readout="tied"`` keeps A.3's tied W_E (the literal version, erratum B27-E1: it cannot
    emit the tour).  ``edge_count_check=False`` drops the fix of errata B27-E3/B27-E4 (the tour starts at
    the end of every prompt, whatever m is; literal version of the final check).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PrecisionError(f"dfs-transformer: n must be a whole number >= 1, got {n!r}")
    need = declared_p(n)
    p = checked_format(p, need, lambda prec: precision_ok(n, prec), f"dfs-transformer at n = {n}")
    c = constants(n, p)
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(DIMS)
    layers = [_layer1(n), _layer2(n, c), _layer3(c), _layer4(c), _layer5(c), _layer6(n, c),
              _layer7(c, edge_count_check)]
    return assemble(
        arch="transformer", p=p, layout=lb.build(), vocab=vocab, layers=layers,
        max_len=c.L, unembed=_unembed(n, readout), declared=declared_split(lambda prec: precision_ok(n, prec)),
        declared_p=need,
        meta={"construction": "dfs-transformer", "theorem": "4.7 / Lemma B.27", "n": n,
              "readout": readout, "edge_count_check": edge_count_check,
              "constants": {k: getattr(c, k) for k in ("G", "lam_pos", "lam_v", "mu", "lam_c", "s_d")}},
    )


def cot_bound(n: int) -> int:
    """Theorem 4.7's O(n): at most 2n - 1 tour tokens before the answer."""
    return 2 * n - 1


CATALOG = {"dfs-transformer": dfs_transformer}
