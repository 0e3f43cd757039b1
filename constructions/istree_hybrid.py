"""Theorem 5.7 (App B.12): hybrid linear RNNs (Def 5.5) with O(log n) bits of state for IsTree.

A hybrid model is a stack of linear-RNN layers (Def 3.5: h_t = A h_(t-1) + B x_t, then a
ReGLU FFN) followed by exactly ONE Transformer layer.  Everything recurrent here is one of
Lemma B.20 (a shift register of the last few tokens) or Lemma B.21 (prefix sums); all other
logic is FFN; the one Transformer layer does the in-context retrieval (Match-type heads,
Lemmas B.15-B.17).  The state is a constant number of R_p numbers, p = O(log n): O(log n) bits.

Two models (``CATALOG``):

``istree_binary_hybrid(n)`` -- part (b), no chain of thought, for the binary-sequence IsTree of
Theorem 4.7's proof (Figure 3 family, ``proofs_check.lower_bounds.figure3_graph``): vertices
a in 1..n-2 each joined to a hub x_a + n - 1 (hub n - 1 for bit 0, hub n for bit 1), plus one
special edge k ~ k+1 (any edge between two non-hubs); edges in any order and orientation.
The graph is a tree iff the special edge joins vertices on different hubs.  The RNN part
memorises the special edge (the only edge without a hub endpoint) in two prefix sums; the
Transformer layer retrieves the hub of each of its endpoints (two Match heads) and the last
FFN answers YES iff the hubs differ.  Output through A.3's tied readout.

``istree_hybrid(n)`` -- part (a), general IsTree with a chain of thought of O(n log n) tokens.
The CoT (defined independently in ``proofs_check.checks.istree_hybrid.hybrid_cot``) is a DFS
written as fixed-format *groups*, each a marker token and a few numbers (numbers 0..n; 0
means "none"):

* ``VISIT x jx j0``  -- the tour arrives at x; jx = index of x's father edge (0 for the root),
  j0 = the edge after which x's next edge is searched (0 fresh, else the child's father edge);
* ``PROBE x jx j0 d r`` -- one doubling probe (B.12: "closest to p + 2^i"): r = the index of
  the edge containing x nearest to j0 + d + 1/4 (edge index 0 = <s>, a virtual edge
  containing every vertex).  r != j0: r is the first edge of x after j0 (skip it if r = jx);
  r = j0: no such edge within 2d, so double d, unless j0 + 2d >= n - 1 = m (none left);
* ``FOUND x r y`` -- edge r leads from x to y (retrieved); then NO if y was visited, else VISIT;
* ``UP x jx p`` -- x is finished; p = its father (other end of edge jx); then VISIT p.

Every group can be emitted from the last <= 10 tokens (a shift register, Lemma B.20) plus one
lookup; a group carries all the state its successor needs, so nothing must be remembered
beyond the window (a linear RNN cannot keep "the value at the last flagged position").

Layers of ``istree_hybrid`` (all constants from n and p, see :func:`hybrid_constants`):

1. linear RNN: shift registers (Lemma B.20) ``m:<src>@k`` = source of the token k back, for
   ``num`` (k <= 6), the markers (VISIT k <= 7, PROBE k <= 9, FOUND k <= 5, UP k <= 6) and ``~`` (k <= 1);
   prefix sums (Lemma B.21) ``cnt_tilde`` (edges so far), ``cnt_visit`` (tour length).
   FFN: integer tests of window values (Lemmas B.3/B.5 as ReLU steps and hats), key records
   of the input edges and of VISIT groups, squares.
2. linear RNN with no recurrent part (h = 0): FFN: the next token whenever it is determined by
   the window (written to ``out_*``), the edge keys gated by "prompt vertex".
3. Transformer: heads ``near`` (nearest edge of a vertex to a target, MatchNearest of Lemma B.17
   with the tie broken by the +1/4), ``other`` (Match on an edge index, returns u + v),
   ``visit`` (Match, first occurrence, of a vertex among VISIT groups: father edge, present).
   FFN: the next token when it is a lookup result.

Readout: an explicit ``unembed`` (as in dfs_transformer, erratum B27-E1): number i gets
``2i*out_val - i^2*out_g``, a marker/answer M gets ``out_M - out_g/2``, other specials -1.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

from .blocks import FFNSpec, Form, LayerSpec, LinearUnitSpec, Unit, assemble, padded_layout
from .dfs_transformer import Pair, flag_ge, match_head, unit
from .errors import PrecisionError
from .ffn_blocks import checked_format, declared_split, integer_hat
from .layout import NUM, POS, LayoutBuilder, special_dim
from .model import Model
from .numerics import Precision
from .rnn_blocks import prefix_sum_spec, recent_input_spec
from .vocab import PAPER_SPECIALS, Vocabulary

BOS, TILDE = special_dim("<s>"), special_dim("~")
YES_D, NO_D = special_dim("YES"), special_dim("NO")
VISIT, PROBE, FOUND, UP = "VISIT", "PROBE", "FOUND", "UP"
MARKERS = (VISIT, PROBE, FOUND, UP)
GROUP_SIZE = {VISIT: 4, PROBE: 6, FOUND: 4, UP: 4}

# shift-register depths (largest k with "the token k back" needed), see the emission table
DEPTH = {NUM: 6, VISIT: 7, PROBE: 9, FOUND: 5, UP: 6, "~": 1}


def _check_n(n: int, what: str, lo: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < lo:
        raise PrecisionError(f"{what}: n must be a whole number >= {lo}, got {n!r}")


def _src_dim(src: str) -> str:
    return NUM if src == NUM else special_dim(src)


def m(src: str, k: int) -> str:
    """Recurrent-state dim holding ``src`` of the token k steps back (Lemma B.20's memory;
    k = 0 is the current token, kept because the register shifts it on)."""
    return f"m:{src}@{k}"


def _state_dims(src: str) -> list[str]:
    return [m(src, k) for k in range(DEPTH[src] + 1)]


# ---- constants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HybridConstants:
    """Score constants (integers) for one (n, p); G = score gap that makes softmax hard."""

    n: int
    p: int
    L: int
    G: int
    mu: int  # first-occurrence tie-break of the visit head (-mu * pos)
    lam_v: int  # visit head vertex match
    mu_near: int  # near head: -mu_near (j' - t)^2
    lam_near: int  # near head vertex match
    lam_o: int  # other head: edge-index match
    s_d: int

    @property
    def score_bound(self) -> int:
        """Bound on |score| and on every query entry (sqrt(d) factor included), with slack."""
        n, L = self.n, self.L
        V = n + 1
        visit = self.lam_v * 4 * V * V + 3 * self.mu * (L + 2) + 4 * self.G
        near = self.lam_near * 4 * V * V + self.mu_near * (V * V + 4 * V * (2 * V + 1)) + 4 * self.G
        K = n * n  # edge indices of any simple graph's prompt are <= C(n, 2)
        other = self.lam_o * (K * K + 2 * K * V)
        return 2 * self.s_d * max(visit, near, other)


def probes_per_search(n: int) -> int:
    """At most this many PROBE groups per search: d = 1, 2, 4, ... while j0 + 2d < n - 1."""
    return max(1, math.ceil(math.log2(max(n - 1, 1))))


def cot_bound(n: int) -> int:
    """Upper bound on the CoT tokens before the answer (O(n log n)): at most 2n - 1 VISIT
    groups (4 tokens), each followed by at most two searches (the second after skipping the
    father edge) of at most B = ceil(log2(n - 1)) PROBE groups (6 tokens) and one FOUND/UP
    group (4 tokens): (2n - 1)(12 B + 8)."""
    return (2 * n - 1) * (12 * probes_per_search(n) + 8)


def max_len_for(n: int) -> int:
    """Any simple graph's prompt (3 C(n,2) + 1), or a tree's prompt plus the whole CoT."""
    return max(3 * (n * (n - 1) // 2) + 1, 3 * n - 2 + cot_bound(n))


@functools.lru_cache(maxsize=None)
def _hybrid_layout(n: int):
    vocab = Vocabulary(n, PAPER_SPECIALS + MARKERS, min_number=0)
    lb = LayoutBuilder(vocab)
    for src in DEPTH:
        lb.alloc_many(_state_dims(src))
    lb.alloc_many(HYBRID_DIMS)
    return vocab, lb.build()


def hybrid_constants(n: int, p: "int | Precision") -> HybridConstants:
    F = Precision.of(p).F
    L = max_len_for(n)
    G = math.ceil((F + 2) * math.log(2) + math.log(L)) + 2
    mu = G
    lam_v = G * (L + 4)
    mu_near = 2 * G  # distances to t = integer + 1/4 differ in square by >= 1/2
    lam_near = G + mu_near * (n + 2) ** 2  # beats every distance term at targets t <= n + 1/4
    lam_o = G
    s_d = math.isqrt(padded_layout(_hybrid_layout(n)[1]).d)
    return HybridConstants(n, p, L, G, mu, lam_v, mu_near, lam_near, lam_o, s_d)


def hybrid_precision_ok(n: int, p: "int | Precision") -> str | None:
    """None when p (an odd p or R(I, F)) suffices at n: F for the 1/4 offset and the gap G,
    I for the scores."""
    prec = Precision.of(p)
    if prec.F < 2:
        return "the near head's target offset 1/4 needs F >= 2"
    c = hybrid_constants(n, prec)
    if c.score_bound > (1 << prec.I) - 1:
        return f"attention scores reach about {c.score_bound:.3g}, beyond {prec.label}'s largest magnitude 2^{prec.I}"
    return None


def declared_p(n: int) -> int:
    """Smallest odd p for :func:`istree_hybrid` at n (O(log n): scores are O(n^2 L G))."""
    _check_n(n, "istree-hybrid", 1)
    p = 7
    while hybrid_precision_ok(n, p) is not None:
        p += 2
    return p


# ---- part (a): residual dims ----------------------------------------------------------------

HYBRID_DIMS: tuple[str, ...] = (
    "one", "cnt_tilde", "cnt_visit",  # layer 1: bias and prefix sums (Lemma B.21)
    # layer 1 FFN: squares, prompt-vertex flag, the Q5 tests a, b, c, e, f, prompt end
    "num_sq", "w_sq", "is_pv", "t_a", "t_b", "t_c", "t_e", "t_f", "is_end",
    # layer 1 FFN: records of input edges (other head) and of VISIT groups (visit head)
    "ko_j", "ko_j2", "ko_sum", "vis_x", "vis_x2", "vis_jx",
    "kx", "kx2", "kj", "kj2",  # layer 2 FFN: keys of the near head
    "out_val", "out_g", *[f"out:{t}" for t in MARKERS], "out:YES", "out:NO",  # layers 2-3 FFN
    "near_r", "o_sum", "v_jx", "v_present",  # layer 3 attention
)


def _step(name: str, form: Form, b, out: str) -> list[Unit]:
    """[z >= 1] for an integer z = form . x + b (0 for z <= 0): ReLU(z) - ReLU(z - 1) (Lemma B.5)."""
    return [unit(f"{name}.a", form, b, {}, 1, {out: 1}), unit(f"{name}.b", form, b - 1, {}, 1, {out: -1})]


def _and_times(name: str, flags: list[str], value: Form, value_b, out: Form, neg: tuple[str, ...] = ()) -> Unit:
    """[all ``flags`` = 1 and all ``neg`` = 0] * (value . x + value_b) for 0/1 dims: one ReGLU
    unit ReLU(sum flags - sum neg - (|flags| - 1)) * (value . x + value_b)."""
    w1: dict[str, Fraction] = {}
    for f in flags:
        w1[f] = w1.get(f, 0) + 1
    for f in neg:
        w1[f] = w1.get(f, 0) - 1
    return unit(name, w1, -(len(flags) - 1), value, value_b, out)


def _sq(name: str, x: str, out: str) -> Unit:
    """x^2 for x >= 0: ReLU(x) * x (Lemma B.1)."""
    return unit(name, {x: 1}, 0, {x: 1}, 0, {out: 1})


def _gated_val(name: str, flag: Form, flag_b, value: Form, bound, out: str, square: bool) -> Unit:
    """[flag form = 1] * v (square=False, needs the flag form <= 1 and 0 <= v) or * v^2
    (square=True, 0 <= v <= bound): ReLU(v - bound (1 - flag)) * v, or ReLU(flag) * v."""
    if not square:
        return unit(name, dict(flag), flag_b, value, 0, {out: 1})
    w1 = dict(value)
    for k, v in flag.items():
        w1[k] = w1.get(k, 0) + bound * v
    return unit(name, w1, bound * (Fraction(flag_b) - 1), value, 0, {out: 1})


def istree_hybrid(n: int, p: int | None = None) -> Model:
    """Theorem 5.7 (a): the hybrid model that writes the DFS chain of thought of the module
    docstring and answers IsTree.  Vertices 1..n (numbers 0..n are tokens); ``p`` defaults to
    :func:`declared_p` (n); a smaller p raises PrecisionError naming the p needed.

    For m != n - 1 it answers NO at the prompt's end (never a tree; the position test of
    dfs_transformer's errata B27-E3/B27-E4).  For m = n - 1 it writes the DFS of vertex 1's component and
    answers NO at the first edge that closes a cycle, else YES iff the tour has 2n - 1 VISITs.
    """
    _check_n(n, "istree-hybrid", 1)
    need = declared_p(n)
    p = checked_format(p, need, lambda prec: hybrid_precision_ok(n, prec), f"istree-hybrid at n = {n}")
    c = hybrid_constants(n, p)
    vocab, layout = _hybrid_layout(n)
    N = lambda k: m(NUM, k)  # noqa: E731  the number k tokens back
    V = lambda k: m(VISIT, k)  # noqa: E731  [the token k back is VISIT]
    Q = lambda k: m(PROBE, k)  # noqa: E731
    Fd = lambda k: m(FOUND, k)  # noqa: E731
    U = lambda k: m(UP, k)  # noqa: E731
    T1 = m("~", 1)
    specials = [special_dim(s) for s in vocab.specials]
    Bg = 2 * n + 4  # gate constant: above every integer a gated step or square sees
    Bk = n * n + 2  # bound on edge indices / counts of any simple graph's prompt
    P_END = 3 * n - 2  # the prompt's last position when m = n - 1

    # -- layer 1: linear unit = shift registers (B.20) + prefix sums (B.21); FFN ------------------
    lu = LinearUnitSpec()
    for src in DEPTH:
        lu = lu + recent_input_spec([_src_dim(src)], [[s] for s in _state_dims(src)])
    lu = lu + prefix_sum_spec(TILDE, "cnt_tilde") + prefix_sum_spec(special_dim(VISIT), "cnt_visit")
    ffn1 = FFNSpec([
        _sq("num_sq", N(0), "num_sq"),
        _sq("w_sq", N(3), "w_sq"),
        # is_pv = [pos <= 3n - 2] and the current token is a number: a vertex of the prompt
        unit("is_pv.a", {POS: -1, **{s: -3 * n for s in specials}}, P_END + 1, {}, 1, {"is_pv": 1}),
        unit("is_pv.b", {POS: -1, **{s: -3 * n for s in specials}}, P_END, {}, 1, {"is_pv": -1}),
        # at PROBE phase 5 (token r): a = [r != j0], b = [r = jx], c = [j0 + 2d >= n - 1],
        # e = [jx = 0] (x is the root), f = [tour length = 2n - 1]
        *_step("t_a", {N(0): 1, N(2): -1}, 0, "t_a"),
        *integer_hat("t_b", {N(0): 1, N(3): -1}, 0, {"t_b": 1}),
        *_step("t_c", {N(2): 1, N(1): 2}, 2 - n, "t_c"),
        *integer_hat("t_e", {N(3): 1}, 0, {"t_e": 1}),
        *integer_hat("t_f", {"cnt_visit": 1}, -(2 * n - 1), {"t_f": 1}),
        *integer_hat("is_end", {POS: 1}, -P_END, {"is_end": 1}),
        # input edge j's record at its second vertex (previous token ~): j, j^2, u + v
        _gated_val("ko_j", {T1: 1}, 0, {"cnt_tilde": 1}, Bk, "ko_j", square=False),
        _gated_val("ko_j2", {T1: 1}, 0, {"cnt_tilde": 1}, Bk, "ko_j2", square=True),
        _gated_val("ko_sum", {T1: 1}, 0, {N(0): 1, N(2): 1}, Bk, "ko_sum", square=False),
        # VISIT x jx j0's record at its jx token (VISIT two tokens back): x, x^2, jx
        _gated_val("vis_x", {V(2): 1}, 0, {N(1): 1}, Bg, "vis_x", square=False),
        _gated_val("vis_x2", {V(2): 1}, 0, {N(1): 1}, Bg, "vis_x2", square=True),
        _gated_val("vis_jx", {V(2): 1}, 0, {N(0): 1}, Bg, "vis_jx", square=False),
    ], bias={"one": 1})
    layer1 = LayerSpec("linear_rnn", lu=lu, ffn=ffn1, name="R1 window, counts; tests, records")

    # -- layer 2: no recurrence; FFN: keys of the near head, next token where the window decides --
    jform = {"cnt_tilde": 1, T1: -1}  # edge index of a prompt vertex: cnt_tilde + 1 - [prev is ~]
    val, g = {"out_val": 1}, {"out_g": 1}
    o = lambda t: {f"out:{t}": 1}  # noqa: E731
    z3 = {N(4): 1, N(6): -1}  # PROBE phase 3 after a PROBE: r - j0 of the previous probe
    gate3 = {Q(3): Bg, Q(9): Bg}
    ffn2 = FFNSpec([
        _gated_val("kx", {"is_pv": 1}, 0, {N(0): 1}, Bg, "kx", square=False),
        _gated_val("kx2", {"is_pv": 1}, 0, {N(0): 1}, Bg, "kx2", square=True),
        unit("kj", {"is_pv": 1}, 0, jform, 1, {"kj": 1}),
        unit("kj2", {**{k: v for k, v in jform.items()}, "is_pv": Bk}, 1 - Bk, jform, 1, {"kj2": 1}),
        # VISIT x jx j0: x = previous FOUND's y / UP's p (token before the marker), 1 at the start
        _and_times("V0.F", [V(0), Fd(4)], {N(1): 1}, 0, val),
        _and_times("V0.U", [V(0), U(4)], {N(1): 1}, 0, val),
        _and_times("V0.start", [V(0)], {}, 1, val, neg=(Fd(4), U(4))),
        _and_times("V1.F", [V(1), Fd(5)], {N(3): 1}, 0, val),  # jx = FOUND's r (UP: visit head)
        _and_times("V2.U", [V(2), U(6)], {N(4): 1}, 0, val),  # j0 = UP's jx (FOUND, start: 0)
        _and_times("V3", [V(3)], {}, 1, o(PROBE)),
        # PROBE x jx j0 d r
        _and_times("Q0.V", [Q(0), V(4)], {N(3): 1}, 0, val),
        _and_times("Q0.Q", [Q(0), Q(6)], {N(5): 1}, 0, val),
        _and_times("Q1.V", [Q(1), V(5)], {N(3): 1}, 0, val),
        _and_times("Q1.Q", [Q(1), Q(7)], {N(5): 1}, 0, val),
        _and_times("Q2", [Q(2)], {N(3): 1}, 0, val),  # j0 = VISIT's j0 or the previous r
        _and_times("Q3.V", [Q(3), V(7)], {}, 1, val),  # d = 1 after VISIT
        _and_times("Q3.Q", [Q(3), Q(9)], {N(5): 2}, 0, val),  # d = 2 d_prev ...
        unit("Q3.skip.a", {**z3, **gate3}, -2 * Bg, {N(5): -2}, 1, val),  # ... or 1 if r != j0
        unit("Q3.skip.b", {**z3, **gate3}, -2 * Bg - 1, {N(5): 2}, -1, val),
        _and_times("Q5.probe_skip", [Q(5), "t_a", "t_b"], {}, 1, o(PROBE)),
        _and_times("Q5.probe_double", [Q(5)], {}, 1, o(PROBE), neg=("t_a", "t_c")),
        _and_times("Q5.found", [Q(5), "t_a"], {}, 1, o(FOUND), neg=("t_b",)),
        _and_times("Q5.up", [Q(5), "t_c"], {}, 1, o(UP), neg=("t_a", "t_e")),
        _and_times("Q5.yes", [Q(5), "t_c", "t_e", "t_f"], {}, 1, o("YES"), neg=("t_a",)),
        _and_times("Q5.no", [Q(5), "t_c", "t_e"], {}, 1, o("NO"), neg=("t_a", "t_f")),
        # FOUND x r y (y: layer 3), UP x jx p (p: layer 3)
        _and_times("F0", [Fd(0)], {N(5): 1}, 0, val),
        _and_times("F1", [Fd(1)], {N(2): 1}, 0, val),
        _and_times("U0", [U(0)], {N(5): 1}, 0, val),
        _and_times("U1", [U(1)], {N(5): 1}, 0, val),
        _and_times("U3", [U(3)], {}, 1, o(VISIT)),
        # the prompt's end (an edge's second vertex, or <s> alone): VISIT iff position 3n - 2
        unit("start", {T1: 1, BOS: 1, "is_end": 1}, -1, {}, 1, o(VISIT)),
        unit("no_edges", {T1: 1, BOS: 1, "is_end": -1}, 0, {}, 1, o("NO")),
        # out_g = 1 where a number is emitted
        unit("numbers", {}, 1, {f: 1 for f in (V(0), V(1), V(2), Q(0), Q(1), Q(2), Q(3), Q(4),
                                           Fd(0), Fd(1), Fd(2), U(0), U(1), U(2))}, 0, g),
    ])
    layer2 = LayerSpec("linear_rnn", lu=None, ffn=ffn2, name="R2 keys; window-determined next token")

    # -- layer 3: the Transformer layer: three lookups, then the lookup-determined next token ----
    near = match_head(
        "near",
        [Pair("kx", "kx2", {N(3): 1}, {"w_sq": 1}, c.lam_near),
         Pair("kj", "kj2", {N(1): 1, N(0): 1, "one": Fraction(1, 4)}, {}, c.mu_near)],
        {"near_r": {"kj": 1}}, c, bos="sink")
    other = match_head("other", [Pair("ko_j", "ko_j2", {N(0): 1}, {}, c.lam_o)],
                        {"o_sum": {"ko_sum": 1}}, c, drop_query_square=True)
    visit = match_head("visit", [Pair("vis_x", "vis_x2", {N(0): 1}, {"num_sq": 1}, c.lam_v)],
                        {"v_jx": {"vis_jx": 1}, "v_present": {V(2): 1}}, c, bos="default", first=True)
    ffn3 = FFNSpec([
        _and_times("Q4", [Q(4)], {"near_r": 1}, 0, val),  # r
        _and_times("F2", [Fd(2)], {"o_sum": 1, N(1): -1}, 0, val),  # y = (u + v) - x
        _and_times("U2", [U(2)], {"o_sum": 1, N(1): -1}, 0, val),  # p = (u + v) - x
        _and_times("V1.U", [V(1), U(5)], {"v_jx": 1}, 0, val),  # jx of the vertex returned to
        _and_times("F3.cycle", [Fd(3), "v_present"], {}, 1, o("NO")),
        _and_times("F3.visit", [Fd(3)], {}, 1, o(VISIT), neg=("v_present",)),
    ])
    layer3 = LayerSpec("transformer", [near, other, visit], None, ffn3, "T lookups; next token")

    unembed: dict = {i: {"out_val": 2 * i, "out_g": -i * i} for i in range(0, n + 1)}
    for s in vocab.specials:
        if s in MARKERS or s in ("YES", "NO"):
            unembed[s] = {f"out:{s}": 1, "out_g": Fraction(-1, 2)}
        else:
            unembed[s] = {"one": -1}
    return assemble(
        arch="hybrid", p=p, layout=layout, vocab=vocab, layers=[layer1, layer2, layer3],
        max_len=c.L, unembed=unembed, declared=declared_split(lambda prec: hybrid_precision_ok(n, prec)), declared_p=need,
        meta={"construction": "istree-hybrid", "theorem": "5.7 (a)", "n": n, "cot_bound": cot_bound(n),
              "constants": {k: getattr(c, k) for k in ("G", "mu", "lam_v", "mu_near", "lam_near", "lam_o", "s_d")}},
    )


# ---- part (b): the Figure 3 family without chain of thought -----------------------------------

BINARY_DIMS: tuple[str, ...] = (
    "one", "b:num0", "b:num1", "b:num2", "b:tilde0", "b:tilde1",  # layer 1: window (B.20)
    "hu", "hv",  # layer 1 FFN: hub tests (u = the number two back)
    "sa", "sb", "e_lo", "e_lo2", "e_bit",  # layer 2 FFN: special-edge parts, hub-edge records
    "acc_a", "acc_b",  # layer 3: prefix sums = the special edge (a, b)
    "bit_a", "bit_b",  # Transformer: the hub bit of a and of b
)


def binary_constants(n: int, p: "int | Precision") -> tuple[int, int, int]:
    """(G, lam, s_d): one gap G makes softmax hard; the Match heads score -lam (key - query)^2."""
    F = Precision.of(p).F
    L = 3 * n - 2
    G = math.ceil((F + 2) * math.log(2) + math.log(L)) + 2
    return G, G, math.isqrt(padded_layout(_binary_layout(n)[1]).d)


def _binary_layout(n: int):
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(BINARY_DIMS)
    return vocab, lb.build()


def binary_declared_p(n: int) -> int:
    """Smallest odd p for :func:`istree_binary_hybrid` (scores <= 3 lam n^2 sqrt(d))."""
    _check_n(n, "istree-binary-hybrid", 4)
    p = 7
    while binary_precision_ok(n, p) is not None:
        p += 2
    return p


def binary_precision_ok(n: int, p: "int | Precision") -> str | None:
    """None when p (an odd p or R(I, F)) holds the Match scores 3 lam n^2 sqrt(d) (I) with the
    gap G of F (the constants need F >= 3, as at the declared p >= 7)."""
    prec = Precision.of(p)
    if prec.F < 3:
        return "the declared constants assume F >= 3"
    G, lam, s_d = binary_constants(n, prec)
    if 2 * s_d * lam * 3 * (n + 1) ** 2 > (1 << prec.I) - 1:
        return f"the Match scores must fit {prec.label} with a hard-attention gap"
    return None


def istree_binary_hybrid(n: int, p: int | None = None) -> Model:
    """Theorem 5.7 (b): IsTree on the binary-sequence family of Theorem 4.7's proof, no CoT.

    Precondition (the family): n >= 4, hubs n - 1 (bit 0) and n (bit 1), every other vertex on
    exactly one hub, one more edge between two non-hubs; any edge order and orientation
    (3n - 2 tokens).  The answer is read at the last token; outside the family it is undefined.

    1. linear RNN: the window ``b:num0..2``, ``b:tilde0..1`` (Lemma B.20).  FFN:
       hu = [u >= n - 1], hv = [v >= n - 1] (u = the number two back, v = the current one).
    2. linear RNN, no recurrence.  FFN, at an edge's second vertex (previous token ~):
       the special edge's ends ``sa`` = u, ``sb`` = v if neither is a hub (else 0); a hub edge's
       record ``e_lo`` = its non-hub end (+ square), ``e_bit`` = hub - (n - 1).
    3. linear RNN: prefix sums (Lemma B.21) ``acc_a``, ``acc_b``: the special edge (a, b) once seen.
    4. Transformer: two Match heads (Lemma B.15, exact match, every non-hub has one hub edge):
       ``bit_a`` = the hub bit of a, ``bit_b`` = of b.  FFN: YES iff bit_a != bit_b, written to
       the YES/NO dims, and num cancelled, so A.3's tied readout answers (numbers get logit 0).
    """
    _check_n(n, "istree-binary-hybrid", 4)
    need = binary_declared_p(n)
    p = checked_format(p, need, lambda prec: binary_precision_ok(n, prec), f"istree-binary-hybrid at n = {n}")
    G, lam, _ = binary_constants(n, p)
    vocab, layout = _binary_layout(n)
    u, v, is_e = "b:num2", NUM, "b:tilde1"
    H = n - 1  # the smaller hub

    lu1 = recent_input_spec([NUM], [["b:num0"], ["b:num1"], ["b:num2"]]) + \
        recent_input_spec([TILDE], [["b:tilde0"], ["b:tilde1"]])
    ffn1 = FFNSpec([*flag_ge("hu", u, H, "hu"), *flag_ge("hv", v, H, "hv")], bias={"one": 1})
    on_u = ({is_e: 1, "hv": 1, "hu": -1}, -1)  # hub edge whose hub is v: non-hub end u
    on_v = ({is_e: 1, "hu": 1, "hv": -1}, -1)
    ffn2 = FFNSpec([
        unit("sa", {is_e: 1, "hu": -1, "hv": -1}, 0, {u: 1}, 0, {"sa": 1}),
        unit("sb", {is_e: 1, "hu": -1, "hv": -1}, 0, {v: 1}, 0, {"sb": 1}),
        unit("e_lo.u", *on_u, {u: 1}, 0, {"e_lo": 1}),
        unit("e_lo.v", *on_v, {v: 1}, 0, {"e_lo": 1}),
        _gated_val("e_lo2.u", on_u[0], on_u[1], {u: 1}, n, "e_lo2", square=True),
        _gated_val("e_lo2.v", on_v[0], on_v[1], {v: 1}, n, "e_lo2", square=True),
        unit("e_bit.u", *on_u, {v: 1}, -H, {"e_bit": 1}),
        unit("e_bit.v", *on_v, {u: 1}, -H, {"e_bit": 1}),
    ])
    lu3 = prefix_sum_spec("sa", "acc_a") + prefix_sum_spec("sb", "acc_b")

    class _C:  # the two heads need no tie-break and no <s> default
        pass
    cc = _C()
    cc.G, cc.mu, cc.L = G, 0, 3 * n - 2
    hub_a = match_head("hub_a", [Pair("e_lo", "e_lo2", {"acc_a": 1}, {}, lam)], {"bit_a": {"e_bit": 1}}, cc,
                        drop_query_square=True)
    hub_b = match_head("hub_b", [Pair("e_lo", "e_lo2", {"acc_b": 1}, {}, lam)], {"bit_b": {"e_bit": 1}}, cc,
                        drop_query_square=True)
    ffn4 = FFNSpec([
        unit("differ.ab", {"bit_a": 1, "bit_b": -1}, 0, {}, 1, {YES_D: 1, NO_D: -1}),
        unit("differ.ba", {"bit_b": 1, "bit_a": -1}, 0, {}, 1, {YES_D: 1, NO_D: -1}),
        unit("no", {}, 1, {}, 1, {NO_D: 1}),
        unit("cancel_num", {}, 1, {NUM: -1}, 0, {NUM: 1}),
    ])
    layers = [
        LayerSpec("linear_rnn", lu=lu1, ffn=ffn1, name="R1 window; hub tests"),
        LayerSpec("linear_rnn", lu=None, ffn=ffn2, name="R2 special edge parts; hub records"),
        LayerSpec("linear_rnn", lu=lu3, ffn=FFNSpec(), name="R3 special edge (prefix sums)"),
        LayerSpec("transformer", [hub_a, hub_b], None, ffn4, "T hubs of a and b; answer"),
    ]
    return assemble(arch="hybrid", p=p, layout=layout, vocab=vocab, layers=layers, max_len=3 * n - 2,
                    declared=declared_split(lambda prec: binary_precision_ok(n, prec)), declared_p=need, meta={"construction": "istree-binary-hybrid", "theorem": "5.7 (b)", "n": n,
                          "constants": {"G": G, "lam": lam}})


CATALOG = {"istree-hybrid": istree_hybrid, "istree-binary-hybrid": istree_binary_hybrid}
