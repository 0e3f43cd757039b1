"""Thm 4.8: the circuit-simulating Transformer (constructions.circuit_transformer), the automata
circuits (proofs_check.automata) and the errata T48-E1..E3 (notes/errata/circuit_transformer.md)."""
from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given, settings

from constructions.circuit import Circuit, Gate, circuit_from_json
from constructions.circuit_transformer import (
    block_len, circuit_transformer, cot_length, declared_p, prompt, rnn_token, simulate,
)
from constructions.errors import InputError, MachineError, PrecisionError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.modelfile import load_model, save_model
from proofs_check.automata import (
    NAMED, dfa_chain, dfa_circuit, dfa_outputs, mod_count_dfa, named_circuit, parity_dfa, random_dfa, to_text,
)
from proofs_check.checks.circuit_transformer import check_run
from proofs_check.circuits import generated, run
from proofs_check.strategies import circuits


def xor_circuit() -> Circuit:
    """The smallest parity RNN: state s, input x, output and next state s XOR x (P = 4)."""
    gates = (Gate("state", 0, 0), Gate("input", 0, 0), Gate("xor", 1, 2), Gate("xor", 1, 2))
    return Circuit(gates, 1, 1, 1, 1, 1, (0, 1), name="xor")


# ---- automata as circuits, against a plain DFA --------------------------------------------------

DFAS = [(parity_dfa(), "accept"), (mod_count_dfa(3), "accept"), (mod_count_dfa(4), "accept"),
        (random_dfa(0), "accept"), (random_dfa(5, 4, 2), "accept")]


@pytest.mark.parametrize("dfa, emits", DFAS, ids=[d.name for d, _ in DFAS])
def test_dfa_circuit_agrees_with_the_dfa_on_every_short_input(dfa, emits) -> None:
    c = dfa_circuit(dfa, emits)
    for length in range(1, 5):
        for word in itertools.product(dfa.alphabet, repeat=length):
            assert [sv.emitted for sv in run(c, word)] == dfa_outputs(dfa, word, emits), word


def test_dfa_circuit_chain_of_thought_reads_back_its_outputs() -> None:
    dfa = mod_count_dfa(3)
    c = dfa_circuit(dfa)
    for word in itertools.product((0, 1), repeat=3):
        assert generated(c, word, 4) == dfa_chain(dfa, word, "accept", 4)


def test_state_emitting_automaton() -> None:
    c = named_circuit("mod3-state")
    # adds each token mod 3 and emits the sum: 2, 2+1=0, 0+2=2; then reads 2 back: 1, reads 1: 2
    assert [sv.emitted for sv in run(c, [2, 1, 2])] == [2, 0, 2]
    assert generated(c, [2, 1, 2], 3) == [2, 1, 2]


def test_truth_table_circuits_use_only_and_xor_and_the_constant() -> None:
    for name in NAMED:
        kinds = {g.kind for g in named_circuit(name).gates}
        assert kinds <= {"state", "input", "const1", "and", "xor"}


def test_text_form_has_one_gate_per_line() -> None:
    c = xor_circuit()
    lines = to_text(c).splitlines()
    assert lines[1:] == ["1: state 0 0", "2: input 0 0", "3: xor 1 2", "4: xor 1 2"]


def test_emitted_tokens_must_be_readable() -> None:
    dfa = random_dfa(0, n_states=4, n_symbols=2)
    with pytest.raises(InputError, match="reads back"):
        dfa_circuit(dfa, emits="state")


# ---- the Transformer ------------------------------------------------------------------------


@settings(max_examples=3, deadline=None, derandomize=True, database=None)
@given(circuits(max_middle=4))
def test_random_circuit_one_step_each(c) -> None:
    check_run(c, [c.alphabet[-1]], 1)


def test_smallest_parity_rnn_with_chain_of_thought() -> None:
    c = xor_circuit()
    out = check_run(c, [1, 1, 0], 3)
    assert out["cot_length"] == 5 * 5  # (P + 1)(n + steps - 1)


