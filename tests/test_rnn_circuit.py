"""Linear RNNs compiled to circuits (constructions.rnn_circuit) against the reference evaluator.

The references are independent of the compiler: Python's integers for the gate-level arithmetic,
``constructions.recurrent_state`` (the reference evaluator's layer functions) for one step,
``decode.chain_of_thought`` on the ``ReferenceEvaluator`` for whole runs; circuits are evaluated
with ``proofs_check.circuits`` (plain Python over the gate list).
"""
from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from constructions.bit_arithmetic import ONE, ZERO, GateBuilder, Vec, naf, width_for
from constructions.blocks import LayerSpec, LinearUnitSpec, assemble
from constructions.circuit import Circuit, circuit_from_json
from constructions.errors import InputError, PrecisionError, ProofsCheckError
from constructions.layout import LayoutBuilder
from constructions.numerics import Arithmetic, div_round
from constructions.recurrent_state import LinearRNNState, next_token, step
from constructions.rnn_circuit import CompiledRNN, compile_rnn
from constructions.rnn_circuit_cases import CASES, PROMPTS, counter_mod_model
from constructions.vocab import Vocabulary
from proofs_check import circuits
from proofs_check.cli import main
from random_models import ModelSpec, random_model, random_tokens

# ---- the gate-level arithmetic against Python's integers ------------------------------------


def evaluate(op, x: int, xr: tuple[int, int], y: int = 0, yr: tuple[int, int] = (0, 0)) -> tuple[int, Vec]:
    """Build op(builder, X, Y) on two input coordinates holding x and y, evaluate the circuit
    with the reference evaluator, and read the result's value off its wires."""
    w = max(width_for(*xr), width_for(*yr))
    b = GateBuilder(0, 1)
    X = Vec(tuple(b.input(0, k) for k in range(width_for(*xr))), *xr)
    Y = Vec(tuple(b.input(1, k) for k in range(width_for(*yr))), *yr)
    out = op(b, X, Y)
    b.copy(ZERO)  # the one output gate the format needs
    c = Circuit(tuple(b.gates), 2, w, 0, 1, 1, (0, 1), codes=((x % (1 << w), y % (1 << w)), (0, 0)))
    values = circuits.step(c, 0, ()).values
    bits = out if isinstance(out, int) else out.bits
    read = [0 if g == ZERO else 1 if g == ONE else values[g - 1] for g in ([bits] if isinstance(bits, int) else bits)]
    if isinstance(out, int):
        return read[0], out
    v = sum(bit << k for k, bit in enumerate(read))
    return v - (1 << len(read)) if read[-1] else v, out


ranges = st.tuples(st.integers(-300, 300), st.integers(0, 300)).map(lambda t: (t[0], t[0] + t[1]))


@st.composite
def in_range(draw, r=ranges):
    lo, hi = draw(r)
    return draw(st.integers(lo, hi)), (lo, hi)


@given(in_range(), in_range(), st.booleans())
def test_ripple_carry_add_and_subtract(xa, ya, subtract):
    (x, xr), (y, yr) = xa, ya
    got, out = evaluate(lambda b, X, Y: b.add(X, Y, subtract), x, xr, y, yr)
    assert got == (x - y if subtract else x + y)
    assert out.lo <= got <= out.hi


@given(in_range(), st.integers(-40, 40), st.integers(-40, 40), st.integers(-99, 99))
def test_constant_linear_form(xa, c1, c2, const):
    (x, xr) = xa
    got, _ = evaluate(lambda b, X, Y: b.linear_form([c1, c2], [X, X.shift(2)], const), x, xr)
    assert got == c1 * x + c2 * 4 * x + const


@given(st.integers(-10**6, 10**6))
def test_non_adjacent_form(c):
    digits = naf(c)
    assert sum(d << k for k, d in enumerate(digits)) == c
    assert all(d in (-1, 0, 1) for d in digits)
    assert all(not (a and b) for a, b in zip(digits, digits[1:]))


@given(in_range(st.tuples(st.integers(0, 200), st.integers(0, 200)).map(lambda t: (t[0], t[0] + t[1]))), in_range())
def test_unsigned_times_signed_multiplier(xa, ya):
    (x, xr), (y, yr) = xa, ya
    got, out = evaluate(lambda b, X, Y: b.multiply(X, Y), x, xr, y, yr)
    assert got == x * y and out.lo <= got <= out.hi


@given(in_range(), st.integers(0, 5))
def test_rounding_ties_to_even(xa, k):
    (x, xr) = xa
    got, _ = evaluate(lambda b, X, Y: b.round_shift(X, k), x, xr)
    assert got == div_round(x, 1 << k, "even")


def test_rounding_on_the_ties_themselves():
    # 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4 (q / 4 with q = 10, 14, -10, -14)
    assert [evaluate(lambda b, X, Y: b.round_shift(X, 2), q, (-16, 16))[0] for q in (10, 14, -10, -14)] == [2, 4, -2, -4]


