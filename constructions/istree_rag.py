"""Theorem 5.3: a retrieval-augmented linear RNN that solves IsTree in O(n) chain-of-thought steps.

The paper (App B.9) omits the construction ("we omit the simple but tedious detailed
construction"); this module is one, built only from the generic runtime (Def 3.5/3.6 linear-RNN
layers, the decoding loop of Def A.5 / Sec 5.1 with Python's ``re``) and Lemmas B.20, B.21, B.3.

What the model generates
------------------------
After ``Tokenize(G) = <s> u_1 ~ v_1 ... u_m ~ v_m`` the model emits Algorithm 2's list L (App
B.10, page 38; errata Alg2-E1, Alg2-E2 and the notes of notes/errata/tasks.md), with every search written
as a *real* Python regular expression.  The paper-level tokens of each search are exactly
Section 6's compact form (``- v``, ``~ v``, ``a ~ v``, see ``proofs_check.algorithms``); the
rest of the pattern is made of extra special tokens, the *fragments* below.  Deleting the
fragments from the generated sequence gives Algorithm 2's list token for token.

Detokenize joins tokens with single spaces, so every pattern starts with ``(?x)`` (verbose
mode: the joining spaces are ignored; a space of the string is written ``\\s``).  Searches:

* parent ``<StartSearch> P1 - S v P3 <EndSearch>`` = ``(?x)(?<!\\S)(\\d+)\\s - \\s v (?!\\S)``:
  the u of the first record ``u - v`` (f(v)), FAILED if v was never pushed (or v = 1);
* first edge ``<StartSearch> F1 ~ F2 v F3 <EndSearch>``: the far end of the first edge
  containing v;
* next edge ``<StartSearch> N1 a N2 ~ F2 v N3 <EndSearch>``: the far end of the first edge
  containing v after the edge {a, v}; FAILED if none.

An edge search must return the far end in group 1 whichever way the edge is written, and
Python's ``re`` has no branch reset and no forward references, so each vertex is written once
and captured in a group *inside* group 1: ``^(?:(<s> ... (v) ... |\\d+))+`` runs twice, the first
pass walks whole triples ``\\s\\d+\\s~\\s\\d+`` from ``<s>`` (never past the graph) to the
start of the far end, the second pass captures the far end's digits as the last value of
group 1.

The sequence, one visit of the top v of S1 (Algorithm 2, lines 3-40)::

    v  PQ(v) -> f                                   (line 6)
       FQ(v) -> x          if the previous visit pushed v (fresh; also the first visit)
       BQ(c, v) -> x       if the previous visit popped v's child c (line 8)
       BQ(f, v) -> x       if x = f != FAILED (skip the father edge, lines 18-26)
    then x = FAILED: pop; emit the new top f, or the answer when v = 1 (lines 27-28, 42-47);
         else PQ(x) -> r:  r = FAILED and x != 1: emit ``v - x`` then visit x (line 33),
                           else emit NO (a back edge: a cycle, line 37).

The answer after the last pop is YES iff n vertices were popped (|S2| = n, line 42).

How the RNN decides (the "phase" of B.9)
----------------------------------------
Every next token is a function of the last 15 tokens and of the number of pops: each
``Rule`` of :data:`RULES` is a conjunction of facts about the window ("slot j holds token
type T", "the numbers at slots i and j are equal", "the number at slot 3 is 1") and emits a
special token, the number at a slot, the number 1, or the answer.  The rules are mutually
exclusive on every generated position (the distinct fragments make the phase local).

Layers (Def 3.5: ``h_t = A h_(t-1) + B x_t``, ``Y = X + h``, ``Z = Y + g(Y)``):

1. **Linear unit, Lemma B.20 (recent input memorizing, shift registers):**
   ``mem:num@j`` = the number at slot j (position t - j; 0 for a special token or before the
   start), j = 0..14; ``mem:tok:T@j`` = [token at slot j is T] for each token type T a rule
   reads, j up to the deepest slot read; ``mem:spec@j`` = [slot j holds a special token]
   (B.20 on the linear form sum of the special-token dims; "slot j holds a number" is
   1 - that).  **FFN, Lemma B.3** (indicator, in the integer hat form
   ``ReLU(t+1) - 2 ReLU(t) + ReLU(t-1)`` = [t = 0] for integer t): ``eq:1:9``, ``eq:1:11``
   (edge result = f(v), for the first/back edge search), ``is1:3`` (the candidate is v_1);
   and ``pop`` = [this token is the FAILED result of an edge search] (one ReLU of a sum of
   binary features).
2. **Linear unit, Lemma B.21 (summation):** ``count`` = number of pops so far = |S2|.
   **FFN:** one ReGLU unit per rule, ``ReLU(sum of its conditions - (k - 1)) * value``
   (an AND of k binary facts gates the value), writing ``o:num`` (the number to emit),
   ``o:isnum`` (1 when a number is emitted) and ``o:T`` (1 for the special token T).  The answer
   rule writes YES with ``ReLU(rule + count - n)`` (count <= n, so this is rule AND count = n)
   and NO with ``ReLU(rule) - ReLU(rule + count - n)``.

Readout (erratum D32-E1 of notes/errata/foundation.md: the tied A.3 readout can only name 1 or n): number i
gets ``2i * o:num - i^2 * o:isnum`` (= v^2 - (i - v)^2 when a number v is emitted, else 0),
special T gets ``o:T``.  So every logit is an integer; the emitted token is the unique maximum.

Sizes: 2 layers, state dims a constant (the registers and the counter, independent of n),
every value an integer of magnitude <= max(max_len, n^2): p = O(log n) (:func:`declared_p`).
CoT length <= 40 (2n - 1) + 1 generated-and-retrieved tokens (:func:`max_chain`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .blocks import FFNSpec, LayerSpec, LinearUnitSpec, Unit, assemble
from .errors import InputError
from .ffn_blocks import integer_hat, min_precision, min_split_precision, precision_or_declared
from .layout import NUM as NUM_DIM, LayoutBuilder, special_dim
from .model import Model
from .numerics import Precision
from .rnn_blocks import prefix_sum_spec, recent_input_spec
from .vocab import Token, Vocabulary

# ---- the vocabulary: Algorithm 2's record token and the regex fragments ---------------------------

SS, ES, FAILED, BOS, EDGE, YES, NO = "<StartSearch>", "<EndSearch>", "FAILED", "<s>", "~", "YES", "NO"
RECORD = "-"  # Algorithm 2's "v - v''" record (line 33); also the paper-level token of r2/r4

#: fragment name -> its text (a token: no spaces; verbose mode ignores the joining spaces)
FRAGMENTS: dict[str, str] = {
    # parent search: (?x)(?<!\S)(\d+)\s - \s v (?!\S)
    "P1": r"(?x)(?<!\S)(\d+)\s",
    "S": r"\s",
    "P3": r"(?!\S)",
    # first-edge search: group 2 = v, pass 1 stops at the far end, pass 2 captures it
    "F1": r"(?x)^(?:(<s>(?:\s\d+\s~\s\d+)*?\s(?=\d+\s~)(?=(?:\d+\s",
    "F2": r"\s)?(",
    "F3": r")(?!\S))(?:\2\s~\s)?|\d+))+",
    # next-edge search: group 2 = a, group 3 = v; find the triple {a, v}, then the next with v
    "N1": r"(?x)^(?:(<s>(?:\s\d+\s~\s\d+)*?\s(?=\d+\s~)(?=(?:\d+\s~\s)?(",
    "N2": r")(?!\S))(?=(?:\d+\s",
    "N3": r")(?!\S))\d+\s~\s\d+(?:\s\d+\s~\s\d+)*?\s(?=\d+\s~)(?=(?:\d+\s~\s)?\3(?!\S))(?:\3\s~\s)?|\d+))+",
}
P1, S_, P3, F1, F2, F3, N1, N2, N3 = (FRAGMENTS[k] for k in ("P1", "S", "P3", "F1", "F2", "F3", "N1", "N2", "N3"))
EXTRAS: tuple[str, ...] = (RECORD, *FRAGMENTS.values())
FRAGMENT_TOKENS: frozenset[str] = frozenset(FRAGMENTS.values())


def vocabulary(n: int) -> Vocabulary:
    return Vocabulary.with_extras(n, EXTRAS)


def parent_query(v: int) -> list[Token]:
    """The tokens between <StartSearch> and <EndSearch> of r2 / r4 for vertex v."""
    return [P1, RECORD, S_, v, P3]


def first_edge_query(v: int) -> list[Token]:
    return [F1, EDGE, F2, v, F3]


def next_edge_query(a: int, v: int) -> list[Token]:
    return [N1, a, N2, EDGE, F2, v, N3]


def strip_fragments(tokens: list[Token]) -> list[Token]:
    """Section 6's compact form: the tokens that are not regex fragments."""
    return [t for t in tokens if not (isinstance(t, str) and t in FRAGMENT_TOKENS)]


