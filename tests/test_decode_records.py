"""proofs_check.decode_records: the claims table's decodes kept as records (issue #10).

A recorded decode is read back instead of decoded again; a record made for another model
digest is not used; a decode that fails its check is recorded as an error and refused, and runs
again next time; cells neither recorded nor allowed are left out (their rows: "not decoded")."""
from __future__ import annotations

import json

import pytest

from constructions.errors import InputError, ProofsCheckError
from proofs_check import istree_claims
from proofs_check.decode_records import DecodeOptions, known_results, measured
from proofs_check.sweep import cell_key, read_records


def _square(cell: dict) -> dict:
    if cell["x"] < 0:
        raise ProofsCheckError("negative input: the check failed")
    return {"counted": cell["x"] ** 2}


def test_measured_records_reads_back_and_skips_what_is_not_allowed(tmp_path):
    out = tmp_path / "decodes" / "r.jsonl"  # the folder is created
    opts = DecodeOptions(records=str(out), workers=1, quiet=True)
    cells = [{"x": k} for k in range(4)]
    got = measured(cells, lambda c: c["x"] < 2, _square, opts)
    assert got == {cell_key(c): {"counted": c["x"] ** 2} for c in cells[:2]}
    # a second call decodes nothing already recorded: a cell function that refuses every call
    # still gets the recorded results back, and the newly allowed cell alone is decoded
    calls = []

    def recording(cell):
        calls.append(cell["x"])
        return _square(cell)

    got = measured(cells, lambda c: c["x"] < 3, recording, opts)
    assert calls == [2]
    assert sorted(v["counted"] for v in got.values()) == [0, 1, 4]
    assert len(read_records(out)[0]) == 3


def test_measured_failed_decode_is_recorded_refused_and_retried(tmp_path):
    out = tmp_path / "r.jsonl"
    opts = DecodeOptions(records=str(out), workers=1, quiet=True)
    cells = [{"x": 3}, {"x": -1}]
    with pytest.raises(ProofsCheckError, match="1 decode\\(s\\) failed.*negative input"):
        measured(cells, lambda c: True, _square, opts)
    records, _ = read_records(out)
    assert [r["status"] for r in records] == ["ok", "error"]  # the good one is kept
    assert known_results(str(out)) == {cell_key(cells[0]): {"counted": 9}}
    with pytest.raises(ProofsCheckError):  # the failed cell runs again (and fails again)
        measured(cells, lambda c: True, _square, opts)
    assert [r["status"] for r in read_records(out)[0]] == ["ok", "error", "error"]


def test_measured_without_records_decodes_every_allowed_cell():
    opts = DecodeOptions(records=None, workers=1, quiet=True, decode_all=False)
    assert measured([{"x": 2}, {"x": 5}], lambda c: c["x"] == 5, _square, opts) == {cell_key({"x": 5}): {"counted": 25}}
    everything = DecodeOptions(records=None, workers=1, quiet=True, decode_all=True)
    assert len(measured([{"x": 2}, {"x": 5}], lambda c: False, _square, everything)) == 2


def test_decode_options_refuse_bad_workers():
    with pytest.raises(InputError, match="--workers"):
        DecodeOptions(workers=0)


def test_istree_rows_use_records_and_only_for_the_same_model(tmp_path, monkeypatch):
    """Rows at n = 4 come from the records on the second run (the decoder is not called);
    a record whose model digest differs from the model built now is not used."""
    out = tmp_path / "claims.jsonl"
    opts = DecodeOptions(records=str(out), workers=1, quiet=True)
    first = {r.theorem: r.sizes["cot_steps"] for r in istree_claims.istree_rows([4], decode=opts)}
    assert first["4.7"] == "measured 7 (bound 7)"

    def refuse(cell, checkpoint=None):
        raise AssertionError("decoded again although recorded")

    monkeypatch.setattr(istree_claims, "decode_cell", refuse)
    again = {r.theorem: r.sizes["cot_steps"] for r in istree_claims.istree_rows([4], decode=opts)}
    assert again == first
    # the same records under another digest: the 4.7 cells are not found, so they are decoded
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for rec in lines:
        rec["cell"]["model"] = "0" * 64
        rec["key"] = cell_key(rec["cell"])
    out.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(ProofsCheckError, match="decoded again although recorded"):
        istree_claims.istree_rows([4], decode=opts)


def test_decode_cell_refuses_a_cell_made_for_another_model():
    c = istree_claims._construction("4.7")
    (cell, _) = istree_claims.decode_cells(c, 4, "f" * 64)
    with pytest.raises(ProofsCheckError, match="not the one this cell was made for"):
        istree_claims.decode_cell(cell)


