"""Checks of the linear-RNN building blocks, Lemmas B.20-B.23 (Appendix B.3).

Each check draws the lemma's parameters and an input sequence, builds the block's standalone
``linear_rnn`` model at the precision its builder declares, runs the reference evaluator on the
residual matrix (``forward_residual``) and compares Z - X on every dimension exactly with the
lemma's function computed here in plain Python (Fractions).  Overflow raises, so passing also
shows that no value leaves R_p at the declared p.  Both tie rules and both matmul readings.

Conventions: ``pos`` holds t at position t, ``tok:<s>`` holds 1[t = 1]; the block's inputs are
the dims ``in:1..in:C``.  Sequence lengths go up to the profile's max_n.
"""
from __future__ import annotations

from fractions import Fraction

from hypothesis import strategies as st

from constructions import ffn_blocks as fb
from constructions import rnn_blocks as rb
from proofs_check.checks.ffn_blocks import arithmetics, assert_delta, conventional_columns, grid, run_block
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check

ZERO = Fraction(0)


@st.composite
def _sequence_case(draw, max_n: int, max_C: int = 3, max_len: int | None = None):
    """(C, L, bound, frac, sequence of per-position {in:c: value}, arithmetic)."""
    C = draw(st.integers(1, max_C))
    L = draw(st.integers(1, max_len or max_n))
    M = draw(st.integers(1, max_n))
    frac = draw(st.integers(0, 2))
    sources = [f"in:{c}" for c in range(1, C + 1)]
    seq = draw(st.lists(st.fixed_dictionaries({s: grid(M, frac) for s in sources}), min_size=L, max_size=L))
    if draw(st.booleans()):  # the ends of the value range, at the first and last positions
        seq[0] = {s: Fraction(M) for s in sources}
        seq[-1] = {s: Fraction(-M) for s in sources}
    return C, L, M, frac, seq, draw(arithmetics)


def _p(block_p: int, L: int) -> int:
    return fb.model_precision(block_p, 1, L)


# ---- B.20 recent input memorising -------------------------------------------------------------


def _check_recent_input(case) -> None:
    (C, L, M, frac, seq, arith), k = case
    p = _p(rb.recent_input_precision(M, frac), L)
    model = rb.build_recent_input_model(n=1, p=p, k=k, C=C, bound=M, frac=frac, max_len=L)
    memory = model.meta["memory"]
    delta = run_block(model, conventional_columns(seq), arith)
    expected = {
        memory[j][c]: [seq[t - j - 1][f"in:{c + 1}"] if t - j >= 1 else ZERO for t in range(1, L + 1)]
        for j in range(k) for c in range(C)
    }
    assert_delta(delta, expected, f"B.20 k={k} C={C} L={L} p={p}")


def run_b20(profile: Profile) -> CheckOutcome:
    strategy = st.tuples(_sequence_case(profile.max_n), st.integers(1, 4))
    return property_check(strategy, _check_recent_input, profile)


# ---- B.21 summation ---------------------------------------------------------------------------


def _check_window_sum(case) -> None:
    (_, L, M, frac, seq, arith), k = case
    p = _p(rb.summation_precision(M, L, k, frac), L)
    model = rb.build_summation_model(n=1, p=p, window=k, bound=M, frac=frac, max_len=L)
    xs = [col["in:1"] for col in seq]
    delta = run_block(model, conventional_columns(seq), arith)
    expected = {"sum": [sum(xs[max(0, t - k):t], ZERO) for t in range(1, L + 1)]}
    memory = model.meta["memory"]
    expected.update({memory[j]: [xs[t - j - 1] if t - j >= 1 else ZERO for t in range(1, L + 1)] for j in range(k)})
    assert_delta(delta, expected, f"B.21 window k={k} L={L} p={p}")


