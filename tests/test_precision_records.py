"""proofs_check/precision_records.py: Table 1 from per-instance records (resumable --large)."""
from __future__ import annotations

import json

import pytest
import torch

from proofs_check import precision as P
from proofs_check import precision_records as R

torch.set_num_threads(1)

PLAN = {"dfs-transformer": ((6,), 2), "index-transformer": ((4,), 2)}


@pytest.mark.parametrize("name,n,k", [("dfs-transformer", 6, 2), ("index-transformer", 4, 2),
                                      ("index-transformer", 4, 6)])  # k = 6: three instances labelled "random"
def test_rows_from_instance_records_equal_the_whole_row_job(name, n, k):
    """Folding one record per instance gives the FormatRow that format_row decodes in one job
    (counts, chain = exact, failures, labels, p); only the seconds differ."""
    whole = P.format_row(name, n, k)
    cells, error = R._row_cells(name, n, k, P.SEED, P.FORMATS)
    assert error is None and len(cells) == whole.instances * len(P.FORMATS)
    folded = R.row_of_cases(name, n, whole.p, [R.format_case(c) for c in cells], P.FORMATS)
    assert folded.results == whole.results
    assert (folded.labels, folded.p, folded.instances, folded.error) == (whole.labels, whole.p, whole.instances, None)


def test_bfloat16_failure_on_figure3_survives_the_records():
    """The one known float failure of the sample (bfloat16, DFS Transformer, Figure 3) is
    reported from the records as from the row job: wrong answer, chain unlike the exact one."""
    cells, _ = R._row_cells("dfs-transformer", 6, 1, P.SEED, P.FORMATS)
    res = {c["format"]: R.format_case(c) for c in cells}
    assert set(res) == set(P.FORMATS) and all(r["label"] == "Figure 3" for r in res.values())
    assert res["exact"]["correct"] and res["float64"]["chain_sha256"] == res["exact"]["chain_sha256"]
    assert not res["bfloat16"]["correct"] and res["bfloat16"]["chain_sha256"] != res["exact"]["chain_sha256"]
    row = R.row_of_cases("dfs-transformer", 6, res["exact"]["p"], list(res.values()), P.FORMATS)
    assert row.results["bfloat16"].failures == ["Figure 3: answered NO"] and row.results["bfloat16"].chain_equal == 0


def test_a_second_run_reads_the_records_and_decodes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "formats.jsonl"
    first = R.recorded_format_rows(PLAN, str(path), workers=1, quiet=True)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 16 and all(r["status"] == "ok" for r in lines)
    assert {(r["cell"]["name"], r["cell"]["index"], r["cell"]["format"]) for r in lines} == \
        {(m, i, f) for m in PLAN for i in range(2) for f in P.FORMATS}

    def refuse(cell):
        raise AssertionError("decoded again although recorded")

    monkeypatch.setattr(R, "format_case", refuse)
    again = R.recorded_format_rows(PLAN, str(path), workers=1, quiet=True)
    assert [r.results for r in again] == [r.results for r in first]
    assert [(r.name, r.n) for r in again] == [("dfs-transformer", 6), ("index-transformer", 4)]


