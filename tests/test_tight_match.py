"""The tightened Match constants (attention_blocks.tight_match_scales, issue #11) and the
``index-transformer-tight`` variant built from them: the smallest lambdas whose score gaps
reach the hard-attention bar at F bits, checked against the budget's own bar, minimal (one
less of any lambda misses it), and the variant answers the seeded Index sample in fewer bits."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from constructions import attention_blocks as AB
from constructions.decode import RegexOracle
from constructions.numerics import Precision
from proofs_check.precision import construction, run_sample


def _budget(scales, L: int) -> AB.PrecisionBudget:
    return AB.match_budget("match", L, 1, 1, L, L, 16, scales=scales)


@given(st.integers(1, 60), st.integers(3, 5000))
def test_tight_scales_are_the_smallest_that_make_match_hard(F, L):
    l4, l2, l1 = AB.tight_match_scales("match", L, F)
    bar = (F + 1) * AB.LN2_UP + AB._ln_up(L - 1)  # the budget's bar, PrecisionBudget.hard
    prec = Precision.split(1, F)
    assert _budget((l4, l2, l1), L).hard(prec) and _budget((l4, l2, l1), L).gap(F) > bar
    for smaller in ((l4 - 1, l2, l1), (l4, l2 - 1, l1), (l4, l2, l1 - 1)):
        if min(smaller) >= 1:
            assert not _budget(smaller, L).hard(prec), smaller
    assert _budget((l4, l2, l1), L).hard(Precision.split(1, max(1, F - 1)))  # hard below F too


@pytest.mark.parametrize("n", [8, 64])
def test_tight_index_transformer_answers_in_fewer_bits_than_the_lemma_constants(n):
    tight, paper = construction("index-transformer-tight"), construction("index-transformer")
    mt, mp = tight.build(n), paper.build(n)
    dt, dp = mt.meta["declared_precision"], mp.meta["declared_precision"]
    assert dt["I"] < dp["I"] and dt["p"] < dp["p"] and mt.meta["variant"] == "tight-match"
    cases = tight.cases(n, 4)
    with RegexOracle() as oracle:
        for model in (mt, tight.build(n, Precision.split(dt["I"], dt["F"]))):
            assert all(o.correct for o in run_sample(tight, model, cases, "exact", oracle))


def test_tight_index_transformer_refuses_below_its_need_and_names_it():
    from constructions.errors import PrecisionError

    con = construction("index-transformer-tight")
    d = con.build(8).meta["declared_precision"]
    with pytest.raises(PrecisionError, match=rf"tightened Match constants needs at least {d['I']} integer"):
        con.build(8, Precision.split(d["I"] - 1, d["F"]))
    with pytest.raises(PrecisionError, match=rf"needs p >= {d['p']}"):
        con.build(8, d["p"] - 2)
    assert Fraction(con.build(8, d["p"]).p) == d["p"]
