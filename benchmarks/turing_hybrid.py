"""Benchmark: simulated Turing-machine steps per second through the Thm 5.8 hybrid
(constructions/turing_hybrid.py, exact fast evaluator) beside the plain-Python reference
simulator (proofs_check/turing.py), in the same run, each run checked against the other.

Default: BB(4) ``1RB1LB_1LA0LC_1RZ1LD_1RD0RA`` from a blank tape (107 steps, 13 ones), built for
exactly its step count; ``--machines bb2 bb3 bb2x3 bb4`` for the others.  One torch thread.
Every simulated step is 5 generated tokens (B.13's group), each one forward step of the 4-layer
model through an incremental session (KV cache of the attention layer, carried RNN state).
Measured (shared 2-core machine, other jobs running): see the closing note of the report /
README ("Turing machines").
Run:  python benchmarks/turing_hybrid.py [--machines bb4 ...] [--sim-repeats R]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions.decode import chain_of_thought  # noqa: E402
from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from constructions.turing_hybrid import STOP_TOKENS, build, chain_bound, prompt, read_back  # noqa: E402
from proofs_check.turing import KNOWN_MACHINES, parse_machine, simulate  # noqa: E402


def bench(name: str, sim_repeats: int) -> dict:
    mc = parse_machine(KNOWN_MACHINES[name])
    t0 = time.perf_counter()
    for _ in range(sim_repeats):
        ref = simulate(mc, [], 10**6)
    sim_s = (time.perf_counter() - t0) / sim_repeats
    t0 = time.perf_counter()
    model = build(mc, 0, ref.steps)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = chain_of_thought(FastEvaluator().session(model, prompt(model, [])), chain_bound(model), answers=STOP_TOKENS)
    decode_s = time.perf_counter() - t0
    got = read_back(model, result)
    return {
        "machine": name, "steps": ref.steps, "ones": ref.ones, "p": model.p, "tokens": len(result.generated),
        "agree": got == ref.to_json(), "build_s": round(build_s, 2), "decode_s": round(decode_s, 2),
        "model_steps_per_s": round(ref.steps / decode_s, 2), "model_tokens_per_s": round(len(result.generated) / decode_s, 1),
        "simulator_steps_per_s": round(ref.steps / sim_s), "ratio": round((ref.steps / sim_s) / (ref.steps / decode_s)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", nargs="+", default=["bb4"], choices=sorted(KNOWN_MACHINES))
    ap.add_argument("--sim-repeats", type=int, default=200)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ok = True
    for name in args.machines:
        row = bench(name, args.sim_repeats)
        ok &= row["agree"]
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
