"""The errata catalogue (proofs_check/errata.py) and the generated README coverage block.

The catalogue tests are static (JSON + ``ast`` over the test files, no pytest subprocess), except
one ``--run`` of a single cheap entry.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from constructions.errors import InputError
from proofs_check import coverage, errata
from proofs_check.cli import main
from proofs_check.generated_block import read_block, replace_block
from proofs_check.registry import Check, all_checks

ROOT = Path(__file__).resolve().parent.parent


def entry(**over):
    base = {
        "id": "B99-E1", "title": "t", "location": "App B", "paper": "p", "counterexample": "c", "fix": "f",
        "kind": "error", "test": "tests/test_x.py::test_erratum_B99_E1_slug",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


# ---- the catalogue in the repository ------------------------------------------------------


def test_catalogue_loads_with_unique_ids_in_the_scheme():
    entries = errata.load()
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) and len(ids) >= 40
    assert all(errata.ID_RE.match(i) for i in ids)
    assert {e.kind for e in entries} <= set(errata.KINDS)
    assert {"B14-E2", "P51-E1", "T57-E3"} <= {e.id for e in entries if e.kind == "reading"}


def test_every_erratum_test_is_named_by_an_entry():
    assert errata.unnamed_erratum_tests(errata.load()) == []


def test_every_test_and_fix_test_node_exists():
    assert errata.missing_nodes(errata.load()) == []


def test_index_in_notes_is_the_generated_one():
    text = errata.INDEX_FILE.read_text(encoding="utf-8")
    assert read_block(text, errata.INDEX_BLOCK, "notes/errata.md") == errata.render_index(errata.load()), (
        "notes/errata.md's index is stale: run `python -m proofs_check.errata --write-index`"
    )


def test_readme_coverage_block_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert read_block(text, coverage.COVERAGE_BLOCK, "README.md") == coverage.render(all_checks()), (
        "README.md's coverage list is stale: run `python -m proofs_check.coverage --write README.md`"
    )


# ---- validation: each problem is a clear error naming the file and the entry --------------


@pytest.mark.parametrize("over, message", [
    ({"kind": "wrong"}, "kind 'wrong' is not one of"),
    ({"id": "B.27-E2"}, "is not of the form ITEM-Ek"),
    ({"id": "B27-2"}, "is not of the form ITEM-Ek"),
    ({"fix": None}, "missing field(s) fix"),
    ({"notes": "x"}, "unknown field(s) notes"),
    ({"title": "  "}, "must be non-empty strings"),
    ({"test": "tests/test_x.py::test_other_name"}, "must be named test_erratum_B99_E1_<slug>"),
    ({"test": "test_x.py::test_erratum_B99_E1_a"}, "is not a pytest node id"),
    ({"fix_test": "tests/test_x.py"}, "fix_test 'tests/test_x.py' is not a pytest node id"),
    ({"kind": "reading"}, "must say what the other reading gives"),
])
def test_bad_entries_are_named_in_the_error(over, message):
    with pytest.raises(errata.ErrataError) as info:
        errata.parse_entries([entry(id="B98-E1", test="tests/test_x.py::test_erratum_B98_E1_ok"), entry(**over)], "notes/errata/x.json")
    text = str(info.value)
    assert text.startswith("notes/errata/x.json, entry 2") and message in text, text


def test_duplicate_ids_across_files_and_bad_json(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([entry()]))
    (tmp_path / "b.json").write_text(json.dumps([entry(title="another")]))
    with pytest.raises(errata.ErrataError, match=r"B99-E1 is used twice: in .*a\.json and in .*b\.json"):
        errata.load(tmp_path)
    (tmp_path / "b.json").write_text("[{")
    with pytest.raises(errata.ErrataError, match=r"b\.json is not valid JSON"):
        errata.load(tmp_path)
    (tmp_path / "b.json").write_text(json.dumps({"id": "B99-E2"}))
    with pytest.raises(errata.ErrataError, match="must be a JSON list"):
        errata.load(tmp_path)


def test_any_new_topic_file_is_picked_up(tmp_path):
    (tmp_path / "turing_rag.json").write_text(json.dumps([entry(id="T54-E1", test="tests/test_x.py::test_erratum_T54_E1_q")]))
    (tmp_path / "a.json").write_text(json.dumps([entry()]))
    assert [e.id for e in errata.load(tmp_path)] == ["B99-E1", "T54-E1"]


def test_node_checks_parse_the_test_files(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        "import pytest\n@pytest.mark.parametrize('a', [1])\ndef test_erratum_B99_E1_slug(a):\n    pass\n"
        "def test_erratum_B99_E2_orphan():\n    pass\nclass TestK:\n    def test_fix(self):\n        pass\n"
    )
    good = errata.parse_entries([entry(test="tests/test_x.py::test_erratum_B99_E1_slug[1]", fix_test="tests/test_x.py::TestK::test_fix")], "x")
    assert errata.missing_nodes(good, tmp_path) == []
    bad = errata.parse_entries([entry(fix_test="tests/test_x.py::test_gone"), entry(id="B99-E3", test="tests/test_y.py::test_erratum_B99_E3_a")], "x")
    assert errata.missing_nodes(bad, tmp_path) == ["B99-E1: tests/test_x.py::test_gone", "B99-E3: tests/test_y.py::test_erratum_B99_E3_a"]
    assert errata.unnamed_erratum_tests(good, tmp_path) == ["tests/test_x.py::test_erratum_B99_E2_orphan"]


def test_node_outcomes_from_junit_cases():
    cases = [("tests.test_x", "test_a[1]", "passed", 0.5), ("tests.test_x", "test_a[2]", "failed", 0.25),
             ("tests.test_x", "test_ab", "passed", 1.0), ("tests.test_x.TestK", "test_k", "passed", 0.0)]
    assert errata._node_outcome("tests/test_x.py::test_a", cases) == ("failed", 0.75)
    assert errata._node_outcome("tests/test_x.py::test_a[1]", cases) == ("passed", 0.5)
    assert errata._node_outcome("tests/test_x.py::test_ab", cases) == ("passed", 1.0)
    assert errata._node_outcome("tests/test_x.py::TestK::test_k", cases) == ("passed", 0.0)
    assert errata._node_outcome("tests/test_y.py::test_a", cases) == ("not run", 0)


# ---- the command -------------------------------------------------------------------------


def test_cli_lists_selected_entries_and_refuses_unknown_ids(capsys):
    assert main(["errata", "B14-E2", "--json"]) == 0
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["id"] == "B14-E2" and shown["kind"] == "reading" and shown["file"] == "notes/errata/attention_blocks.json"
    assert main(["errata", "AB-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no erratum with id AB-3") and "notes/errata.md" in err


def test_run_reports_per_entry_whether_the_literal_fails_and_the_fix_holds(tmp_path):
    """--run's machinery on a throw-away test tree (no torch import): one pytest subprocess, the
    junit report mapped back to each entry's nodes (parametrized cases included)."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "import pytest\n"
        "def test_erratum_B99_E1_slug():\n    pass\n"
        "@pytest.mark.parametrize('a', [1, 2])\ndef test_fix(a):\n    assert a == 1\n"
        "def test_erratum_B99_E2_slug():\n    assert False\n"
        "def test_erratum_B99_E3_slug():\n    pass\n"
    )
    entries = errata.parse_entries([
        entry(fix_test="tests/test_x.py::test_fix[1]"),
        entry(id="B99-E2", test="tests/test_x.py::test_erratum_B99_E2_slug"),
        entry(id="B99-E3", test="tests/test_x.py::test_erratum_B99_E3_slug", fix_test="tests/test_x.py::test_fix"),
    ], "x")
    results = errata.run_entries(entries, tmp_path)
    assert [(r["literal_fails"], r["fix_holds"]) for r in results] == [(True, True), (False, None), (True, False)]
    assert [errata.entry_ok(r) for r in results] == [True, False, False]
    table = errata.run_table(results, 1.0)
    assert "1 of 3 errata reproduce" in table and "NOT reproduced or fix broken: B99-E2, B99-E3" in table


# ---- generated blocks and the coverage list ------------------------------------------------


def test_generated_block_replaces_only_its_body():
    text = "intro\n<!-- BEGIN generated: x (cmd) -->\nold\n<!-- END generated: x -->\noutro\n"
    assert replace_block(text, "x", "new\n", "f") == text.replace("old", "new")
    with pytest.raises(InputError, match="has no generated block 'y'"):
        replace_block(text, "y", "", "f.md")


def test_coverage_lists_built_and_missing_items():
    fake = [Check("4.7", "IsTree", "c", lambda p: None), Check("X.1", "something else", "c", lambda p: None)]
    text = coverage.render(fake)
    assert "- Thm 4.7 (" in text and "- Lemma B.27 (the DFS Transformer): check `4.7`" in text
    missing = text.split("Not built and checked yet")[1]
    assert "Thm 4.1" in missing and "Lemma B.1," in missing and "Thm 4.7" not in missing
    assert "Also checked: `X.1` something else." in text
