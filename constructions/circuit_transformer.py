"""Theorem 4.8 (App B.7): a constant-depth Transformer whose chain of thought runs an RNN's
circuit gate by gate.

The RNN is a :class:`constructions.circuit.Circuit` (one recurrent step, P gates in the proof's
form; read that module's docstring).  For a prompt of n RNN tokens and T RNN chain-of-thought
tokens, the Transformer's chain of thought is, for every RNN step j = 1, ..., n + T - 1 (the RNN
reads its token j and emits o_j), the P gate values of step j as the number tokens 0 / 1 and then
o_j itself: P + 1 tokens per simulated step (erratum T48-E1: the printed schedule simulates one
step per block but starts emitting at the RNN's n + 1-th token).  The last T RNN tokens so
emitted are the RNN's own chain of thought (``proofs_check.circuits.generated``).

Tokens (a simplification the theorem leaves free): gate values are the numbers 0 and 1; the
RNN's alphabet token t is the special token ``rnn:t`` (:func:`rnn_token`), so an RNN token can
be told from a gate value by its embedding (erratum T48-E3).  Positions: the prompt is 1..n;
block j (j = 0, 1, ...) holds step j + 1's gates at mpos + 1 .. mpos + P and o_(j+1) at
mpos + P + 1, where mpos = n + j(P+1) is the RNN token that ends the previous block (for j = 0,
the last prompt token).  At position q = mpos + b (0 <= b <= P) the model computes the token at
q + 1: gate s(b) = b + 1 when b < P, the RNN's token when b = P (the proof's s(b) =
(b + 1) mod (P + 1), "encoded as 0"; erratum T48-E2: printed "b = P - 1").

Layers (the proof's five layers folded into three; the proof's step in brackets):

1. FFN only [Layer 1: "attention outputs zero"]: ``one``, ``pos2`` = pos^2.
2. Attention: ``mpos`` = the position of the latest RNN token (score Lambda [RNN token] +
   mu pos', the MatchClose pattern of Lemma B.16; erratum T48-E3).  FFN [Layer 1 FFN, "width
   O(P(n)), encoding all the gate information"]: a lookup table on b = pos - mpos (Lemma B.3's
   [x = 0] for each b in 0..P, 3 units each) writing the gate type one-hot ``t_const``,
   ``t_input``, ``t_state``, ``t_and``, ``t_xor``, ``t_emit``; the operand offsets ``opl`` = l,
   ``opr`` = r (AND / XOR: gate l of this block sits at mpos + l; a state gate i reads the
   next-state gate P - K + i of the previous block, at mpos + i - 1 - K: ``opl`` = i - 1 - K);
   the input-bit selector ``sel:l:r``; and ``tin`` = (P + 1) x (the position of the RNN token
   step j + 1 reads): j + 1 (a prompt token) while j < n, else mpos.
3. Attention [Layers 2-3: Match heads (Def B.9 / Lemma B.15) fetching the operands and the
   copied input / state bits; Layer 4's heads weighting output bits by powers of two]: Match
   pos' = mpos + opl -> ``vl``, pos' = mpos + opr -> ``vr`` (values: the gate token ``num``;
   an RNN token has num = 0, so a state gate of block 0, which reads inside the prompt, reads
   the initial state 0); Match (P+1) pos' = tin -> ``icode:l:r`` (the code bits of that RNN
   token, a linear form of its one-hot embedding); for each output gate g_k (bit k), Match
   pos' = mpos + g_k with value 2^k num, summed into ``oidx``.  FFN [Layer 3 FFN]: the gate value
   ``gval`` (const: 1; state: vl; input: sum sel * icode; AND: vl vr; XOR: vl + vr - 2 vl vr, each
   as ReLUs of sums of 0/1 values) and ``eidx`` = t_emit * oidx.

Readout (explicit ``unembed``) [Layer 5]: number 1 gets ``gval``, number 0 gets 1 - gval - t_emit,
``rnn:t`` with alphabet index k gets 2k eidx + (1 - k^2) t_emit = 1 + v^2 - (k - v)^2 at an emit
position (v = the output index), 0 elsewhere.  The printed Layers 4-5 assemble the RNN's output
as d p-bit numbers from their bits (p - 1 heads weighting bit h by 2^(-h+(p-1)/2), then d + 1
heads) that decode to the RNN's token under its own embedding; here the circuit's output gates
are already the token's index (constructions.circuit), so one attention layer's O heads weight
bit k by 2^k and the unembed picks the token: the same idea for this output format.

Constants (:func:`constants`): every head is a hard attention with integer score gaps of at
least G = ceil((F + 2) ln 2 + ln L) + 2 between the attended key and every other one, which
makes each softmax column round to one-hot (as in constructions.dfs_transformer); Match heads
score -G (K' - target)^2 (the query square dropped, it is the same for every key).
:func:`declared_p` is the smallest odd p whose range holds every score: Theta(log(P L)), L the
longest sequence, so parameter bits are O(P log max(P, n)) for T = n^A.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from .blocks import FFNSpec, Form, HeadSpec, LayerSpec, Unit, assemble, padded_layout
from .circuit import Circuit
from .errors import InputError
from .layout import NUM, POS, LayoutBuilder, special_dim
from .model import Model
from .ffn_blocks import checked_format, declared_split
from .numerics import Precision
from .vocab import Token, Vocabulary

GATE_TYPES: tuple[str, ...] = ("t_const", "t_input", "t_state", "t_and", "t_xor", "t_emit")
EmitAt = Literal["fixed", "printed"]
RNN_PREFIX = "rnn:"


def rnn_token(t: Token) -> str:
    """The Transformer's special token for the RNN's alphabet token t."""
    return f"{RNN_PREFIX}{t}"


def from_rnn_token(tok: Token, c: Circuit) -> Token:
    """The RNN token a Transformer token ``rnn:t`` stands for (InputError for a gate value)."""
    for t in c.alphabet:
        if tok == rnn_token(t):
            return t
    raise InputError(f"{tok!r} is not one of the circuit's RNN tokens")


def block_len(c: Circuit) -> int:
    """P + 1 Transformer tokens per simulated RNN step."""
    return c.size + 1


def cot_length(c: Circuit, n: int, steps: int) -> int:
    """Tokens decoded to obtain ``steps`` RNN chain-of-thought tokens: (P + 1)(n + steps - 1)."""
    return block_len(c) * (n + steps - 1)


def max_len_for(c: Circuit, n: int, steps: int) -> int:
    return n + cot_length(c, n, steps)


def _dims(c: Circuit) -> list[str]:
    sel = [f"sel:{l}:{r}" for l in range(c.input_coords) for r in range(c.input_width)]
    icode = [f"icode:{l}:{r}" for l in range(c.input_coords) for r in range(c.input_width)]
    return ["one", "pos2", "mpos", *GATE_TYPES, "opl", "opr", *sel, "tin", "vl", "vr", *icode,
            "oidx", "gval", "eidx"]


# ---- constants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constants:
    P: int
    n: int
    L: int  # longest sequence
    G: int  # score gap that rounds a softmax column to one-hot
    s_d: int  # sqrt of the padded width (assemble multiplies queries by it)

    @property
    def lam_marker(self) -> int:
        """Lambda of the latest-RNN-token head: beats mu pos' over every position by G."""
        return self.G * (self.L + 1)

    @property
    def score_bound(self) -> int:
        """|score| (and |query|, |key|) bound: the input head, keys (P+1) pos' <= (P+1) L,
        (P+1)^2 pos'^2, query 2G tin with tin <= (P+1)(L+1), dominates."""
        big = (self.P + 1) * (self.L + self.P + 1)
        return self.s_d * self.G * 3 * big * big


