"""Theorem 4.6 / 4.7 reductions, Proposition 5.1's simulation and the fooling-pair finder."""
from __future__ import annotations

import itertools

import pytest
from graph_reference import bfs_is_tree
from hypothesis import given
from hypothesis import strategies as st

from constructions.errors import InputError
from proofs_check import strategies as S
from proofs_check.checks.lower_bounds import CHECKS
from proofs_check.graphs import Graph
from proofs_check.lower_bounds import (
    Prop51ARSimulator,
    RecurrentModel,
    ar_family,
    ar_from_index,
    b28_claim_as_printed,
    b28_graph,
    bob_reconstructs,
    cgram_from_index,
    counting_from_index,
    decode_ar,
    decode_cgram,
    figure3_graph,
    find_fooling_pair,
    full_memory_model,
    hashed_ar_model,
    index_family,
    index_from_bits,
    istree_family,
    kappa_index_instance,
    kappa_permutation_instance,
    truncated_state_model,
    xor_prefix,
)
from proofs_check.registry import PROFILES
from proofs_check.tasks import ARInstance




def ar_by_scan(seq, q):
    for i in range(len(seq) - 1):
        if seq[i] == q:
            return seq[i + 1]
    return None


def all_x(max_len):
    for N in range(1, max_len + 1):
        yield from itertools.product((0, 1), repeat=N)


# ---- Theorem 4.6 reductions ---------------------------------------------------------------------


def test_reductions_preserve_the_answer_exhaustively():
    for x in all_x(6):
        N = len(x)
        for k in range(1, N + 1):
            assert index_from_bits(x, k).answer() - 1 == x[k - 1]
            ar = ar_from_index(x, k)
            assert decode_ar(ar_by_scan(list(ar.seq), k), N) == x[k - 1]
            for c in (2, 3, 4):
                cg = cgram_from_index(x, k, c)
                assert decode_cgram(cg.answer(), N) == x[k - 1]
                assert cg.tokens()[-(c - 1):] == [k] * (c - 1)
            ct = counting_from_index(x, k)
            assert ct.answer() == int(list(ct.seq).count(k) > 0) == x[k - 1]


def test_erratum_T46_E1_ar_reduction_as_printed():
    inst = ar_from_index((0, 1), 2, literal=True)
    assert inst.tokens() == ["<s>", 1, 2, 2, 3, 2]
    assert decode_ar(inst.answer(), 2, literal=True) == 0  # but x_2 = 1


def test_erratum_T46_E2_cgram_reduction_as_printed():
    inst = cgram_from_index((0, 1), 2, 3, literal=True)
    assert inst.tokens() == ["<s>", 1, 1, 2, 2, 2, 3, 2, 2]
    assert decode_cgram(inst.answer(), 2, literal=True) == 0  # but x_2 = 1


def test_erratum_T46_E3_counting_threshold_as_printed():
    failures = [(x, k) for x in all_x(4) for k in range(1, len(x) + 1)
                if counting_from_index(x, k, literal=True).answer() != x[k - 1]]
    assert ((0, 1), 2) in failures  # threshold 1: "more than one occurrence" never happens
    assert all(x[k - 1] == 1 for x, k in failures)


def test_reduction_input_errors():
    with pytest.raises(InputError, match="bits"):
        ar_from_index((0, 2), 1)
    with pytest.raises(InputError, match="index k"):
        ar_from_index((0, 1), 3)
    with pytest.raises(InputError, match="c >= 2"):
        cgram_from_index((0, 1), 1, 1)


def test_lemma_b24_bob_recovers_x_from_alices_message():
    """With a model that solves Index (full memory + a readout), Alice's single message lets
    Bob answer every k, i.e. recover x: so the message carries all N bits."""
    def readout(state):
        *seq, k = [t for t in state if t != "<s>"]
        return seq[k - 1]

    model = RecurrentModel((), lambda s, t: s + (t,), readout=readout)
    for x in all_x(5):
        fam = index_family(len(x))
        message = model.run(fam.alice_tokens(x))
        assert bob_reconstructs(model, message, len(x), fam.bob_tokens, lambda a: a - 1) == x


# ---- Lemma B.26 / B.28, Figure 3 ------------------------------------------------------------------


def test_figure3_graph_is_the_papers():
    g = figure3_graph((0, 1, 0, 1), 2)
    assert {frozenset(e) for e in g.edges} == {frozenset(e) for e in Graph.parse("2-6 1-5 3-5 4-6 2-3").edges}


def test_tree_iff_exhaustive():
    for x in all_x(7):
        if len(x) < 2:
            continue
        for k in range(1, len(x)):
            g = figure3_graph(x, k)
            assert bfs_is_tree(g.n, g.edges) == (x[k - 1] != x[k])
            b = b28_graph(x, k + 1)
            assert bfs_is_tree(b.n, b.edges) == (x[k] != x[k - 1])


@given(S.figure3_cases(max_n=20))
def test_tree_iff_any_order(case):
    g = case.graph
    assert bfs_is_tree(g.n, g.edges) == case.tree_expected


