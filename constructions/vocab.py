"""Vocabulary, tokenizer and detokenizer of Appendix A.3.

Tokens are Python ints (numbers ``min_number..n``) or strings (special tokens).  The paper's
special tokens come first, in its order (the k-th special token embeds as w_(2+k)):

    1 <s>   2 ~   3 YES   4 NO   5 <StartSearch>   6 <EndSearch>

followed by ``FAILED`` (returned by a retrieval that matches nothing) and any further special
tokens a construction declares (regex fragments, markers, ...).

Token ids (rows of W_E and of the logits): numbers first, ``min_number..n`` as ids
``0..n-min_number``, then the special tokens in order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

from .errors import TokenError
from .limits import require_numbers

Token = Union[int, str]

PAPER_SPECIALS: tuple[str, ...] = ("<s>", "~", "YES", "NO", "<StartSearch>", "<EndSearch>", "FAILED")


def _is_number_text(text: str) -> bool:
    """A decimal number as Detokenize writes it: ASCII digits, optionally after '-' (``str.isdigit``
    alone also takes '²' or Arabic-Indic digits, which ``int`` then refuses or reads differently)."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit()


@dataclass(frozen=True)
class Vocabulary:
    """Numbers ``min_number..n`` plus special tokens (paper's first, then extras)."""

    n: int
    specials: tuple[str, ...] = PAPER_SPECIALS
    min_number: int = 1
    _special_index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < self.min_number:
            raise TokenError(f"vocabulary needs n >= {self.min_number}, got {self.n!r}")
        require_numbers(self.n - self.min_number + 1)
        if tuple(self.specials[: len(PAPER_SPECIALS)]) != PAPER_SPECIALS[: len(self.specials)]:
            raise TokenError(
                f"the paper's special tokens must come first and in order {PAPER_SPECIALS}; got {self.specials}"
            )
        seen: dict[str, int] = {}
        for i, s in enumerate(self.specials):
            if not isinstance(s, str) or not s or any(c.isspace() for c in s):
                raise TokenError(f"special token {s!r} must be a non-empty string without spaces")
            if _is_number_text(s):
                raise TokenError(f"special token {s!r} would be read as a number")
            if s in seen:
                raise TokenError(f"special token {s!r} is declared twice")
            seen[s] = i
        object.__setattr__(self, "_special_index", seen)

    @staticmethod
    def with_extras(n: int, extras: Iterable[str] = (), min_number: int = 1) -> "Vocabulary":
        return Vocabulary(n, PAPER_SPECIALS + tuple(extras), min_number)

    # ---- sizes and ids ----------------------------------------------------------------------
    @property
    def n_numbers(self) -> int:
        return self.n - self.min_number + 1

    @property
    def n_specials(self) -> int:
        return len(self.specials)

    def __len__(self) -> int:
        return self.n_numbers + self.n_specials

    def special_rank(self, token: str) -> int:
        """1-based k of the k-th special token (its embedding is w_(2+k))."""
        try:
            return self._special_index[token] + 1
        except KeyError:
            raise TokenError(f"unknown special token {token!r}; known: {' '.join(self.specials)}") from None

    def check(self, token: Token) -> Token:
        if isinstance(token, bool):
            raise TokenError(f"token {token!r} is neither a number nor a special token")
        if isinstance(token, int):
            if not self.min_number <= token <= self.n:
                raise TokenError(
                    f"number token {token} is outside this model's vocabulary {self.min_number}..{self.n}; "
                    f"build the model for a larger n"
                )
            return token
        if isinstance(token, str):
            self.special_rank(token)
            return token
        raise TokenError(f"token {token!r} is neither a number nor a special token")

    def id_of(self, token: Token) -> int:
        self.check(token)
        if isinstance(token, int):
            return token - self.min_number
        return self.n_numbers + self._special_index[token]

    def token_of(self, token_id: int) -> Token:
        if 0 <= token_id < self.n_numbers:
            return token_id + self.min_number
        if self.n_numbers <= token_id < len(self):
            return self.specials[token_id - self.n_numbers]
        raise TokenError(f"token id {token_id} is outside the vocabulary (size {len(self)})")

    def all_tokens(self) -> list[Token]:
        return [self.token_of(i) for i in range(len(self))]

    # ---- text -------------------------------------------------------------------------------
    def parse(self, word: str) -> Token:
        """One word to a token: a special token's text, else a decimal number."""
        if word in self._special_index:
            return word
        if _is_number_text(word):
            return self.check(int(word))
        raise TokenError(f"unknown token {word!r}: not a number and not one of {' '.join(self.specials)}")

    def tokenize(self, text: str) -> list[Token]:
        """A.3: split on spaces, each word one token."""
        return [self.parse(w) for w in text.split()]

    def to_dict(self) -> dict:
        return {"n": self.n, "min_number": self.min_number, "specials": list(self.specials)}

    @staticmethod
    def from_dict(data: dict) -> "Vocabulary":
        return Vocabulary(int(data["n"]), tuple(data["specials"]), int(data.get("min_number", 1)))


def detokenize(tokens: Sequence[Token]) -> str:
    """A.3: Detokenize(S) = "S_1 S_2 ... S_l" (single spaces)."""
    return " ".join(str(t) for t in tokens)