def _padded_d(c: Circuit) -> int:
    lb = LayoutBuilder(_vocab(c))
    lb.alloc_many(_dims(c))
    return padded_layout(lb.build()).d


def hard_gap(F: int, L: int) -> int:
    """G with e^-G L < 2^-(F+2): a column whose winner leads by G rounds to one-hot."""
    return math.ceil((F + 2) * math.log(2) + math.log(L)) + 2


def constants(c: Circuit, n: int, steps: int, p: "int | Precision") -> Constants:
    L = max_len_for(c, n, steps)
    return Constants(c.size, n, L, hard_gap(Precision.of(p).F, L), math.isqrt(_padded_d(c)))


def precision_ok(c: Circuit, n: int, steps: int, p: "int | Precision") -> str | None:
    """None when p (an odd p or R(I, F); p = all bits) suffices, else the reason: the gap G
    reads F, the scores I, and Thm 4.8's P(n) <= 2^(p/2) the total p."""
    prec = Precision.of(p)
    if c.size * c.size > 1 << prec.p:  # P > 2^(p/2), in integers (a float 2^(p/2) overflows)
        return f"Thm 4.8 needs P(n) = {c.size} <= 2^(p/2)"
    bound = constants(c, n, steps, prec).score_bound
    if bound > (1 << prec.I) - 1:
        return f"attention scores reach about {bound:.3g}, beyond {prec.label}'s largest magnitude 2^{prec.I}"
    return None


