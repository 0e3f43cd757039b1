"""Named residual dimensions.

The fixed embedding of A.3 pins three kinds of dimension, and every layout starts and ends
with them:

* index 0, ``"num"``: w_1, number token i embeds as i * w_1;
* index 1, ``"w2"``: w_2, not used by the embedding (reserved, erratum A3-E1 in notes/errata/foundation.md);
* indices 2.., ``"tok:<s>"``, ``"tok:~"``, ...: w_(2+k) for the k-th special token;
* the last index, ``"pos"``: w_d, position l embeds as l * w_d.

Constructions ask a :class:`LayoutBuilder` for further named dimensions; names are unique, so
two blocks can never silently write the same dimension.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .errors import ProofsCheckError
from .vocab import Vocabulary

NUM, W2, POS = "num", "w2", "pos"


def special_dim(token: str) -> str:
    return f"tok:{token}"


class LayoutError(ProofsCheckError):
    """A dimension name is unknown or allocated twice."""


@dataclass(frozen=True)
class Layout:
    """An ordered tuple of unique dimension names; ``index(name)`` is the row of X."""

    names: tuple[str, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, int] = {}
        for i, name in enumerate(self.names):
            if name in index:
                raise LayoutError(f"dimension name {name!r} appears twice in the layout")
            index[name] = i
        object.__setattr__(self, "_index", index)

    @property
    def d(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise LayoutError(f"no residual dimension named {name!r}") from None

    def indices(self, names: Iterable[str]) -> list[int]:
        return [self.index(n) for n in names]

    def check_embedding(self, vocab: Vocabulary) -> None:
        """The A.3 embedding needs num, w2, the special-token dims in order, and pos last."""
        expected = [NUM, W2] + [special_dim(s) for s in vocab.specials]
        if list(self.names[: len(expected)]) != expected or self.names[-1] != POS:
            raise LayoutError(
                "layout does not fit the fixed embedding of A.3: it must start with "
                f"{expected} and end with {POS!r}"
            )


class LayoutBuilder:
    """Allocates named dimensions between the embedding's fixed ones."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self._fixed_head = [NUM, W2] + [special_dim(s) for s in vocab.specials]
        self._middle: list[str] = []
        self._taken = set(self._fixed_head) | {POS}

    def alloc(self, name: str) -> str:
        if name in self._taken:
            raise LayoutError(f"residual dimension {name!r} is already allocated")
        self._taken.add(name)
        self._middle.append(name)
        return name

    def alloc_many(self, names: Iterable[str]) -> list[str]:
        return [self.alloc(n) for n in names]

    def __contains__(self, name: str) -> bool:
        return name in self._taken

    def build(self) -> Layout:
        return Layout(tuple(self._fixed_head + self._middle + [POS]))
