"""The fields of a DecodeResult, which the checks read (issue 16: mutmut survivors in decode.py).

``prompt``, ``sequence`` and ``Retrieval.position`` locate the model's own tokens for
``evaluator_agreement.chain_positions`` (the reference replay) and for 5.3's chain; these tests
pin them down on both stop reasons, with the scripted session of ``tests/test_decode.py``.
"""
from __future__ import annotations

from constructions.decode import RegexOracle, chain_of_thought, retrieval_augmented
from proofs_check.evaluator_agreement import chain_positions
from tests.test_decode import VOCAB, E, S, ScriptedSession


def test_chain_of_thought_result_fields_on_both_stops() -> None:
    res = chain_of_thought(ScriptedSession([1, 2], [3, 4, "YES"]), 5)
    assert (res.prompt, res.sequence, res.generated, res.answer, res.stopped) == ([1, 2], [1, 2, 3, 4, "YES"], [3, 4, "YES"], "YES", "answer")
    res = chain_of_thought(ScriptedSession([1], [3, 4]), 1)
    assert (res.prompt, res.sequence, res.generated, res.answer, res.stopped) == ([1], [1, 3, 4], [3, 4], None, "max_steps")
    assert chain_positions(res) == [1, 2]


def test_retrieval_result_positions_and_a_reused_oracle() -> None:
    script = [S, r"(?x)^(?:\S+\s+)", "{1}", r"(\S+)", E, "YES"]
    with RegexOracle() as oracle:
        for _ in range(2):  # the caller's oracle stays usable after a decode
            res = retrieval_augmented(ScriptedSession([5, 7, 9], list(script)), VOCAB, 10, oracle=oracle)
            assert res.prompt == [5, 7, 9] and res.answer == "YES" and res.stopped == "answer"
            (r,) = res.retrievals
            assert r.result == [7] and r.position == 8 and res.sequence[8] == 7
            assert chain_positions(res) == [3, 4, 5, 6, 7, 9]
        assert oracle._proc is not None and oracle._proc.is_alive()
