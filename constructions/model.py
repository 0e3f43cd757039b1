"""A model is data: named weight matrices in R_p plus a layout of named residual dimensions.

All weights are numpy arrays of dtype ``object`` holding Python ints: the scaled integers
``q = w * 2^F`` of :mod:`constructions.numerics` (exact for any p).

Architectures (Section 3, Def 5.5):
* ``transformer``: a stack of :class:`TransformerLayer` (Def 3.1/3.2);
* ``linear_rnn``: a stack of :class:`LinearRNNLayer` (Def 3.5/3.6);
* ``hybrid``: linear-RNN layers followed by exactly one Transformer layer (Def 5.5).

The output layer is the paper's: logits = W_E x_l with the tied word-embedding matrix W_E of
A.3, unless the model carries an explicit ``unembed`` matrix (|V| x d), which a construction
uses only where the tied readout cannot express its answer (erratum D32-E1 in notes/errata/foundation.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, Union

import numpy as np

from .errors import TokenError, WeightError
from .layout import Layout
from .limits import require_length
from .numerics import Precision
from .vocab import Vocabulary

Arch = Literal["transformer", "linear_rnn", "hybrid"]


def int_array(values: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An object array of Python ints (scaled integers)."""
    arr = np.empty(shape if shape is not None else np.shape(values), dtype=object)
    if shape is None:
        flat = np.asarray(values, dtype=object).reshape(-1)
        out = arr.reshape(-1)
        for i, v in enumerate(flat):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise WeightError(f"scaled weights must be integers, got {v!r}")
            out[i] = int(v)
    else:
        arr.fill(0)
    return arr


def zeros(*shape: int) -> np.ndarray:
    return int_array(None, tuple(shape))