def test_multi_coordinate_codes_and_word_tokens() -> None:
    # token a = (1, 0), b = (0, 1), c = (1, 1): output index = bit0(coord 0) + 2 bit0(coord 1) ... via gates
    gates = (Gate("input", 0, 0), Gate("input", 1, 0), Gate("and", 1, 1), Gate("and", 2, 2))
    c = Circuit(gates, 2, 1, 0, 1, 2, ("z", "a", "b", "c"), ((0, 0), (1, 0), (0, 1), (1, 1)), name="codes")
    assert [sv.emitted for sv in run(c, ["a", "b", "c"])] == ["a", "b", "c"]
    check_run(c, ["b", "c"], 2)


def test_reference_evaluator_is_bit_equal_on_a_short_decode() -> None:
    c = xor_circuit()
    m = circuit_transformer(c, 1, 2)
    ref_sim = simulate(c, m, [1], 2, ReferenceEvaluator())
    fast_sim = simulate(c, m, [1], 2, FastEvaluator())
    assert ref_sim == fast_sim
    assert ref_sim.gate_values == [sv.values for sv in run(c, [1], 1)]
    seq = prompt(c, [1]) + [0, 1, 1, 1, rnn_token(1)]
    assert (ReferenceEvaluator().forward(m, seq).residual == FastEvaluator().forward(m, seq).residual).all()


def test_model_file_round_trip(tmp_path) -> None:
    c = xor_circuit()
    m = circuit_transformer(c, 2, 1)
    path = tmp_path / "circuit.safetensors"
    save_model(m, path)
    loaded = load_model(path)
    assert loaded.meta["circuit"] == c.to_json() and circuit_from_json(loaded.meta["circuit"]) == c
    assert simulate(c, loaded, [0, 1], 1, FastEvaluator()) == simulate(c, m, [0, 1], 1, FastEvaluator())


def test_precision_below_the_declared_p_is_refused() -> None:
    c = xor_circuit()
    need = declared_p(c, 3, 3)
    with pytest.raises(PrecisionError, match=f"needs p >= {need}"):
        circuit_transformer(c, 3, 3, p=need - 2)


def test_bad_arguments_are_refused() -> None:
    c = xor_circuit()
    with pytest.raises(InputError):
        circuit_transformer(c, 0, 1)
    with pytest.raises(MachineError, match="not in this circuit's alphabet"):
        prompt(c, [2])


def test_sizes_grow_as_P_log_max_P_n() -> None:
    """Parameters: O(P) non-zero weights (lookup table 3 per gate), p = Theta(log(P n))."""
    small, big = named_circuit("parity"), named_circuit("mod3-state")
    per_gate = [circuit_transformer(c, 4, 4).parameter_count() / c.size for c in (small, big)]
    assert max(per_gate) < 40
    counts = [circuit_transformer(small, n, n).parameter_count() for n in (2, 16, 64)]
    assert counts[0] == counts[1] == counts[2]  # weights do not grow with n; only p does
    ps = [declared_p(small, n, n) for n in (2, 16, 64, 256)]
    assert ps == sorted(ps) and ps[-1] - ps[0] <= 4 * 8 + 2  # ~4 log2(L): L grows 128x -> <= ~28 more bits


# ---- errata -------------------------------------------------------------------------------


