"""Both evaluators on the same work, so a rounding bug in either fails a block or theorem check.

The block checks (B.1-B.18) run the reference evaluator on chosen residuals; the theorem checks
(4.7, 5.3, 5.7, ...) decode with the fast one.  On their own, a bug in the evaluator a check does
not run goes unseen by it (issue 16: the fast evaluator's tie rule inverted failed no block or
theorem check).  Two cross-checks, each against the other evaluator (never the construction):

* :func:`block_forward`: the reference evaluator's ``forward_residual`` on a block's input, and
  the fast evaluator's on the same input, must be bit-equal (every entry of every position; the
  same saturations).  The block checks' inputs sit where the blocks really round (products off
  the grid, softmax outputs 1/m, COUNT, MatchNext), ties included.
* :func:`replay`: the reference evaluator run once on a whole decoded sequence (prompt, every
  generated and retrieved token): its residual must equal the fast evaluator's on the same
  sequence at every position, and at every position the model generated, the reference argmax
  of the prefix must be the token the fast decode emitted.  By induction over the generated
  positions this is the same as decoding the chain with the reference evaluator (a reference
  session is bit-equal to a full forward, ``tests/test_reference_session.py``), and it compares
  the whole residual, not only the last column; it costs the same as a reference decode.

Sizes: :data:`REPLAY` per check and profile (:func:`replay_sizes`), measured in
``notes/testing.md``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from constructions.decode import DecodeResult
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ForwardResult, ReferenceEvaluator, _Run, readout_logits
from constructions.model import Model
from constructions.numerics import Arithmetic
from constructions.vocab import Token
from proofs_check.strategies import large_sizes


def _first_diff(A: np.ndarray, B: np.ndarray, names: Sequence[str]) -> str:
    r, c = map(int, np.argwhere(A != B)[0])
    return f"dim {names[r]!r} at position {c + 1}: reference {A[r, c]}, fast {B[r, c]}"


def block_forward(model: Model, X: np.ndarray, arith: Arithmetic = Arithmetic(), readout: bool = True) -> ForwardResult:
    """The reference evaluator's ``forward_residual(model, X)``, after asserting that the fast
    evaluator's is bit-equal to it (residual and saturations)."""
    ref = ReferenceEvaluator(arith).forward_residual(model, X, readout=readout)
    fast = FastEvaluator(arith).forward_residual(model, X, readout=readout)
    assert ref.residual.shape == fast.residual.shape, f"residual shapes {ref.residual.shape} vs {fast.residual.shape}"
    if not (ref.residual == fast.residual).all():
        raise AssertionError(f"evaluators disagree on a block (p={model.p}, ties {arith.tie}): "
                             + _first_diff(ref.residual, fast.residual, model.layout.names))
    assert sorted(ref.saturations) == sorted(fast.saturations), f"saturations {ref.saturations} vs {fast.saturations}"
    return ref


def chain_positions(result: DecodeResult) -> list[int]:
    """Indices (0-based, in ``result.sequence``) of the tokens the model emitted itself: every
    token after the prompt except retrieval results."""
    retrieved: set[int] = set()
    for r in result.retrievals:
        retrieved.update(range(r.position, r.position + len(r.result)))
    return [i for i in range(len(result.prompt), len(result.sequence)) if i not in retrieved]


def replay(model: Model, sequence: Sequence[Token], generated: Iterable[int]) -> None:
    """The reference evaluator on the whole ``sequence`` agrees with the fast one (residual at
    every position) and, at every index i in ``generated``, its next token after
    ``sequence[:i]`` is ``sequence[i]``.  Raises AssertionError with the first difference."""
    seq = list(sequence)
    ref = ReferenceEvaluator().forward(model, seq)
    fast = FastEvaluator().forward(model, seq)
    where = f"replay of {len(seq)} tokens (p={model.p})"
    if not (ref.residual == fast.residual).all():
        raise AssertionError(f"{where}: evaluators disagree: " + _first_diff(ref.residual, fast.residual, model.layout.names))
    run = _Run(model, ReferenceEvaluator().arith)
    for i in generated:
        logits = readout_logits(model, ref.residual[:, i - 1 : i], run, i)
        best = max(range(len(logits)), key=lambda j: (logits[j], -j))
        tok = model.vocab.token_of(best)
        assert tok == seq[i], f"{where}: at position {i + 1} the reference emits {tok!r}, the fast decode emitted {seq[i]!r}"


def replay_chain(model: Model, prompt: Sequence[Token], generated: Sequence[Token]) -> None:
    """:func:`replay` of a chain of thought (Def A.4): every token after the prompt generated."""
    replay(model, list(prompt) + list(generated), range(len(prompt), len(prompt) + len(generated)))


def replay_decode(model: Model, result: DecodeResult) -> None:
    """:func:`replay` of a :class:`DecodeResult` (chain of thought or retrieval-augmented)."""
    replay(model, result.sequence, chain_positions(result))


#: per check and profile: the sizes N (and how many trees each) whose whole decode the
#: reference evaluator replays.  Reference cost on an idle core (measured before the reference
#: evaluator summed nonzero terms only): 4.7 ~5 s at N = 16 (78 tokens); 5.3 ~6 s at N = 4,
#: ~12 s at N = 8 (439 tokens); 5.7 ~24 s at N = 8 (349 tokens).  After: 5.7's replay (reference
#: and fast forward, every generated position read out) 11 s CPU at N = 16 (945 tokens), 65 s at
#: N = 32 (2425 tokens); see notes/testing.md.
REPLAY: dict[str, dict[str, tuple[tuple[int, int], ...]]] = {
    "4.7": {"ci": ((16, 1),), "dev": ((16, 2), (64, 1)), "thorough": ((64, 2), (256, 1))},
    "5.3": {"ci": ((16, 1),), "dev": ((16, 1), (64, 1)), "thorough": ((64, 1), (256, 1))},
    "5.7": {"ci": ((16, 1),), "dev": ((16, 1), (32, 1)), "thorough": ((64, 1), (128, 1))},
}


def replay_sizes(check_id: str, profile_name: str, max_n: int) -> tuple[tuple[int, int], ...]:
    """(N, instances) of :data:`REPLAY` for a check at a profile (unknown profiles: as ci)."""
    return large_sizes(REPLAY[check_id], profile_name, max_n)
