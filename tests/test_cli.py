"""The command line, run in-process: list, verify, inspect, run-model, errors, extension.

Checks are faked by monkeypatching ``registry.all_checks`` so these tests do not depend on
which construction checks exist.  run-model is tested on a hand-made "lookup" model whose next
token is a fixed function of the last token (worked out by hand below), so every expected
output is derived independently of the evaluator and the decoding loops.
"""
from __future__ import annotations

import json
import sys
import types
from fractions import Fraction

import numpy as np
import pytest

from constructions.errors import ProofsCheckError
from constructions.layout import LayoutBuilder
from constructions.model import AttentionHead, FeedForward, Model, TransformerLayer, zeros
from constructions.numerics import Precision
from constructions.vocab import Vocabulary
from proofs_check import catalog, cli, inspect_model, registry
from proofs_check.registry import Check, CheckOutcome


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err
    assert "Traceback" not in err + out


# ---- fake checks -----------------------------------------------------------------------------

SEEN_PROFILES: list[str] = []


def _passing(profile):
    SEEN_PROFILES.append(profile.name)
    return CheckOutcome(True, 7, measured={"d": 5, "ratio": Fraction(1, 3)})


def _failing(profile):
    return CheckOutcome(False, 3, detail="counterexample: x = 4\nsecond line")


def _crashing(profile):
    raise RuntimeError("boom inside the check")


FAKE = [
    Check("Z.1", "Fake passing check", "every fake thing holds", _passing),
    Check("Z.2", "Fake failing check", "a claim that fails", _failing),
    Check("Z.3", "Fake crashing check", "a claim whose check crashes", _crashing),
]


@pytest.fixture
def fake_checks(monkeypatch):
    monkeypatch.setattr(registry, "all_checks", lambda: list(FAKE))
    SEEN_PROFILES.clear()


def test_list_shows_every_check_with_title_and_claim(capsys, fake_checks):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for c in FAKE:
        assert c.id in out and c.title in out and c.claim in out


def test_list_models_names_the_demo(capsys):
    code, out, _ = run_cli(capsys, "list", "--models")
    assert code == 0 and "random-transformer(" in out and "seed=0" in out


def test_verify_only_a_passing_check(capsys, fake_checks):
    code, out, err = run_cli(capsys, "verify", "--only", "Z.1", "--profile", "dev")
    assert code == 0, out + err
    assert SEEN_PROFILES == ["dev"]
    row = next(line for line in out.splitlines() if line.startswith("Z.1"))
    assert "PASS" in row and " 7 " in row and "every fake thing holds" in row
    assert "1 of 1 checks passed" in out
    assert "[1/1] Z.1" in err  # progress on stderr


def test_verify_reports_failures_and_crashes_with_exit_1(capsys, fake_checks):
    code, out, err = run_cli(capsys, "verify")
    assert code == 1
    assert "1 of 3 checks passed" in out
    assert "FAILED Z.2" in out and "counterexample: x = 4" in out and "second line" in out
    assert "FAILED Z.3" in out and "RuntimeError: boom inside the check" in out
    assert SEEN_PROFILES == ["ci"]  # the default profile


def test_verify_json_shape(capsys, fake_checks):
    code, out, _ = run_cli(capsys, "verify", "--json", "--quiet", "--only", "Z.1", "Z.2")
    assert code == 1
    data = json.loads(out)
    assert [r["id"] for r in data] == ["Z.1", "Z.2"]
    keys = {"id", "title", "claim", "cases", "passed", "seconds", "detail", "measured"}
    for r in data:
        assert set(r) == keys
        assert isinstance(r["cases"], int) and isinstance(r["passed"], bool) and isinstance(r["seconds"], float)
    assert data[0]["passed"] is True and data[0]["cases"] == 7
    assert data[0]["measured"] == {"d": 5, "ratio": "1/3"}
    assert data[1]["passed"] is False and "x = 4" in data[1]["detail"]


def test_verify_unknown_id_is_a_clean_error(capsys, fake_checks):
    assert_clean_error(*run_cli(capsys, "verify", "--only", "Q.42"), "Q.42")


def test_verify_unknown_profile_is_a_clean_error(capsys, fake_checks):
    assert_clean_error(*run_cli(capsys, "verify", "--profile", "fastest"), "fastest")


def test_verify_with_nothing_registered_is_an_error(capsys, monkeypatch):
    monkeypatch.setattr(registry, "all_checks", lambda: [])
    assert_clean_error(*run_cli(capsys, "verify"), "no checks")


def test_usage_errors_are_one_line(capsys):
    assert_clean_error(*run_cli(capsys, "frobnicate"), "invalid choice")
    assert_clean_error(*run_cli(capsys, "run-model", "random-transformer"), "--tokens")
    assert_clean_error(*run_cli(capsys), "COMMAND")


