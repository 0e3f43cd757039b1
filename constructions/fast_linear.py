"""The fast evaluator's linear-RNN unit (Def 3.3 / 5.5) with its carried state.

The reference's matching function is ``evaluate_reference._Run.linear_unit``: ``h_0 = 0``,
``h_t = R(A h_(t-1) + B x_t)`` with ``A h + B x`` one exact sum rounded once (round_once; under
round_products every scalar product is rounded).  A session carries each sequence's last h
(signed digits ``(L, d)``) from one pass to the next, so a chain of L tokens costs L steps.
"""
from __future__ import annotations

import torch

from .errors import Location
from .fast_engine import _Engine, _PLayer
from .fast_limbs import _add_raw

def linear_unit(eng: _Engine, layer: _PLayer, X, li, n_seq, lmax, lens, h0: torch.Tensor | None):
    """h_t = R(A h_(t-1) + B X_t), one rounded operator per step, from h0 (L, d, n_seq) (zeros:
    None); returns (H, each sequence's h at its last valid column).  Location positions are
    relative to the pass (the checker adds each sequence's offset)."""
    names = eng.P.names
    d = X.shape[1]
    BX, pcB = eng.affine(layer.B, X, None, reuse=True)  # raw, not yet rounded: added to A h, then rounded
    BX = BX.reshape(BX.shape[0], d, n_seq, lmax)
    if pcB is not None:
        pcB = pcB.reshape(d, n_seq, lmax)
    h = h0 if h0 is not None else torch.zeros((eng.P.L, d, n_seq), dtype=torch.int64, device=eng.dev)
    H = torch.zeros((eng.P.L, d, n_seq, lmax), dtype=torch.int64, device=eng.dev)
    lens_t = torch.tensor(lens, device=eng.dev)
    last = h.clone()
    for t in range(lmax):
        RA, pcA = eng.affine(layer.A, h, None, reuse=True)
        R = _add_raw(RA, BX[:, :, :, t])
        valid = (lens_t > t).reshape(n_seq, 1, 1)
        pc = pv = None
        if pcA is not None:
            pc = pcA + pcB[:, :, t]
            pv = eng.product_value(
                [(layer.A, h, lambda s, c: s), (layer.B, X, lambda s, c, t=t: s * lmax + t)]
            )
        h = eng.finish(
            R, eng.affine_shift, eng.M, eng.P.L,
            lambda x: x.permute(1, 0).unsqueeze(-1), valid,
            lambda r, c, t=t: Location(li, "linear_unit", None, t + 1, names[r]), eng.F,
            pcount=pc, pvalue=pv,
        )
        H[:, :, :, t] = h
        upd = (lens_t == t + 1)
        if bool(upd.any()):
            last = torch.where(upd.reshape(1, 1, n_seq), h, last)
    return H.reshape(eng.P.L, d, n_seq * lmax), last
