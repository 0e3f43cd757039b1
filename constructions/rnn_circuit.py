"""A linear RNN of this project compiled to a Boolean circuit, bit for bit (issue 9, part 1 (c)).

Thm 4.8 simulates "an RNN whose recurrent step is a circuit of P(n) gates"; this module makes
any small ``linear_rnn`` :class:`~constructions.model.Model` such an RNN: :func:`compile_rnn`
lowers the model's exact R_p step (``constructions.recurrent_state.step`` followed by
``next_token``, i.e. the reference evaluator's arithmetic) to AND / XOR gates in the proof's gate
form (``constructions.circuit``), with the textbook circuits of ``constructions.bit_arithmetic``.

One step, on scaled ints q = v * 2^F (F = (p-1)/2), every operator exact then rounded once to the
nearest integer multiple of 2^-F with ties to even and range-checked (notes/numerics.md):

1. embedding (A.3): the input is the token's W_E row (``codes``, two's complement, p bits per
   dim; its ``pos`` entry is 0); the position l * w_d is *not* part of a token's code, so the
   state carries a counter ``pos`` (tokens read so far) and the circuit adds (pos + 1) * 2^F;
2. each layer (Def 3.5, notes/architecture.md): h = R(A h_prev + B X) (constant weights:
   shift-and-add), Y = X + h, H1 = R(W1 Y + b1), H2 = R(W2 Y + b2), G = R(ReLU(H1) * H2) (a
   signed x unsigned array multiplier), g = R(W3 G + b3), X = Y + g;
3. readout: logits R(U X) (U = the tied W_E or the model's ``unembed``), argmax with ties to the
   lowest token id, emitted as the token's index in ``alphabet`` (= its id).

State coordinates (p bits each, two's complement): every layer's h at the dims its linear unit
can write (``Model.state_dims``; the others are always 0), then ``pos``, then ``overflow``.

Overflow: the circuit *reproduces* every failure of the reference as flags, bits of the
``overflow`` coordinate: bit 0 becomes 1 (and stays 1) at a step where ``recurrent_state.step``
raises (:class:`PrecisionOverflow` at any operator, the embedding's position included, or a
position beyond ``max_len``); bit 1 is 1 iff this step's readout (``next_token``: the logits)
overflows.  The two are apart because a run computes the readout only from the last prompt
token on: a logit overflow at an earlier prompt position is no failure of the run.  While the
flags are 0 the emitted token and the next state equal the reference's bit for bit; a set flag
means the reference raises there and the circuit's values are meaningless.
Valid states: h entries in R_p, 0 <= pos <= max_len, overflow 0 or 1.

Refused (:class:`InputError` / :class:`PrecisionError`, with what to do): other architectures,
more than two layers, p > ``MAX_P``, d > ``MAX_D``, a number token outside the integers of
R_p, and any arithmetic but the default ``Arithmetic()`` (round_once, ties to even, raise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .bit_arithmetic import ONE, ZERO, GateBuilder, Vec, Wire, constant, prune
from .circuit import Circuit
from .decode import chain_of_thought
from .errors import InputError, PrecisionError, PrecisionOverflow
from .evaluate_reference import ReferenceEvaluator, tied_unembed
from .model import FeedForward, LinearRNNLayer, Model
from .numerics import Arithmetic, Precision
from .recurrent_state import LinearRNNState
from .vocab import Token

MAX_P = 15
MAX_D = 32
MAX_LAYERS = 2


@dataclass(frozen=True)
class CompiledRNN:
    """A model, its compiled circuit, and the state layout (``kept[li]``: the h dims of layer li)."""

    model: Model
    circuit: Circuit
    kept: tuple[tuple[int, ...], ...]

    @property
    def pos_coord(self) -> int:
        return sum(len(k) for k in self.kept)

    @property
    def overflow_coord(self) -> int:
        return self.pos_coord + 1

    def encode_state(self, state: LinearRNNState, overflow: bool = False) -> tuple[int, ...]:
        """The circuit's state bits (gate j + 1 reads bit j) of a linear-RNN state."""
        for li, (h, kept) in enumerate(zip(state.h, self.kept), start=1):
            stray = [self.model.layout.names[i] for i, v in enumerate(h) if v and i not in kept]
            if stray:
                raise InputError(f"layer {li}'s state is non-zero at {stray}, dims its linear unit never writes")
        values = [h[i] for h, kept in zip(state.h, self.kept) for i in kept] + [state.position, int(overflow)]
        p = self.model.p
        return tuple((v >> b) & 1 for v in values for b in range(p))

    def decode_state(self, bits: Sequence[int]) -> tuple[LinearRNNState, bool]:
        """(the linear-RNN state, the sticky overflow flag: some step failed) the state bits hold."""
        p = self.model.p
        values = [_signed(bits[c * p:(c + 1) * p]) for c in range(self.circuit.state_coords)]
        it = iter(values)
        hs = []
        for kept in self.kept:
            h = [0] * self.model.d
            for i in kept:
                h[i] = next(it)
            hs.append(tuple(h))
        return LinearRNNState(values[self.pos_coord], tuple(hs)), bool(values[self.overflow_coord] & 1)

    def readout_overflow(self, bits: Sequence[int]) -> bool:
        """Whether the step that wrote these state bits had a logit overflow (its token is void)."""
        return bool(bits[self.overflow_coord * self.model.p + 1])

    def reference_generated(self, prompt: Sequence[Token], cot_steps: int) -> list[Token]:
        """The original model's chain of thought on the reference evaluator: the ``cot_steps``
        tokens it emits after ``prompt`` (what ``proofs_check.circuits.generated`` gives for the
        circuit); a ProofsCheckError where the reference fails (the circuit raises its flag)."""
        session = ReferenceEvaluator().session(self.model, prompt)
        return chain_of_thought(session, cot_steps - 1, answers=()).generated


