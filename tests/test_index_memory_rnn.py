"""Lemma B.24's upper bound: the Index memory RNN, its two-party protocol, and its lossy variant."""
from __future__ import annotations

import itertools

import pytest

from constructions.errors import InputError, PrecisionError
from constructions.evaluate_reference import ReferenceEvaluator
from constructions.index_memory_rnn import declared_p, index_memory_rnn
from constructions.recurrent_state import memory_from_bytes
from proofs_check.lower_bounds import index_family, index_from_bits, linear_rnn_recurrent_model, two_party_run


@pytest.mark.parametrize("N", [2, 3, 5])
def test_answers_every_index_instance_as_the_task(N: int) -> None:
    model = index_memory_rnn(N)
    ev = ReferenceEvaluator()
    for x in itertools.product((0, 1), repeat=N):
        for k in range(1, N + 1):
            inst = index_from_bits(x, k)
            assert ev.next_token(model, index_family(N).tokens(x, k)) == inst.answer(), (x, k)


def test_bob_answers_from_the_message_bytes_alone() -> None:
    N = 6
    rnn = linear_rnn_recurrent_model(index_memory_rnn(N))
    fam = index_family(N)
    x = (1, 0, 0, 1, 1, 0)
    msg, direct = two_party_run(rnn, fam.alice_tokens(x), fam.bob_tokens(4))
    rebuilt = rnn.run(fam.bob_tokens(4), state=memory_from_bytes(msg))
    assert rebuilt.h == direct.h and rnn.readout(rebuilt) == index_from_bits(x, 4).answer()


def test_a_window_of_n_minus_2_bits_forgets_x1() -> None:
    N = 5
    model = index_memory_rnn(N, window=N - 2)
    ev = ReferenceEvaluator()
    fam = index_family(N)
    wrong = [x for x in itertools.product((0, 1), repeat=N)
             if ev.next_token(model, fam.tokens(x, 1)) != index_from_bits(x, 1).answer()]
    assert wrong, "the lossy model cannot answer k = 1 for every x"


def test_refusals() -> None:
    with pytest.raises(InputError):
        index_memory_rnn(1)
    with pytest.raises(InputError):
        index_memory_rnn(4, window=5)
    with pytest.raises(PrecisionError):
        index_memory_rnn(8, p=declared_p(8) - 2)