def test_a_hybrid_decode_is_checked_against_the_reference_chain(monkeypatch):
    """Thm 5.7 (a) cells compare the decoded chain with hybrid_cot token by token: the real
    reference passes (and says so in the stamp), a reference changed in one token refuses."""
    from constructions.modelfile import model_digest
    from proofs_check.checks import istree_hybrid as ref

    c = istree_claims._construction("5.7 (a)")
    cell = istree_claims.decode_cells(c, 4, model_digest(c.build(4)))[0]
    got = istree_claims.decode_cell(cell)
    assert got["engine"] == "FastEvaluator exact (checked: IsTree, hybrid_cot)"
    real = ref.hybrid_cot
    monkeypatch.setattr(ref, "hybrid_cot", lambda g: real(g)[:-2] + ["PROBE"] + real(g)[-1:])
    with pytest.raises(ProofsCheckError, match=r"not the reference chain \(hybrid_cot\)"):
        istree_claims.decode_cell(cell)


def test_claims_cli_refuses_bad_workers_cleanly(capsys):
    from proofs_check.claims import main

    with pytest.raises(SystemExit) as exc:
        main(["--only", "istree", "--workers", "0"])
    assert exc.value.code == 2 and "--workers must be a positive integer" in capsys.readouterr().err


def _source_cells():
    """One small cell per decoding row source (the rows' own cell makers)."""
    from proofs_check import circuit_claims, tm_claims, turing_claims, turing_cot_claims

    t58 = tm_claims._plan("1RZ1RA", 1, 4)[-1]
    t54 = turing_claims._plan(turing_claims.FAMILIES[0], 4)[-1]
    from constructions.modelfile import model_digest

    case, model = turing_cot_claims._case_model(16, "cells")
    c41 = {"source": "cot-rnn", "theorem": "4.1", "n": 16, "tape": "cells", "mode": "exact", "model": model_digest(model)}
    from constructions.circuit_transformer import circuit_transformer
    from proofs_check.automata import named_circuit

    c = named_circuit("parity")
    c48 = {"source": "circuit", "theorem": "4.8", "circuit": c.to_json(), "P": c.size, "n": 4, "mode": "exact",
           "model": model_digest(circuit_transformer(c, 4, 4))}
    return [(tm_claims, t58, "generated", 26), (turing_claims, t54, "chain", 102),
            (turing_cot_claims, c41, "generated", 41), (circuit_claims, c48, "cot_length", 98)]


def test_every_decoding_source_decodes_checks_and_refuses_a_foreign_model():
    """The figures are the ones the simulator / circuit evaluator imply (5.8: 5 x 5 steps + HALT;
    5.4: 13 x 5 + 9 x 4 + 1; 4.1: 4 x 10 + 1; 4.8 parity at n = 4: the schedule's 98)."""
    for module, cell, field_, want in _source_cells():
        assert module.decode_cell(cell)[field_] == want, module.__name__
        with pytest.raises(ProofsCheckError, match="not the one this cell was made for"):
            module.decode_cell({**cell, "model": "0" * 64})


def test_decoding_sources_refuse_a_run_the_reference_disagrees_with(monkeypatch):
    """The check inside each Turing decode is real: a reference that says otherwise fails it."""
    from proofs_check import tm_claims, turing_claims
    from proofs_check.turing import simulate

    def other(machine, tape, bound):
        run = simulate(machine, tape, bound)
        return type("Run", (), {"to_json": lambda self: {**run.to_json(), "steps": run.steps + 1}})()

    for module, cell, _, _ in _source_cells()[:2]:
        monkeypatch.setattr(module, "simulate", other)
        with pytest.raises(ProofsCheckError, match="disagrees with the simulator"):
            module.decode_cell(cell)


def test_summary_lists_each_recorded_decode_with_its_fit(tmp_path):
    from proofs_check.decode_records import main, summary_markdown

    out = tmp_path / "claims.jsonl"
    istree_claims.istree_rows([4, 6], decode=DecodeOptions(records=str(out), workers=1, quiet=True))
    text = summary_markdown(str(out))
    # a tree's tour on n vertices is 2n - 1 tokens, then the answer: 8 and 12 generated
    assert "| 4.7 | random tree | 4 | 8 |" in text and "| 4.7 | path | 6 | 12 |" in text
    assert "- Thm 4.7, random tree: seconds ~ n^" in text
    target = tmp_path / "README.md"
    assert main(["--records", str(out), "--write", str(target)]) == 0
    assert target.read_text().startswith("# Recorded decodes")