def test_erratum_T48_E1_printed_schedule_emits_the_rnn_token_before_simulating_the_prompt() -> None:
    """Printed: token n + a(P+1) + b is gate b's value at position a + 1 (b <= P) and, for
    b = P + 1, the RNN's (n + a + 1)-th token.  Block a = 0 holds the gates of the step reading
    token 1, whose output gates name o_1, but the printed token is the RNN's first CoT token,
    which needs all n steps: on parity with prompt 1 1 they differ."""
    c = xor_circuit()
    rnn_prompt = [1, 1]
    step1 = run(c, rnn_prompt[:1])[0]
    printed_token = generated(c, rnn_prompt, 1)[0]  # the RNN's n + 1 = 3rd token
    assert step1.emitted == 1 and printed_token == 0
    # the fixed schedule: one block per RNN step, prompt steps included; the first CoT token is
    # emitted by block n - 1, after (P + 1) n tokens, not (P + 1)
    out = simulate(c, circuit_transformer(c, 2, 1), rnn_prompt, 1, FastEvaluator())
    assert out.rnn_tokens == [1, 0] and out.cot_length == block_len(c) * 2
    # its length (P + 1)(n + T - 1) exceeds the printed (P + 1) n^A for A = 1, T = n
    assert cot_length(c, 4, 4) > block_len(c) * 4


def test_erratum_T48_E2_emit_row_at_b_P_minus_1_drops_gate_P() -> None:
    """Printed: "if b = P(n) - 1 then the gate type will be encoded as 0" (emit the RNN token).
    At b = P - 1 the next token is gate s(b) = P (the last next-state gate); built that way the
    chain of thought loses it and desynchronises."""
    c = xor_circuit()
    ref = run(c, [1], 1)
    printed = simulate(c, circuit_transformer(c, 1, 2, emit_at="printed"), [1], 2, FastEvaluator())
    assert printed.gate_values != [sv.values for sv in ref]
    fixed = simulate(c, circuit_transformer(c, 1, 2), [1], 2, FastEvaluator())
    assert fixed.gate_values == [sv.values for sv in ref]


def _quadratic_through(points: list[tuple[int, int]]):
    (x0, y0), (x1, y1), (x2, y2) = points
    def f(x: int) -> Fraction:
        return sum(Fraction(y) * Fraction((x - xb) * (x - xc), (xa - xb) * (xa - xc))
                   for (xa, y), (xb, _), (xc, _) in (((x0, y0), (x1, y1), (x2, y2)), ((x1, y1), (x0, y0), (x2, y2)),
                                                     ((x2, y2), (x0, y0), (x1, y1))))
    return f


def test_erratum_T48_E3_layer1_ffn_cannot_find_the_block_phase() -> None:
    """Printed: Layer 1's attention outputs zero and its FFN, of width O(P), writes a, b and the
    gate information at position n + a(P+1) + b.  On a run whose tokens are all 0 (as printed, the
    CoT is 0/1 tokens; here a circuit of XOR(x, x) gates) the FFN sees only the position, and one
    ReGLU layer on a scalar is piecewise quadratic with one breakpoint per unit.  The phase b is a
    sawtooth with a drop every P + 1 positions, and no quadratic agrees with it on 4 consecutive
    positions around a drop, so every drop needs its own unit: width >= (#blocks) = n + T - 2,
    i.e. Omega(n^A) parameters, not O(P log n)."""
    P, n, blocks = 4, 3, 6
    phase = {n + a * (P + 1) + b: b for a in range(blocks) for b in range(1, P + 2)}
    drops = [q for q in phase if q + 1 in phase and phase[q + 1] < phase[q]]
    assert len(drops) == blocks - 1
    for q in drops:
        for start in range(q - 2, q + 1):
            pts = [(x, phase[x]) for x in range(start, start + 4)]
            f = _quadratic_through(pts[:3])
            assert f(pts[3][0]) != pts[3][1]
    # the fix: a head finds the latest RNN token, the lookup is on b = pos - mpos (P + 1 rows)
    c = xor_circuit()
    w = [circuit_transformer(c, n_, n_).max_ffn_width() for n_ in (2, 8, 32)]
    assert w[0] == w[1] == w[2]


def test_a_larger_p_than_declared_is_still_exact() -> None:
    c = xor_circuit()
    need = declared_p(c, 2, 2)
    sim = simulate(c, circuit_transformer(c, 2, 2, p=need + 24), [1, 0], 2, FastEvaluator())
    assert sim.gate_values == [sv.values for sv in run(c, [1, 0], 1)]
