"""The fast evaluator's input stage: the A.3 embedding of a batch of token sequences (the
reference's :func:`evaluate_reference.embed`) and ``forward_residual``'s range-checked input
matrix, as signed digits (:mod:`constructions.fast_limbs`)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from .errors import EvaluatorError, Location, ProofsCheckError
from .evaluate_reference import _Run, embed
from .fast_limbs import _const_digits, _ints_to_digits, _shifted_small
from .vocab import Token

def embed_batch(eng, seqs: list[list[Token]], t0s: list[int], lmax: int) -> tuple[torch.Tensor, list[int]]:
    """A.3 embedding of a batch (right-padded with zero columns); sequence s's positions start at
    t0s[s] + 1 (a session's new tokens).  Bad tokens: the reference's own code decides (below)."""
    model = eng.P.model
    vocab, d, F, b = model.vocab, model.d, eng.F, eng.b
    n_seq = len(seqs)
    lens = [len(s) for s in seqs]
    num = np.zeros((n_seq, lmax), dtype=np.int64)
    spec = np.full((n_seq, lmax), -1, dtype=np.int64)
    posv = np.zeros((n_seq, lmax), dtype=np.int64)
    X = torch.zeros((eng.P.L, d, n_seq * lmax), dtype=torch.int64, device=eng.dev)
    exotic: list[tuple[int, np.ndarray]] = []
    max_int = eng.P.prec.max_integer
    for s, toks in enumerate(seqs):
        t0 = t0s[s]
        ok = 0 < t0 + len(toks) <= model.max_len and all(
            (isinstance(t, int) and not isinstance(t, bool) and vocab.min_number <= t <= vocab.n and abs(t) <= max_int)
            or (isinstance(t, str) and t in vocab._special_index)
            for t in toks
        ) and t0 + len(toks) <= max_int
        if not ok:
            # an error or an overflow in the embedding: let the reference's own code decide
            # which (it raises the first one in its order) and, in saturate mode, build it.
            run = _Run(model, eng.arith)
            try:
                if t0 != 0:
                    raise EvaluatorError("internal: exotic embedding inside a session")
                Xs = embed(model, list(toks), run)
            except ProofsCheckError as err:
                eng.chk.fail(s, err)
                lens[s] = max(1, min(lens[s], lmax))
                continue
            eng.chk.saturations[s].extend(run.saturations)
            exotic.append((s, Xs))
            continue
        for l, tok in enumerate(toks):
            if isinstance(tok, int):
                num[s, l] = tok
            else:
                spec[s, l] = 1 + vocab.special_rank(tok)
            posv[s, l] = t0 + l + 1
    numt = torch.from_numpy(num).to(eng.dev).reshape(-1)
    post = torch.from_numpy(posv).to(eng.dev).reshape(-1)
    spect = torch.from_numpy(spec).to(eng.dev).reshape(-1)
    X[:, 0, :] = _shifted_small(numt, F, b, eng.P.L)
    X[:, d - 1, :] = _shifted_small(post, F, b, eng.P.L)
    one = _const_digits(1 << F, b, eng.P.L, X[:, 0, :1]).reshape(eng.P.L, 1)
    cols = torch.nonzero(spect >= 0).flatten()
    if cols.numel():
        X[:, spect[cols], cols] = one.expand(eng.P.L, cols.numel())
    for s, Xs in exotic:
        X[:, :, s * lmax : s * lmax + Xs.shape[1]] = _ints_to_digits(Xs, b, eng.P.L, eng.dev)
    return X, lens


def input_matrix(eng, X: np.ndarray) -> torch.Tensor:
    """forward_residual's input: range-checked position by position, as in the reference."""
    d, l = X.shape
    vals = np.asarray(X, dtype=object)
    big = np.vectorize(lambda v: abs(int(v)) > eng.M, otypes=[bool])(vals) if vals.size else np.zeros((d, l), bool)
    if big.any():
        names = eng.P.names
        over = torch.from_numpy(big).reshape(1, d, l)
        eng.chk.record(
            over,
            lambda r, c: Location(sublayer="input", position=c + 1, dim=names[r]),
            lambda s, r, c: Fraction(int(vals[r, c]), eng.P.prec.scale),
        )
        vals = np.vectorize(lambda v: max(-eng.M, min(eng.M, int(v))), otypes=[object])(vals)
    return _ints_to_digits(vals, eng.b, eng.P.L, eng.dev)