def _signed(bits: Sequence[int]) -> int:
    v = sum(b << k for k, b in enumerate(bits))
    return v - (1 << len(bits)) if bits[-1] else v


def refuse_unsupported(model: Model, arith: Arithmetic) -> None:
    if model.arch != "linear_rnn":
        raise InputError(f"compile-rnn compiles linear_rnn models only, not {model.arch}")
    if not 1 <= len(model.layers) <= MAX_LAYERS:
        raise InputError(f"compile-rnn compiles models of 1 to {MAX_LAYERS} layers, this one has {len(model.layers)}")
    if model.p > MAX_P:
        raise PrecisionError(f"compile-rnn is for small p (at most {MAX_P}); the model has p = {model.p}")
    if model.d > MAX_D:
        raise InputError(f"compile-rnn is for small models (d at most {MAX_D}); the model has d = {model.d}")
    if arith != Arithmetic():
        raise InputError(
            f"compile-rnn lowers the default arithmetic only (round_once, ties to even, overflow raises), not {arith}"
        )


def word_embedding(model: Model) -> list[list[int]]:
    """W_E of A.3 (one row per token id, scaled ints): the tokens' codes and the tied readout."""
    try:
        W = tied_unembed(model)
    except PrecisionOverflow as exc:
        raise PrecisionError(
            f"a number token is not an integer of R_{model.p} ({exc}); every step would overflow: use a larger p"
        ) from None
    return [[int(v) for v in row] for row in W]


