"""One exception family for every user-facing failure.

Every error the tool raises on bad input or on a model that cannot be exact derives from
:class:`ProofsCheckError`; its message says what went wrong and what to do.  The CLI prints
the message (never a bare traceback) and exits non-zero.
"""
from __future__ import annotations

from dataclasses import dataclass


class ProofsCheckError(Exception):
    """Base of every error this tool raises on purpose."""


class PrecisionError(ProofsCheckError):
    """p is not a valid precision (even, too small) or too small for the requested size."""


class WeightError(ProofsCheckError):
    """A weight is NaN/infinite, not representable in R_p, or has the wrong shape."""


class TokenError(ProofsCheckError):
    """An unknown token, a number outside the vocabulary, or a sequence too long."""


class ReplayError(TokenError):
    """A checkpoint's replayed tokens are not the model's own chain (constructions.decode.Replay)."""


class ModelFileError(ProofsCheckError):
    """A model file is corrupt, truncated, of an unknown version, or inconsistent."""


class RetrievalError(ProofsCheckError):
    """An in-context retrieval pattern is invalid, has no group, or ran past its time bound."""


class InputError(ProofsCheckError):
    """A task instance or graph is malformed (vertex out of range, self-loop, repeated edge...)."""


class MachineError(InputError):
    """A Turing machine or circuit is malformed (bad text format, unknown symbol or state, an
    input outside the alphabet, no step limit for a machine that cannot halt)."""


class ResourceError(ProofsCheckError):
    """A model or input would need more memory or time than this tool agrees to spend (see
    constructions.limits); refused before the work starts."""


class EvaluatorError(ProofsCheckError):
    """The chosen evaluator cannot represent this model exactly (e.g. too many bits)."""


@dataclass(frozen=True)
class Location:
    """Where in a forward pass a value lives: layer, sublayer, head, position, dimension."""

    layer: int | None = None
    sublayer: str | None = None  # "attention" | "ffn" | "linear_unit" | "residual" | "output" | ...
    head: int | str | None = None
    position: int | None = None  # 1-based token position, as in the paper
    dim: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.layer is not None:
            parts.append(f"layer {self.layer}")
        if self.sublayer is not None:
            parts.append(self.sublayer)
        if self.head is not None:
            parts.append(f"head {self.head}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        if self.dim is not None:
            parts.append(f"dim {self.dim!r}")
        return ", ".join(parts) or "unknown location"


class PrecisionOverflow(ProofsCheckError):
    """A value left the range of R_p (or of R(I, F)). Carries the location and the offending value.

    ``p``: the odd p of R_p, or the format itself (a ``numerics.Precision``), whose label then
    names it (``R(I=8, F=30)``); ``precision`` keeps that format (None for a bare p)."""

    def __init__(self, p: object, value: object, where: Location | str | None = None):
        self.precision = p if hasattr(p, "label") else None
        self.p = p.p if self.precision is not None else p
        self.value = value
        self.where = where
        loc = f" at {where}" if where is not None else ""
        if self.precision is None or self.precision.symmetric:
            q = self.p
            super().__init__(
                f"overflow in R_{q}{loc}: |{value}| exceeds the largest magnitude "
                f"(2^{q - 1} - 1) * 2^-{(q - 1) // 2}; use a larger odd p "
                f"(or the explicit saturate mode for exploration)"
            )
        else:
            prec = self.precision
            super().__init__(
                f"overflow in {prec.label}{loc}: |{value}| exceeds the largest magnitude "
                f"(2^{prec.p - 1} - 1) * 2^-{prec.F}; use more integer bits I "
                f"(or the explicit saturate mode for exploration)"
            )
