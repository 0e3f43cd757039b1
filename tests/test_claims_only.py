"""``python -m proofs_check.claims --write FILE --only NAME``: only the named row sources run,
and only their (theorem, task, model) groups are replaced in the existing table."""
from __future__ import annotations

import pytest

from constructions.errors import InputError
from proofs_check import claims
from proofs_check.claims import ClaimRow, markdown, merge_rows, parse_table


def _row(thm: str, model: str, n: int, p: int) -> ClaimRow:
    return ClaimRow(thm, "istree", model, n, {"p": p, "layers": 7, "cot_steps": f"measured {n}"})


def test_parse_table_reads_back_what_markdown_writes():
    rows = [_row("4.7", "transformer", 8, 39), _row("5.3", "rag-rnn", 8, 45)]
    back = parse_table("# title\n\n" + markdown(rows) + "\n\n## Growth\n")
    assert [(r.theorem, r.task, r.model, r.n) for r in back] == [("4.7", "istree", "transformer", 8),
                                                                 ("5.3", "istree", "rag-rnn", 8)]
    assert back[0].sizes["p"] == "39" and back[0].sizes["cot_steps"] == "measured 8" and back[0].sizes["gates"] == ""


def test_merge_replaces_only_the_new_groups_in_place():
    old = [_row("4.6", "transformer", 16, 30), _row("4.7", "transformer", 8, 39), _row("4.7", "transformer", 32, 51),
           _row("5.2", "rag-rnn", 16, 40)]
    new = [_row("4.7", "transformer", 8, 39), _row("4.7", "transformer", 2048, 99), _row("5.3", "rag-rnn", 8, 45)]
    got = merge_rows(old, new)
    assert [(r.theorem, r.n) for r in got] == [("4.6", 16), ("4.7", 8), ("4.7", 2048), ("5.2", 16), ("5.3", 8)]


def test_only_unknown_source_is_refused():
    with pytest.raises(InputError, match="no such row source"):
        claims.claims_rows(only=["nosuch"])
    assert "istree" in claims.source_names() and "retrieval" in claims.source_names()


def test_write_only_keeps_the_other_rows(tmp_path, monkeypatch):
    path = tmp_path / "claims.md"
    path.write_text(claims.PREAMBLE + "\n## Table\n\n" + markdown([_row("4.6", "transformer", 16, 30),
                                                                  _row("4.7", "transformer", 8, 1)]) + "\n")
    monkeypatch.setattr(claims, "ROW_SOURCES", ("tests.test_claims_only:fake_rows",))
    text = claims.write_markdown(str(path), only=["fake"])
    rows = parse_table(text)
    assert [(r.theorem, r.n, r.sizes["p"]) for r in rows] == [("4.6", 16, "30"), ("4.7", 8, "39")]


def fake_rows(sizes) -> list[ClaimRow]:
    return [_row("4.7", "transformer", 8, 39)]
