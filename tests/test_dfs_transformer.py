"""Theorem 4.7 / Lemma B.27: the DFS Transformer (constructions/dfs_transformer.py) and its errata."""
from __future__ import annotations

import itertools

import pytest
import torch

from constructions.decode import chain_of_thought
from constructions.dfs_transformer import declared_p, dfs_transformer
from constructions.errors import PrecisionError
from constructions.evaluate_fast import FastEvaluator
from constructions.evaluate_reference import ReferenceEvaluator, tied_unembed
from proofs_check.algorithms import algorithm1, lemma_b27_chain
from proofs_check.checks.dfs_transformer import CHECKS
from proofs_check.graphs import NO, YES, Graph, istree_answer
from proofs_check.registry import PROFILES

torch.set_num_threads(1)

FIGURE3 = Graph.parse("2-6 1-5 3-5 4-6 2-3")


def decode(model, g: Graph) -> list:
    return chain_of_thought(FastEvaluator().session(model, g.tokens()), 2 * g.n).generated


def test_figure3_tour_then_yes():
    assert decode(dfs_transformer(6), FIGURE3) == [1, 5, 3, 2, 6, 4, 6, 2, 3, 5, 1, YES]


def test_reference_and_fast_agree_bit_for_bit():
    model = dfs_transformer(3)
    toks = Graph.parse("1-2 3-1").tokens() + [1, 2]
    a = ReferenceEvaluator().forward(model, toks)
    b = FastEvaluator().forward(model, toks)
    assert a.next_token == b.next_token == 1
    assert a.logits == b.logits and (a.residual == b.residual).all()


@pytest.mark.parametrize("text,n", [("", 1), ("1-2", 2), ("2-1", 2), ("2-3 3-1", 3), ("1-2 1-3 1-4", 4)])
def test_small_trees_and_vertex_1_edge_cases(text, n):
    g = Graph.parse(text, n)
    assert decode(dfs_transformer(n), g) == [*algorithm1(g), YES]


def test_cycle_stops_with_no_where_the_proof_says():
    g = Graph.parse("1-2 2-3 3-1 4-1", 5)  # m = n - 1, cycle through vertex 1, vertex 5 isolated
    got = decode(dfs_transformer(5), g)
    assert got == lemma_b27_chain(g, literal_end_check=False) == [1, 2, 3, NO]
    assert got[:-1] == algorithm1(g)[:3]


@pytest.mark.parametrize("text,n", [("1-2", 3), ("1-2 3-4", 4), ("1-2 2-3 3-1 1-4", 4), ("", 3)])
def test_edge_count_other_than_n_minus_1_is_no_at_once(text, n):
    """The fix of B27-E3/B27-E4: m != n - 1 is never a tree, and the model says NO at the prompt's
    end (0 CoT tokens) instead of starting a walk."""
    g = Graph.parse(text, n)
    assert g.m != g.n - 1 and istree_answer(g) == NO
    assert decode(dfs_transformer(n), g) == [NO]


def test_check_4_7_passes_at_ci():
    """The check at ci (the only place the n = 32 graphs run): passes, decodes a tree and a
    non-tree on 32 vertices, and reports the sizes of every model it ran (constant in n)."""
    out = CHECKS[0].run(PROFILES["ci"])
    assert out.passed, out.detail
    sizes = out.measured["sizes"]
    assert 32 in sizes and sizes[32]["cot_max_seen"] == sizes[32]["cot_bound"] == 63  # the tree's tour
    # n = 1: one weight derived from n is 0 there (440 non-zero)
    assert {(s["layers"], s["heads"], s["params"]) for n, s in sizes.items() if n >= 2} == {(7, 14, 441)}


# ---- errata: each literal version fails -------------------------------------------------------


def test_erratum_B27_E1_tied_readout_cannot_emit_the_tour():
    """A.3's tied W_E gives number i the logit i * x_num: only 1 or n can win."""
    model = dfs_transformer(6, readout="tied")
    assert decode(model, FIGURE3)[0] != 1  # the tour must start with 1
    # the paper's Layer 9 output n[-v, 1, -1, ..., -1] decodes to 1 for every v >= 2
    n = 6
    W = tied_unembed(model)
    prec = model.precision
    for v in range(2, n + 1):
        x = [0] * model.d
        x[0] = -n * v * prec.scale
        for k in range(1, 1 + model.vocab.n_specials):
            x[k] = (n if k == 1 else -n) * prec.scale
        logits = [sum(int(W[t, j]) * x[j] for j in range(model.d)) for t in range(len(model.vocab))]
        best = max(range(len(logits)), key=lambda i: (logits[i], -i))
        assert model.vocab.token_of(best) != v


def test_erratum_B27_E2_next_precondition_fails_for_one_sided_heads():
    """Def B.12 condition 3 needs consecutive counts; the step-7 heads see one side only."""
    g = Graph.parse("1-2 3-1 1-4")
    side_a = [1 / (t + 2) for t, (a, b) in enumerate([e for e in g.edges if 1 in e]) if a == 1]
    assert side_a == [1 / 2, 1 / 4]  # 1/3 (edge 3-1, vertex 1 second) is missing: not consecutive


def test_erratum_B27_E3_position_check_alone_says_yes_on_a_non_tree():
    g = Graph.make(7, list(itertools.combinations(range(2, 8), 2))[:10])  # vertex 1 isolated
    assert istree_answer(g) == NO
    assert lemma_b27_chain(g, literal_end_check=True)[-1] == YES  # 3*10 + 1 + 1 = 5*7 - 3
    assert decode(dfs_transformer(7), g) == [NO]


def test_erratum_B27_E4_without_edge_count_check_the_walk_is_wrong():
    g = Graph.parse("1-2 3-4", 4)  # m = 2 < n - 1
    got = decode(dfs_transformer(4, edge_count_check=False), g)
    assert got[:-1] != algorithm1(g)[: len(got) - 1]  # not a prefix of A(G) = [1, 2, 1]
    assert decode(dfs_transformer(4), g) == [NO]


def test_precision_is_logarithmic_and_checked():
    ps = [declared_p(n) for n in (8, 32, 128, 512)]
    assert all(b - a <= 20 for a, b in zip(ps, ps[1:]))  # about 8 bits per doubling of n
    with pytest.raises(PrecisionError, match=f"p >= {declared_p(8)}"):
        dfs_transformer(8, p=declared_p(8) - 2)


def test_istree_claims_rows_all_decoded():
    """The claims-table rows of proofs_check.istree_claims at n = 4 and 6 (decoded in-process,
    batched: answers checked against IsTree inside, 4.7 chains against Algorithm 1, CoT within
    the bound); every IsTree construction has a row and every row is measured."""
    from proofs_check.decode_records import DecodeOptions
    from proofs_check.istree_claims import istree_rows

    rows = istree_rows([4, 6], workers=1, decode=DecodeOptions(records=None))
    assert [(r.theorem, r.n) for r in rows] == [(t, n) for t in ("4.7", "5.3", "5.7 (a)", "5.7 (b)") for n in (4, 6)]
    for r in rows:
        seen, bound = r.sizes["cot_measured"], r.sizes["cot_bound"]
        assert seen and max(seen.values()) <= bound, (r.theorem, seen)
        assert r.sizes["cot_steps"] == f"measured {max(seen.values())} (bound {bound})"
    t47 = [r for r in rows if r.theorem == "4.7"]
    assert [r.sizes["cot_bound"] for r in t47] == [7, 11] and all(r.sizes["layers"] == 7 for r in t47)
    assert t47[0].sizes["cot_measured"] == {"random tree": 7, "path": 7}  # a tree's tour: 2n - 1
