"""The recurrent state of a linear RNN (Def 3.3's s_t), advanced one token at a time.

Def 3.3 writes an RNN as s_k = t(s_(k-1), Emb(S)_k).  For a linear RNN (Def 3.6) the state is
the tuple of every layer's h_t: Lambda x p bits, the memory the lower bounds of Thm 4.6 / 4.7
count.  :func:`step` advances it with exactly the reference evaluator's arithmetic (it calls the
same layer functions on a one-column input), so a pigeonhole search over these states
(``proofs_check.lower_bounds.find_fooling_pair``) speaks about the real model.  The position
enters through the embedding (l * w_d), as an input, not as memory.
"""
from __future__ import annotations

import ast

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Iterator

from .errors import Location, PrecisionOverflow, WeightError
from .evaluate_reference import _Run, embed, feed_forward, linear_unit, readout_logits
from .model import LinearRNNLayer, Model, zeros
from .numerics import Arithmetic
from .vocab import Token


@dataclass(frozen=True)
class LinearRNNState:
    position: int  # tokens read so far
    h: tuple[tuple[int, ...], ...]  # per layer, the scaled ints of h_t (the memory)
    last: tuple[int, ...] | None = None  # residual column of the last token (for the readout)

    def memory_bytes(self) -> bytes:
        """The memory only (h of every layer, at its non-zero-able dims) as bytes."""
        return repr((self.position, self.h)).encode()


def memory_from_bytes(message: bytes) -> LinearRNNState:
    """The state :meth:`LinearRNNState.memory_bytes` wrote (no readout column: the next step
    makes it), parsed as a literal: what the other party of a two-party protocol rebuilds."""
    position, h = ast.literal_eval(message.decode())
    return LinearRNNState(int(position), tuple(tuple(int(v) for v in layer) for layer in h))


def initial_state(model: Model) -> LinearRNNState:
    if model.arch != "linear_rnn":
        raise WeightError(f"a recurrent state is defined here for linear_rnn models, not {model.arch}")
    return LinearRNNState(0, tuple(tuple(0 for _ in range(model.d)) for _ in model.layers))


@contextlib.contextmanager
def _at_position(position: int) -> Iterator[None]:
    """A one-column run numbers its column 1: report overflows at the real position."""
    try:
        yield
    except PrecisionOverflow as exc:
        where = exc.where
        if isinstance(where, Location) and where.position is not None:
            where = dataclasses.replace(where, position=where.position + position - 1)
        raise PrecisionOverflow(exc.precision or exc.p, exc.value, where) from None


def step(model: Model, state: LinearRNNState, token: Token, arith: Arithmetic = Arithmetic()) -> LinearRNNState:
    """s_(t+1) = t(s_t, Emb(token at position t+1)) with the reference evaluator's arithmetic."""
    run = _Run(model, arith)
    position = state.position + 1
    with _at_position(position):
        X = embed(model, [token], run)
        X[model.d - 1, 0] = run.check(position * run.prec.scale, Location(sublayer="embedding", position=1, dim="pos"))
        names = model.layout.names
        hs = []
        for li, (layer, h) in enumerate(zip(model.layers, state.h), start=1):
            assert isinstance(layer, LinearRNNLayer)
            H = linear_unit(layer, X, li, run, h0=h)
            hs.append(tuple(int(v) for v in H[:, 0]))
            Y = run.add(X, H, Location(li, "residual after linear_unit"), names)
            X = run.add(Y, feed_forward(layer.ffn, Y, li, run), Location(li, "residual after ffn"), names)
    if position > model.max_len:
        raise WeightError(f"position {position} exceeds the model's max_len {model.max_len}")
    return LinearRNNState(position, tuple(hs), tuple(int(v) for v in X[:, 0]))


def next_token(model: Model, state: LinearRNNState, arith: Arithmetic = Arithmetic()) -> Token:
    """The model's next token after the last step (argmax of the logits, lowest id on ties)."""
    if state.last is None:
        raise WeightError("no token has been read yet")
    run = _Run(model, arith)
    col = zeros(model.d, 1)
    for i, v in enumerate(state.last):
        col[i, 0] = v
    with _at_position(state.position):
        logits = readout_logits(model, col, run)
    best = max(range(len(logits)), key=lambda i: (logits[i], -i))
    return model.vocab.token_of(best)