def _check_prefix_sum(case) -> None:
    _, L, M, frac, seq, arith = case
    p = _p(rb.summation_precision(M, L, None, frac), L)
    model = rb.build_summation_model(n=1, p=p, window=None, bound=M, frac=frac, max_len=L)
    xs = [col["in:1"] for col in seq]
    delta = run_block(model, conventional_columns(seq), arith)
    assert_delta(delta, {"sum": [sum(xs[:t], ZERO) for t in range(1, L + 1)]}, f"B.21 prefix L={L} p={p}")


def run_b21(profile: Profile) -> CheckOutcome:
    return combine([
        property_check(st.tuples(_sequence_case(profile.max_n, max_C=1), st.integers(1, 5)), _check_window_sum, profile),
        property_check(_sequence_case(profile.max_n, max_C=1), _check_prefix_sum, profile),
    ])


# ---- B.22 special position memorising ---------------------------------------------------------


def _check_special_position(case) -> None:
    (C, L, M, frac, seq, arith), k = case
    p = _p(rb.special_position_precision(k, M, L, frac), L)
    model = rb.build_special_position_model(n=1, p=p, k=k, C=C, bound=M, frac=frac, max_len=L)
    scratch, memory = model.meta["scratch"], model.meta["memory"]
    delta = run_block(model, conventional_columns(seq), arith)
    expected = {}
    for j in range(1, k + 1):
        for c in range(C):
            src = f"in:{c + 1}"
            # scratch: x_t * 1[t = j];  memory: x_j from position j on, 0 before
            expected[scratch[j - 1][c]] = [seq[t - 1][src] if t == j else ZERO for t in range(1, L + 1)]
            expected[memory[j - 1][c]] = [seq[j - 1][src] if t >= j else ZERO for t in range(1, L + 1)]
    assert_delta(delta, expected, f"B.22 k={k} C={C} L={L} p={p}")


def run_b22(profile: Profile) -> CheckOutcome:
    strategy = st.tuples(_sequence_case(profile.max_n, max_C=2), st.integers(1, 5))
    return property_check(strategy, _check_special_position, profile)


# ---- B.23 reciting a fixed sequence -----------------------------------------------------------


@st.composite
def _recite_case(draw, max_n: int):
    L = draw(st.integers(1, max_n))
    C = draw(st.integers(1, 8))
    positions = draw(st.lists(st.integers(1, L), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):  # first and last position
        positions = sorted(set(positions) | {1, L})
    values = {l: draw(st.integers(1, C)) for l in positions}
    return L, values, draw(arithmetics)


def _check_recite(case) -> None:
    L, values, arith = case
    p = _p(rb.recite_precision(values, L, "recite:out"), L)
    model = rb.build_recite_model(n=1, p=p, values=values, max_len=L)
    (out,) = model.meta["outputs"]
    delta = run_block(model, conventional_columns([{} for _ in range(L)]), arith)
    assert_delta(delta, {out: [Fraction(values.get(t, 0)) for t in range(1, L + 1)]}, f"B.23 values={values} p={p}")


def run_b23(profile: Profile) -> CheckOutcome:
    return property_check(_recite_case(profile.max_n), _check_recite, profile)


CHECKS: list[Check] = [
    Check("B.20", "Recent input memorizing (Lemma B.20)",
          "A linear unit with state C k holds the C chosen dims of the last k inputs x_t, ..., x_(t-k+1) "
          "(0 before position 1).", run_b20),
    Check("B.21", "Summation (Lemma B.21)",
          "A linear unit holds the sum of one dim over the last k inputs (window form, state k + 1), and "
          "the printed construction holds the running sum over all inputs.", run_b21),
    Check("B.22", "Special position memorizing (Lemma B.22)",
          "An FFN of width C (k + 1) and a linear unit in the next layer hold the C chosen dims of the inputs "
          "at positions 1..k from those positions on.", run_b22),
    Check("B.23", "Recite a fixed sequence (Lemma B.23)",
          "An FFN of width 4 k outputs fixed values in [C] at fixed positions l_1..l_k (0 elsewhere).", run_b23),
]