class _Step:
    """The gates of one step, built on a :class:`GateBuilder`; ``flags`` collects overflow wires."""

    def __init__(self, model: Model, kept: tuple[tuple[int, ...], ...], codes: list[list[int]]):
        self.model, self.kept, self.codes = model, kept, codes
        self.prec = model.precision
        self.F = self.prec.F
        coords = sum(len(k) for k in kept) + 2
        self.b = GateBuilder(coords, model.p)
        self.flags: list[Wire] = []

    @property
    def overflow_coord(self) -> int:
        return sum(len(k) for k in self.kept) + 1

    def checked(self, v: Vec) -> Vec:
        """``Precision.check``: |q| <= 2^(p-1) - 1, else the flag."""
        v, flag = self.b.out_of_range(v, self.prec.max_scaled)
        self.flags.append(flag)
        return v

    def rounded(self, acc: Vec) -> Vec:
        """R of a value on the 2^-2F grid: nearest multiple of 2^-F, ties to even, range-checked."""
        return self.checked(self.b.round_shift(acc, self.F))

    def affine(self, row: Sequence[int], xs: Sequence[Vec], bias: int = 0) -> Vec:
        """R(w . x + b): exact dot product with constant weights, one rounding (round_once)."""
        return self.rounded(self.b.linear_form([int(w) for w in row], xs, int(bias) << self.F))

    def state_vec(self, coord: int, lo: int, hi: int) -> Vec:
        bits = tuple(self.b.state(coord, k) for k in range(self.model.p))
        return Vec(bits, -(1 << (self.model.p - 1)), (1 << (self.model.p - 1)) - 1).narrow(lo, hi)

    def input_vec(self, dim: int) -> Vec:
        """Dim ``dim`` of the token's code: bits equal in every code are constants."""
        column = [row[dim] for row in self.codes]
        bits = []
        for r in range(self.model.p):
            seen = {(v >> r) & 1 for v in column}
            bits.append(self.b.input(dim, r) if len(seen) > 1 else (ONE if seen == {1} else ZERO))
        return Vec(tuple(bits), min(column), max(column)).narrow(min(column), max(column))

    def embedding(self) -> tuple[list[Vec], Vec]:
        """(X_t: the code plus (pos + 1) * 2^F in dim pos, the next pos); a position beyond
        max_len or outside the integers of R_p raises in the reference: flagged."""
        pos = self.state_vec(self.overflow_coord - 1, 0, self.model.max_len)
        new = self.b.add(pos, constant(1))
        self.flags.append(self.b.greater(new, constant(self.model.max_len)))
        X = [self.input_vec(j) for j in range(self.model.d - 1)]
        X.append(self.checked(new.shift(self.F)))
        return X, new

    def linear_layer(self, layer: LinearRNNLayer, X: list[Vec], h_prev: list[Vec], kept: Sequence[int]) -> tuple[list[Vec], list[Vec]]:
        """(h_t, Z) of Def 3.5: h_t = R(A h + B X) on the kept dims (0 elsewhere), Y = X + h_t, Z = Y + g(Y)."""
        d = self.model.d
        h = [self.affine(list(layer.A[i]) + list(layer.B[i]), h_prev + X) if i in kept else constant(0) for i in range(d)]
        Y = [self.checked(self.b.add(x, v)) for x, v in zip(X, h)]
        g = self.feed_forward(layer.ffn, Y)
        return h, [self.checked(self.b.add(y, v)) for y, v in zip(Y, g)]

    def feed_forward(self, ffn: FeedForward, Y: list[Vec]) -> list[Vec]:
        """ReGLU (Def 3.1 fn 4): g = R(W3 R(ReLU(R(W1 Y + b1)) * R(W2 Y + b2)) + b3)."""
        G = []
        for i in range(ffn.width):
            H1 = self.affine(ffn.W1[i], Y, ffn.b1[i])
            H2 = self.affine(ffn.W2[i], Y, ffn.b2[i])
            G.append(self.rounded(self.b.multiply(self.b.relu(H1), H2)))
        return [self.affine(ffn.W3[j], G, ffn.b3[j]) for j in range(self.model.d)]

    def readout(self, X: list[Vec]) -> tuple[Vec, Wire]:
        """(argmax_t R(U_t . X) with ties to the lowest id: a running maximum replaced only on >,
        the logits' overflow flag)."""
        U = self.model.unembed if self.model.unembed is not None else self.codes
        before = len(self.flags)
        logits = [self.affine(U[t], X) for t in range(len(self.model.vocab))]
        flag = self.b.any_(self.flags[before:])
        del self.flags[before:]
        best, index = logits[0], constant(0)
        for t in range(1, len(logits)):
            better = self.b.greater(logits[t], best)
            best, index = self.b.mux(better, logits[t], best), self.b.mux(better, constant(t), index)
        return index, flag


def _bits(v: Vec, w: int) -> list[Wire]:
    """The low w bits of v's two's complement (sign-extended if v is narrower)."""
    return list(v.bits[:w]) + [v.sign] * (w - v.width)


def compile_rnn(model: Model, arith: Arithmetic = Arithmetic(), name: str | None = None) -> CompiledRNN:
    """The circuit of one step of ``model`` (see the module docstring for the layout and the flag)."""
    refuse_unsupported(model, arith)
    codes = word_embedding(model)
    kept = tuple(tuple(layer.state_dims()) for layer in model.layers)
    s = _Step(model, kept, codes)
    X, new_pos = s.embedding()
    next_h: list[Vec] = []
    coord = 0
    for layer, dims in zip(model.layers, kept):
        h_prev = [constant(0)] * model.d
        for i in dims:
            h_prev[i] = s.state_vec(coord, -s.prec.max_scaled, s.prec.max_scaled)
            coord += 1
        h, X = s.linear_layer(layer, X, h_prev, dims)
        next_h += [h[i] for i in dims]
    index, readout_flag = s.readout(X)
    p = model.p
    flag = s.b.or_(s.b.state(s.overflow_coord, 0), s.b.any_(s.flags))
    out_bits = max(1, (len(model.vocab) - 1).bit_length())
    wires = _bits(index, out_bits) + [w for v in next_h + [new_pos] for w in _bits(v, p)] + [flag, readout_flag] + [ZERO] * (p - 2)
    s.b.one()  # before the copies: the outputs must be the last gates
    ids = [s.b.copy(w) for w in wires]
    gates = prune(s.b.gates, s.b.state(s.overflow_coord, p - 1), ids)
    circuit = Circuit(
        gates, input_coords=model.d, input_width=p, state_coords=s.overflow_coord + 1, state_width=p,
        output_bits=out_bits, alphabet=tuple(model.vocab.all_tokens()),
        codes=tuple(tuple(v % (1 << p) for v in row) for row in codes), name=name or f"linear-rnn-p{p}",
    )
    return CompiledRNN(model, circuit, kept)