@given(in_range(), st.integers(2, 7))
def test_range_flag(xa, w):
    (x, xr) = xa
    bound = (1 << (w - 1)) - 1
    flag, _ = evaluate(lambda b, X, Y: b.out_of_range(X, bound)[1], x, xr)
    assert flag == int(not -bound <= x <= bound)


@given(in_range(), in_range(), st.booleans())
def test_compare_relu_and_mux(xa, ya, sel_first):
    (x, xr), (y, yr) = xa, ya
    assert evaluate(lambda b, X, Y: b.greater(X, Y), x, xr, y, yr)[0] == int(x > y)
    assert evaluate(lambda b, X, Y: b.relu(X), x, xr)[0] == max(x, 0)
    sel = ONE if sel_first else ZERO
    assert evaluate(lambda b, X, Y: b.mux(sel, X, Y), x, xr, y, yr)[0] == (x if sel_first else y)


# ---- one step: the compiled circuit against the reference step --------------------------------


def small_model(p: int, layers: int, seed: int, untied: bool = False):
    """A random linear RNN whose weights are scaled down so that many steps stay inside R_p
    (``untied``: with an explicit readout matrix instead of the tied W_E)."""
    return random_model(ModelSpec("linear_rnn", p, n_layers=layers, seed=seed, fractional=0.3, n=3,
                                  max_len=6, scale_log2=-2, untied=untied))


def random_state(comp: CompiledRNN, rng: random.Random) -> LinearRNNState:
    """A valid state: h in R_p at the dims the layers write (magnitudes of every size),
    0 <= pos <= max_len."""
    m = comp.model

    def value() -> int:
        mag = m.precision.max_scaled >> rng.randint(0, m.p - 1)
        return rng.randint(-mag, mag)

    h = tuple(tuple(value() if i in kept else 0 for i in range(m.d)) for kept in comp.kept)
    return LinearRNNState(rng.randint(0, m.max_len), h)


def states(comp: CompiledRNN):
    return st.randoms(use_true_random=False).map(lambda rng: random_state(comp, rng))


def check_step(comp: CompiledRNN, state: LinearRNNState, token) -> str:
    """The circuit's step equals the reference's bit for bit, or the reference raises and the
    circuit's matching flag is up (the step's: sticky bit 0; the readout's: bit 1). Returns which."""
    sv = circuits.step(comp.circuit, token, comp.encode_state(state))
    got, flag = comp.decode_state(sv.next_state)
    try:
        want = step(comp.model, state, token)
    except ProofsCheckError:
        assert flag
        return "overflow"
    assert not flag and (got.h, got.position) == (want.h, want.position)
    try:
        want_token = next_token(comp.model, want)
    except ProofsCheckError:
        assert comp.readout_overflow(sv.next_state)
        return "readout overflow"
    assert not comp.readout_overflow(sv.next_state) and sv.emitted == want_token
    return "agree"


@given(st.sampled_from([7, 9, 11]), st.integers(1, 2), st.integers(0, 10**6), st.booleans(), st.data())
def test_compiled_step_equals_the_reference_step(p, layers, seed, untied, data):
    comp = compile_rnn(small_model(p, layers, seed, untied))
    check_step(comp, data.draw(states(comp)), data.draw(st.sampled_from(comp.model.vocab.all_tokens())))


def test_both_outcomes_occur_and_agree():
    """Not vacuous: on fixed seeds the random states give exact steps and overflowing ones."""
    seen = {"agree": 0, "overflow": 0, "readout overflow": 0}
    for seed in range(3):
        comp = compile_rnn(small_model(9, 2, seed))
        rng = random.Random(seed)
        for k in range(12):
            token = comp.model.vocab.all_tokens()[k % len(comp.model.vocab)]
            seen[check_step(comp, random_state(comp, rng), token)] += 1
    assert min(seen.values()) >= 2, seen


def tie_model(p: int = 7):
    """h_t = h_(t-1) / 2 (with x0 written by nothing): every odd h is a rounding tie."""
    vocab = Vocabulary(1, ())
    lb = LayoutBuilder(vocab)
    lb.alloc("x0")
    lu = LinearUnitSpec({"x0": {"x0": Fraction(1, 2)}}, {})
    return assemble(arch="linear_rnn", p=p, layout=lb.build(), vocab=vocab, layers=[LayerSpec("linear_rnn", lu=lu)], max_len=4)


def test_halving_rounds_ties_to_even_as_the_reference():
    comp = compile_rnn(tie_model())
    x0 = comp.model.layout.index("x0")
    for q in range(-63, 64):
        h = tuple(q if i == x0 else 0 for i in range(comp.model.d))
        assert check_step(comp, LinearRNNState(0, (h,)), 1) == "agree"
        got, _ = comp.decode_state(circuits.step(comp.circuit, 1, comp.encode_state(LinearRNNState(0, (h,)))).next_state)
        assert got.h[0][x0] == div_round(q, 2, "even")