def test_help_exits_zero(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "verify" in out and "inspect" in out and "run-model" in out


# ---- inspect ---------------------------------------------------------------------------------


def test_inspect_demo_model_names_every_dimension(capsys):
    code, out, _ = run_cli(capsys, "inspect", "random-transformer", "--n", "5", "--param", "extra_dims=4")
    assert code == 0
    model = catalog.build("random-transformer", n=5, extra_dims=4)
    for name in ("num", "w2", "tok:<s>", "tok:FAILED", "x1", "x4", "pos"):
        assert name in model.layout.names and f" {name} " in out
    nonzero = sum(int(np.count_nonzero(np.asarray(w, dtype=object) != 0)) for w in model.all_weights().values())
    assert f"parameters: {nonzero} non-zero weights, {nonzero * 61} bits" in out
    assert "numbers 1..5" in out and "d = 14" in out
    assert "construction: random-transformer" in out


def test_inspect_unknown_name_and_bad_params_are_clean_errors(capsys):
    assert_clean_error(*run_cli(capsys, "inspect", "no-such-model"), "no catalog model named 'no-such-model'")
    assert_clean_error(*run_cli(capsys, "inspect", "random-transformer", "--param", "bogus=1"), "bogus")
    assert_clean_error(*run_cli(capsys, "inspect", "random-transformer", "--p", "12"), "p = 12 is even")
    assert_clean_error(*run_cli(capsys, "inspect", "missing/model.safetensors"), "no model file")
    assert_clean_error(*run_cli(capsys, "inspect", "random-transformer", "--matrix", "nope"), "no weight matrix")


def test_parse_param_values():
    assert catalog.parse_param("c=3") == ("c", 3)
    assert catalog.parse_param("rate=1/3") == ("rate", Fraction(1, 3))
    assert catalog.parse_param("density=0.25") == ("density", Fraction(1, 4))
    assert catalog.parse_param("arch=hybrid") == ("arch", "hybrid")
    assert catalog.parse_param("flag=true") == ("flag", True)
    with pytest.raises(ProofsCheckError):
        catalog.parse_param("no-equals-sign")


def hand_model() -> Model:
    """One head whose W_K holds known values; key rows named; an all-zero column 'unused'."""
    prec = Precision(21)  # F = 10
    vocab = Vocabulary(4)
    lb = LayoutBuilder(vocab)
    lb.alloc_many(["one", "unused"])
    layout = lb.build()
    d = layout.d
    W_K = zeros(2, d)
    W_K[0, layout.index("num")] = prec.encode(Fraction(3, 8))
    W_K[0, layout.index("pos")] = prec.encode(5)
    W_K[1, layout.index("one")] = prec.encode(Fraction(-1, 1024))
    head = AttentionHead(W_K, zeros(2, d), zeros(d, d), name="h", key_names=("k_num", "k_one"))
    return Model("transformer", 21, layout, vocab, [TransformerLayer([head], FeedForward.empty(d))], 8).validate()


def test_report_prints_exact_values_with_row_and_column_names():
    model = hand_model()
    text = inspect_model.report(model, ["layer1.head1.W_K"])
    block = text[text.index("layer1.head1.W_K"):]
    lines = block.splitlines()
    header, row1, row2 = lines[1].split(), lines[2].split(), lines[3].split()
    assert header == ["num", "one", "pos"]  # all-zero columns (w2, tok:*, unused) elided
    assert row1 == ["k_num", "0.375", "0", "5"]
    assert row2 == ["k_one", "0", "-1/1024", "0"]
    full = inspect_model.report(model, ["layer1.head1.W_K"], show_all=True)
    assert "unused" in full[full.index("layer1.head1.W_K"):].splitlines()[1].split()
    assert "layer1.head1.W_Q" not in text  # only the chosen matrix is printed
    assert "weights: layer1.head1.W_K, layer1.head1.W_Q" in inspect_model.report(model)


def test_format_value_is_exact():
    assert inspect_model.format_value(Fraction(7)) == "7"
    assert inspect_model.format_value(Fraction(-3, 8)) == "-0.375"
    assert inspect_model.format_value(Fraction(5, 2**30)) == "5/1073741824"
    assert inspect_model.format_value(Fraction(1, 3)) == "1/3"


def test_inspect_export_json_holds_every_weight_exactly(capsys, tmp_path):
    target = tmp_path / "demo.json"
    code, out, _ = run_cli(capsys, "inspect", "random-transformer", "--param", "arch=hybrid", "--export", str(target))
    assert code == 0 and "exported:" in out
    data = json.loads(target.read_text())
    model = catalog.build("random-transformer", arch="hybrid")
    scale = model.precision.scale
    assert data["p"] == 61 and data["arch"] == "hybrid" and data["layout"] == list(model.layout.names)
    assert data["meta"]["construction"] == "random-transformer"
    weights = model.all_weights()
    assert set(data["weights"]) == set(weights)
    for name, w in weights.items():
        entry = data["weights"][name]
        decoded = np.array([Fraction(v) for v in np.asarray(entry["values"], dtype=object).reshape(-1)], dtype=object)
        assert [int(v * scale) for v in decoded] == [int(v) for v in w.reshape(-1)], name
        assert entry["shape"] == list(w.shape)
    assert data["weights"]["layer1.B"]["rows"] == list(model.layout.names)
    assert data["weights"]["layer2.ffn.W1"]["rows"] == ["L2.g1", "L2.g2", "L2.g3"]
    assert data["weights"]["layer2.head1.W_K"]["rows"] == ["L2.h1.k1", "L2.h1.k2"]


def test_inspect_plot_writes_a_png(capsys, tmp_path):
    target = tmp_path / "weights.png"
    code, out, _ = run_cli(capsys, "inspect", "random-transformer", "--plot", str(target), "--matrix", "layer1.head1.*")
    assert code == 0 and "plotted:" in out
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- run-model -------------------------------------------------------------------------------

REGEX_TOKEN = "(1)"  # a special token that is a regular expression with one group


def lookup_model() -> Model:
    """No attention, a width-0 FFN whose bias b3 sets dim ``one`` = 1, and an explicit unembed.

    The last position's residual is word(last) + pos * w_d + e_one, so the logits are
    (rows of U; every other row is zero):
        <StartSearch>: num             (1 for token 1, 2 for token 2)
        YES:           3/2 * one       (always 3/2)
        (1):           3 * tok:<StartSearch>
        <EndSearch>:   3 * tok:(1)
        NO:            3 * tok:FAILED
    hence, by hand: after 1 -> YES; after 2 -> <StartSearch>; after <StartSearch> -> (1);
    after (1) -> <EndSearch>; after FAILED -> NO; after <EndSearch> or <s> -> YES.
    """
    prec = Precision(11)
    vocab = Vocabulary.with_extras(2, [REGEX_TOKEN])
    lb = LayoutBuilder(vocab)
    lb.alloc("one")
    layout = lb.build()
    d = layout.d
    ffn = FeedForward.empty(d)
    ffn.b3[layout.index("one")] = prec.encode(1)
    U = zeros(len(vocab), d)
    U[vocab.id_of("<StartSearch>"), layout.index("num")] = prec.encode(1)
    U[vocab.id_of("YES"), layout.index("one")] = prec.encode(Fraction(3, 2))
    U[vocab.id_of(REGEX_TOKEN), layout.index("tok:<StartSearch>")] = prec.encode(3)
    U[vocab.id_of("<EndSearch>"), layout.index(f"tok:{REGEX_TOKEN}")] = prec.encode(3)
    U[vocab.id_of("NO"), layout.index("tok:FAILED")] = prec.encode(3)
    return Model("transformer", 11, layout, vocab, [TransformerLayer([], ffn)], 12, unembed=U,
                 meta={"construction": "lookup (test)"}).validate()


@pytest.fixture
def lookup_in_catalog(monkeypatch):
    monkeypatch.setitem(catalog.DEMO, "test-lookup", lookup_model)


def run_json(capsys, *argv):
    code, out, err = run_cli(capsys, "run-model", *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_run_model_one_step(capsys, lookup_in_catalog):
    assert run_json(capsys, "test-lookup", "--tokens", "<s> 1") == {
        "generated": ["YES"], "answer": "YES", "retrievals": [], "p": 11, "stopped": "one step", "number_format": "exact", "evaluator": "fast"}
    assert run_json(capsys, "test-lookup", "--tokens", "<s> 1 2")["generated"] == ["<StartSearch>"]


def test_run_model_chain_of_thought(capsys, lookup_in_catalog):
    data = run_json(capsys, "test-lookup", "--tokens", "<s> 1 2", "--cot")
    assert data["generated"] == ["<StartSearch>", REGEX_TOKEN, "<EndSearch>", "YES"]
    assert data["answer"] == "YES" and data["retrievals"] == []
    capped = run_json(capsys, "test-lookup", "--tokens", "<s> 1 2", "--cot", "--max-steps", "1")
    assert capped["generated"] == ["<StartSearch>", REGEX_TOKEN] and capped["answer"] is None


def test_run_model_retrieval(capsys, lookup_in_catalog):
    # re.search("(1)", "<s> 1 2").group(1) = "1"; after 1 the model says YES
    hit = run_json(capsys, "test-lookup", "--tokens", "<s> 1 2", "--rag")
    assert hit["generated"] == ["<StartSearch>", REGEX_TOKEN, "<EndSearch>", "YES"]
    assert hit["retrievals"] == [{"pattern": REGEX_TOKEN, "result": "1"}] and hit["answer"] == "YES"
    # "<s> 2" has no 1: FAILED is appended, after which the model says NO
    miss = run_json(capsys, "test-lookup", "--tokens", "<s> 2", "--rag")
    assert miss["retrievals"] == [{"pattern": REGEX_TOKEN, "result": "FAILED"}] and miss["answer"] == "NO"
    code, out, _ = run_cli(capsys, "run-model", "test-lookup", "--tokens", "<s> 1 2", "--rag")
    assert code == 0 and "retrieval 1: pattern '(1)' -> 1" in out and "answer: YES" in out


def test_run_model_bad_token_is_a_clean_error(capsys, lookup_in_catalog):
    assert_clean_error(*run_cli(capsys, "run-model", "test-lookup", "--tokens", "<s> 7"), "outside this model's vocabulary")
    assert_clean_error(*run_cli(capsys, "run-model", "test-lookup", "--tokens", "<s> banana"), "unknown token 'banana'")
    assert_clean_error(*run_cli(capsys, "run-model", "test-lookup", "--tokens", "   "), "empty")


def test_run_model_overflow_is_a_clean_error_and_saturation_is_reported(capsys):
    args = ("run-model", "random-transformer", "--p", "11", "--tokens", "<s> 1 2 ~ 3")
    assert_clean_error(*run_cli(capsys, *args), "overflow in R_11")
    code, out, _ = run_cli(capsys, *args, "--overflow", "saturate")
    assert code == 0 and "saturated (clipped to the largest magnitude of R_11)" in out


def test_run_model_fast_evaluator_agrees_with_reference(capsys, lookup_in_catalog):
    code, out, err = run_cli(capsys, "run-model", "test-lookup", "--tokens", "<s> 1 2", "--rag", "--json", "--evaluator", "fast")
    assert code == 0, err
    assert json.loads(out) == run_json(capsys, "test-lookup", "--tokens", "<s> 1 2", "--rag")


# ---- model files (need constructions.modelfile) ----------------------------------------------


def test_run_model_and_inspect_on_saved_files(capsys, tmp_path):
    from constructions.modelfile import save_model

    path = tmp_path / "lookup.safetensors"
    save_model(lookup_model(), path)
    data = run_json(capsys, str(path), "--tokens", "<s> 2", "--rag")
    assert data["generated"] == ["<StartSearch>", REGEX_TOKEN, "<EndSearch>", "NO"]
    assert_clean_error(*run_cli(capsys, "run-model", str(path), "--tokens", "<s> 3"), "outside this model's vocabulary")
    assert_clean_error(*run_cli(capsys, "inspect", str(path), "--n", "3"), "apply only to catalog names")
    demo = tmp_path / "demo.safetensors"
    save_model(catalog.build("random-transformer", arch="linear_rnn"), demo)
    code, out, _ = run_cli(capsys, "inspect", str(demo), "--matrix", "layer1.A")
    assert code == 0 and "recurrent state: 3 dims" in out and "(construction random-transformer)" in out


def test_corrupt_model_file_is_a_clean_error(capsys, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"this is not a model file")
    assert_clean_error(*run_cli(capsys, "inspect", str(bad)), "bad.safetensors")
    assert_clean_error(*run_cli(capsys, "inspect", str(tmp_path)), "is a directory")


# ---- extension point -------------------------------------------------------------------------


def test_subcommand_modules_extend_the_parser(capsys, monkeypatch):
    module = types.ModuleType("proofs_check_test_hello")

    def add_parser(subparsers):
        p = subparsers.add_parser("hello", help="test command")
        p.add_argument("--name", required=True)
        p.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)

    module.add_parser = add_parser
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", (module.__name__,))
    code, out, _ = run_cli(capsys, "hello", "--name", "world")
    assert code == 0 and out == "hello world\n"


def test_run_model_number_formats(capsys):
    """IEEE formats run the same weights without R_p rounding; the JSON says which format ran."""
    args = ("run-model", "random-transformer", "--tokens", "<s> 1 2 ~ 3", "--json")
    exact = json.loads(run_cli(capsys, *args)[1])
    f64 = json.loads(run_cli(capsys, *args, "--number-format", "float64")[1])
    assert exact["number_format"] == "exact" and f64["number_format"] == "float64"
    assert set(f64) == set(exact)
    code, out, err = run_cli(capsys, *args, "--number-format", "float17")
    assert code == 2 and "float17" in err and "Traceback" not in err