def test_xor_prefix_reduction():
    for x in all_x(6):
        xt = xor_prefix(x)
        for k in range(1, len(x) + 1):
            assert (x[k - 1] == 0) == (xt[k] == xt[k - 1])


def test_erratum_B28_E1_claim_as_printed():
    assert not b28_claim_as_printed((1, 1), 2)  # x_2 = x_1 but x~ = (1, 0)


# ---- Proposition 5.1 ------------------------------------------------------------------------------


@st.composite
def kappa_cases(draw):
    n = draw(st.integers(3, 20))
    odd = draw(st.lists(st.integers(1, n - 1), min_size=2, max_size=n))
    return n, odd, draw(st.booleans())


@given(kappa_cases())
def test_prop51_simulation_on_answerable_queries(case):
    n, odd, odd_length = case
    inst = kappa_index_instance(odd, 1, n=n, odd_length=odd_length)
    sim = Prop51ARSimulator.after(inst.tokens()[:-1], kappa=n)
    for q in range(1, n + 1):
        truth = ar_by_scan(list(inst.seq), q)
        if truth is not None:
            assert sim.ar(q) == truth, (inst.seq, q)


def test_erratum_P51_E1_absent_key():
    inst = kappa_index_instance([1, 2, 1], 1, n=4)
    sim = Prop51ARSimulator.after(inst.tokens()[:-1], kappa=4)
    assert ar_by_scan(list(inst.seq), 3) is None and sim.ar(3) == 4  # oracle: no answer; simulation: kappa


@given(st.permutations(range(1, 9)))
def test_prop51_fixed_family_every_query(perm):
    inst = kappa_permutation_instance(list(perm), 1)
    sim = Prop51ARSimulator.after(inst.tokens()[:-1], kappa=inst.n)
    for q in range(1, inst.n + 1):
        truth = ar_by_scan(list(inst.seq), q)
        assert truth is not None and sim.ar(q) == truth


# ---- the fooling-pair finder ----------------------------------------------------------------------


def _assert_genuine(model, pair, answer_of):
    assert model.encode(model.run(pair.tokens_a)) == model.encode(model.run(pair.tokens_b)) == pair.state
    assert answer_of(pair.tokens_a) != answer_of(pair.tokens_b)
    assert (pair.answer_a, pair.answer_b) == (answer_of(pair.tokens_a), answer_of(pair.tokens_b))


def _ar_answer(tokens):
    seq, q = list(tokens[1:-1]), tokens[-1]
    return ARInstance.make(seq, q).answer()


def _index_answer(tokens):
    seq, k = list(tokens[1:-1]), tokens[-1]
    return seq[k - 1]


def _istree_answer(tokens):
    g = Graph.from_tokens(tokens)
    return "YES" if bfs_is_tree(g.n, g.edges) else "NO"


def test_hashed_ar_rnn_is_fooled_and_wrong():
    N, slots = 8, 3
    model = hashed_ar_model(slots, 2 * N)
    pair = find_fooling_pair(model, ar_family(N))
    assert pair is not None
    _assert_genuine(model, pair, _ar_answer)
    assert len(pair.wrong) == 1
    wrong = pair.wrong[0]
    assert model.readout(model.run(wrong)) != _ar_answer(wrong)  # the model really errs there
    assert "wrong on" in pair.describe()


def test_hashed_ar_rnn_with_enough_slots_is_never_fooled():
    N = 6
    model = hashed_ar_model(2 * N + 3, 2 * N + 2)
    assert find_fooling_pair(model, ar_family(N)) is None
    fam = ar_family(N)
    for x in itertools.product((0, 1), repeat=N):
        for k in fam.bob_inputs:
            toks = fam.tokens(x, k)
            assert model.readout(model.run(toks)) == _ar_answer(toks)


@pytest.mark.parametrize("bits", [4, 8, 16, 24])
def test_truncated_state_is_fooled_on_index(bits):
    model = truncated_state_model(bits)
    pair = find_fooling_pair(model, index_family(bits + 1))
    assert pair is not None
    _assert_genuine(model, pair, _index_answer)
    assert pair.distinct_states <= 2 ** bits


@pytest.mark.parametrize("bits", [4, 10, 20])
def test_truncated_state_is_fooled_on_istree(bits):
    model = truncated_state_model(bits, salt=7)
    pair = find_fooling_pair(model, istree_family(bits + 4))
    assert pair is not None
    _assert_genuine(model, pair, _istree_answer)


def test_full_memory_is_never_fooled():
    assert find_fooling_pair(full_memory_model(), istree_family(9)) is None
    assert find_fooling_pair(full_memory_model(), index_family(8)) is None


def test_declared_budget_is_enforced():
    liar = RecurrentModel((), lambda s, t: s + (t,), state_bits=2, name="liar")
    with pytest.raises(InputError, match="declared 2 state bits"):
        find_fooling_pair(liar, index_family(4))


def test_registered_checks_pass():
    for check in CHECKS:
        outcome = check.run(PROFILES["ci"])
        assert outcome.passed, f"{check.id}: {outcome.detail}"
        assert outcome.cases > 0