# ---- the rules ------------------------------------------------------------------------------

NUMBER = "#num"  # pseudo token type: "this slot holds a number token"


@dataclass(frozen=True)
class Cond:
    """A binary fact about the window: ``feature`` at ``slot`` (slot 0 = the current token).

    feature: a token (type test), NUMBER, or "eq:i:j" / "is1:j" (slot ignored for those)."""

    feature: str
    slot: int = 0
    want: bool = True


@dataclass(frozen=True)
class Rule:
    """If every condition holds, emit ``emit``: a special token, ("slot", j) = the number at slot
    j, ("num", k) = the number k, or ("answer",) = YES iff count = n else NO."""

    name: str
    when: tuple[Cond, ...]
    emit: Union[str, tuple]


def T(tok: str, slot: int = 0, want: bool = True) -> Cond:
    return Cond(tok, slot, want)


def NUM(slot: int, want: bool = True) -> Cond:
    return Cond(NUMBER, slot, want)


def EQ(i: int, j: int, want: bool = True) -> Cond:
    return Cond(f"eq:{i}:{j}", 0, want)


def IS1(j: int, want: bool = True) -> Cond:
    return Cond(f"is1:{j}", 0, want)


# Slot offsets follow the sequence in the module docstring, e.g. at the <StartSearch> that opens
# the edge search of a visit the window reads  f(1) <EndSearch>(2) P3(3) v(4) S(5) -(6) P1(7)
# <StartSearch>(8) v(9) X(10), with X = FAILED iff the previous visit popped (back mode).
RULES: tuple[Rule, ...] = (
    # start: the prompt's last token is <s> (no edges) or the v_m of "u_m ~ v_m": emit v_1 = 1
    Rule("start-empty", (T(BOS, 0),), ("num", 1)),
    Rule("start", (NUM(0), T(EDGE, 1)), ("num", 1)),
    # a visit token v (line 3): open the parent search
    Rule("visit-after-number", (NUM(0), NUM(1)), SS),  # "... v_m 1" and "v - x x"
    Rule("visit-after-bos", (NUM(0), T(BOS, 1)), SS),
    Rule("visit-after-pop", (NUM(0), T(FAILED, 1), T(P3, 3, False)), SS),
    # after r4 returned FAILED and we emitted v: the record "v - x" (line 33), then visit x
    Rule("record-dash", (NUM(0), T(FAILED, 1), T(P3, 3)), RECORD),
    Rule("record-child", (T(RECORD, 0), NUM(1)), ("slot", 5)),
    Rule("record-visit", (NUM(0), T(RECORD, 1)), ("slot", 0)),
    # which search a <StartSearch> opens
    Rule("open-parent-of-v", (T(SS, 0), T(ES, 2, False)), P1),
    Rule("open-first-edge", (T(SS, 0), T(P3, 3), T(FAILED, 10, False)), F1),
    Rule("open-next-edge", (T(SS, 0), T(P3, 3), T(FAILED, 10)), N1),
    Rule("open-skip-father-f", (T(SS, 0), T(F3, 3), EQ(1, 9)), N1),
    Rule("open-parent-of-x-f", (T(SS, 0), T(F3, 3), EQ(1, 9, False)), P1),
    Rule("open-skip-father-b", (T(SS, 0), T(N3, 3), T(P3, 13), EQ(1, 11)), N1),
    Rule("open-parent-of-x-b", (T(SS, 0), T(N3, 3), T(P3, 13), EQ(1, 11, False)), P1),
    Rule("open-parent-of-x-r3", (T(SS, 0), T(N3, 3), T(P3, 13, False)), P1),
    # parent search body: P1 - S v P3 <EndSearch>  (v = the number 4 slots before S)
    Rule("parent-dash", (T(P1, 0),), RECORD),
    Rule("parent-space", (T(RECORD, 0), T(P1, 1)), S_),
    Rule("parent-vertex", (T(S_, 0),), ("slot", 4)),
    Rule("parent-close", (NUM(0), T(S_, 1)), P3),
    Rule("parent-end", (T(P3, 0),), ES),
    # first-edge body: F1 ~ F2 v F3 <EndSearch>
    Rule("first-tilde", (T(F1, 0),), EDGE),
    Rule("tilde-f2", (T(EDGE, 0),), F2),
    Rule("first-vertex", (T(F2, 0), T(F1, 2)), ("slot", 7)),
    Rule("first-close", (NUM(0), T(F2, 1), T(F1, 3)), F3),
    Rule("first-end", (T(F3, 0),), ES),
    # next-edge body: N1 a N2 ~ F2 v N3 <EndSearch>
    Rule("next-a-child", (T(N1, 0), T(P3, 4)), ("slot", 14)),  # a = the child popped last
    Rule("next-a-father", (T(N1, 0), T(P3, 4, False)), ("slot", 2)),  # a = f(v) (= x)
    Rule("next-n2", (NUM(0), T(N1, 1)), N2),
    Rule("next-tilde", (T(N2, 0),), EDGE),
    Rule("next-vertex", (T(F2, 0), T(N2, 2)), ("slot", 9)),
    Rule("next-close", (NUM(0), T(F2, 1), T(N2, 3)), N3),
    Rule("next-end", (T(N3, 0),), ES),
    # a retrieval result (the token after <EndSearch>)
    Rule("parent-of-v-result", (T(ES, 1), T(P3, 2), T(ES, 9, False)), SS),
    Rule("push", (T(ES, 1), T(P3, 2), T(ES, 9), T(FAILED, 0), IS1(3, False)), ("slot", 11)),
    Rule("cycle-discovered", (T(ES, 1), T(P3, 2), T(ES, 9), T(FAILED, 0, False)), NO),
    Rule("cycle-root", (T(ES, 1), T(P3, 2), T(ES, 9), T(FAILED, 0), IS1(3)), NO),
    Rule("edge-found-f", (T(F3, 2), T(FAILED, 0, False)), SS),
    Rule("edge-found-n", (T(N3, 2), T(FAILED, 0, False)), SS),
    Rule("pop-f", (T(F3, 2), T(FAILED, 0), T(FAILED, 8, False)), ("slot", 8)),
    Rule("end-f", (T(F3, 2), T(FAILED, 0), T(FAILED, 8)), ("answer",)),
    Rule("pop-b", (T(N3, 2), T(P3, 12), T(FAILED, 0), T(FAILED, 10, False)), ("slot", 10)),
    Rule("end-b", (T(N3, 2), T(P3, 12), T(FAILED, 0), T(FAILED, 10)), ("answer",)),
    Rule("pop-r3", (T(N3, 2), T(P3, 12, False), T(FAILED, 0)), ("slot", 7)),
)

