"""The reference evaluator: short, exact, one sequence at a time, Python ints throughout.

It implements Definitions 3.1-3.6 and 5.5 with A.2's semantics and nothing else:

* embedding (A.3): X[:, l] = word(S_l) + l * w_d;
* every affine map ``W x + b`` is one operator: computed exactly, rounded once per output
  (``matmul="round_once"``) or with each scalar product rounded (``"round_products"``);
* attention scores ``(W_K X)^T (W_Q X)`` are exact; softmax(scores / sqrt(d) + C) is one
  certified-rounded operator (:func:`numerics.softmax_column`), d being the residual width;
* the ReGLU product is an elementwise product, rounded; residual sums of R_p values are exact
  and range-checked;
* the next token is argmax over the vocabulary of the logits ``W_E x_l`` (or the model's
  explicit ``unembed``); ties go to the lowest token id (numbers before specials, as in
  :mod:`constructions.vocab`).  The output softmax is monotone, so argmax over its exact
  values is argmax over the logits.

Range checks: every operator checks its entries position by position and, within a position,
dimension by dimension (affine maps, residual sums, the ReGLU product, scores, logits, the input
of forward_residual), so the first overflow raised is the first in that order.  In saturate mode
an entry clipped at all (a rounded product under round_products, its sum, or both) is listed
once in ``saturations``.  The tied W_E is checked at readout with the run's arithmetic and the
last position (a vocabulary number beyond the integers of R_p overflows there).

Decoding sessions are incremental: the same layer code runs on the new tokens only, after a
cached :class:`PrefixState` (keys and values per head, the last state per linear unit).

The step-by-step specification these functions follow is notes/numerics.md section 4.

It knows nothing about tasks or constructions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import Location, PrecisionOverflow, TokenError
from .model import FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros
from .numerics import Arithmetic, Precision, div_round, softmax_column
from .vocab import Token


@dataclass
class ForwardResult:
    residual: np.ndarray  # d x l scaled ints after the last layer
    logits: list[int]  # scaled ints, one per token id
    next_token: Token
    saturations: list[str] = field(default_factory=list)  # locations clipped in saturate mode
    trace: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (stage, d x l) if asked


class _Run:
    """State of one forward pass: precision, semantics, and what saturated."""

    def __init__(self, model: Model, arith: Arithmetic):
        self.model = model
        self.prec = model.precision
        self.arith = arith
        self.saturations: list[str] = []
        self.bound = self.prec.max_scaled  # |q| <= M: q is in R_p
        self.scale = self.prec.scale  # 2^F
        self.fine_bound = self.bound * self.scale  # the same bound on the 2^-2F grid

    def check(self, q: int, where: Where, clipped: bool = False) -> int:
        """Range-check one entry; ``clipped``: a rounded product of this entry was already clipped
        (saturate mode), so the entry is listed once in ``saturations`` whatever else clips.
        An entry in range and not clipped has nothing to report: ``where`` is not even built."""
        if not clipped and -self.bound <= q <= self.bound:
            return q
        where = at(where)
        out = self.prec.check(q, where, self.arith)
        if out != q or clipped:
            self.saturations.append(str(where))
        return out

    def check_fine(self, s: int, where: Where, clipped: bool = False) -> int:
        """Range-check (not round) a value held on the 2^-2F grid (``clipped`` as in check)."""
        bound = self.fine_bound
        if -bound <= s <= bound:
            if clipped:
                self.saturations.append(str(at(where)))
            return s
        where = at(where)
        if self.arith.overflow == "saturate":
            self.saturations.append(str(where))
            return bound if s > 0 else -bound
        raise PrecisionOverflow(self.prec, Fraction(s, self.prec.scale**2), where)

    def round_fine(self, q: int, where: Where) -> int:
        """Round a value held on the 2^-2F grid (a product of two R_p values) to R_p."""
        return self.check(div_round(q, self.scale, self.arith.tie), where)

    def products(self, pairs: Iterable[tuple[int, int]], where: Where) -> tuple[int, bool]:
        """The round_products reading of one entry: sum_j ROUND(a_j b_j), every scalar product
        rounded into R_p and range-checked (raise mode: the first out-of-range product raises).
        Returns (the exact sum of the rounded products, whether any product was clipped); the
        caller range-checks the sum at the same Location and lists the entry once."""
        prec, tie = self.prec, self.arith.tie
        total, clipped = 0, False
        for a, b in pairs:
            q = div_round(a * b, prec.scale, tie)
            if not -prec.max_scaled <= q <= prec.max_scaled:
                q = prec.check(q, at(where), self.arith)  # raises unless saturate mode
                clipped = True
            total += q
        return total, clipped

    def affine(
        self,
        W: np.ndarray,
        X: np.ndarray,
        b: np.ndarray | None,
        where: Location,
        rows: Sequence[str] | None = None,
        first_position: int = 1,
    ) -> np.ndarray:
        """round(W X + b) column by column, per the matmul reading.  The sum over j runs over
        the j with W[i, j] != 0 and X[j, k] != 0 only (the shorter of the two :func:`nonzero`
        lists): a zero term adds exactly 0, and under round_products its product rounds to 0 and
        never clips, so the result is the sum over every j."""
        out = zeros(W.shape[0], X.shape[1])
        scale = self.prec.scale
        Wi = int_rows(W)
        w_support = [nonzero(w) for w in Wi]
        for k in range(X.shape[1]):
            x = [int(v) for v in X[:, k]]
            x_support = nonzero(x)
            for i in range(W.shape[0]):
                bias = int(b[i]) if b is not None else 0
                loc = partial(Location, where.layer, where.sublayer, where.head, k + first_position,
                              rows[i] if rows else str(i))  # built only if reported
                w = Wi[i]
                terms = w_support[i] if len(w_support[i]) < len(x_support) else x_support
                if self.arith.matmul == "round_once":
                    acc = sum(w[j] * x[j] for j in terms) + bias * scale
                    out[i, k] = self.round_fine(acc, loc)
                else:
                    acc, clipped = self.products(((w[j], x[j]) for j in terms), loc)
                    out[i, k] = self.check(acc + bias, loc, clipped)
        return out

    def add(
        self, A: np.ndarray, B: np.ndarray, where: Location, rows: Sequence[str], first_position: int = 1
    ) -> np.ndarray:
        """Exact sum of two R_p matrices, range-checked position by position (as affine maps)."""
        out = zeros(*A.shape)
        for k in range(A.shape[1]):
            for i in range(A.shape[0]):
                loc = partial(Location, where.layer, where.sublayer, where.head, k + first_position, rows[i])
                out[i, k] = self.check(int(A[i, k]) + int(B[i, k]), loc)
        return out


Where = Location | Callable[[], Location]
"""A Location, or a function that builds it (the hot loops build a location only when an entry
is reported: an overflow or a saturation)."""


def at(where: Where) -> Location:
    """The Location itself."""
    return where() if callable(where) else where


def nonzero(values: Sequence[int]) -> list[int]:
    """The indices j with values[j] != 0: the terms of a sum of products with values[j] that can
    differ from 0 (a speed-up only; every operator's result is the sum over all j)."""
    return [j for j, v in enumerate(values) if v]


def int_rows(W: np.ndarray) -> list[list[int]]:
    """W as Python ints, row by row (read once per operator instead of once per entry)."""
    return [[int(v) for v in row] for row in W]


@dataclass
class PrefixState:
    """What positions 1..length of a sequence leave to the positions after them (Def 3.1 / 3.5
    are causal): per attention head its key and value columns K = R(W_K X), V = R(W_V X) (k x
    length, d x length), per linear unit its last state h_length.  Everything else of a layer is
    position-wise.  The full forward pass is the run from the empty state."""

    length: int = 0
    keys: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (layer, head) -> K
    values: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (layer, head) -> V
    states: dict[int, list[int]] = field(default_factory=dict)  # layer -> h_length

    def copy(self) -> "PrefixState":
        """A copy a step can extend without touching this one (the layers replace entries with
        new arrays / lists, never change them in place)."""
        return PrefixState(self.length, dict(self.keys), dict(self.values), dict(self.states))


def embed(model: Model, tokens: Sequence[Token], run: _Run, first_position: int = 1) -> np.ndarray:
    """A.3: number i -> i*w_1, k-th special token -> w_(2+k), position l -> l*w_d.
    ``tokens`` sit at positions first_position, first_position + 1, ... (a session's new tokens)."""
    vocab, d, scale = model.vocab, model.d, run.prec.scale
    model.check_length(first_position - 1 + len(tokens))
    X = zeros(d, len(tokens))
    names = model.layout.names
    for c, tok in enumerate(tokens):
        l = first_position + c
        vocab.check(tok)
        if isinstance(tok, int):
            X[0, c] = run.check(tok * scale, Location(sublayer="embedding", position=l, dim=names[0]))
        else:
            X[1 + vocab.special_rank(tok), c] = scale
        X[d - 1, c] = run.check(l * scale, Location(sublayer="embedding", position=l, dim=names[-1]))
    return X


def tied_unembed(model: Model, run: "_Run | None" = None, position: int | None = None) -> np.ndarray:
    """W_E of A.3 as a |V| x d matrix of scaled ints (row = the token's word embedding).

    A number token i whose value i is not in R_p overflows at
    ``Location(sublayer="output embedding W_E", position=position, dim=str(i))``; with a ``run``
    the check follows its arithmetic (raise, or saturate and list the location), without one it
    raises.  The forward pass uses the last position (the column the logits are read from)."""
    prec = model.precision
    vocab = model.vocab
    W = zeros(len(vocab), model.d)
    for tid, tok in enumerate(vocab.all_tokens()):
        if isinstance(tok, int):
            where = Location(sublayer="output embedding W_E", position=position, dim=str(tok))
            W[tid, 0] = run.check(tok * prec.scale, where) if run is not None else prec.check(tok * prec.scale, where)
        else:
            W[tid, 1 + vocab.special_rank(tok)] = prec.scale
    return W


def _score_location(layer: int, head: int, query: int, key: int) -> Location:
    return Location(layer, "attention.scores", head, query, f"key position {key}")


def attention(layer: TransformerLayer, X: np.ndarray, li: int, run: _Run, state: PrefixState) -> np.ndarray:
    """Sum of heads of Def 3.1 for the columns X at positions t0 + 1 .. t0 + l (t0 =
    state.length); keys and values of positions 1..t0 come from ``state``, which gets the new
    ones appended (the caller keeps the old state if this raises)."""
    names = run.model.layout.names
    d, l = X.shape
    t0 = state.length
    F = run.prec.F
    total = zeros(d, l)
    for hi, head in enumerate(layer.heads, start=1):
        where = Location(li, "attention", hi)
        K = run.affine(head.W_K, X, None, Location(li, "attention.keys", hi), None, t0 + 1)
        Q = run.affine(head.W_Q, X, None, Location(li, "attention.queries", hi), None, t0 + 1)
        V = run.affine(head.W_V, X, None, Location(li, "attention.values", hi), names, t0 + 1)
        if t0:
            K = np.concatenate([state.keys[li, hi], K], axis=1)
            V = np.concatenate([state.values[li, hi], V], axis=1)
        state.keys[li, hi], state.values[li, hi] = K, V
        P = zeros(t0 + l, l)  # P[j, c]: weight of key position j + 1 for query position t0 + c + 1
        keys = int_rows(K.T)  # keys[j]: the key column of position j + 1
        for c in range(l):
            k = t0 + c
            q = [int(v) for v in Q[:, c]]
            support = nonzero(q)  # the score's sum runs over these i only (zero terms add 0)
            scores = []
            for j in range(k + 1):  # causal mask C: position j attends only to j <= k
                loc = partial(_score_location, li, hi, k + 1, j + 1)  # built only if reported
                clipped = False
                key = keys[j]
                if run.arith.matmul == "round_once":
                    s = sum(key[i] * q[i] for i in support)
                else:
                    s, clipped = run.products(((key[i], q[i]) for i in support), loc)
                    s *= run.prec.scale
                # the exact score must be a number a p-bit machine can hold
                s = run.check_fine(s, loc, clipped)
                scores.append(s)
            for j, q in enumerate(softmax_column(scores, 2 * F, d, run.prec, run.arith.tie)):
                P[j, c] = q
        head_out = run.affine(V, P, None, where, names, t0 + 1)
        total = run.add(total, head_out, Location(li, "attention (sum of heads)"), names, t0 + 1)
    return total


def linear_unit(
    layer: LinearRNNLayer, X: np.ndarray, li: int, run: _Run, state: PrefixState | None = None,
    h0: Sequence[int] | None = None,
) -> np.ndarray:
    """h_t = A h_(t-1) + B X_t as one rounded affine operator per step, for the columns X at
    positions t0 + 1 .. t0 + l (t0 = state.length); h_0 = 0, h_t0 from ``state``, which gets the
    last new state (the caller keeps the old state if this raises).  Without a state: positions
    from 1, starting from ``h0`` (default 0)."""
    if state is None:
        state = PrefixState(states={li: [int(v) for v in h0]} if h0 is not None else {})
    names = run.model.layout.names
    d, l = X.shape
    t0 = state.length
    H = zeros(d, l)
    prev = state.states.get(li, [0] * d)
    A, B = int_rows(layer.A), int_rows(layer.B)
    for t in range(l):
        x = [int(v) for v in X[:, t]]
        h_support, x_support = nonzero(prev), nonzero(x)  # the sums run over these j only (zero terms add 0)
        for i in range(d):
            loc = partial(Location, li, "linear_unit", None, t0 + t + 1, names[i])
            a, bi = A[i], B[i]
            if run.arith.matmul == "round_once":
                acc = sum(a[j] * prev[j] for j in h_support) + sum(bi[j] * x[j] for j in x_support)
                H[i, t] = run.round_fine(acc, loc)
            else:
                pairs = [(a[j], prev[j]) for j in h_support] + [(bi[j], x[j]) for j in x_support]
                acc, clipped = run.products(pairs, loc)
                H[i, t] = run.check(acc, loc, clipped)
        prev = [int(v) for v in H[:, t]]
    state.states[li] = prev
    return H


def feed_forward(ffn: FeedForward, Y: np.ndarray, li: int, run: _Run, first_position: int = 1) -> np.ndarray:
    names = run.model.layout.names
    hidden = ffn.hidden_names or None
    H1 = run.affine(ffn.W1, Y, ffn.b1, Location(li, "ffn.W1"), hidden, first_position)
    H2 = run.affine(ffn.W2, Y, ffn.b2, Location(li, "ffn.W2"), hidden, first_position)
    G = zeros(*H1.shape)
    for k in range(H1.shape[1]):  # position-first, as every other operator
        for i in range(H1.shape[0]):
            relu = max(int(H1[i, k]), 0)
            loc = partial(Location, li, "ffn.product", None, k + first_position, hidden[i] if hidden else str(i))
            G[i, k] = run.round_fine(relu * int(H2[i, k]), loc)
    return run.affine(ffn.W3, G, ffn.b3, Location(li, "ffn.W3"), names, first_position)


def run_layers(
    model: Model, X: np.ndarray, run: _Run, stages: list | None, state: PrefixState | None = None
) -> np.ndarray:
    """All layers of Def 3.2 / 3.6 / 5.5 on the residual stream X: the columns at positions
    state.length + 1, ... after a prefix whose ``state`` is given (default: no prefix).  The
    state is updated in place to cover X's positions too."""
    names = model.layout.names
    state = PrefixState() if state is None else state
    t0 = state.length
    for li, layer in enumerate(model.layers, start=1):
        if isinstance(layer, TransformerLayer):
            mixed = attention(layer, X, li, run, state)
            sub = "attention"
        else:
            mixed = linear_unit(layer, X, li, run, state)
            sub = "linear_unit"
        Y = run.add(X, mixed, Location(li, f"residual after {sub}"), names, t0 + 1)
        X = run.add(Y, feed_forward(layer.ffn, Y, li, run, t0 + 1), Location(li, "residual after ffn"), names, t0 + 1)
        if stages is not None:
            stages += [(f"layer {li} after {sub}", Y), (f"layer {li} after ffn", X)]
    state.length = t0 + X.shape[1]
    return X


def readout_logits(model: Model, X: np.ndarray, run: _Run, position: int | None = None) -> list[int]:
    """Logits R(U x_l) of the last column of X, at ``position`` l (default: X's width; U = tied
    W_E unless the model has unembed)."""
    position = X.shape[1] if position is None else position
    U = model.unembed if model.unembed is not None else tied_unembed(model, run, position)
    col = run.affine(
        U, X[:, -1:], None, Location(sublayer="output logits"), [str(t) for t in model.vocab.all_tokens()], position
    )
    return [int(v) for v in col[:, 0]]


class ReferenceEvaluator:
    """Exact forward pass per the paper's definitions; see the module docstring."""

    name = "reference"

    def __init__(self, arith: Arithmetic = Arithmetic()):
        self.arith = arith

    def forward(self, model: Model, tokens: Sequence[Token], trace: bool = False) -> ForwardResult:
        run = _Run(model, self.arith)
        X = embed(model, list(tokens), run)
        stages: list[tuple[str, np.ndarray]] = [("embedding", X)] if trace else []
        X = run_layers(model, X, run, stages if trace else None)
        logits = readout_logits(model, X, run)
        best = max(range(len(logits)), key=lambda i: (logits[i], -i))
        return ForwardResult(X, logits, model.vocab.token_of(best), run.saturations, stages)

    def forward_residual(self, model: Model, X: np.ndarray, trace: bool = False, readout: bool = True) -> ForwardResult:
        """Run the layers on a given input matrix X (d x l scaled ints) instead of an embedding.

        The building-block lemmas (B.13-B.23) are statements about arbitrary X in R_p^(d x l)
        with a few conventions (X_(d,k) = k, ...); this entry point lets their checks feed such
        X directly.  Still generic: the same layers, the same arithmetic.  With readout=False
        the output logits are not computed (``logits == []``, ``next_token is None``): a block
        lemma says nothing about W_E applied to its residual.
        """
        run = _Run(model, self.arith)
        if X.shape[0] != model.d or X.shape[1] < 1:
            raise TokenError(f"input matrix has shape {X.shape}, expected ({model.d}, l >= 1)")
        if X.shape[1] > model.max_len:
            raise TokenError(f"input of length {X.shape[1]} exceeds the model's max_len {model.max_len}")
        X = X.copy()
        for k in range(X.shape[1]):  # position-first, as every other operator
            for i in range(X.shape[0]):
                X[i, k] = run.check(int(X[i, k]), Location(sublayer="input", position=k + 1, dim=model.layout.names[i]))
        stages: list[tuple[str, np.ndarray]] = [("input", X)] if trace else []
        X = run_layers(model, X, run, stages if trace else None)
        if not readout:
            return ForwardResult(X, [], None, run.saturations, stages)
        logits = readout_logits(model, X, run)
        best = max(range(len(logits)), key=lambda i: (logits[i], -i))
        return ForwardResult(X, logits, model.vocab.token_of(best), run.saturations, stages)

    def next_token(self, model: Model, tokens: Sequence[Token]) -> Token:
        return self.forward(model, tokens).next_token

    def session(self, model: Model, prompt: Sequence[Token], recompute: bool = False) -> "ReferenceSession":
        return ReferenceSession(self, model, prompt, recompute)


class ReferenceSession:
    """Incremental decoding: the same layer code as ``forward``, run on the new tokens only,
    after the cached :class:`PrefixState` of the tokens already evaluated (keys and values per
    head, the last state per linear unit).  Bit-equal to recomputing the whole prefix: every
    operator of a position depends only on positions up to it, and the prefix's positions
    passed every range check already, so the first overflow of a recomputation lies in the new
    positions, in the same order.  A step that raises leaves the cached state as it was.
    ``recompute=True`` recomputes the whole prefix per token instead (the plain way)."""

    def __init__(self, evaluator: ReferenceEvaluator, model: Model, prompt: Sequence[Token], recompute: bool = False):
        self.evaluator = evaluator
        self.model = model
        self.tokens: list[Token] = [model.vocab.check(t) for t in prompt]
        self.recompute = recompute
        self.state = PrefixState()
        self.last: np.ndarray | None = None  # residual column of the last evaluated position

    def append(self, tokens: Sequence[Token]) -> None:
        self.tokens.extend(self.model.vocab.check(t) for t in tokens)

    def residual(self) -> np.ndarray:
        """The last position's residual column after the last layer (d x 1), evaluating the
        tokens appended since the last call."""
        if self.recompute:
            return self.evaluator.forward(self.model, self.tokens).residual[:, -1:]
        new = self.tokens[self.state.length :]
        if new or self.last is None:
            run = _Run(self.model, self.evaluator.arith)
            state = self.state.copy()
            X = run_layers(self.model, embed(self.model, new, run, state.length + 1), run, None, state)
            self.state, self.last = state, X[:, -1:]
        return self.last

    def next_token(self) -> Token:
        if self.recompute:
            return self.evaluator.next_token(self.model, self.tokens)
        X = self.residual()
        run = _Run(self.model, self.evaluator.arith)
        logits = readout_logits(self.model, X, run, len(self.tokens))
        best = max(range(len(logits)), key=lambda i: (logits[i], -i))
        return self.model.vocab.token_of(best)
