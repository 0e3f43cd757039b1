"""Upper bounds for the four in-context retrieval tasks (Defs 4.2-4.5) on all three architectures.

* Theorem 4.6 (App. B.4): a Transformer of constant depth and width, O(log n) precision,
  answering with no chain of thought: ``build_<task>_transformer``.
* Theorem 5.6 (App. B.11): a hybrid model (Def 5.5: linear-RNN layers, then exactly one
  Transformer layer) with the Match / COUNT attention in the appended layer and the
  "previous tokens" held in the recurrent state (Lemma B.20) instead of COPY heads:
  ``build_<task>_hybrid``.
* Theorem 5.2 (App. B.8): a one-layer linear RNN with O(log n) bits of state that, with
  in-context retrieval (Def A.5), emits ``<StartSearch>``, a regular expression and
  ``<EndSearch>`` through its own decoding, reads the result and answers, in O(1) CoT steps:
  ``build_<task>_rag_rnn``.

Token formats are those of :mod:`proofs_check.tasks`: ``<s> t_1 .. t_L`` then the query
(Index ``i``; AR ``q``; c-gram ``q_1 .. q_(c-1)``; Counting ``q t``).

Attention: the Transformer and hybrid models are composed from the building blocks of
:mod:`constructions.attention_blocks` (COPY Lemma B.13, COUNT Lemma B.14, Match Lemma B.15)
with the paper's constants, each block's auxiliary FFN g placed in the FFN just before its
head; the blocks get size parameter N = max_len (c = 1).  p is the smallest odd p inside every
block's exact-p window and above the readout's needs; a block whose window ends below that p
gets its scores scaled by the smallest power of two that makes it exact there (erratum B13-E1; notes/errata/retrieval_tasks.md).
The retrieval-augmented RNN uses only FFN lookups on a step counter (Lemmas B.3, B.20-B.23,
written here as tents of a counter; ffn_blocks / rnn_blocks hold the lemmas' general forms).

Readout: every model answers a *number*, which the tied readout of A.3 cannot (logit of number
i is ``i * x_num``, erratum D32-E1); all models here carry an explicit unembedding
(``U[i] = 2 i * val - i^2 * gate``: logit ``val^2 - (i - val)^2`` at gate 1, maximal exactly at
i = val).  Counting answers the number 1 or 0 by the linear comparison
``logit(1) = (1 + delta) - w (t + 3 + [t = q])``, ``logit(0) = -logit(1)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Literal

from . import attention_blocks as AB
from .blocks import FFNSpec, LayerSpec, LinearUnitSpec, Unit, assemble, padded_layout
from .errors import InputError, PrecisionError
from .layout import NUM, POS, LayoutBuilder, special_dim
from .model import Model
from .ffn_blocks import require_precision
from .numerics import Precision, check_p
from .vocab import PAPER_SPECIALS, Vocabulary

BOS_DIM = special_dim("<s>")
START, END, FAILED = "<StartSearch>", "<EndSearch>", "FAILED"
TASK_NAMES = ("index", "ar", "cgram", "count")

# ---- precision bookkeeping -------------------------------------------------------------------


def _smallest_p(fits: Callable[[int], bool], what: str, start: int = 5) -> int:
    """Smallest odd p >= start for which ``fits(F)`` holds (the builder's magnitude bounds)."""
    p = start
    while p <= 4097:
        if fits((p - 1) // 2):
            return p
        p += 2
    raise PrecisionError(f"{what}: no p up to 4097 fits")  # pragma: no cover


def _require_p(p: "int | Precision | None", need: int, split: Precision, what: str) -> "int | Precision":
    """The declared p when ``p`` is None; an odd p refused below ``need``; a Precision refused
    below the split need ``split`` (:func:`ffn_blocks.require_precision`)."""
    if p is None:
        return need
    if isinstance(p, Precision):
        return require_precision(p, split, what)
    check_p(p)
    if p < need:
        raise PrecisionError(f"{what} needs p >= {need} (its counters, numbers and quadratic readout must fit in R_p); got p = {p}")
    return p


def _int_bits(*bounds: int | Fraction) -> int:
    """The smallest I >= 1 with every |bound| <= 2^I - 1 (:func:`fits` on the integer bits)."""
    I = 1
    while not all(fits(b, I) for b in bounds):
        I += 1
    return I


def _check_n(n: int, what: str, low: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < low:
        raise InputError(f"{what}: n must be an integer >= {low}, got {n!r}")
    return n


def _check_c(c: int) -> int:
    if isinstance(c, bool) or not isinstance(c, int) or c < 2:
        raise InputError(f"c-gram retrieval needs an integer c >= 2 (query of c-1 >= 1 numbers), got {c!r}")
    return c


def default_max_len(task: str, n: int, c: int = 2) -> int:
    """Prompt length for L = n data tokens: ``<s>``, n tokens, the query tokens."""
    return 1 + n + {"index": 1, "ar": 1, "cgram": c - 1, "count": 2}[task]


def fits(value: int | Fraction, F: int) -> bool:
    """|value| <= 2^F - 1: comfortably inside R_p (largest magnitude ~ 2^F)."""
    return abs(value) <= (1 << F) - 1


# ---- spec helpers ---------------------------------------------------------------------------


def square_unit(name: str, src: str, out: str) -> Unit:
    """Lemma B.1 (multiplication) for x_src^2 when x_src >= 0: ReLU(x) * x."""
    return Unit(name, {src: 1}, 0, {src: 1}, 0, {out: 1})


def affine_unit(name: str, form: dict, bias: int | Fraction, out: str) -> Unit:
    """Lemma B.2 (linear operations): ReLU(1) * (w . x + b)."""
    return Unit(name, {}, 1, form, bias, {out: 1})


def tent_units(name: str, arg: dict, shift: int, value: dict, value_bias: int | Fraction, out: dict) -> list[Unit]:
    """tent(a - shift) * (value . x + value_bias) on integer a = arg . x, as three ReGLU units
    (Lemma B.3's indicator written as ReLU(a-s+1) - 2 ReLU(a-s) + ReLU(a-s-1), times a value):
    exactly (value) at a = shift and exactly 0 at every other integer a."""
    units = []
    for k, (off, coef) in enumerate(((1, 1), (0, -2), (-1, 1))):
        units.append(Unit(f"{name}.{k}", dict(arg), off - shift, dict(value), value_bias,
                          {dim: coef * c for dim, c in out.items()}))
    return units


def number_readout(vocab: Vocabulary, val: str, gate: str, lo: int = 1, hi: int | None = None) -> dict:
    """Rows ``U[i] = 2 i * val - i^2 * gate`` for numbers lo..hi (logit val^2 - (i - val)^2 at gate 1)."""
    hi = vocab.n if hi is None else hi
    return {i: {val: 2 * i, gate: -i * i} for i in range(max(lo, vocab.min_number), hi + 1)}


# ---- Theorem 4.6 / 5.6 (no chain of thought), composed from constructions.attention_blocks ----


def _vocab(task: str, n: int, extras: tuple[str, ...] = ()) -> Vocabulary:
    return Vocabulary.with_extras(n, extras, min_number=0 if task == "count" else 1)


def _alloc_all(lb: LayoutBuilder, dims) -> None:
    for dim in dims:
        if dim not in lb:
            lb.alloc(dim)


def _resolve_blocks(makers: list[Callable[[int], AB.AttentionBlock]], d: int, p: int | None, own_min_p: int, what: str):
    """Choose each block's boost and one common p.

    Each block is exact on a window of odd p (attention_blocks: below it values overflow, above
    it the score gap is too small for hard attention at p bits).  Start from the paper's
    constants (boost 1, or the smallest boost with any window); the common p is the largest
    lower end (and the builder's own lower bound for readout/products); a block whose window
    ends below that p gets the smallest larger boost (a power of two: every score scaled by it)
    whose window contains p.  Returns (p, blocks, windows)."""
    boosts = [AB.choose_boost(lambda b, mk=mk: mk(b).budget(d)) for mk in makers]
    target = max([own_min_p] + [mk(b).budget(d).window()[0] for mk, b in zip(makers, boosts)])
    if p is not None:
        check_p(p)
        if p < target:
            raise PrecisionError(f"{what} needs p >= {target} (the blocks' value ranges and the readout); got p = {p}")
        target = p
    for _ in range(200):
        moved = False
        for i, mk in enumerate(makers):
            while True:
                win = mk(boosts[i]).budget(d).window()
                if win is not None and win[0] <= target <= win[1]:
                    break
                if win is not None and win[0] > target:
                    if p is not None:
                        raise PrecisionError(f"{what}: no boost makes block {mk(1).name} exact at p = {p}; use p >= {win[0]}")
                    target, moved = win[0], True
                    break
                boosts[i] *= 2
                if boosts[i] > 1 << 64:  # pragma: no cover
                    raise PrecisionError(f"{what}: no boost up to 2^64 makes block {mk(1).name} exact at p = {target}")
        if not moved:
            blocks = [mk(b) for mk, b in zip(makers, boosts)]
            return target, blocks, [blk.budget(d).window() for blk in blocks]
    raise PrecisionError(f"{what}: could not find a common p for its blocks")  # pragma: no cover


def _boost_for(mk: Callable[[int], AB.AttentionBlock], d: int, F: int) -> int:
    """The smallest boost 2^b (from the paper's 1) whose score gap gives hard attention at F."""
    b = 1
    while not mk(b).budget(d).hard(Precision.split(1, F)):
        b *= 2
        if b > 1 << 64:
            raise PrecisionError(f"{mk(1).name}: no boost up to 2^64 gives hard attention at F = {F}")
    return b


def _split_blocks(makers: list[Callable[[int], AB.AttentionBlock]], d: int, F: int) -> list[AB.AttentionBlock]:
    """Each block at the smallest boost that is hard at F fractional bits (constants re-derived)."""
    return [mk(_boost_for(mk, d, F)) for mk in makers]


def _declared_split(blocks: list[AB.AttentionBlock], d: int, own: Precision) -> Precision:
    """Declared (I, F): the builder's own need, and I large enough for every block's values."""
    return Precision.split(max([own.I] + [blk.budget(d).min_int_bits(own.F) for blk in blocks]), own.F)


def _resolve_split(makers, d: int, prec: Precision, own: Precision, what: str):
    """:func:`_resolve_blocks` for a given R(I, F): boosts for hard attention at F, values within I.
    Returns (prec, blocks, windows, declared (I, F))."""
    declared = _declared_split(_split_blocks(makers, d, own.F), d, own)
    require_precision(prec, declared, what)
    blocks = _split_blocks(makers, d, prec.F)
    for blk in blocks:
        budget = blk.budget(d)
        if not budget.fits(prec) and not prec.below_declared_ok:
            raise PrecisionError(f"{what}: block {blk.name} needs {budget.min_int_bits(prec.F)} integer bits at "
                                 f"F = {prec.F} (its boost {blk.boost} makes it hard there); got {prec.label}")
    return prec, blocks, [blk.budget(d).window() for blk in blocks], declared


def _readout_min_p(n: int) -> int:
    """The quadratic readout's weights and logits (up to 3 n^2) must fit."""
    return _smallest_p(lambda F: fits(3 * n * n + 2 * n, F), "readout")


def _readout_split(n: int) -> Precision:
    """:func:`_readout_min_p` as integer bits (the readout is integer: F = 1 suffices for it)."""
    return Precision.split(_int_bits(3 * n * n + 2 * n), 1)


def _resolve_any(makers, d: int, p: "int | Precision | None", own_p: int, own: Precision, what: str):
    """(p, blocks, windows, declared (I, F), declared p): an odd p or None by
    :func:`_resolve_blocks` (the paper's R_p), a Precision by :func:`_resolve_split`."""
    declared_p = _resolve_blocks(makers, d, None, own_p, what)[0]
    if isinstance(p, Precision):
        return (*_resolve_split(makers, d, p, own, what), declared_p)
    p, blocks, windows = _resolve_blocks(makers, d, p, own_p, what)
    return p, blocks, windows, _declared_split(_split_blocks(makers, d, own.F), d, own), declared_p


def _tight_need(make_at: Callable[[int], AB.AttentionBlock], d: int, own: Precision, F: int) -> Precision:
    """The (I, F) a tightened block built for F fractional bits needs: F, and I for its values and the readout."""
    return Precision.split(max(own.I, make_at(F).budget(d).min_int_bits(F)), max(own.F, F))


def _resolve_tight(make_at: Callable[[int], AB.AttentionBlock], d: int, p: "int | Precision | None", own: Precision, what: str):
    """(p, blocks, windows, declared (I, F), declared p) for a block whose constants are derived
    from the format's F (:func:`constructions.attention_blocks.tight_match_scales`): declared
    (I, F) = the need at the readout's F; declared p = the smallest odd p = 2k + 1 whose R_p
    meets the need of the block built for F = k; a given format must meet the need at its F."""
    declared = _tight_need(make_at, d, own, own.F)
    k = max(own.I, own.F)
    while _tight_need(make_at, d, own, k).I > k:
        k += 1
    declared_p = 2 * k + 1
    if p is None:
        p = declared_p
    prec = Precision.of(check_p(p) if not isinstance(p, Precision) else p)
    require_precision(p, _tight_need(make_at, d, own, prec.F), what)
    block = make_at(prec.F)
    return p, [block], [block.budget(d).window()], declared, declared_p


def _match_model(task: str, arch: Literal["transformer", "hybrid"], n: int, p: int | None, c: int, max_len: int | None,
                 tight: bool = False) -> Model:
    """Index / AR / c-gram, Transformer (Thm 4.6) or hybrid (Thm 5.6), Match of Lemma B.15.

    The blocks get the size parameter N = max_len (every position and value is <= N, so the
    lemmas' k <= N^c holds with c = 1)."""
    what = f"{task} {arch} (Thm {'4.6' if arch == 'transformer' else '5.6'})"
    n = _check_n(n, what)
    c = _check_c(c) if task == "cgram" else 2
    max_len = max_len or default_max_len(task, n, c)
    N = max(2, n, max_len)
    vocab = _vocab(task, n)
    lb = LayoutBuilder(vocab)
    m = c - 1  # AR: m = 1
    ans = lb.alloc("ans")
    if task == "index":  # B.4: match the query i with the position of the previous token, k - 1
        keys, queries = [lb.alloc("prev_pos")], [NUM]
        copies: list = []
    else:  # lag i = number at position k - i; at the last position q_(c-1) = num, q_(c-1-i) = lag i
        keys = [lb.alloc(f"lag{i}") for i in range(1, m + 1)]
        queries = [NUM] + keys[:-1]
        copies = [(i, keys[i - 1]) for i in range(1, m + 1)] if arch == "transformer" else []
    lag0 = lb.alloc("lag0") if (arch == "hybrid" and task != "index") else None
    pos_state = lb.alloc("pos_state") if (arch == "hybrid" and task == "index") else None

    def make_match(b: int) -> AB.AttentionBlock:
        return AB.match_block(keys, queries, [ans], [NUM], N, max_len=max_len, vmax=N, boost=b)

    def make_copy(s: int, dst: str) -> Callable[[int], AB.AttentionBlock]:
        return lambda b: AB.copy_block(s, [NUM], [dst], N, max_len=max_len, boost=b)

    def make_tight(F: int) -> AB.AttentionBlock:
        return AB.match_block(keys, queries, [ans], [NUM], N, max_len=max_len, vmax=N,
                              scales=AB.tight_match_scales("match", max_len, F))

    makers = [make_match] + [make_copy(s, dst) for s, dst in copies]
    probe = [mk(1) for mk in makers]
    _alloc_all(lb, [dim for blk in probe for dim in blk.aux + blk.writes])
    d = padded_layout(lb.build()).d
    if tight:
        if copies:
            raise InputError(f"{what}: the tightened Match variant is built for Index only (no COPY heads)")
        what += ", tightened Match constants"
        p, blocks, windows, declared, declared_p = _resolve_tight(make_tight, d, p, _readout_split(n), what)
    else:
        p, blocks, windows, declared, declared_p = _resolve_any(makers, d, p, _readout_min_p(n), _readout_split(n), what)
    match, copy_blocks = blocks[0], blocks[1:]
    if task == "index":
        prev_pos = keys[0]
        if arch == "transformer":
            layers = [
                LayerSpec("transformer", ffn=FFNSpec([affine_unit("prev_pos", {POS: 1}, -1, prev_pos)]), name="prev_pos"),
                LayerSpec("transformer", ffn=match.ffn, name="match.g"),
                LayerSpec("transformer", heads=[match.head], name="match.A"),
            ]
        else:  # the linear unit holds k (pos_state) and hands k - 1 on: prev_pos_t = pos_state_(t-1)
            lu = LinearUnitSpec(A={prev_pos: {pos_state: 1}}, B={pos_state: {POS: 1}})
            layers = [
                LayerSpec("linear_rnn", lu=lu, ffn=match.ffn, name="remember+match.g"),
                LayerSpec("transformer", heads=[match.head], name="match.A"),
            ]
    elif arch == "transformer":
        layers = [
            LayerSpec("transformer", ffn=AB.merge_ffns(*[blk.ffn for blk in copy_blocks]), name="copy.g"),
            LayerSpec("transformer", heads=[blk.head for blk in copy_blocks], ffn=match.ffn, name="copy.A+match.g"),
            LayerSpec("transformer", heads=[match.head], name="match.A"),
        ]
    else:  # Lemma B.20 (recent input memorizing) instead of the COPY heads
        A = {keys[0]: {lag0: 1}}
        for i in range(1, m):
            A[keys[i]] = {keys[i - 1]: 1}
        lu = LinearUnitSpec(A=A, B={lag0: {NUM: 1}})
        layers = [
            LayerSpec("linear_rnn", lu=lu, ffn=match.ffn, name="remember+match.g"),
            LayerSpec("transformer", heads=[match.head], name="match.A"),
        ]
    unembed = number_readout(vocab, ans, AB.ONE)
    meta = {"task": task, "arch": arch, "n": n, "c": c, "theorem": "4.6" if arch == "transformer" else "5.6",
            "blocks": {blk.name: {"boost": blk.boost, "p_window": w} for blk, w in zip(blocks, windows)},
            **({"variant": "tight-match"} if tight else {}),
            "block_size_N": N, "readout": "explicit quadratic unembed (erratum D32-E1)", "cot_steps": 0}
    return assemble(arch=arch, p=p, layout=lb.build(), vocab=vocab, layers=layers, max_len=max_len,
                    unembed=unembed, meta=meta, declared=declared, declared_p=declared_p)


def _count_model(arch: Literal["transformer", "hybrid"], n: int, p: int | None, max_len: int | None,
                 literal: bool = False) -> Model:
    """Counting, Transformer (Thm 4.6) or hybrid (Thm 5.6): COUNT of Lemma B.14."""
    what = f"count {arch} (Thm {'4.6' if arch == 'transformer' else '5.6'})"
    n = _check_n(n, what)
    max_len = max_len or default_max_len("count", n)
    N = max(2, n, max_len)
    vocab = _vocab("count", n)
    lb = LayoutBuilder(vocab)
    prev, w, prod = lb.alloc("prev"), lb.alloc("w"), lb.alloc("prod")
    lag0 = lb.alloc("lag0") if arch == "hybrid" else None

    def make_count(b: int) -> AB.AttentionBlock:
        return AB.count_block([NUM], [prev], w, N, vmax=N, max_len=max_len, boost=b)

    def make_copy(b: int) -> AB.AttentionBlock:
        return AB.copy_block(1, [NUM], [prev], N, max_len=max_len, boost=b)

    makers = [make_count] + ([make_copy] if arch == "transformer" else [])
    _alloc_all(lb, [dim for mk in makers for dim in mk(1).aux + mk(1).writes])
    d = padded_layout(lb.build()).d
    delta_bits = max_len.bit_length() + 1
    T = n + 4  # t + 3 + [t = q] <= n + 4
    cmp_F = delta_bits + (T + 4).bit_length() + 3  # the comparison's fractional bits
    own = max(_readout_min_p(n), _smallest_p(lambda F: F >= cmp_F, "count comparison"))
    p, blocks, windows, declared, declared_p = _resolve_any(makers, d, p, own, Precision.split(_readout_split(n).I, cmp_F), what)
    count = blocks[0]
    delta = Fraction(1, 1 << delta_bits)
    # prod = w * (t + 3 + [t = q]): t = num, q = prev at the last position.  COUNT sees the
    # whole prompt, so its m counts the query token q itself and the threshold t when t = q:
    # m_data > t  <=>  m + 1 >= t + 3 + [t = q]  <=>  w (t + 3 + [t = q]) <= 1  (erratum T46-E4).
    if literal:  # B.4 as printed: "multiply threshold+1 with this value and compare the result to 1"
        prod_units = [Unit("w_times_t_plus_1", {w: 1}, 0, {NUM: 1}, 1, {prod: 1})]
    else:
        prod_units = [Unit("w_times_t_plus_3", {w: 1}, 0, {NUM: 1}, 3, {prod: 1})]
        prod_units += tent_units("w_times_eq", {NUM: 1, prev: -1}, 0, {w: 1}, 0, {prod: 1})
    if arch == "transformer":
        copy = blocks[1]
        layers = [
            LayerSpec("transformer", ffn=copy.ffn, name="copy.g"),
            LayerSpec("transformer", heads=[copy.head], ffn=count.ffn, name="copy.A+count.g"),
            LayerSpec("transformer", heads=[count.head], ffn=FFNSpec(prod_units), name="count.A+product"),
        ]
    else:
        lu = LinearUnitSpec(A={prev: {lag0: 1}}, B={lag0: {NUM: 1}})  # B.11: the query in the state
        layers = [
            LayerSpec("linear_rnn", lu=lu, ffn=count.ffn, name="remember+count.g"),
            LayerSpec("transformer", heads=[count.head], ffn=FFNSpec(prod_units), name="count.A+product"),
        ]
    # answer 1 iff prod < 1 + delta (literal: (t + 1) / (m + 1) < 1, i.e. prod < 1 - delta)
    bound = 1 - delta if literal else 1 + delta
    unembed = {1: {AB.ONE: bound, prod: -1}, 0: {prod: 1, AB.ONE: -bound}}
    meta = {"task": "count", "arch": arch, "n": n, "delta": str(delta), "literal": literal,
            "blocks": {blk.name: {"boost": blk.boost, "p_window": win} for blk, win in zip(blocks, windows)},
            "block_size_N": N, "theorem": "4.6" if arch == "transformer" else "5.6", "cot_steps": 0,
            "readout": "explicit linear comparison unembed (erratum T46-E4)"}
    return assemble(arch=arch, p=p, layout=lb.build(), vocab=vocab, layers=layers, max_len=max_len,
                    unembed=unembed, meta=meta, declared=declared, declared_p=declared_p)


def build_index_transformer(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 4.6 (App. B.4), Index: layer 1 FFN writes k - 1 (the previous token's position);
    layers 2-3 are the Match block (Lemma B.15: g, then the head) matching the query i against
    k - 1, which copies t_i (at position i + 1, after <s>) into ``ans``."""
    return _match_model("index", "transformer", n, p, 2, max_len)


def build_index_transformer_tight(n: int, p: "int | Precision | None" = None, max_len: int | None = None) -> Model:
    """Thm 4.6's Index Transformer with tightened Match constants (beyond the paper, issue #11): the smallest lambdas whose score gaps make the hardmax one-hot at the format's F bits."""
    return _match_model("index", "transformer", n, p, 2, max_len, tight=True)


def build_ar_transformer(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 4.6 (App. B.4), AR: COPY (Lemma B.13) of each token's previous token, then Match
    (Lemma B.15) of the query against it: the first position whose previous token is q."""
    return _match_model("ar", "transformer", n, p, 2, max_len)


def build_cgram_transformer(n: int, p: int | None = None, c: int = 3, max_len: int | None = None) -> Model:
    """Thm 4.6 (App. B.4), c-gram: c-1 COPY heads (previous c-1 tokens, one layer), then one
    Match head on c-1 key dims.  Constant size for constant c."""
    return _match_model("cgram", "transformer", n, p, c, max_len)


def build_count_transformer(n: int, p: int | None = None, max_len: int | None = None, literal: bool = False) -> Model:
    """Thm 4.6 (App. B.4), Counting: COPY (Lemma B.13) of the query q onto the threshold token;
    COUNT (Lemma B.14) writing w = 1/(m+1) and an FFN writing w (t + 3 + [t = q]).
    The readout compares with 1 + delta (erratum T46-E4).  ``literal=True`` builds B.4 as printed
    (w (t + 1) compared with 1), which over-counts the query's own occurrence (kept for the
    erratum's counterexample)."""
    return _count_model("transformer", n, p, max_len, literal)


def build_index_hybrid(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.6 (App. B.11), Index: the linear unit hands on the previous position k - 1 (B.20),
    its FFN is the Match block's g; the one Transformer layer is the Match head."""
    return _match_model("index", "hybrid", n, p, 2, max_len)


def build_ar_hybrid(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.6 (App. B.11), AR: the linear unit remembers the previous token (Lemma B.20);
    the appended Transformer layer's Match head finds the first position whose previous token is q."""
    return _match_model("ar", "hybrid", n, p, 2, max_len)


def build_cgram_hybrid(n: int, p: int | None = None, c: int = 3, max_len: int | None = None) -> Model:
    """Thm 5.6 (App. B.11), c-gram: the linear unit remembers the previous c-1 tokens; one Match head."""
    return _match_model("cgram", "hybrid", n, p, c, max_len)


def build_count_hybrid(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.6 (App. B.11), Counting: the query q is kept in the state (Lemma B.20) instead of a
    COPY head; the appended Transformer layer holds COUNT and the product FFN."""
    return _count_model("hybrid", n, p, max_len)


def _no_cot_p(task: str, arch: str, n: int, c: int = 3, max_len: int | None = None) -> int:
    """Declared p: the smallest odd p the builder accepts (it raises PrecisionError below it)."""
    return build(task, arch, n, None, c, max_len).p


# ---- Theorem 5.2: retrieval-augmented linear RNN ---------------------------------------------

# Regex fragments (special tokens).  Detokenize puts a space between every two tokens, so each
# pattern starts with the verbose flag (?x), under which those spaces are ignored (erratum T52-E1).
FRAG_INDEX_HEAD = r"(?x)^(?:\S+\s+)"
FRAG_GROUP = r"(\S+)"
FRAG_TOKEN_START = r"(?x)(?<!\S)"
FRAG_SEP = r"\s+"
FRAG_NEXT = r"\s+(\S+)"
FRAG_COUNT_HEAD = r"(?x)^(?:(?:(?!"
FRAG_COUNT_SKIP = r"\s)\S+\s+)*"
FRAG_COUNT_HIT = r"\s+)"
FRAG_COUNT_TAIL = r"(\S+)\s+\S+"


def quantifier_token(j: int) -> str:
    """The quantifier ``{j}`` as one special token (a number token cannot sit inside braces)."""
    return "{" + str(j) + "}"


@dataclass(frozen=True)
class Item:
    """What the RNN emits when the current position is tau steps after the prompt's end.

    kind: "special" (token), "number" (the number held ``delay`` positions back, plus offset),
    "quant" (the quantifier token {number held delay back + offset}), "copy" (the current
    number: the retrieval result), "verdict" (1 if the current token is a number, 0 if FAILED)."""

    kind: Literal["special", "number", "quant", "copy", "verdict"]
    token: str = ""
    delay: int = 0
    offset: int = 0


def rag_script(task: str, c: int = 2) -> list[Item]:
    """The token emitted at tau = 0, 1, ...: ``<StartSearch>``, the pattern, ``<EndSearch>``,
    (tau = P + 2: the retrieval result is appended, nothing emitted), the answer.

    Index  (Thm 5.2: ``^(?:\\S\\s*){k-1}(\\S)``):   (?x)^(?:\\S+\\s+) {i} (\\S+)
    AR     (``\\bq\\b(\\S+)\\b``):                     (?x)(?<!\\S) q \\s+(\\S+)
    c-gram (``\\bq_1 ... q_(c-1)\\b(\\S+)\\b``):       (?x)(?<!\\S) q_1 \\s+ q_2 ... q_(c-1) \\s+(\\S+)
    Count  (``(\\bv\\b){k+1}``):   (?x)^(?:(?:(?! q \\s)\\S+\\s+)* q \\s+) {t+1} (\\S+)\\s+\\S+
    """
    if task == "index":
        pattern = [Item("special", FRAG_INDEX_HEAD), Item("quant", delay=2), Item("special", FRAG_GROUP)]
    elif task in ("ar", "cgram"):
        m = c - 1
        pattern = [Item("special", FRAG_TOKEN_START)]
        for i in range(1, m + 1):  # q_i sits m - i positions before the prompt's end
            tau = len(pattern) + 1
            pattern.append(Item("number", delay=tau + m - i))
            pattern.append(Item("special", FRAG_SEP if i < m else FRAG_NEXT))
    elif task == "count":  # prompt ends with q t: q one position back, t at the end
        pattern = [Item("special", FRAG_COUNT_HEAD), Item("number", delay=3), Item("special", FRAG_COUNT_SKIP),
                   Item("number", delay=5), Item("special", FRAG_COUNT_HIT), Item("quant", delay=6, offset=1),
                   Item("special", FRAG_COUNT_TAIL)]
    else:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASK_NAMES)}")
    answer = Item("verdict") if task == "count" else Item("copy")
    return [Item("special", START), *pattern, Item("special", END), Item("special", ""), answer]


def rag_fragments(task: str, c: int = 2) -> tuple[str, ...]:
    out: list[str] = []
    for it in rag_script(task, c):
        if it.kind == "special" and it.token and it.token not in PAPER_SPECIALS and it.token not in out:
            out.append(it.token)
    return tuple(out)


def _rag_quant_range(task: str, n: int) -> tuple[int, int]:
    return (1, n + 1) if task == "count" else (1, n)


def _rag_bounds(task: str, n: int, max_len: int, script_len: int) -> list[int]:
    """Largest magnitudes of the RNN's state, FFN and readout (all integers)."""
    lo, hi = _rag_quant_range(task, n)
    return [max_len * max_len, (hi + 1) * (hi + 1) * 3, (max_len + script_len) * (n + 2)]


def _declared_p_rag(task: str, n: int, max_len: int, script_len: int) -> int:
    bounds = _rag_bounds(task, n, max_len, script_len)
    return _smallest_p(lambda F: all(fits(b, F) for b in bounds), "retrieval-augmented RNN")


def _declared_split_rag(task: str, n: int, max_len: int, script_len: int) -> Precision:
    """Declared (I, F): every value is an integer (counters, tents, readout), so F = 1."""
    return Precision.split(_int_bits(*_rag_bounds(task, n, max_len, script_len)), 1)


def build_rag_rnn(task: str, n: int, p: int | None = None, c: int = 2, max_len: int | None = None) -> Model:
    """Thm 5.2 (App. B.8): a one-layer linear RNN that writes its own retrieval query.

    State (Lemmas B.20, B.21): ``lag0..lagD`` (the last D + 1 input numbers, a shift register),
    ``searches`` (the number of ``<StartSearch>`` so far) and ``tau`` (positions since the first
    ``<StartSearch>``, counting it as 1; 0 inside the prompt).  The FFN is a lookup table on tau
    (Lemma B.23, tents of Lemma B.3) that gates: each special token's logit dim, the number to
    emit (``val``, ``numgate``) and the quantifier to emit (``qval``, ``qgate``).  The readout is
    the explicit unembedding (numbers and quantifier tokens {j} quadratic, specials one logit dim each).
    """
    what = f"{task} retrieval-augmented RNN (Thm 5.2)"
    n = _check_n(n, what)
    c = _check_c(c) if task == "cgram" else 2
    if task not in TASK_NAMES:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASK_NAMES)}")
    script = rag_script(task, c)
    prompt_len = max_len or default_max_len(task, n, c)
    total_len = prompt_len + len(script) + 1
    lo, hi = _rag_quant_range(task, n)
    quants = tuple(quantifier_token(j) for j in range(lo, hi + 1)) if any(i.kind == "quant" for i in script) else ()
    vocab = _vocab(task, n, rag_fragments(task, c) + quants)
    need = _declared_p_rag(task, n, total_len, len(script))
    split = _declared_split_rag(task, n, total_len, len(script))
    p = _require_p(p, need, split, what)
    lb = LayoutBuilder(vocab)
    D = max([it.delay for it in script] + [0])
    lags = [lb.alloc(f"lag{j}") for j in range(D + 1)]
    searches, tau = lb.alloc("searches"), lb.alloc("tau")
    one = lb.alloc("one")
    val, numgate, qval, qgate = lb.alloc("val"), lb.alloc("numgate"), lb.alloc("qval"), lb.alloc("qgate")
    gate_dims: dict[str, str] = {}
    for it in script:
        if it.kind == "special" and it.token and it.token not in gate_dims:
            gate_dims[it.token] = lb.alloc(f"gate:{it.token}")
    yes_gate = lb.alloc("gate:1") if task == "count" else None
    no_gate = lb.alloc("gate:0") if task == "count" else None
    # linear unit: h_t = A h_(t-1) + B x_t
    A: dict[str, dict] = {lags[j]: {lags[j - 1]: 1} for j in range(1, D + 1)}
    A[searches] = {searches: 1}
    A[tau] = {tau: 1, searches: 1}
    B = {lags[0]: {NUM: 1}, searches: {special_dim(START): 1}, tau: {special_dim(START): 1}}
    lu = LinearUnitSpec(A=A, B=B)
    units: list[Unit] = []
    # at the answer step the current token is the retrieval result: a number or FAILED
    is_number = {special_dim(FAILED): -1}  # 1 - [FAILED] (with bias 1)
    for t_idx, it in enumerate(script):
        name = f"tau{t_idx}"
        if it.kind == "special" and it.token:
            units += tent_units(name, {tau: 1}, t_idx, {}, 1, {gate_dims[it.token]: 1})
        elif it.kind in ("number", "quant"):
            v, g = (val, numgate) if it.kind == "number" else (qval, qgate)
            units += tent_units(name + ".val", {tau: 1}, t_idx, {lags[it.delay]: 1}, it.offset, {v: 1})
            units += tent_units(name + ".gate", {tau: 1}, t_idx, {}, 1, {g: 1})
        elif it.kind == "copy":
            units += tent_units(name + ".val", {tau: 1}, t_idx, {NUM: 1}, 0, {val: 1})
            units += tent_units(name + ".gate", {tau: 1}, t_idx, {}, 1, {numgate: 1})
        elif it.kind == "verdict":
            units += tent_units(name + ".yes", {tau: 1}, t_idx, is_number, 1, {yes_gate: 1})
            units += tent_units(name + ".no", {tau: 1}, t_idx, {special_dim(FAILED): 1}, 0, {no_gate: 1})
    ffn = FFNSpec(units, {one: 1})
    layers = [LayerSpec("linear_rnn", lu=lu, ffn=ffn, name="rag")]
    unembed: dict = number_readout(vocab, val, numgate)
    for j in range(lo, hi + 1):
        if quants:
            unembed[quantifier_token(j)] = {qval: 2 * j, qgate: -j * j}
    for tok, dim in gate_dims.items():
        unembed[tok] = {dim: 1}
    if task == "count":
        unembed[1] = {**unembed.get(1, {}), yes_gate: 1}
        unembed[0] = {**unembed.get(0, {}), no_gate: 1}
    meta = {"task": task, "arch": "linear_rnn", "n": n, "c": c, "theorem": "5.2",
            "cot_steps": len(script) - 2, "prompt_max_len": prompt_len,
            "readout": "explicit unembed (erratum D32-E1)", "script": [it.kind + ":" + (it.token or str(it.delay)) for it in script]}
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=layers, max_len=total_len,
                    unembed=unembed, meta=meta, declared=split, declared_p=need)


def rag_rnn_p(task: str, n: int, c: int = 2, max_len: int | None = None) -> int:
    script = rag_script(task, c)
    prompt_len = max_len or default_max_len(task, n, c)
    return _declared_p_rag(task, n, prompt_len + len(script) + 1, len(script))


def build_index_rag_rnn(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.2, Index: pattern ``(?x)^(?:\\S+\\s+) {i} (\\S+)`` (paper: ``^(?:\\S\\s*){k-1}(\\S)``)."""
    return build_rag_rnn("index", n, p, 2, max_len)


def build_ar_rag_rnn(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.2, AR: pattern ``(?x)(?<!\\S) q \\s+(\\S+)`` (paper: ``\\bq\\b(\\S+)\\b``)."""
    return build_rag_rnn("ar", n, p, 2, max_len)


def build_cgram_rag_rnn(n: int, p: int | None = None, c: int = 3, max_len: int | None = None) -> Model:
    """Thm 5.2, c-gram: pattern ``(?x)(?<!\\S) q_1 \\s+ ... q_(c-1) \\s+(\\S+)``."""
    return build_rag_rnn("cgram", n, p, c, max_len)


def build_count_rag_rnn(n: int, p: int | None = None, max_len: int | None = None) -> Model:
    """Thm 5.2, Counting: pattern ``(?x)^(?:(?:(?! q \\s)\\S+\\s+)* q \\s+) {t+1} (\\S+)\\s+\\S+``
    (paper: ``(\\bv\\b){k+1}``); answers 1 on a match, 0 on FAILED."""
    return build_rag_rnn("count", n, p, 2, max_len)


BUILDERS: dict[tuple[str, str], Callable[..., Model]] = {
    ("index", "transformer"): build_index_transformer,
    ("ar", "transformer"): build_ar_transformer,
    ("cgram", "transformer"): build_cgram_transformer,
    ("count", "transformer"): build_count_transformer,
    ("index", "hybrid"): build_index_hybrid,
    ("ar", "hybrid"): build_ar_hybrid,
    ("cgram", "hybrid"): build_cgram_hybrid,
    ("count", "hybrid"): build_count_hybrid,
    ("index", "rag-rnn"): build_index_rag_rnn,
    ("ar", "rag-rnn"): build_ar_rag_rnn,
    ("cgram", "rag-rnn"): build_cgram_rag_rnn,
    ("count", "rag-rnn"): build_count_rag_rnn,
}


def declared_p(task: str, model: str, n: int, c: int = 3, max_len: int | None = None) -> int:
    """The p each builder uses by default (the smallest it accepts)."""
    if model == "rag-rnn":
        return rag_rnn_p(task, n, c if task == "cgram" else 2, max_len)
    return _no_cot_p(task, model, n, c, max_len)


def build(task: str, model: str, n: int, p: int | None = None, c: int = 3, max_len: int | None = None) -> Model:
    try:
        builder = BUILDERS[(task, model)]
    except KeyError:
        raise InputError(f"no construction for task {task!r} on model {model!r}; tasks {TASK_NAMES}, "
                         "models transformer, hybrid, rag-rnn") from None
    if task == "cgram":
        return builder(n, p, c=c, max_len=max_len)
    return builder(n, p, max_len=max_len)


CATALOG: dict[str, Callable[..., Model]] = {
    **{f"{task}-{model}": builder for (task, model), builder in BUILDERS.items()},
    "index-transformer-tight": build_index_transformer_tight,
}