def test_an_interrupted_run_decodes_only_the_missing_instances(tmp_path, monkeypatch):
    path = tmp_path / "formats.jsonl"
    R.recorded_format_rows(PLAN, str(path), workers=1, quiet=True)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:14]) + "\n" + lines[14][: len(lines[14]) // 2])  # one lost, one torn
    seen = []
    real = R.format_case
    monkeypatch.setattr(R, "format_case", lambda cell, checkpoint=None: seen.append(cell["index"]) or real(cell, checkpoint))
    R.recorded_format_rows(PLAN, str(path), workers=1, quiet=True)
    assert len(seen) == 2


def _first_tokens(cell: dict, k: int) -> list:
    """The first k generated tokens of the cell's uninterrupted decode (what a checkpoint holds)."""
    from constructions.decode import RegexOracle
    from constructions.evaluate_fast import FastEvaluator

    con = P.construction(cell["name"])
    model = con.build(cell["n"])
    case = con.cases(cell["n"], cell["k"], cell["seed"])[cell["index"]]
    with RegexOracle() as oracle:
        res = con.decode(model, case, FastEvaluator(mode=cell["format"]), oracle)
    assert len(res.generated) > k
    return model.vocab, list(res.generated[:k])


@pytest.mark.parametrize("fmt,k", [("exact", 7), ("bfloat16", 1)])  # bfloat16 answers NO at its second token
def test_a_checkpointed_format_case_resumes_to_the_uninterrupted_record(fmt, k, tmp_path):
    """A 4.7 instance (Figure 3; bfloat16 decodes it wrongly) resumed from a checkpoint of its
    first tokens gives the uninterrupted decode's record (answer, chain digest, length), says
    where it resumed, and leaves no checkpoint behind."""
    from proofs_check.decode_checkpoints import Checkpoint, run_with_checkpoint

    cell = next(c for c in R._row_cells("dfs-transformer", 6, 1, P.SEED, P.FORMATS)[0] if c["format"] == fmt)
    whole = R.format_case(cell)
    vocab, first = _first_tokens(cell, k)
    cp = Checkpoint.for_cell(tmp_path, cell)
    cp.save(vocab, first)
    resumed = run_with_checkpoint(R.format_case, str(tmp_path), cell)
    keep = ("correct", "short", "error", "chain_sha256", "tokens")
    assert {f: resumed[f] for f in keep} == {f: whole[f] for f in keep} and resumed["resumed_at"] == k
    assert whole["correct"] == (fmt == "exact") and not cp.path.exists()


def test_a_checkpoint_of_another_chain_is_refused_not_recorded_as_a_failure(tmp_path):
    """The last replayed token changed (the replay asks the model for it): the decode refuses
    (ReplayError), rather than reporting a wrong answer for the format."""
    from constructions.errors import ReplayError
    from proofs_check.decode_checkpoints import Checkpoint, run_with_checkpoint

    cell = next(c for c in R._row_cells("dfs-transformer", 6, 1, P.SEED, P.FORMATS)[0] if c["format"] == "float64")
    vocab, first = _first_tokens(cell, 7)
    first[-1] = next(vocab.token_of(i) for i in range(len(vocab)) if vocab.token_of(i) not in (first[-1], "YES", "NO"))
    Checkpoint.for_cell(tmp_path, cell).save(vocab, first)
    with pytest.raises(ReplayError, match="differs from the model's"):
        run_with_checkpoint(R.format_case, str(tmp_path), cell)


def test_records_of_other_weights_are_not_used(tmp_path):
    """A cell names its model's digest; a record made for other weights is refused by the
    decoder rather than reported as this model's."""
    cell = R._row_cells("dfs-transformer", 6, 2, P.SEED, P.FORMATS)[0][0]
    with pytest.raises(P.ProofsCheckError, match="not the one this cell was made for"):
        R.format_case({**cell, "model": "0" * 64})


@pytest.mark.parametrize("argv,want", [([], None), (["--large"], R.LARGE_RECORDS), (["--large", "--records", "none"], None),
                                       (["--records", "x.jsonl"], "x.jsonl")])
def test_the_writer_keeps_records_for_large_by_default(argv, want, monkeypatch, tmp_path):
    got = {}
    monkeypatch.setattr(P, "write_markdown", lambda path, workers, seed, large, records, recorded_only:
                        got.update(records=records, large=large))
    assert P.main(["--write", str(tmp_path / "f.md"), *argv]) == 0
    assert got == {"records": want, "large": "--large" in argv}


def test_recorded_only_reports_rows_in_progress(tmp_path):
    path = tmp_path / "formats.jsonl"
    R.recorded_format_rows({"index-transformer": ((4,), 2)}, str(path), workers=1, quiet=True)
    full, part = R.recorded_format_rows(PLAN, str(path), workers=1, quiet=True, decode=False)
    assert part.error is None and part.results["exact"].correct == 2  # index-transformer: all recorded
    assert full.error.startswith("in progress: 0 of 8 instance-format records")
    assert "| 4.7 | dfs-transformer | 6 | | | in progress: 0 of 8" in P.formats_markdown([full])


def test_recorded_only_without_records_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        P.main(["--recorded-only"])
    assert exc.value.code == 2 and "--recorded-only needs records" in capsys.readouterr().err
