"""``--device cpu|cuda`` on run and run-model (proofs_check.device_option): CUDA where there
is none, or with the reference evaluator, is one clean error line and exit status 2; cpu runs.
No test here needs a GPU: "no CUDA" is forced by patching cuda_available."""
from __future__ import annotations

import json

import pytest

from proofs_check import device_option
from tests.test_cli import assert_clean_error, run_cli

RUN = ("run", "istree", "--model", "transformer", "--edges", "1-2 2-3", "--json")
RUN_MODEL = ("run-model", "random-transformer", "--tokens", "<s> 1 2 ~ 3", "--json")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(device_option, "cuda_available", lambda: False)


@pytest.mark.parametrize("argv", [RUN, RUN_MODEL, (*RUN_MODEL, "--number-format", "float64")])
def test_cuda_without_a_gpu_is_a_clean_error(capsys, no_cuda, argv):
    assert_clean_error(*run_cli(capsys, *argv, "--device", "cuda"), "no CUDA device is available")


@pytest.mark.parametrize("argv", [RUN, RUN_MODEL])
def test_cuda_with_the_reference_evaluator_is_refused(capsys, argv):
    assert_clean_error(*run_cli(capsys, *argv, "--device", "cuda", "--evaluator", "reference"),
                       "reference evaluator is plain Python")


def test_cpu_device_runs_and_answers(capsys):
    code, out, err = run_cli(capsys, *RUN, "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["answer"] == "YES"  # the path 1-2-3 is a tree
    code, out, err = run_cli(capsys, *RUN_MODEL, "--device", "cpu")
    assert code == 0 and "generated" in json.loads(out), err


def test_unknown_device_is_an_argparse_error(capsys):
    code, _, err = run_cli(capsys, *RUN, "--device", "tpu")
    assert code == 2 and "invalid choice" in err


def test_require_device_refuses_unknown_names():
    with pytest.raises(device_option.InputError, match="unknown device"):
        device_option.require_device("tpu")
