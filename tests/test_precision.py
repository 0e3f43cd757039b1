"""proofs_check/precision.py: number formats and minimal p on seeded samples (tiny n, few instances)."""
from __future__ import annotations

import argparse
import json
from fractions import Fraction

import pytest
import torch

from constructions.errors import InputError, PrecisionError
from constructions.retrieval_tasks import build_count_rag_rnn
from proofs_check import precision as P
from proofs_check.graphs import YES, Graph, istree_answer

torch.set_num_threads(1)

TINY_N = {"index": 4, "ar": 4, "cgram": 4, "count": 4, "istree": 4, "istree (Figure 3 family)": 6}


@pytest.mark.parametrize("name", [c.name for c in P.CONSTRUCTIONS])
def test_exact_format_answers_every_sampled_instance(name):
    """The exact evaluation at the declared p is 100% correct against the reference answer."""
    con = P.construction(name)
    (row,) = P.float_format_rows([name], [TINY_N[con.task]], 2, workers=1, formats=("exact",))
    assert row.error is None, row.error
    exact = row.results["exact"]
    assert exact.total == 2 and exact.correct == 2, exact.failures


def test_bfloat16_breaks_the_dfs_transformer_on_figure3_at_n6():
    row = P.format_row("dfs-transformer", 6, 1)
    assert row.labels == ["Figure 3"] and row.p == 47
    res = row.results
    assert (res["exact"].correct, res["float64"].correct, res["float32"].correct) == (1, 1, 1)
    assert res["float64"].chain_equal == res["float32"].chain_equal == 1  # the Euler tour, token for token
    assert res["bfloat16"].correct == 0 and res["bfloat16"].chain_equal == 0
    assert res["bfloat16"].failures == ["Figure 3: answered NO"]
    assert "| 4.7 | dfs-transformer | 6 | 47 | 1 | 1/1 | 1/1 | 1/1 | **0/1** | 1/1 / 1/1 / 0/1 |" in P.formats_markdown([row])


def test_figure3_case_is_the_papers_graph_and_a_tree():
    case = P.graph_cases(6, 1)[0]
    g = Graph.parse("2-6 1-5 3-5 4-6 2-3")
    assert case.label == "Figure 3" and list(case.tokens) == g.tokens()
    assert case.answer == istree_answer(g) == YES


def test_retrieval_samples_hold_the_hard_cases():
    idx = {c.label: c for c in P.retrieval_cases("index", 8, 3)}
    assert idx["query 1"].data["query"] == 1 and idx["query L"].data["query"] == 8
    assert idx["answer n"].answer == 8
    ar = P.retrieval_cases("ar", 8, 3)
    first = ar[0].data
    assert ar[0].label == "key first" and first["query"] == first["tokens"][0]
    assert ar[1].label == "answer is t_L"
    for case in P.retrieval_cases("count", 8, 5):
        seq, q, t = case.data["tokens"], case.data["query"], case.data["threshold"]
        count = seq.count(q)
        assert case.answer == (1 if count > t else 0)
        if case.label.startswith("t = count"):
            assert t == max(0, count + {"t = count - 1": -1, "t = count": 0, "t = count + 1": 1}[case.label])
    assert P.retrieval_cases("cgram", 9, 4) == P.retrieval_cases("cgram", 9, 4)  # seeded
    assert P.retrieval_cases("cgram", 9, 4, seed=1) != P.retrieval_cases("cgram", 9, 4)


def test_graph_samples_answer_by_istree_and_family_only_keeps_the_family():
    for case in P.graph_cases(7, 9):
        assert case.answer == istree_answer(Graph.from_tokens(list(case.tokens), 7))
    fam = P.graph_cases(8, 4, family_only=True)
    assert [c.answer for c in fam] == ["YES", "NO", "YES", "NO"]
    with pytest.raises(InputError):
        P.graph_cases(3, 2)


def test_requantise_rounds_each_weight_to_nearest_even_and_refuses_out_of_range():
    model = build_count_rag_rnn(6)  # declared p = 19, F = 9
    low = P.requantise(model, 15)  # F = 7
    assert low.p == 15 and low.meta["requantised_from_p"] == 19
    for name, w in model.all_weights().items():
        got = low.all_weights()[name]
        for q, q2 in zip(w.reshape(-1), got.reshape(-1)):
            assert q2 == round(Fraction(int(q), 2**9) * 2**7)  # Python's round: half to even
    with pytest.raises(PrecisionError, match="beyond R_11"):
        P.requantise(model, 11)  # the readout's -36 does not fit in R_11 (largest ~32)


def test_min_p_contiguous_and_any_are_read_off_a_non_monotone_scan():
    steps = [P.ScanStep(p, ok, 1, 1) for p, ok in ((21, True), (19, False), (17, True), (15, False))]
    row = P.MinPRow("x", "x", 4, 23, 1, "refused below declared", [], steps)
    s = row.summary("requantised")
    assert s["min_p_contiguous"] == 21 and s["min_p_any"] == 17 and s["passing"] == [21, 17]


def test_minimal_p_row_reports_builder_refusal_and_scans_downward():
    (row,) = P.minimal_p_rows(["count-rag-rnn"], [6], 2, 4, workers=1)
    assert row.builder == "refused below declared" and row.builder_scan == []
    assert [s.p for s in row.requantised_scan] == [17, 15, 13, 11]
    with pytest.raises(PrecisionError):
        build_count_rag_rnn(6, 17)  # independent: the builder does refuse
    s = row.summary("requantised")
    assert s["min_p_contiguous"] is not None and s["min_p_contiguous"] < 19
    failing = [st for st in row.requantised_scan if not st.ok]
    assert failing and all(st.first_failure for st in failing)
    assert failing[-1].first_failure.startswith("no model: weight")  # p = 11: the readout's 36 is out of range


def test_cli_subcommand_json(capsys):
    parser = argparse.ArgumentParser()
    P.add_parser(parser.add_subparsers())
    args = parser.parse_args(["precision", "count-hybrid", "--n", "4", "--instances", "2", "--json"])
    assert args.handler(args) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    out = json.loads(line)
    assert out["kind"] == "formats" and out["name"] == "count-hybrid" and out["n"] == 4
    assert out["results"]["exact"]["correct"] == out["instances"] == 2
    assert set(out["results"]) == set(P.FORMATS)


def test_cli_rejects_bad_sizes():
    parser = argparse.ArgumentParser()
    P.add_parser(parser.add_subparsers())
    args = parser.parse_args(["precision", "dfs-transformer", "--n", "2", "--instances", "1"])
    with pytest.raises(InputError, match="n >= 4"):
        args.handler(args)
