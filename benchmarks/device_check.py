"""The device script of issue #10: one short run (under 5 minutes on one GPU) that

1. runs the fast-evaluator equivalence tests with the device selected by the environment
   variable ``PROOFS_CHECK_DEVICE=cuda`` (tests/test_fast_cuda.py where it exists, and the float
   mode tests tests/test_evaluate_float.py, which compare sessions on that device against the
   CPU full recompute), each test file under its own time limit;
2. runs ``benchmarks/large_n.py --quick --device cuda`` (small sizes) under a time limit;
3. prints the ratios the benchmark measured, and how long each stage took.

Without CUDA it says so (``NO CUDA``) and, as with ``--dry-run``, runs the same stages on the
CPU at tiny sizes so that the script itself is checked here; the exit status is then 3 unless
``--dry-run`` was asked for (0: every stage passed; 1: a stage failed or ran out of time).

Run:  python benchmarks/device_check.py [--dry-run] [--budget-s 280]
Record the output in notes/performance.md (section "GPU").
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ("tests/test_fast_cuda.py", "tests/test_evaluate_float.py")
QUICK_GPU = ["--quick"]
TINY_CPU = ["--quick", "--sizes", "8", "16", "--graphs", "4", "--batch-n", "6", "--hybrid-n", "4"]


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def stage(name: str, cmd: list[str], env: dict, limit_s: float) -> tuple[bool, str]:
    """Run one command under a time limit; print its output as it comes; (passed, output)."""
    print(f"\n=== {name}: {' '.join(cmd)} (limit {limit_s:.0f} s)", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit_s)
        out, ok = proc.stdout + proc.stderr, proc.returncode == 0
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        out, ok = out + f"\n(ran past {limit_s:.0f} s and was stopped)", False
    print(out.rstrip(), flush=True)
    print(f"=== {name}: {'passed' if ok else 'FAILED'} in {time.perf_counter() - t0:.1f} s", flush=True)
    return ok, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the script itself")
    ap.add_argument("--budget-s", type=float, default=280.0, help="total time limit over all stages")
    args = ap.parse_args(argv)
    has_cuda = cuda_available()
    gpu = has_cuda and not args.dry_run
    if not has_cuda:
        print("NO CUDA: torch.cuda.is_available() is False on this machine; running the CPU dry run "
              "(tiny sizes) instead. No GPU figure is measured by this run.", flush=True)
    device = "cuda" if gpu else "cpu"
    env = {**os.environ, "PROOFS_CHECK_DEVICE": device, "PYTHONPATH": ROOT}
    t_end = time.perf_counter() + args.budget_s
    results = []
    for path in (t for t in TESTS if os.path.exists(os.path.join(ROOT, t))):
        left = max(10.0, (t_end - time.perf_counter()) * 0.3)
        results.append(stage(f"tests {path} on {device}", [sys.executable, "-m", "pytest", "-q", "-x", path], env, left))
    bench = [sys.executable, "benchmarks/large_n.py", "--device", device, *(QUICK_GPU if gpu else TINY_CPU)]
    ok, out = stage(f"benchmark on {device}", bench, env, max(30.0, t_end - time.perf_counter()))
    results.append((ok, out))
    print("\n=== ratios measured in this run", flush=True)
    for line in out.splitlines():
        if "ratio" in line or "exponent" in line or "limit / exact" in line:
            print(line, flush=True)
    passed = all(ok for ok, _ in results)
    print(f"\ndevice_check: device {device}, {'all stages passed' if passed else 'a stage FAILED'}", flush=True)
    if not passed:
        return 1
    return 0 if (gpu or args.dry_run) else 3


if __name__ == "__main__":
    sys.exit(main())