#: the pop event counted by layer 2 (FAILED answering an edge search): FAILED@0 and F3@2 or N3@2
POP_EVENT: tuple[Cond, ...] = (T(FAILED, 0), T(F3, 2), T(N3, 2))

PER_VISIT_MAX = 40  # v, PQ (8), BQ (10), BQ (10), PQ (8), "v - x" (3)


def max_chain(n: int) -> int:
    """Upper bound on the tokens after the prompt (generated + retrieved): at most 2n - 1
    visits (each pushes or pops; <= n - 1 pushes, <= n pops), <= 40 tokens each, + the answer."""
    return PER_VISIT_MAX * (2 * n - 1) + 1


def max_len_for(n: int) -> int:
    """Longest sequence: the largest simple graph's prompt (1 + 3 n(n-1)/2) + max_chain(n)."""
    return 1 + 3 * (n * (n - 1) // 2) + max_chain(n)


def declared_p(n: int) -> int:
    """Smallest odd p at which the model is exact: every value is an integer; the largest are
    the position (<= max_len), the readout weights i^2 <= n^2 and logits <= n^2."""
    _check_n(n)
    return min_precision(_magnitude(n))


def declared_split(n: int) -> Precision:
    """Declared (I, F): :func:`declared_p`'s integer need; every value is an integer, so F = 1."""
    return min_split_precision(_magnitude(n))


def _magnitude(n: int) -> int:
    return max(max_len_for(n), n * n, 2 * n + 2)


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(f"istree-rag-rnn needs n >= 1 vertices, got {n!r}")
    return n


# ---- compilation of the rules into weights ---------------------------------------------------


def _memory_depths() -> dict[str, int]:
    """Per source (a token, NUMBER's "spec" form, or "num"), the deepest slot any rule or
    feature reads, so the shift register keeps slots 0..depth."""
    depth: dict[str, int] = {"num": 0}
    conds = [c for r in RULES for c in r.when] + list(POP_EVENT)
    for c in conds:
        if c.feature.startswith(("eq:", "is1:")):
            for j in map(int, c.feature.split(":")[1:]):
                depth["num"] = max(depth["num"], j)
        else:
            key = "spec" if c.feature == NUMBER else _tok_source(c.feature)
            depth[key] = max(depth.get(key, 0), c.slot)
    for r in RULES:
        if isinstance(r.emit, tuple) and r.emit[0] == "slot":
            depth["num"] = max(depth["num"], r.emit[1])
    return depth


def _mem(source: str, j: int) -> str:
    return f"mem:{source}@{j}"


def _tok_source(tok: str) -> str:
    return f"tok:{tok}"


def _condition_sum(conds: tuple[Cond, ...]) -> tuple[dict, int]:
    """The linear form sum_c [c holds] (each c binary): (weights, constant)."""
    form: dict[str, int] = {}
    const = 0
    for c in conds:
        if c.feature.startswith(("eq:", "is1:")):
            dim, value_is_one_minus = c.feature, False
        elif c.feature == NUMBER:  # number = 1 - spec
            dim, value_is_one_minus = _mem("spec", c.slot), True
        else:
            dim, value_is_one_minus = _mem(_tok_source(c.feature), c.slot), False
        positive = c.want != value_is_one_minus  # feature enters as +dim, else as 1 - dim
        if positive:
            form[dim] = form.get(dim, 0) + 1
        else:
            form[dim] = form.get(dim, 0) - 1
            const += 1
    return form, const


def istree_rag_rnn(n: int, p: int | None = None) -> Model:
    """Theorem 5.3: the retrieval-augmented linear RNN for IsTree on n vertices (2 layers).

    Decode with ``constructions.decode.retrieval_augmented(session, model.vocab, max_chain(n),
    answers={"YES", "NO"})`` on ``Tokenize(G)``.  ``p`` defaults to :func:`declared_p`; a smaller
    p raises PrecisionError naming the p needed.  See the module docstring for every dim."""
    _check_n(n)
    need = declared_p(n)
    p = precision_or_declared(p, declared_split(n), f"istree-rag-rnn (n = {n})", need)
    vocab = vocabulary(n)
    lb = LayoutBuilder(vocab)
    depths = _memory_depths()

    # layer 1, linear unit: Lemma B.20 shift registers
    lu1 = LinearUnitSpec()
    for source, depth in sorted(depths.items()):
        rows = [[_mem(source, j)] for j in range(depth + 1)]
        lb.alloc_many(r[0] for r in rows)
        if source == "num":
            lu1 = lu1 + recent_input_spec([NUM_DIM], rows)
        elif source == "spec":
            # B.20 on the linear form sum of the special-token dims ([slot holds a special token])
            names = [r[0] for r in rows]
            A = {names[j]: {names[j - 1]: 1} for j in range(1, len(names))}
            B = {names[0]: {special_dim(s): 1 for s in vocab.specials}}
            lu1 = lu1 + LinearUnitSpec(A, B)
        else:
            tok = source[len("tok:"):]
            lu1 = lu1 + recent_input_spec([special_dim(tok)], rows)

    # layer 1, FFN: equality indicators (Lemma B.3) and the pop event
    features = sorted({c.feature for r in RULES for c in r.when if c.feature.startswith(("eq:", "is1:"))})
    units1: list[Unit] = []
    for feat in features:
        lb.alloc(feat)
        parts = list(map(int, feat.split(":")[1:]))
        if feat.startswith("eq:"):
            i, j = parts
            units1 += integer_hat(feat, {_mem("num", i): 1, _mem("num", j): -1}, 0, {feat: 1})
        else:
            (j,) = parts
            units1 += integer_hat(feat, {_mem("num", j): 1}, -1, {feat: 1})
    lb.alloc("pop")
    fail0, f3, n3 = (_mem(_tok_source(c.feature), c.slot) for c in POP_EVENT)
    units1.append(Unit("pop", {fail0: 1, f3: 1, n3: 1}, -1, {}, 1, {"pop": 1}))

    # layer 2, linear unit: Lemma B.21 prefix sum = |S2|
    lb.alloc("count")
    lu2 = prefix_sum_spec("pop", "count")

    # layer 2, FFN: one gated unit per rule
    out_num, out_isnum = lb.alloc("o:num"), lb.alloc("o:isnum")
    emitted = sorted({r.emit for r in RULES if isinstance(r.emit, str)} | {YES, NO})
    out_tok = {tok: lb.alloc(f"o:{tok}") for tok in emitted}
    units2: list[Unit] = []
    for r in RULES:
        form, const = _condition_sum(r.when)
        bias = const - (len(r.when) - 1)  # ReLU(sum - (k - 1)) = AND of k binary facts
        if isinstance(r.emit, str):
            units2.append(Unit(r.name, form, bias, {}, 1, {out_tok[r.emit]: 1}))
        elif r.emit[0] == "slot":
            units2.append(Unit(f"{r.name}:value", form, bias, {_mem("num", r.emit[1]): 1}, 0, {out_num: 1}))
            units2.append(Unit(f"{r.name}:isnum", form, bias, {}, 1, {out_isnum: 1}))
        elif r.emit[0] == "num":
            units2.append(Unit(r.name, form, bias, {}, 1, {out_num: r.emit[1], out_isnum: 1}))
        else:  # the answer: YES iff count = n (count <= n always)
            units2.append(Unit(f"{r.name}:rule", form, bias, {}, 1, {out_tok[NO]: 1}))
            units2.append(Unit(f"{r.name}:all-popped", {**form, "count": 1}, bias - n, {}, 1,
                               {out_tok[NO]: -1, out_tok[YES]: 1}))

    layout = lb.build()
    layers = [
        LayerSpec("linear_rnn", lu=lu1, ffn=FFNSpec(units1), name="window (B.20) + indicators (B.3)"),
        LayerSpec("linear_rnn", lu=lu2, ffn=FFNSpec(units2), name="|S2| (B.21) + rules"),
    ]
    unembed: dict[Token, dict] = {i: {out_num: 2 * i, out_isnum: -i * i} for i in range(1, n + 1)}
    for tok, dim in out_tok.items():
        unembed[tok] = {dim: 1}
    meta = {
        "construction": "istree-rag-rnn",
        "theorem": "5.3",
        "decoding": "retrieval_augmented",
        "max_chain": max_chain(n),
        "cot_steps": max_chain(n),
        "rules": len(RULES),
        "window": depths["num"] + 1,
    }
    return assemble(arch="linear_rnn", p=p, layout=layout, vocab=vocab, layers=layers,
                    max_len=max_len_for(n), unembed=unembed, meta=meta, declared=declared_split(n), declared_p=need)


CATALOG = {"istree-rag-rnn": istree_rag_rnn}
