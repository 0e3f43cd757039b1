"""Benchmark: simulated Turing-machine steps per second through the models, beside the reference
simulator, in the same run.

For each busy-beaver champion (``proofs_check.turing.KNOWN_MACHINES``: bb2, bb3, bb2x3, bb4, from
a blank tape) and each Turing-machine model of ``proofs_check.tm_runners`` that is built in this
tree (``rag-rnn`` = Thm 5.4, ``hybrid`` = Thm 5.8; a model whose construction module is missing
is skipped and said so), the model is built for the run's own step count, decoded greedily with
the exact fast evaluator (``constructions.evaluate_fast.FastEvaluator``, threads = 1; the
``rag-rnn`` through the real regex retriever), and its read-back run must equal the simulator's
(halted, steps, state, head, tape, ones).  Printed per row: steps, tokens, seconds, simulated
steps per second, tokens per second; and the reference simulator's steps per second (the same
machine, repeated for at least a second).

Run:  python benchmarks/turing.py [--machines bb2 bb3 bb2x3 bb4] [--models rag-rnn hybrid]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions.decode import RegexOracle  # noqa: E402
from constructions.errors import InputError  # noqa: E402
from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from proofs_check.tm_runners import MODELS, construction, decode_tm  # noqa: E402
from proofs_check.turing import KNOWN_MACHINES, parse_machine, simulate  # noqa: E402


def simulator_rate(machine, steps: int, min_seconds: float = 1.0) -> float:
    """Reference simulator steps per second (repeated runs for at least ``min_seconds``)."""
    reps, start = 0, time.perf_counter()
    while True:
        simulate(machine, (), steps)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return reps * steps / elapsed


def model_row(model_name: str, machine, steps: int, evaluator, oracle) -> dict:
    mod = construction(model_name)
    t0 = time.perf_counter()
    model = mod.build(machine, 0, steps)
    t1 = time.perf_counter()
    result = decode_tm(model_name, model, [], evaluator, oracle)
    t2 = time.perf_counter()
    agree = mod.read_back(model, result) == simulate(machine, (), steps).to_json()
    tokens = len(result.sequence) - len(result.prompt)
    return {"build_s": t1 - t0, "decode_s": t2 - t1, "tokens": tokens, "agree": agree, "p": model.p,
            "steps_per_s": steps / (t2 - t1), "tokens_per_s": tokens / (t2 - t1)}


def available_models(names: list[str]) -> list[str]:
    out = []
    for name in names:
        try:
            construction(name)
        except InputError as exc:
            print(f"skipped {name}: {exc}")
            continue
        out.append(name)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", nargs="+", default=["bb2", "bb3", "bb2x3", "bb4"], choices=sorted(KNOWN_MACHINES))
    ap.add_argument("--models", nargs="+", default=[m for m in MODELS if m != "cot-rnn"], choices=MODELS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = available_models(args.models)
    evaluator = FastEvaluator()
    ok = True
    with RegexOracle() as oracle:
        for name in args.machines:
            machine = parse_machine(KNOWN_MACHINES[name])
            steps = simulate(machine, (), 10**6).steps
            print(f"{name} ({machine}): {steps} steps; reference simulator {simulator_rate(machine, steps):,.0f} steps/s")
            for model_name in models:
                r = model_row(model_name, machine, steps, evaluator, oracle)
                ok &= r["agree"]
                print(f"  {model_name:8s} p={r['p']:3d}  {r['tokens']:6d} tokens in {r['decode_s']:7.1f} s "
                      f"(build {r['build_s']:.2f} s): {r['steps_per_s']:7.2f} steps/s, {r['tokens_per_s']:6.1f} tokens/s, "
                      f"agrees with the simulator: {r['agree']}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