def declared_p(c: Circuit, n: int, steps: int) -> int:
    """The smallest odd p with :func:`precision_ok`: Theta(log(P L))."""
    p = 7
    while precision_ok(c, n, steps, p) is not None:
        p += 2
    return p


# ---- the layers -----------------------------------------------------------------------------


def _unit(name: str, w1: Form, b1, out: Form, w2: Form | None = None, b2=1) -> Unit:
    return Unit(name, dict(w1), Fraction(b1), dict(w2 or {}), Fraction(b2), dict(out))


def _eq(name: str, x: Form, x_b: int, out: Form) -> list[Unit]:
    """[x + x_b = 0] * out for integer x (Lemma B.3): ReLU(y + 1) - 2 ReLU(y) + ReLU(y - 1)."""
    return [_unit(f"{name}.{k}", x, x_b + shift, {d: v * w for d, v in out.items()})
            for k, (shift, w) in enumerate(((1, 1), (0, -2), (-1, 1)))]


def _pos_match(name: str, scale: int, target: Form, values: dict[str, Form], G: int) -> HeadSpec:
    """Match (Def B.9, Lemma B.15) on the position: score -G (scale pos' - target)^2 without the
    query square, = -G scale^2 pos'^2 + 2 G scale pos' target."""
    keys = [("pos2", {"pos2": scale * scale}), ("pos", {POS: scale})]
    return HeadSpec(name, keys, [{"one": -G}, {k: 2 * G * v for k, v in target.items()}], values)


def _gate_info(c: Circuit, b: int, emit_at: EmitAt) -> Form:
    """The lookup-table row at b: what the token at mpos + b + 1 is (Layer 1 FFN of the proof)."""
    emit_b = c.size if emit_at == "fixed" else c.size - 1
    if b == emit_b:
        return {"t_emit": 1}
    if b == c.size:  # printed reading: no gate s(P) = 0 and no emit either
        return {}
    g = c.gate(b + 1)
    if g.kind == "const1":
        return {"t_const": 1}
    if g.kind == "state":
        return {"t_state": 1, "opl": b - c.state_bits}
    if g.kind == "input":
        return {"t_input": 1, f"sel:{g.l}:{g.r}": 1}
    return {f"t_{g.kind}": 1, "opl": g.l, "opr": g.r}


