"""The fast evaluator's layer stack and read-out: Def 3.2 / 3.6 / 5.5 over one exact pass.

The reference's matching functions are ``evaluate_reference._Run.layers`` and ``.logits``:
each layer is ``Y = R(X + mixer(X))`` (attention, :mod:`fast_attention`, or linear unit,
:mod:`fast_linear`), ``Z = R(Y + ffn(Y))``; the logits are ``R(U x_l)`` of the last column.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .errors import Location, PrecisionOverflow
from .fast_attention import attention
from .fast_engine import _Engine
from .fast_limbs import _digits_to_ints
from .fast_linear import linear_unit


def _run_layers(eng: _Engine, X, n_seq, lmax, lens, t0s, stages, states: list[dict] | None,
                final_only: bool = False):
    """All layers; ``t0s[s]``: sequence s's positions before this pass; ``states[s]``: its
    session caches (``{layer: per-head [K, V]}`` / ``{layer: h}``), or None (a full pass).
    ``final_only`` (one sequence, a session): only the last column's output is read, so the
    last layer may compute only that column (:func:`_final_column_layer`); the result is then
    that one column."""
    lay, valid = eng.layer_locs(n_seq, lmax, lens)
    for li, layer in enumerate(eng.P.layers, start=1):
        if final_only and li == len(eng.P.layers):
            out = _final_column_layer(eng, layer, X, li, lens[0], t0s[0], states[0])
            if out is not None:
                return out
        if layer.kind == "transformer":
            caches = None
            if states is not None:
                caches = [st.setdefault(li, [None] * len(layer.heads)) for st in states]
            mixed = attention(eng, layer, X, li, n_seq, lmax, lens, t0s, caches)
            sub = "attention"
        else:
            h0 = _stack_states(eng, states, li, X.shape[1])
            mixed, last = linear_unit(eng, layer, X, li, n_seq, lmax, lens, h0)
            if states is not None:
                for s, st in enumerate(states):
                    st[li] = last[:, :, s]
            sub = "linear_unit"
        Y = eng.add(X, mixed, li, f"residual after {sub}", lay, valid)
        X = eng.add(Y, eng.feed_forward(layer.ffn, Y, li, lay, valid), li, "residual after ffn", lay, valid)
        if stages is not None:
            stages.append((f"layer {li} after {sub}", Y))
            stages.append((f"layer {li} after ffn", X))
    return X[:, :, lens[0] - 1 : lens[0]] if final_only else X


def _final_column_layer(eng: _Engine, layer, X, li: int, n: int, t0: int, state: dict) -> torch.Tensor | None:
    """The last layer of a session pass over n new columns of which only the last is read
    (replayed tokens, :meth:`evaluate_fast.FastSession.append_replayed`), when it is an
    attention layer on the compact path: the keys, queries and values of every column are
    computed (range-checked) and the keys and values join the cache, but the scores, softmax,
    residual and FFN only of the last column, so a chunk of replayed tokens costs one query
    over the cache instead of n.  Bit-equal to the full pass's last column (the same cache, the
    same operations); the other columns' outputs are never computed, so nothing at their
    positions after the keys is range-checked (a replayed token was checked when it was
    generated).  None (nothing done) where this does not apply: the caller runs the layer whole."""
    from .fast_attention import _compact_layer, _stacked_kqv

    if layer.kind != "transformer" or n < 2 or eng.arith.matmul != "round_once":
        return None
    lay, valid = eng.layer_locs(1, n, [n])
    kqv = _stacked_kqv(eng, layer, X, li, lay, valid)
    if kqv is None:
        return None
    caches = state.setdefault(li, [None] * len(layer.heads))
    lay1, valid1 = eng.layer_locs(1, 1, [1])
    saved, eng.chk.t0s = eng.chk.t0s, [t0 + n - 1]  # Locations of the last column
    try:
        mixed = _compact_layer(eng, layer, kqv, li, n, t0, [caches], lay1, valid1, q0=n - 1)
        Y = eng.add(X[:, :, n - 1 :], mixed, li, "residual after attention", lay1, valid1)
        return eng.add(Y, eng.feed_forward(layer.ffn, Y, li, lay1, valid1), li, "residual after ffn", lay1, valid1)
    finally:
        eng.chk.t0s = saved


def _stack_states(eng: _Engine, states: list[dict] | None, li: int, d: int) -> torch.Tensor | None:
    """The carried h of layer li for every sequence, (L, d, n_seq); None: all start at h_0 = 0."""
    if states is None or all(li not in st for st in states):
        return None
    zero = torch.zeros((eng.P.L, d), dtype=torch.int64, device=eng.dev)
    return torch.stack([st.get(li, zero) for st in states], dim=2)


def _readout(eng: _Engine, last: torch.Tensor, positions: list[int]) -> np.ndarray:
    """Logits R(U x_l) for the last column of each sequence (one batched operator): (|V|, n_seq)
    object array.  ``positions``: each sequence's last position (the Location of an overflow)."""
    names = eng.P.token_names
    U = eng.P.U
    n_seq = last.shape[2]
    for s, pos in enumerate(positions):
        for i, (tok, value) in enumerate(eng.P.unembed_over):  # tied W_E rows out of R_p
            where = Location(sublayer="output embedding W_E", position=pos, dim=tok)
            if eng.arith.overflow == "raise":
                if i == 0:
                    eng.chk.fail(s, PrecisionOverflow(eng.P.prec, value, where))
            else:
                eng.chk.saturations[s].append(str(where))
    R, pc = eng.affine(U, last, None, reuse=True)
    pv = eng.product_value([(U, last, lambda s_, c: s_)]) if pc is not None else None
    ones = torch.ones((n_seq, 1, 1), dtype=torch.bool, device=eng.dev)
    saved, eng.chk.t0s = eng.chk.t0s, list(positions)  # the logits' Location: position 0 + pos
    try:
        out = eng.finish(
            R, eng.affine_shift, eng.M, eng.P.L, lambda t: t.permute(1, 0).unsqueeze(-1), ones,
            lambda r, c: Location(None, "output logits", None, 0, names[r]), eng.F, pcount=pc, pvalue=pv,
        )
    finally:
        eng.chk.t0s = saved
    return _digits_to_ints(out, eng.b)


def _argmax(logits: Sequence) -> int:
    return max(range(len(logits)), key=lambda i: (logits[i], -i))
