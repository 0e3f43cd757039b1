"""The four in-context retrieval tasks of Section 4.2.1 (Definitions 4.2-4.5).

One frozen dataclass per task instance, each with

* ``tokens()``   - the model input, as the paper writes it (see "Token format" below);
* ``answer()``   - the plain-Python reference answer, straight from the definition;
* ``validate()`` - raises :class:`constructions.errors.InputError` with a clear message;
* ``to_json()`` / ``from_json()`` - the CLI shapes;
* ``vocabulary()`` - the smallest :class:`constructions.vocab.Vocabulary` holding the input.

Token format (our reading, recorded in notes/errata/tasks.md)
-------------------------------------------------------------
The paper never prints a task input.  The only concrete input it writes is in the proof of
Theorem 4.6 (App. B.4): ``S_in = <s>, 1, x_1 + n/2, ..., n/2, x_(n/2) + n/2, k`` - the
sequence after ``<s>``, the query appended last, no separator.  B.4 (Counting: "copy the last
query token to the token [that] corresponds to the threshold") and B.8 ("an input sequence
that ends with a query token v and a query threshold k") fix the Counting order.  Hence:

=========  ==================================================  ==========================
task       tokens                                              answer
=========  ==================================================  ==========================
Index      ``<s> t_1 ... t_L i``                               ``t_i``
AR         ``<s> t_1 ... t_L q``                               token after the first q
c-gram     ``<s> t_1 ... t_L q_1 ... q_(c-1)``                  token after the first
                                                               occurrence of q_1..q_(c-1)
Counting   ``<s> t_1 ... t_L q t``                             1 if #{j: t_j = q} > t else 0
=========  ==================================================  ==========================

All t_j, i, q, q_j are numbers in [n] = 1..n.  n defaults to the largest number in the
instance (Def. 4.2 has L = n; we allow any L >= 1 and only need every number <= n).  The
Counting threshold t is a number in 0..n (t in N; t >= L makes the answer 0 anyway), so a
Counting vocabulary starts at 0 (``min_number=0``); its answer is the number 0 or 1 (Def 4.5).

Answers for AR and c-gram use the FIRST occurrence of the key inside t_1..t_L (never one that
runs into the query).  When the key does not occur, or its first occurrence ends at t_L so
that no next token exists, the instance has no answer: ``answer()`` returns ``None`` (what
RETRIEVE of Def A.5 would report as FAILED) and ``validate()`` raises InputError unless
``require_answer=False``.  Occurrences may overlap (``1 1 1`` contains the 2-gram ``1 1``
at positions 1 and 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from constructions.errors import InputError
from constructions.vocab import Token, Vocabulary

BOS = "<s>"


# ---- validation helpers -----------------------------------------------------------------------


def _as_number(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    return value


def _number_list(values: Any, what: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise InputError(f"{what} must be a list of numbers, got {values!r}")
    return tuple(_as_number(v, f"{what}[{i}]") for i, v in enumerate(values))


def _check_range(value: int, lo: int, hi: int, what: str) -> None:
    if not lo <= value <= hi:
        raise InputError(f"{what} = {value} is outside {lo}..{hi}; give a larger n or fix the instance")


def _default_n(numbers: Sequence[int]) -> int:
    return max([1, *numbers])


def _check_n(n: Any) -> int:
    n = _as_number(n, "n")
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    return n


def _first_occurrence(tokens: Sequence[int], key: Sequence[int]) -> int | None:
    """0-based start of the first occurrence of ``key`` in ``tokens`` (None if absent)."""
    c = len(key)
    for i in range(len(tokens) - c + 1):
        if tuple(tokens[i : i + c]) == tuple(key):
            return i
    return None


def _json_object(data: Any, keys: set[str], task: str) -> dict:
    if not isinstance(data, dict):
        raise InputError(f"a {task} instance must be a JSON object with keys {sorted(keys)}, got {data!r}")
    missing = keys - set(data)
    if missing:
        raise InputError(f"{task} instance is missing {sorted(missing)}; expected keys {sorted(keys)} (and optional 'n')")
    extra = set(data) - keys - {"n"}
    if extra:
        raise InputError(f"{task} instance has unknown keys {sorted(extra)}; expected {sorted(keys)} (and optional 'n')")
    return data


# ---- Index (Def 4.2) --------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexInstance:
    """Def 4.2: sequence t_1..t_L and a query position i; answer t_i."""

    seq: tuple[int, ...]
    query: int
    n: int

    @staticmethod
    def make(seq: Sequence[int], query: int, n: int | None = None, validate: bool = True) -> "IndexInstance":
        seq = _number_list(seq, "tokens")
        query = _as_number(query, "query")
        inst = IndexInstance(seq, query, _check_n(n) if n is not None else _default_n([*seq, query]))
        return inst.validate() if validate else inst

    def validate(self, require_answer: bool = True) -> "IndexInstance":
        if not self.seq:
            raise InputError("Index needs at least one token before the query")
        for j, t in enumerate(self.seq, 1):
            _check_range(t, 1, self.n, f"token {j}")
        _check_range(self.query, 1, self.n, "query")
        if self.query > len(self.seq):
            raise InputError(f"Index query {self.query} points past the sequence (length {len(self.seq)}); use 1..{len(self.seq)}")
        return self

    def tokens(self) -> list[Token]:
        return [BOS, *self.seq, self.query]

    def answer(self) -> int:
        return self.seq[self.query - 1]

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.n)

    def to_json(self) -> dict:
        return {"tokens": list(self.seq), "query": self.query, "n": self.n}

    @staticmethod
    def from_json(data: Any) -> "IndexInstance":
        d = _json_object(data, {"tokens", "query"}, "index")
        return IndexInstance.make(d["tokens"], d["query"], d.get("n"))


# ---- Associative Recall (Def 4.3) -------------------------------------------------------------


@dataclass(frozen=True)
class ARInstance:
    """Def 4.3: sequence t_1..t_L over [n] and a query q; answer the token after the first q."""

    seq: tuple[int, ...]
    query: int
    n: int

    @staticmethod
    def make(seq: Sequence[int], query: int, n: int | None = None, validate: bool = True) -> "ARInstance":
        seq = _number_list(seq, "tokens")
        query = _as_number(query, "query")
        inst = ARInstance(seq, query, _check_n(n) if n is not None else _default_n([*seq, query]))
        return inst.validate() if validate else inst

    def validate(self, require_answer: bool = True) -> "ARInstance":
        for j, t in enumerate(self.seq, 1):
            _check_range(t, 1, self.n, f"token {j}")
        _check_range(self.query, 1, self.n, "query")
        if require_answer and self.answer() is None:
            where = "does not occur" if self.query not in self.seq else "occurs first at the last position, so it has no next token"
            raise InputError(f"AR query {self.query} {where} in the sequence; the instance has no answer")
        return self

    def tokens(self) -> list[Token]:
        return [BOS, *self.seq, self.query]

    def answer(self) -> int | None:
        i = _first_occurrence(self.seq, (self.query,))
        if i is None or i + 1 >= len(self.seq):
            return None
        return self.seq[i + 1]

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.n)

    def to_json(self) -> dict:
        return {"tokens": list(self.seq), "query": self.query, "n": self.n}

    @staticmethod
    def from_json(data: Any) -> "ARInstance":
        d = _json_object(data, {"tokens", "query"}, "ar")
        return ARInstance.make(d["tokens"], d["query"], d.get("n"))


# ---- c-gram retrieval (Def 4.4) ---------------------------------------------------------------


@dataclass(frozen=True)
class CGramInstance:
    """Def 4.4: sequence t_1..t_L and a query (c-1)-gram; answer the last token of the first
    c-gram in the sequence that starts with the query.  c = len(query) + 1 >= 2."""

    seq: tuple[int, ...]
    query: tuple[int, ...]
    n: int

    @property
    def c(self) -> int:
        return len(self.query) + 1

    @staticmethod
    def make(seq: Sequence[int], query: Sequence[int], n: int | None = None, validate: bool = True) -> "CGramInstance":
        seq = _number_list(seq, "tokens")
        query = _number_list(query, "query")
        inst = CGramInstance(seq, query, _check_n(n) if n is not None else _default_n([*seq, *query]))
        return inst.validate() if validate else inst

    def validate(self, require_answer: bool = True) -> "CGramInstance":
        if not self.query:
            raise InputError("a c-gram query needs c-1 >= 1 numbers (c >= 2); give a non-empty list")
        for j, t in enumerate(self.seq, 1):
            _check_range(t, 1, self.n, f"token {j}")
        for j, t in enumerate(self.query, 1):
            _check_range(t, 1, self.n, f"query number {j}")
        if require_answer and self.answer() is None:
            raise InputError(
                f"the query {' '.join(map(str, self.query))} is not the prefix of any {self.c}-gram of the "
                "sequence (absent, or only at the very end); the instance has no answer"
            )
        return self

    def tokens(self) -> list[Token]:
        return [BOS, *self.seq, *self.query]

    def answer(self) -> int | None:
        i = _first_occurrence(self.seq, self.query)
        if i is None or i + len(self.query) >= len(self.seq):
            return None
        return self.seq[i + len(self.query)]

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.n)

    def to_json(self) -> dict:
        return {"tokens": list(self.seq), "query": list(self.query), "n": self.n}

    @staticmethod
    def from_json(data: Any) -> "CGramInstance":
        d = _json_object(data, {"tokens", "query"}, "cgram")
        if not isinstance(d["query"], list):
            raise InputError(f"a cgram query must be a list [q1, ..., q_(c-1)], got {d['query']!r}")
        return CGramInstance.make(d["tokens"], d["query"], d.get("n"))


# ---- Counting (Def 4.5) -----------------------------------------------------------------------


@dataclass(frozen=True)
class CountingInstance:
    """Def 4.5: sequence t_1..t_L, query q in [n], threshold t in N; answer 1 iff q occurs more
    than t times, else 0.  The sequence may be empty (the Thm 4.6 reduction makes one)."""

    seq: tuple[int, ...]
    query: int
    threshold: int
    n: int

    @staticmethod
    def make(
        seq: Sequence[int], query: int, threshold: int, n: int | None = None, validate: bool = True
    ) -> "CountingInstance":
        seq = _number_list(seq, "tokens")
        query = _as_number(query, "query")
        threshold = _as_number(threshold, "threshold")
        inst = CountingInstance(
            seq, query, threshold, _check_n(n) if n is not None else _default_n([*seq, query, threshold])
        )
        return inst.validate() if validate else inst

    def validate(self, require_answer: bool = True) -> "CountingInstance":
        for j, t in enumerate(self.seq, 1):
            _check_range(t, 1, self.n, f"token {j}")
        _check_range(self.query, 1, self.n, "query")
        _check_range(self.threshold, 0, self.n, "threshold")
        return self

    def tokens(self) -> list[Token]:
        return [BOS, *self.seq, self.query, self.threshold]

    def count(self) -> int:
        return sum(1 for t in self.seq if t == self.query)

    def answer(self) -> int:
        return 1 if self.count() > self.threshold else 0

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.n, min_number=0)

    def to_json(self) -> dict:
        return {"tokens": list(self.seq), "query": self.query, "threshold": self.threshold, "n": self.n}

    @staticmethod
    def from_json(data: Any) -> "CountingInstance":
        d = _json_object(data, {"tokens", "query", "threshold"}, "count")
        return CountingInstance.make(d["tokens"], d["query"], d["threshold"], d.get("n"))


TaskInstance = IndexInstance | ARInstance | CGramInstance | CountingInstance

TASKS: dict[str, type] = {
    "index": IndexInstance,
    "ar": ARInstance,
    "cgram": CGramInstance,
    "count": CountingInstance,
}


def from_json(task: str, data: Any) -> TaskInstance:
    """Parse one instance of ``task`` ("index", "ar", "cgram", "count") from its JSON shape."""
    try:
        cls = TASKS[task]
    except KeyError:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}") from None
    return cls.from_json(data)