@dataclass
class FeedForward:
    """ReGLU FFN: g(x) = W3 (ReLU(W1 x + b1) * (W2 x + b2)) + b3 (Def 3.1, footnote 4).

    W1, W2: w x d;  b1, b2: w;  W3: d x w;  b3: d.  Width w may be 0 (g = b3)."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray
    hidden_names: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return self.W1.shape[0]

    @staticmethod
    def empty(d: int) -> "FeedForward":
        return FeedForward(zeros(0, d), zeros(0), zeros(0, d), zeros(0), zeros(d, 0), zeros(d))

    def named(self) -> dict[str, np.ndarray]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2, "W3": self.W3, "b3": self.b3}


@dataclass
class AttentionHead:
    """One head of Def 3.1: W_K, W_Q (k x d), W_V (d x d)."""

    W_K: np.ndarray
    W_Q: np.ndarray
    W_V: np.ndarray
    name: str = ""
    key_names: tuple[str, ...] = ()

    def named(self) -> dict[str, np.ndarray]:
        return {"W_K": self.W_K, "W_Q": self.W_Q, "W_V": self.W_V}


@dataclass
class TransformerLayer:
    """f(X) = X + A(X) + g(X + A(X))  (Def 3.1)."""

    heads: list[AttentionHead]
    ffn: FeedForward
    name: str = ""
    kind: str = field(default="transformer", init=False)


@dataclass
class LinearRNNLayer:
    """f(X) = X + LU(X) + g(X + LU(X)),  h_t = A h_(t-1) + B X_t,  LU(X)_t = h_t (Def 3.5)."""

    A: np.ndarray
    B: np.ndarray
    ffn: FeedForward
    name: str = ""
    kind: str = field(default="linear_rnn", init=False)

    def state_dims(self) -> list[int]:
        """Dimensions of h that can ever be non-zero (rows of [A B] not all zero)."""
        rows = []
        for i in range(self.A.shape[0]):
            if any(v != 0 for v in self.A[i]) or any(v != 0 for v in self.B[i]):
                rows.append(i)
        return rows


Layer = Union[TransformerLayer, LinearRNNLayer]


@dataclass
class Model:
    """Weights in R_p, a named layout, a vocabulary and metadata; nothing task-specific."""

    arch: Arch
    p: int
    layout: Layout
    vocab: Vocabulary
    layers: list[Layer]
    max_len: int
    unembed: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    frac: int | None = None  # fractional bits of R(I, F); None: the paper's R_p, F = (p-1)/2

    @property
    def precision(self) -> Precision:
        return Precision(self.p, self.frac)

    @property
    def d(self) -> int:
        return self.layout.d

    def check_length(self, length: int) -> None:
        """A prompt must be non-empty and fit the model's position range (TokenError otherwise)."""
        if length == 0:
            raise TokenError("the token sequence is empty; give at least one token")
        if length > self.max_len:
            raise TokenError(
                f"sequence of length {length} is longer than this model's position range "
                f"({self.max_len}); build the model for a larger n or max_len"
            )

    def validate(self) -> "Model":
        """Shapes, ranges, architecture ordering and the embedding layout; raises WeightError."""
        prec = self.precision
        d = self.d
        self.layout.check_embedding(self.vocab)
        kinds = [layer.kind for layer in self.layers]
        if self.arch == "transformer" and any(k != "transformer" for k in kinds):
            raise WeightError("a transformer model may contain only Transformer layers")
        if self.arch == "linear_rnn" and any(k != "linear_rnn" for k in kinds):
            raise WeightError("a linear_rnn model may contain only linear-RNN layers")
        if self.arch == "hybrid" and (
            not kinds or kinds[-1] != "transformer" or any(k != "linear_rnn" for k in kinds[:-1])
        ):
            raise WeightError("a hybrid model (Def 5.5) is linear-RNN layers followed by exactly one Transformer layer")
        if self.arch not in ("transformer", "linear_rnn", "hybrid"):
            raise WeightError(f"unknown architecture {self.arch!r}")
        if not isinstance(self.max_len, int) or self.max_len < 1:
            raise WeightError("max_len must be a positive integer")
        require_length(self.max_len)
        for li, layer in enumerate(self.layers, start=1):
            for name, mat in self.named_weights(li, layer).items():
                _check_matrix(prec, f"{name}", mat)
            ffn = layer.ffn
            w = ffn.width
            _shape(ffn.W1, (w, d), f"layer {li} ffn W1")
            _shape(ffn.W2, (w, d), f"layer {li} ffn W2")
            _shape(ffn.b1, (w,), f"layer {li} ffn b1")
            _shape(ffn.b2, (w,), f"layer {li} ffn b2")
            _shape(ffn.W3, (d, w), f"layer {li} ffn W3")
            _shape(ffn.b3, (d,), f"layer {li} ffn b3")
            if isinstance(layer, TransformerLayer):
                for hi, head in enumerate(layer.heads, start=1):
                    k = head.W_K.shape[0] if head.W_K.ndim == 2 else -1
                    _shape(head.W_K, (k, d), f"layer {li} head {hi} W_K")
                    _shape(head.W_Q, (k, d), f"layer {li} head {hi} W_Q")
                    _shape(head.W_V, (d, d), f"layer {li} head {hi} W_V")
            else:
                _shape(layer.A, (d, d), f"layer {li} A")
                _shape(layer.B, (d, d), f"layer {li} B")
        if self.unembed is not None:
            _shape(self.unembed, (len(self.vocab), d), "unembed")
            _check_matrix(prec, "unembed", self.unembed)
        return self

    @staticmethod
    def named_weights(li: int, layer: Layer) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if isinstance(layer, TransformerLayer):
            for hi, head in enumerate(layer.heads, start=1):
                for k, v in head.named().items():
                    out[f"layer{li}.head{hi}.{k}"] = v
        else:
            out[f"layer{li}.A"] = layer.A
            out[f"layer{li}.B"] = layer.B
        for k, v in layer.ffn.named().items():
            out[f"layer{li}.ffn.{k}"] = v
        return out

    def all_weights(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for li, layer in enumerate(self.layers, start=1):
            out.update(self.named_weights(li, layer))
        if self.unembed is not None:
            out["unembed"] = self.unembed
        return out

    # ---- sizes (for claims tables) ----------------------------------------------------------
    def n_heads(self) -> int:
        return sum(len(l.heads) for l in self.layers if isinstance(l, TransformerLayer))

    def parameter_count(self) -> int:
        """Number of non-zero weights (a hand-built model's real parameter count)."""
        return sum(int(sum(1 for v in m.reshape(-1) if v != 0)) for m in self.all_weights().values())

    def parameter_bits(self) -> int:
        """Non-zero weights times p bits each."""
        return self.parameter_count() * self.p

    def state_dims(self) -> int:
        """Recurrent state dimensions that can be non-zero, summed over linear-RNN layers."""
        return sum(len(l.state_dims()) for l in self.layers if isinstance(l, LinearRNNLayer))

    def state_bits(self) -> int:
        return self.state_dims() * self.p

    def max_ffn_width(self) -> int:
        return max((l.ffn.width for l in self.layers), default=0)


def _shape(mat: np.ndarray, shape: Sequence[int], what: str) -> None:
    if not isinstance(mat, np.ndarray) or tuple(mat.shape) != tuple(shape):
        got = getattr(mat, "shape", type(mat).__name__)
        raise WeightError(f"{what} has shape {got}, expected {tuple(shape)}")


def _check_matrix(prec: Precision, what: str, mat: np.ndarray) -> None:
    if not isinstance(mat, np.ndarray):
        raise WeightError(f"{what} is not an array")
    for v in mat.reshape(-1):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise WeightError(f"{what} holds {v!r}, not a scaled integer; encode weights with Precision.encode")
        if abs(int(v)) > prec.max_scaled:
            raise WeightError(f"{what} holds a weight outside {prec.label}; use a larger odd p (or more integer bits)")
