"""Key blocks: far keys proven a whole block at a time, so that a query column of a long cache
reads only the blocks near its maximum (issue #10: Thm 4.8 at P = 1024, n = 256 is 5 x 10^5
keys per column, the candidate search of :mod:`fast_compact` the whole cost of a decode).

The matching test is :func:`fast_compact.candidate_entries`: entry j of a column is *far* when a
lower bound of the true gap (s_max - s_j) / sqrt(d) exceeds ``fast_compact._far_exponent(F,
m_ref)``.  There the bound on s_j is the entry's float score plus its error bound, one per entry
(about twenty passes over the (T, n) scores); here it is one bound per block of ``BLOCK``
consecutive keys and column, from the block's *box*: the per-coordinate minimum ``lo`` and
maximum ``hi`` of its float keys.  For every key of the block and a query q (floats Qf),

    Kf_j^T Qf <= hi^T Qf+ - lo^T Qf-    and    Kf_j^T Qf >= lo^T Qf+ - hi^T Qf-

(Qf+ = max(Qf, 0), Qf- = max(-Qf, 0)), and the true score differs from Kf_j^T Qf by at most
2.01 (L - 1) u W with W = max(|lo|, |hi|)^T |Qf| (keys and queries read from L limbs, relative
error (L - 1) u each, :func:`fast_limbs._signed_to_float`).  The float GEMMs of the bounds err by
at most 2.02 kdim u W, their difference and the added margin by 2.02 u W more: the margin
:func:`box_error_factor` = (2.2 (kdim + L) + 12) u times W covers all of it.  A column's maximum
is at least the box's lower bound of any block holding one of its causal keys, and at least
fl(Sf_j - delta_j) of each causal entry of the block with the largest upper bound (evaluated
entry by entry, as in candidate_entries: its maximum is usually there).  A block is far for a
column when that lower bound minus the block's upper bound, with 4u of its own roundings
subtracted, exceeds sqrt(d) times the far exponent, and it is dropped there only when its box
also proves every score inside the range of R_p (the per-entry path checks the others).

What is left (the union over a block of columns of the blocks kept, and the keys after the last
whole block) goes through the per-entry test unchanged, each entry masked by its column's kept
blocks: a kept entry is tested against the maximum of its column's kept entries, a lower bound
of s_max as good as candidate_entries needs.  So every entry left out is far, as before; the
result (the candidates) can only be a subset of the per-entry path's, and the exact softmax,
which reads the far mass from the true entry counts, is the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .fast_limbs import _U, _score_error_factor, _score_limit

BLOCK = 64  # keys per block
MIN_KEYS = 4096  # the blocks pay off from here on (shorter caches: the per-entry path alone)


def box_error_factor(kdim: int, L: int) -> float:
    """E with |true score - box bound| <= E W for every key of a block (module docstring)."""
    return (2.2 * (kdim + L) + 12) * _U


@dataclass(frozen=True)
class KeyBoxes:
    """The boxes of the whole blocks of ``block`` consecutive keys: per-coordinate min ``lo`` and
    max ``hi`` of the float keys, each (T // block, kdim)."""

    lo: torch.Tensor
    hi: torch.Tensor
    block: int


def block_boxes(Kf: torch.Tensor, block: int | None = None) -> KeyBoxes:
    """The boxes of the float keys Kf (T, kdim), ``block`` (default :data:`BLOCK`) keys each."""
    block = block or BLOCK
    nb = Kf.shape[0] // block
    blocks = Kf[: nb * block].reshape(nb, block, Kf.shape[1])
    return KeyBoxes(blocks.amin(1), blocks.amax(1), block)


@dataclass
class BoxCache:
    """A session's block boxes of one head's keys, extended as whole blocks fill (keys are only
    appended, so a whole block's box never changes)."""

    block: int = field(default_factory=lambda: BLOCK)
    lo: torch.Tensor | None = None
    hi: torch.Tensor | None = None

    def boxes(self, Kf: torch.Tensor) -> KeyBoxes:
        done = 0 if self.lo is None else self.lo.shape[0]
        nb = Kf.shape[0] // self.block
        if self.lo is None or nb > done:
            new = block_boxes(Kf[done * self.block : nb * self.block], self.block)
            self.lo = new.lo if self.lo is None else torch.cat([self.lo, new.lo])
            self.hi = new.hi if self.hi is None else torch.cat([self.hi, new.hi])
        return KeyBoxes(self.lo[:nb], self.hi[:nb], self.block)


def kept_keys(Kf: torch.Tensor, boxes: KeyBoxes, Qf: torch.Tensor, qpos: torch.Tensor, L: int, d: int, F: int,
              M: int, far_exponent: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The keys of Kf (T, kdim) that the block bounds do not prove far for the columns Qf
    (kdim, c) at positions ``qpos`` (c,) (key j is causal for column k iff j <= qpos[k]):
    ``(rows, mask)``, rows (Ts,) ascending key indices and mask (Ts, c) the causal entries of
    each column's kept blocks (and of the keys after the last whole block); None when every
    block is kept somewhere (the caller's per-entry path over all keys is then as cheap).
    ``far_exponent``: fast_compact._far_exponent(F, m_ref); ``L``: the limb count."""
    lo, hi, block = boxes.lo, boxes.hi, boxes.block
    T, kdim = Kf.shape
    nb, c, dev = lo.shape[0], Qf.shape[1], Kf.device
    if nb == 0 or c == 0:
        return None
    Qp, Qm = Qf.clamp(min=0), (-Qf).clamp(min=0)
    W = torch.maximum(lo.abs(), hi.abs()) @ Qf.abs()  # (nb, c)
    margin = W * box_error_factor(kdim, L)
    ub = (hi @ Qp - lo @ Qm) + margin
    lb = (lo @ Qp - hi @ Qm) - margin
    start = torch.arange(nb, device=dev).reshape(-1, 1) * block
    seen = start <= qpos.reshape(1, -1)  # (nb, c): the block holds a causal key of the column
    neg_inf = torch.full_like(ub, -math.inf)
    smax_low = torch.where(seen, lb, neg_inf).amax(0)  # (c,); block 0 is always seen
    smax_low = torch.maximum(smax_low, _best_block_low(Kf, Qf, qpos, torch.where(seen, ub, neg_inf).argmax(0),
                                                       kdim, L, block))
    gap = (smax_low.reshape(1, -1) - ub) - 4 * _U * (smax_low.abs().reshape(1, -1) + ub.abs())
    far = gap * (1.0 / math.sqrt(d)) * (1 - 1e-9) > far_exponent
    in_range = torch.maximum(ub.abs(), lb.abs()) < _score_limit(M, F)
    keep = seen & ~(far & in_range)  # (nb, c)
    kept_blocks = torch.nonzero(keep.any(1), as_tuple=True)[0]
    if kept_blocks.numel() == nb:
        return None
    tail = torch.arange(nb * block, T, device=dev)
    rows = torch.cat([(kept_blocks.reshape(-1, 1) * block + torch.arange(block, device=dev)).reshape(-1), tail])
    in_kept = torch.cat([keep[kept_blocks].repeat_interleave(block, 0),
                         torch.ones((tail.numel(), c), dtype=torch.bool, device=dev)])
    return rows, in_kept & (rows.reshape(-1, 1) <= qpos.reshape(1, -1))


def _best_block_low(Kf: torch.Tensor, Qf: torch.Tensor, qpos: torch.Tensor, best: torch.Tensor, kdim: int, L: int,
                    block: int) -> torch.Tensor:
    """(c,): max over the causal keys j of block best[k] of fl(Sf_j - delta_j) for column k (a
    lower bound of each true score, up to the roundings the far test's 4u covers)."""
    rows = best.reshape(1, -1) * block + torch.arange(block, device=Kf.device).reshape(-1, 1)  # (block, c)
    Kg = Kf[rows]  # (block, c, kdim)
    Qt = Qf.T.unsqueeze(0)  # (1, c, kdim)
    Sf = (Kg * Qt).sum(-1)
    A = (Kg.abs() * Qt.abs()).sum(-1)
    low = Sf - A * _score_error_factor(kdim, L)
    return torch.where(rows <= qpos.reshape(1, -1), low, torch.full_like(low, -math.inf)).amax(0)