def _layer2(c: Circuit, n: int, k: Constants, emit_at: EmitAt) -> LayerSpec:
    P = c.size
    marker = {special_dim(rnn_token(t)): 1 for t in c.alphabet}
    latest = HeadSpec("latest_rnn_token", [("rnn_token", marker), ("pos", {POS: 1})],
                      [{"one": k.lam_marker}, {"one": k.G}], {"mpos": {POS: 1}})
    units: list[Unit] = []
    b = {POS: 1, "mpos": -1}
    for i in range(P + 1):
        info = _gate_info(c, i, emit_at)
        if info:
            units += _eq(f"gate{i + 1}", b, -i, info)
    # tin = (P+1)(j+1) = mpos - n + P + 1 while j < n; (P+1) mpos from j = n (mpos >= n + n(P+1))
    T0 = n + n * (P + 1)
    extra = {"mpos": P, "one": n - P - 1}
    units += [
        _unit("tin.prompt", {}, 1, {"tin": 1}, {"mpos": 1}, P + 1 - n),
        _unit("tin.cot.a", {"mpos": 1}, 1 - T0, {"tin": 1}, extra, 0),
        _unit("tin.cot.b", {"mpos": 1}, -T0, {"tin": -1}, extra, 0),
    ]
    return LayerSpec("transformer", [latest], None, FFNSpec(units), "L2 latest RNN token; gate lookup")


def _code_form(c: Circuit, l: int, r: int) -> Form:
    """Bit r of coordinate l of the code of the RNN token at a position, from its one-hot."""
    return {special_dim(rnn_token(t)): 1 for t in c.alphabet if (c.code(t)[l] >> r) & 1}


def _layer3(c: Circuit, k: Constants) -> LayerSpec:
    heads = [
        _pos_match("operand_l", 1, {"mpos": 1, "opl": 1}, {"vl": {NUM: 1}}, k.G),
        _pos_match("operand_r", 1, {"mpos": 1, "opr": 1}, {"vr": {NUM: 1}}, k.G),
        _pos_match("input_token", c.size + 1, {"tin": 1},
                   {f"icode:{l}:{r}": _code_form(c, l, r)
                    for l in range(c.input_coords) for r in range(c.input_width)}, k.G),
    ]
    for bit, g in enumerate(c.output_gates):
        heads.append(_pos_match(f"output_bit{bit}", 1, {"mpos": 1, "one": g}, {"oidx": {NUM: 2 ** bit}}, k.G))
    gv = {"gval": 1}
    units = [
        _unit("const", {"t_const": 1}, 0, gv),
        _unit("state", {"t_state": 1, "vl": 1}, -1, gv),
        _unit("and", {"t_and": 1, "vl": 1, "vr": 1}, -2, gv),
        _unit("xor.l", {"t_xor": 1, "vl": 1}, -1, gv),
        _unit("xor.r", {"t_xor": 1, "vr": 1}, -1, gv),
        _unit("xor.lr", {"t_xor": 1, "vl": 1, "vr": 1}, -2, {"gval": -2}),
        _unit("emit", {"t_emit": 1}, 0, {"eidx": 1}, {"oidx": 1}, 0),
    ]
    units += [_unit(f"input.{l}.{r}", {f"sel:{l}:{r}": 1, f"icode:{l}:{r}": 1}, -1, gv)
              for l in range(c.input_coords) for r in range(c.input_width)]
    return LayerSpec("transformer", heads, None, FFNSpec(units), "L3 operands, input and output bits; gate value")


def _vocab(c: Circuit) -> Vocabulary:
    for t in c.alphabet:
        if isinstance(t, str) and (not t or any(ch.isspace() for ch in t)):
            raise InputError(f"RNN token {t!r} cannot be a token here: tokens are words without spaces")
    return Vocabulary.with_extras(1, [rnn_token(t) for t in c.alphabet], min_number=0)


