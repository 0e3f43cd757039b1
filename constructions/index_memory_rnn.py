"""The tight side of Lemma B.24: a linear RNN that answers Index by remembering the whole input.

Lemma B.24 (App B.4): in the one-way game where Alice holds x in {0,1}^N and Bob holds k, Bob
needs Omega(N) bits from Alice to output x_k; an RNN with s bits of state that solves Index on
``<s> x_1+1 ... x_N+1 k`` gives a protocol with s bits (Alice runs it on her tokens and sends the
state), so s >= N.  This module builds the matching upper bound as a real model: one linear-RNN
layer whose state holds the last N + 1 tokens (Lemma B.20, a shift register), and whose FFN
answers with the token k slots back.  Its memory is (N + 2) numbers of p = O(log N) bits, so it
meets the bound up to the log factor; with ``window`` < N it forgets x_1 .. x_(N - window) and
must answer some k wrongly (the check of Lemma B.24 finds the pair).

Layer 1, linear unit (B.20): ``mem@j`` = the number token at position t - j (0 for a special
token or before the start), j = 0..window.  FFN (the integer hat of Lemma B.3, gated):
``o:num`` = sum_j [mem@0 = j] * mem@(N + 1 - j) over the k = j that fall inside the window,
``o:isnum`` = sum_j [mem@0 = j].  At the last position t = N + 2, mem@0 = k and x_k + 1 sits at
position k + 1, i.e. N + 1 - k slots back.  Readout (erratum F4): number i gets
``2 i o:num - i^2 o:isnum``, maximal at i = o:num when o:isnum = 1; the answer tokens are 1, 2.
"""
from __future__ import annotations

from .blocks import FFNSpec, LayerSpec, assemble
from .errors import InputError
from .ffn_blocks import integer_hat, min_precision, min_split_precision, precision_or_declared
from .layout import NUM, LayoutBuilder
from .model import Model
from .numerics import Precision
from .rnn_blocks import recent_input_spec
from .vocab import Vocabulary


def _check(N: int, window: int | None) -> int:
    if isinstance(N, bool) or not isinstance(N, int) or N < 2:
        raise InputError(f"the Index memory RNN needs N >= 2 bits, got {N!r}")
    w = N if window is None else window
    if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= N:
        raise InputError(f"the window must be 1..N = {N}, got {window!r}")
    return w


def declared_p(N: int) -> int:
    """Every value is an integer of magnitude <= max(N + 2 (positions), N^2 (readout), N + 2 (hat))."""
    return min_precision(max(N + 2, N * N))


def declared_split(N: int) -> Precision:
    """Declared (I, F): :func:`declared_p`'s integer need; every value is an integer, so F = 1."""
    return min_split_precision(max(N + 2, N * N))


def index_memory_rnn(N: int, window: int | None = None, p: int | None = None) -> Model:
    """Lemma B.24's upper bound: a 1-layer linear RNN answering Index(N) on ``<s> x_1+1 .. x_N+1 k``
    from a memory of the last ``window`` bits (default N: all of them)."""
    w = _check(N, window)
    need = declared_p(N)
    p = precision_or_declared(p, declared_split(N), f"index-memory-rnn (N = {N})", need)
    vocab = Vocabulary(N)
    lb = LayoutBuilder(vocab)
    depth = w + 1  # slot 0 holds k; x_k + 1 sits N + 1 - k <= w slots back for the k kept
    mem = [lb.alloc(f"mem@{j}") for j in range(depth)]
    out_num, out_isnum = lb.alloc("o:num"), lb.alloc("o:isnum")
    units = []
    for k in range(N - w + 1, N + 1):  # the k whose x_k is still in the window
        slot = N + 1 - k
        units += integer_hat(f"k={k}", {mem[0]: 1}, -k, {out_num: 1}, gate={mem[slot]: 1}, gate_bias=0)
        units += integer_hat(f"k={k}:isnum", {mem[0]: 1}, -k, {out_isnum: 1})
    layers = [LayerSpec("linear_rnn", lu=recent_input_spec([NUM], [[m] for m in mem]), ffn=FFNSpec(units),
                        name="window (B.20) + the k-th bit (B.3)")]
    unembed = {i: {out_num: 2 * i, out_isnum: -i * i} for i in range(1, N + 1)}
    meta = {"construction": "index-memory-rnn", "lemma": "B.24", "N": N, "window": w}
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=layers,
                    max_len=N + 2, unembed=unembed, meta=meta, declared=declared_split(N), declared_p=need)


def build_catalog(n: int = 8, p: int | None = None, window: int | None = None) -> Model:
    """Lemma B.24's upper bound: a linear RNN answering Index(n) from a memory of all of x."""
    return index_memory_rnn(n, window, p)


CATALOG = {"index-memory-rnn": build_catalog}