# ---- whole runs with chain of thought -------------------------------------------------------


def check_run(comp: CompiledRNN, prompt, cot: int) -> str:
    """The circuit's chain of thought equals the reference's, or the reference raises and the
    circuit flags a failed step or a void token it emits (from the last prompt token on)."""
    steps = circuits.run(comp.circuit, prompt, cot - 1)
    flags = [comp.decode_state(sv.next_state)[1] for sv in steps]
    assert flags == sorted(flags), "the overflow flag is sticky"
    void = any(comp.readout_overflow(sv.next_state) for sv in steps[len(prompt) - 1:])
    try:
        want = comp.reference_generated(prompt, cot)
    except ProofsCheckError:
        assert flags[-1] or void
        return "overflow"
    assert not flags[-1] and not void
    assert circuits.generated(comp.circuit, prompt, cot) == want
    return "agree"


@given(st.sampled_from([7, 9, 11]), st.integers(1, 2), st.integers(0, 10**6), st.integers(1, 3), st.integers(1, 3))
def test_runs_with_chain_of_thought_equal_the_reference(p, layers, seed, length, cot):
    model = small_model(p, layers, seed)
    check_run(compile_rnn(model), random_tokens(model, length, seed), cot)


def test_a_logit_overflow_inside_the_prompt_is_no_failure_of_the_run():
    """The reference reads the logits only from the last prompt token on: the circuit flags the
    first step's logit overflow in bit 1 (not sticky), and the run still agrees."""
    model = small_model(7, 1, 3)
    comp, prompt = compile_rnn(model), [2, "~"]
    first = circuits.run(comp.circuit, prompt)[0]
    assert comp.readout_overflow(first.next_state) and not comp.decode_state(first.next_state)[1]
    with pytest.raises(ProofsCheckError):
        next_token(model, step(model, LinearRNNState(0, ((0,) * model.d,)), 2))
    assert check_run(comp, prompt, 1) == "agree"


@pytest.mark.parametrize("name", sorted(CASES))
def test_named_cases_run_as_their_models(name):
    comp = CASES[name]()
    for prompt in PROMPTS[name]:
        assert check_run(comp, prompt, comp.model.max_len - len(prompt) + 1) == "agree"
    # one token more than max_len: the reference refuses, the circuit raises its flag
    assert check_run(comp, PROMPTS[name][0], comp.model.max_len - len(PROMPTS[name][0]) + 2) == "overflow"


def test_named_cases_survive_their_json_export():
    for build in CASES.values():
        c = build().circuit
        assert circuit_from_json(json.loads(c.dumps())) == c


def test_parity_case_computes_parity():
    """An independent answer, not just agreement: the parity of the prompt's 1s, then CoT."""
    comp = CASES["parity-rnn"]()
    prompt = [1, 1, 0, 1]
    assert circuits.generated(comp.circuit, prompt, 1) == [1]
    assert [sv.emitted for sv in circuits.run(comp.circuit, prompt)] == [1, 0, 0, 1]


# ---- refusals, export ----------------------------------------------------------------------


@pytest.mark.parametrize("spec, arith, error, words", [
    (ModelSpec("transformer", 9), Arithmetic(), InputError, "linear_rnn models only"),
    (ModelSpec("linear_rnn", 9, n_layers=3), Arithmetic(), InputError, "1 to 2 layers"),
    (ModelSpec("linear_rnn", 17), Arithmetic(), PrecisionError, "small p"),
    (ModelSpec("linear_rnn", 9), Arithmetic(matmul="round_products"), InputError, "default arithmetic"),
    (ModelSpec("linear_rnn", 9), Arithmetic(tie="away"), InputError, "default arithmetic"),
    (ModelSpec("linear_rnn", 5, n=5), Arithmetic(), PrecisionError, "not an integer of R_5"),
])
def test_refuses_what_it_cannot_lower(spec, arith, error, words):
    with pytest.raises(error, match=words):
        compile_rnn(random_model(spec), arith)


def test_state_outside_the_written_dims_is_refused():
    comp = CASES["parity-rnn"]()
    with pytest.raises(InputError, match="never writes"):
        comp.encode_state(LinearRNNState(0, ((1,) * comp.model.d,)))


def test_export_cli_writes_the_compiled_circuit(tmp_path, capsys):
    out = tmp_path / "parity.json"
    assert main(["compile-rnn", "counter-mod", "--p", "7", "--param", "k=2", "--out", str(out),
                 "--tokens", "1 0 1 1", "--cot", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert circuit_from_json(out.read_text()) == compile_rnn(counter_mod_model(2, 7, 6), name=report["name"]).circuit
    assert report["run"]["circuit"] == report["run"]["reference"] == [1, 0, 0] and report["run"]["agree"]
    assert main(["compile-rnn", "random-transformer", "--out", str(out)]) == 2