def circuit_transformer(c: Circuit, n: int, steps: int, p: int | None = None, emit_at: EmitAt = "fixed") -> Model:
    """The Thm 4.8 Transformer for circuit ``c``, prompts of ``n`` RNN tokens and ``steps`` RNN
    chain-of-thought tokens (see the module docstring).  ``p`` defaults to :func:`declared_p`;
    ``emit_at="printed"`` puts the emit row at b = P - 1 as printed (erratum T48-E2)."""
    for name, v in (("n", n), ("steps", steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"circuit-transformer: {name} must be a whole number >= 1, got {v!r}")
    if emit_at not in ("fixed", "printed"):
        raise InputError(f"emit_at must be 'fixed' or 'printed', got {emit_at!r}")
    vocab = _vocab(c)
    need = declared_p(c, n, steps)
    why_not = lambda prec: precision_ok(c, n, steps, prec)  # noqa: E731
    p = checked_format(p, need, why_not, f"circuit-transformer for P = {c.size}, n = {n}, {steps} steps")
    k = constants(c, n, steps, p)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(_dims(c))
    layer1 = LayerSpec("transformer", [], None, FFNSpec(
        [_unit("pos2", {POS: 1}, 0, {"pos2": 1}, {POS: 1}, 0)], bias={"one": 1}), "L1 constants")
    unembed: dict[Token, Form] = {1: {"gval": 1}, 0: {"one": 1, "gval": -1, "t_emit": -1}}
    for idx, t in enumerate(c.alphabet):
        unembed[rnn_token(t)] = {"eidx": 2 * idx, "t_emit": 1 - idx * idx}
    return assemble(
        arch="transformer", p=p, layout=lb.build(), vocab=vocab,
        layers=[layer1, _layer2(c, n, k, emit_at), _layer3(c, k)],
        max_len=k.L, unembed=unembed, declared=declared_split(why_not), declared_p=need,
        meta={"construction": "circuit-transformer", "theorem": "4.8", "n": n, "steps": steps,
              "circuit": c.to_json(), "P": c.size, "emit_at": emit_at,
              "cot_steps": cot_length(c, n, steps), "constants": {"G": k.G, "s_d": k.s_d}},
    )


# ---- prompts and read-back ------------------------------------------------------------------


def prompt(c: Circuit, rnn_prompt: list[Token]) -> list[Token]:
    """The Transformer's input: the RNN's prompt, token by token."""
    for t in rnn_prompt:
        c.code(t)  # MachineError for a token outside the alphabet
    return [rnn_token(t) for t in rnn_prompt]


@dataclass(frozen=True)
class Simulated:
    """The decoded chain of thought split into steps: gate values and the RNN token per step."""

    gate_values: list[tuple[int, ...]]
    rnn_tokens: list[Token]
    cot_length: int


def read_back(c: Circuit, generated: list[Token]) -> Simulated:
    """Split generated tokens into blocks of P + 1 (P gate values, then the RNN token)."""
    m = block_len(c)
    gates, toks = [], []
    for a in range(len(generated) // m):
        blk = generated[a * m:(a + 1) * m]
        gates.append(tuple(int(v) if isinstance(v, int) else -1 for v in blk[:-1]))
        last = blk[-1]
        toks.append(from_rnn_token(last, c) if isinstance(last, str) else last)
    return Simulated(gates, toks, len(generated))


def simulate(c: Circuit, model: Model, rnn_prompt: list[Token], steps: int, evaluator, replay=None,
             draft: list[Token] | None = None) -> Simulated:
    """Decode (P + 1)(n + steps - 1) tokens on ``rnn_prompt`` and read them back (``replay``: a
    :class:`constructions.decode.Replay` continuing an interrupted decode).  ``draft``: a
    reference's chain to verify in chunks (:func:`constructions.decode.drafted_chain_of_thought`:
    the same greedy chain, the model's own tokens, far fewer passes)."""
    from .decode import chain_of_thought, drafted_chain_of_thought

    total = cot_length(c, len(rnn_prompt), steps)
    if draft is not None:
        result = drafted_chain_of_thought(lambda: evaluator.session(model, prompt(c, rnn_prompt)), draft, total - 1,
                                          answers=lambda t: False, replay=replay)
    else:
        session = evaluator.session(model, prompt(c, rnn_prompt))
        result = chain_of_thought(session, total - 1, answers=lambda t: False, replay=replay)
    return read_back(c, result.generated)
