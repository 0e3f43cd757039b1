"""The lower-bound arguments of Theorems 4.6 / 4.7 and Proposition 5.1, made constructive.

* Lemma B.24 (two-party Index): :func:`index_from_bits`, :func:`two_party_run`,
  :func:`bob_reconstructs` (Bob, holding only Alice's message, recovers all of x).
* Theorem 4.6's reductions from Index (App B.4): :func:`ar_from_index`,
  :func:`cgram_from_index`, :func:`counting_from_index`, each with ``literal=True`` for the
  construction exactly as printed (which does NOT preserve the answer; notes/errata/tasks.md)
  and the smallest fix as the default; ``decode_*`` maps the task answer back to x_k.
* Proposition 5.1: Index instances with kappa at every even position, and
  :class:`Prop51ARSimulator`, the O(log n)-bit streaming answerer of AR queries.
* Lemma B.26 / B.28 and Figure 3: :func:`figure3_graph`, :func:`b28_graph`,
  :func:`xor_prefix`.
* :func:`find_fooling_pair`: for ANY recurrent model (a Python ``step(state, token)``) and a
  two-party family, a pigeonhole search for two inputs that reach the same state but need
  different answers - the concrete instance the model must get wrong.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from constructions.model import Model
from constructions.numerics import Arithmetic
from constructions.errors import InputError
from constructions.vocab import Token, detokenize

from .graphs import BOS, EDGE, Graph
from .tasks import ARInstance, CGramInstance, CountingInstance, IndexInstance


def _bits(x: Sequence[int], what: str = "x") -> tuple[int, ...]:
    x = tuple(x)
    if not x or any(b not in (0, 1) or isinstance(b, bool) for b in x):
        raise InputError(f"{what} must be a non-empty string of bits 0/1, got {x!r}")
    return x


def _check_k(k: int, lo: int, hi: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not lo <= k <= hi:
        raise InputError(f"index k = {k!r} must be in {lo}..{hi}")


# ---- Lemma B.24: Index as a two-party game ----------------------------------------------------


def index_from_bits(x: Sequence[int], k: int) -> IndexInstance:
    """Alice's x in {0,1}^N and Bob's k as an Index instance: tokens x_i + 1 in {1, 2} (numbers
    are 1..n), query k; the answer is x_k + 1.  n = max(N, 2)."""
    x = _bits(x)
    _check_k(k, 1, len(x))
    return IndexInstance.make([b + 1 for b in x], k, max(len(x), 2))


def decode_index(answer: int) -> int:
    return answer - 1


# ---- Theorem 4.6: Index -> AR, c-gram retrieval, Counting ------------------------------------


def ar_from_index(x: Sequence[int], k: int, literal: bool = False) -> ARInstance:
    """B.4: ``<s>, 1, x_1 + n/2, 2, x_2 + n/2, ..., n/2, x_(n/2) + n/2, k`` with n = 2N.

    As printed (``literal=True``) the value x_i + n/2 = n/2 collides with the key n/2 when
    x_i = 0, so AR on key N can return the key N itself (x = (0, 1), k = 2).  Fix (default):
    values x_i + N + 1; n = max(2N, N + 2)."""
    x = _bits(x)
    N = len(x)
    _check_k(k, 1, N)
    base = N if literal else N + 1
    seq = [t for i, b in enumerate(x, 1) for t in (i, b + base)]
    return ARInstance.make(seq, k, max(2 * N, base + 1), validate=False).validate(require_answer=not literal)


def decode_ar(answer: int | None, N: int, literal: bool = False) -> int | None:
    return None if answer is None else answer - (N if literal else N + 1)


def cgram_from_index(x: Sequence[int], k: int, c: int, literal: bool = False) -> CGramInstance:
    """B.4: blocks ``i, ..., i`` (c - 1 copies) then ``x_i + n/c``, n = cN; query ``k ... k``.

    As printed the value N = n/c collides with the key N (x_(N-1) = 0 or, for c = 2, any
    earlier x_i = 0), so the first occurrence of ``N ... N`` can start at a value (c = 3,
    x = (0, 1), k = 2).  Fix (default): values x_i + N + 1; n = max(cN, N + 2)."""
    x = _bits(x)
    N = len(x)
    _check_k(k, 1, N)
    if isinstance(c, bool) or not isinstance(c, int) or c < 2:
        raise InputError(f"c-gram retrieval needs c >= 2, got {c!r}")
    base = N if literal else N + 1
    seq = [t for i, b in enumerate(x, 1) for t in [i] * (c - 1) + [b + base]]
    inst = CGramInstance.make(seq, [k] * (c - 1), max(c * N, base + 1), validate=False)
    return inst.validate(require_answer=not literal)


def decode_cgram(answer: int | None, N: int, literal: bool = False) -> int | None:
    return decode_ar(answer, N, literal)


def counting_from_index(x: Sequence[int], k: int, literal: bool = False) -> CountingInstance:
    """B.4: the string ``j_1 j_2 ... j_K`` of the j with x_j = 1 (increasing), query k.

    As printed the threshold is 1; with Def 4.5's "greater than t" and each j at most once the
    answer is then always 0.  Fix (default): threshold 0 (count > 0 iff x_k = 1)."""
    x = _bits(x)
    _check_k(k, 1, len(x))
    seq = [j for j, b in enumerate(x, 1) if b]
    return CountingInstance.make(seq, k, 1 if literal else 0, max(len(x), 1))


def decode_counting(answer: int) -> int:
    return answer


# ---- Recurrent models and the two-party simulation -------------------------------------------


def _default_encode(state: Any) -> bytes:
    return repr(state).encode()


@dataclass(frozen=True)
class RecurrentModel:
    """Any model with a recurrent state: ``state = step(state, token)`` from ``init``.

    ``encode`` maps a state to bytes (two states are the same iff their encodings are);
    ``state_bits`` is the model's memory budget M (optional: then at most 2^M distinct
    encodings may appear, and the finder checks that); ``readout`` (optional) is the model's
    answer from its final state - any CoT it would write is a function of that state too.
    """

    init: Any
    step: Callable[[Any, Token], Any]
    encode: Callable[[Any], bytes] = _default_encode
    readout: Callable[[Any], Token] | None = None
    state_bits: int | None = None
    name: str = "model"

    def run(self, tokens: Iterable[Token], state: Any = None) -> Any:
        s = self.init if state is None else state
        for t in tokens:
            s = self.step(s, t)
        return s


def two_party_run(model: RecurrentModel, alice: Sequence[Token], bob: Sequence[Token]) -> tuple[bytes, Any]:
    """B.4's key observation: Alice runs the model on her part and sends the state (the
    message); Bob continues from it.  Returns (message, Bob's final state)."""
    message = model.run(alice)
    return model.encode(message), model.run(bob, state=message)


def bob_reconstructs(model: RecurrentModel, message_state: Any, N: int, bob_tokens: Callable[[int], Sequence[Token]],
                     decode: Callable[[Token], int]) -> tuple[int, ...]:
    """Proof of Lemma B.24: the message does not depend on k, so Bob can answer every k from
    the same message and so recovers all of x.  Needs ``model.readout``."""
    if model.readout is None:
        raise InputError("Bob needs the model's readout to answer from a state")
    return tuple(decode(model.readout(model.run(bob_tokens(k), state=message_state))) for k in range(1, N + 1))


# ---- Lemma B.26 / B.28 and Figure 3 ------------------------------------------------------------


def figure3_graph(x: Sequence[int], k: int) -> Graph:
    """Sec 4.2.2 / Figure 3: n = |x| + 2 vertices; a ~ x_a + n - 1 for a in [n-2] (Alice's
    edges, in order of a), then k ~ k + 1 for k in [n-3] (Bob's edge, last).  A tree iff
    x_k != x_(k+1).  Figure 3 itself lists the same edges in another order."""
    x = _bits(x)
    n = len(x) + 2
    if n < 4:
        raise InputError(f"the Figure-3 family needs |x| >= 2 (n >= 4), got |x| = {len(x)}")
    _check_k(k, 1, n - 3)
    return Graph.make(n, [(a, b + n - 1) for a, b in enumerate(x, 1)] + [(k, k + 1)])


def b28_graph(x: Sequence[int], k: int) -> Graph:
    """Lemma B.26's reduction from B.28: N + 2 nodes, i ~ N+1 if x_i = 0 else i ~ N+2, and
    k-1 ~ k (k in 2..N).  "Bob's answer [x_k = x_(k-1)] is False iff the graph is a tree".
    The same graph as ``figure3_graph(x, k - 1)``."""
    x = _bits(x)
    N = len(x)
    _check_k(k, 2, N)
    return Graph.make(N + 2, [(i, N + 1 if b == 0 else N + 2) for i, b in enumerate(x, 1)] + [(k - 1, k)])


def xor_prefix(x: Sequence[int]) -> tuple[int, ...]:
    """B.28's x~_i = (x_1 + ... + x_i) mod 2, with x~_0 = 0 put in front (index 0), so that
    x_k = 0 iff x~_k = x~_(k-1) for every k in 1..N (k = 1 needs x~_0; erratum B28-E1)."""
    x = _bits(x)
    out = [0]
    for b in x:
        out.append(out[-1] ^ b)
    return tuple(out)


def b28_claim_as_printed(x: Sequence[int], k: int) -> bool:
    """Whether "x_k = x_(k-1) iff x~_k = x~_(k-1)" (as printed) holds for this x and k >= 2."""
    x = _bits(x)
    xt = xor_prefix(x)
    return (x[k - 1] == x[k - 2]) == (xt[k] == xt[k - 1])


# ---- Proposition 5.1 --------------------------------------------------------------------------


def kappa_sequence(odd_tokens: Sequence[int], kappa: int, length: int | None = None) -> list[int]:
    """Prop 5.1's special Index input: t_(2j-1) = odd_tokens[j-1], t_(2j) = kappa; ``length``
    (default 2 * len(odd_tokens)) may cut the last kappa (odd length)."""
    seq = [t for o in odd_tokens for t in (o, kappa)]
    return seq[: len(seq) if length is None else length]


def kappa_index_instance(odd_tokens: Sequence[int], query: int, n: int | None = None,
                         odd_length: bool = False) -> IndexInstance:
    """Prop 5.1 as printed: odd tokens "uniformly random" from [n-1], kappa = n (a number that
    no odd position holds, so kappa's first occurrence is position 2)."""
    odd = list(odd_tokens)
    n = n if n is not None else max([2, *(o + 1 for o in odd)])
    if any(not 1 <= o <= n - 1 for o in odd):
        raise InputError(f"odd-position tokens must be in 1..{n - 1} (kappa = {n} is reserved)")
    seq = kappa_sequence(odd, n, 2 * len(odd) - 1 if odd_length else None)
    return IndexInstance.make(seq, query, n)


def kappa_permutation_instance(perm: Sequence[int], query: int) -> IndexInstance:
    """The fixed family: odd positions hold a permutation of [N], kappa = N + 1, L = 2N.  Every
    q in [n] (n = N + 1) is then a well-posed AR key, and Index on it still carries
    log2(N!) bits, so the lower bound is unchanged."""
    perm = list(perm)
    if sorted(perm) != list(range(1, len(perm) + 1)) or len(perm) < 2:
        raise InputError(f"need a permutation of 1..N with N >= 2, got {perm!r}")
    return IndexInstance.make(kappa_sequence(perm, len(perm) + 1), query, len(perm) + 1)


@dataclass
class Prop51ARSimulator:
    """The RNN-side simulation of the AR oracle in Prop 5.1's proof: it streams the input once
    and keeps O(log n) bits - kappa, the position counter (to 3) and the third token - and
    answers an AR query q with kappa if q != kappa, else the third token."""

    kappa: int
    seen: int = 0
    third: int | None = None

    def observe(self, token: Token) -> None:
        if token == BOS:
            return
        self.seen = min(self.seen + 1, 3)
        if self.seen == 3 and self.third is None:
            self.third = token  # type: ignore[assignment]

    def ar(self, q: int) -> int | None:
        return self.kappa if q != self.kappa else self.third

    @staticmethod
    def after(tokens: Iterable[Token], kappa: int) -> "Prop51ARSimulator":
        sim = Prop51ARSimulator(kappa)
        for t in tokens:
            sim.observe(t)
        return sim


# ---- two-party families and the fooling-pair finder -------------------------------------------


@dataclass(frozen=True)
class TwoPartyFamily:
    """Inputs split as Alice's part (header, then one chunk per bit of x in {0,1}^N) and Bob's
    part (tokens from his k); ``answer(x, k)`` is the task's reference answer."""

    name: str
    N: int
    header: tuple[Token, ...]
    chunk: Callable[[int, int], Sequence[Token]]  # (i in 1..N, bit) -> tokens
    bob_inputs: tuple[int, ...]
    bob_tokens: Callable[[int], Sequence[Token]]
    answer: Callable[[tuple[int, ...], int], Any]
    instance: Callable[[tuple[int, ...], int], Any]

    def alice_tokens(self, x: Sequence[int]) -> list[Token]:
        out = list(self.header)
        for i, b in enumerate(x, 1):
            out += list(self.chunk(i, b))
        return out

    def tokens(self, x: Sequence[int], k: int) -> list[Token]:
        return self.alice_tokens(x) + list(self.bob_tokens(k))


def index_family(N: int) -> TwoPartyFamily:
    """Lemma B.24: ``<s> x_1+1 ... x_N+1 k``."""
    return TwoPartyFamily(
        f"Index(N={N})", N, (BOS,), lambda i, b: (b + 1,), tuple(range(1, N + 1)), lambda k: (k,),
        lambda x, k: x[k - 1] + 1, index_from_bits,
    )


def ar_family(N: int) -> TwoPartyFamily:
    """Theorem 4.6 (fixed reduction): ``<s> 1 x_1+N+1 ... N x_N+N+1 k``."""
    return TwoPartyFamily(
        f"AR(N={N})", N, (BOS,), lambda i, b: (i, b + N + 1), tuple(range(1, N + 1)), lambda k: (k,),
        lambda x, k: x[k - 1] + N + 1, ar_from_index,
    )


def istree_family(n: int) -> TwoPartyFamily:
    """Theorem 4.7 / Figure 3: Alice's edges ``a ~ x_a+n-1`` then Bob's edge ``k ~ k+1``."""
    if n < 4:
        raise InputError(f"the IsTree family needs n >= 4, got {n}")
    return TwoPartyFamily(
        f"IsTree(n={n})", n - 2, (BOS,), lambda a, b: (a, EDGE, b + n - 1), tuple(range(1, n - 2)),
        lambda k: (k, EDGE, k + 1), lambda x, k: "YES" if x[k - 1] != x[k] else "NO", figure3_graph,
    )


@dataclass
class FoolingPair:
    """Two instances that reach the same state but need different answers."""

    family: str
    x_a: tuple[int, ...]
    x_b: tuple[int, ...]
    k: int
    tokens_a: list[Token]
    tokens_b: list[Token]
    answer_a: Any
    answer_b: Any
    state: bytes
    model_answer: Any = None
    prefixes_tried: int = 0
    distinct_states: int = 0

    @property
    def wrong(self) -> list[list[Token]]:
        """The instance(s) the model gets wrong: one for sure (both share one answer)."""
        if self.model_answer is None:
            return [self.tokens_a, self.tokens_b]
        return [t for t, a in ((self.tokens_a, self.answer_a), (self.tokens_b, self.answer_b)) if a != self.model_answer]

    def describe(self) -> str:
        lines = [
            f"fooling pair for {self.family} after {self.prefixes_tried} prefixes ({self.distinct_states} distinct states):",
            f"  A: {detokenize(self.tokens_a)}   needs {self.answer_a}",
            f"  B: {detokenize(self.tokens_b)}   needs {self.answer_b}",
            f"  same final state ({len(self.state)} bytes: {self.state[:32].hex()}{'...' if len(self.state) > 32 else ''})",
        ]
        if self.model_answer is not None:
            lines.append(f"  the model answers {self.model_answer} on both; wrong on: "
                         + " | ".join(detokenize(t) for t in self.wrong))
        else:
            lines.append("  whatever the model answers (or writes as CoT), one of the two is wrong")
        return "\n".join(lines)


def _prefix_states(model: RecurrentModel, family: TwoPartyFamily) -> Iterator[tuple[tuple[int, ...], Any]]:
    """(x, state after Alice's tokens) for every x in {0,1}^N, lexicographically, sharing the
    states of common prefixes (2^(N+1) steps of chunks instead of N 2^N)."""
    start = model.run(family.header)
    stack: list[tuple[tuple[int, ...], Any]] = [((), start)]
    while stack:
        x, s = stack.pop()
        if len(x) == family.N:
            yield x, s
            continue
        i = len(x) + 1
        for b in (1, 0):  # pushed 1 first so 0 pops first: lexicographic order
            stack.append((x + (b,), model.run(family.chunk(i, b), state=s)))


def find_fooling_pair(model: RecurrentModel, family: TwoPartyFamily, max_prefixes: int | None = None) -> FoolingPair | None:
    """Pigeonhole search: run Alice's part for x = 0...0, 0...01, ...; key states by
    ``model.encode``; when two x reach the same state, look for a k of Bob's on which their
    answers differ, then re-run both full inputs from scratch to confirm one final state.

    Returns None when no pair exists among the first ``max_prefixes`` x (default all 2^N;
    with ``model.state_bits = M`` enumerating 2^M + 1 pairwise-distinguishable x suffices).
    Raises InputError when the model shows more than 2^M distinct states although it declared
    M bits.
    """
    buckets: dict[bytes, list[tuple[int, ...]]] = {}
    tried = 0
    for x, s in _prefix_states(model, family):
        if max_prefixes is not None and tried >= max_prefixes:
            break
        tried += 1
        key = model.encode(s)
        for other in buckets.get(key, []):
            for k in family.bob_inputs:
                ans_a, ans_b = family.answer(other, k), family.answer(x, k)
                if ans_a == ans_b:
                    continue
                ta, tb = family.tokens(other, k), family.tokens(x, k)
                fa, fb = model.run(ta), model.run(tb)
                ea, eb = model.encode(fa), model.encode(fb)
                if ea != eb:
                    raise AssertionError("same state after Alice's part but different final states: step is not a function")
                return FoolingPair(
                    family.name, other, x, k, ta, tb, ans_a, ans_b, ea,
                    model.readout(fa) if model.readout else None, tried, len(buckets),
                )
        buckets.setdefault(key, []).append(x)
        if model.state_bits is not None and len(buckets) > 2 ** model.state_bits:
            raise InputError(
                f"{model.name} declared {model.state_bits} state bits but reached {len(buckets)} distinct states"
            )
    return None


# ---- demonstration models ---------------------------------------------------------------------


def _bitlen(n: int) -> int:
    return max(1, int(n).bit_length())


def hashed_ar_model(slots: int, n: int, hash_fn: Callable[[int], int] | None = None) -> RecurrentModel:
    """An RNN that solves AR by storing a hash of the keys: a table of ``slots`` cells; on
    token t after token p it writes t into cell h(p) if that cell is empty (first occurrence
    wins, as in Def 4.3); it answers a query q with cell h(q).  h defaults to ``key % slots``,
    injective on 1..n when slots > n, and then the model answers every answerable AR
    instance correctly; with fewer slots distinct keys share a cell.  State: the previous
    token and the table, (slots + 1) * bitlen(n + 1) bits."""
    h = hash_fn or (lambda key: key % slots)

    def step(state, token):
        prev, table = state
        if token == BOS:
            return (None, table)
        if prev is not None and table[h(prev)] == 0:
            table = table[: h(prev)] + (token,) + table[h(prev) + 1 :]
        return (token, table)

    def readout(state):
        prev, table = state
        return table[h(prev)] if prev is not None else None

    return RecurrentModel(
        (None, (0,) * slots), step, readout=readout, state_bits=(slots + 1) * _bitlen(n + 1),
        name=f"hashed-AR RNN ({slots} slots)",
    )


def truncated_state_model(bits: int, salt: int = 0) -> RecurrentModel:
    """A generic M-bit recurrent model: state in [0, 2^M), ``step = hash(state, token) mod 2^M``
    (BLAKE2b): every step function with an M-bit state is fooled the same way."""
    mask = (1 << bits) - 1

    def step(state: int, token: Token) -> int:
        d = hashlib.blake2b(f"{salt}:{state}:{token}".encode(), digest_size=8).digest()
        return int.from_bytes(d, "big") & mask

    return RecurrentModel(0, step, encode=lambda s: s.to_bytes((bits + 7) // 8 or 1, "big"), state_bits=bits,
                          name=f"truncated {bits}-bit state")


def full_memory_model() -> RecurrentModel:
    """Remembers every token (state = the tuple): never fooled; a control for the finder."""
    return RecurrentModel((), lambda s, t: s + (t,), name="full memory")


def all_bit_strings(N: int) -> Iterator[tuple[int, ...]]:
    return itertools.product((0, 1), repeat=N)


def linear_rnn_recurrent_model(model: Model, arith: Arithmetic | None = None) -> RecurrentModel:
    """One of our own linear-RNN models (Def 3.6) as a :class:`RecurrentModel`.

    The state is the tuple of every layer's h_t, advanced by
    :func:`constructions.recurrent_state.step` with the reference evaluator's exact
    arithmetic; ``state_bits`` is Lambda x p (state dims that can be non-zero, times p).
    The readout is the model's own next token from that state.
    """
    from constructions import recurrent_state

    ar = arith or Arithmetic()
    return RecurrentModel(
        init=recurrent_state.initial_state(model),
        step=lambda s, t: recurrent_state.step(model, s, t, ar),
        encode=lambda s: s.memory_bytes(),
        readout=lambda s: recurrent_state.next_token(model, s, ar),
        state_bits=model.state_bits(),
        name=str(model.meta.get("construction", model.meta.get("name", "linear RNN"))),
    )
