"""``--device cpu|cuda``: which torch device the fast evaluator runs on (issue #10).

One option for ``run``, ``run-model`` and the benchmarks; :func:`require_device` turns it into
a device name the fast evaluator (``FastEvaluator(device=...)``) is given, or refuses it with a
:class:`constructions.errors.InputError` (the CLI prints it and exits 2): CUDA that this torch
build or machine lacks, or a device with the reference evaluator (plain Python, no device).
"""
from __future__ import annotations

import argparse

from constructions.errors import InputError

DEVICES: tuple[str, ...] = ("cpu", "cuda")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="torch device of the fast evaluator (default cpu; cuda needs a GPU and a CUDA build of torch)")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def require_device(device: str, evaluator: str = "fast") -> str:
    """``device`` if the evaluator can run there; else an InputError that says what to do."""
    if device not in DEVICES:
        raise InputError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
    if device == "cpu":
        return device
    if evaluator == "reference":
        raise InputError("--device cuda is for the fast evaluator; the reference evaluator is plain Python on "
                         "the CPU (drop --device or use --evaluator fast)")
    if not cuda_available():
        raise InputError("--device cuda: no CUDA device is available here (torch.cuda.is_available() is False); "
                         "use --device cpu")
    return device
