"""Benchmark (issue #10): decoding at large n, batched decoding, float64, limb-GEMM throughput.

Rows, all measured in one run (threads pinned to ``--threads``, default 1), every decode checked:

* ``dfs``: Thm 4.7's DFS Transformer, one uniform random tree per n (default n = 256, 512,
  1024), exact greedy decode through ``FastEvaluator(device=...).session``; the chain must be
  Algorithm 1's tour and answer (``proofs_check.algorithms.cot_algorithm1``).  Prints seconds,
  tokens and tokens/s per n (and the process's CPU time, the steadier figure on a shared machine) and the fitted cost exponent e in ``time ~ n^e``
  (least squares on log time vs log n over the measured rows).  Then the same decode drafted
  (``constructions.decode.drafted_chain_of_thought``: Algorithm 1's tour verified in chunks,
  every token the model's own argmax; it must equal the step-by-step result) and the ratio.
* ``batch``: ``--graphs`` random graphs (default 1000; half trees, half a tree with one edge
  rewired, so both answers occur) at n = 16 through the DFS Transformer, one batch session
  (``constructions.decode.batch_session``, the evaluator's own batch session where it has one)
  vs one session after the other, exact and float64; answers checked against IsTree; the ratio.
* ``hybrid``: Thm 5.7 (a) at ``--hybrid-n`` (default 512: about 10^5 generated tokens through
  one attention layer), exact and float64 decode of one random tree; answers checked.
* ``gemm``: the exact limb GEMM (``_gemm`` of the fast evaluator) of an m x n by n x N product
  at p = ``--gemm-p`` in MAC/s, against the device's float64 GEMM peak (a plain float64
  matmul of the same shape, measured in the same run) divided by the number of limb products
  L_W L_X (the method's own limit); the ratio limit / measured.

``--quick`` shrinks every row (dfs n = 16, 32, 64; 8 graphs; hybrid n = 8; a smaller GEMM)
so the whole run takes a few minutes on a shared 2-core machine.  ``--device cuda`` runs the
same rows on a GPU (refused with a clear message where there is none).  Figures measured here
are in notes/performance.md.

Run:  python benchmarks/large_n.py [--quick] [--device cpu|cuda] [--rows dfs batch hybrid gemm]
      [--sizes 256 512 1024] [--graphs 1000] [--batch-n 16] [--hybrid-n 512] [--gemm-p 101] [--threads 1]
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import random
import sys
import time
from typing import Callable, Sequence

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions.decode import (  # noqa: E402
    batch_session, chain_of_thought, chain_of_thought_batch, drafted_chain_of_thought,
)
from constructions.errors import ProofsCheckError  # noqa: E402
from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from proofs_check.algorithms import cot_algorithm1  # noqa: E402
from proofs_check.device_option import DEVICES, require_device  # noqa: E402
from proofs_check.graphs import Graph, istree_answer, random_tree, shuffle_edges  # noqa: E402

ROWS = ("dfs", "batch", "hybrid", "gemm")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable, device: str):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def fit_exponent(ns: Sequence[int], secs: Sequence[float]) -> float | None:
    """e of time ~ c n^e, least squares on (log n, log time); None with fewer than 2 rows."""
    if len(ns) < 2:
        return None
    xs, ys = [math.log(n) for n in ns], [math.log(max(s, 1e-9)) for s in secs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ProofsCheckError(f"benchmark check failed: {what}")


# ---- rows ------------------------------------------------------------------------------------


def row_dfs(sizes: Sequence[int], device: str) -> None:
    from constructions.dfs_transformer import cot_bound, dfs_transformer

    ns, secs, dsecs = [], [], []
    for n in sizes:
        model, g = dfs_transformer(n), random_tree(random.Random(n), n)
        ev = FastEvaluator(device=device)
        c0 = time.process_time()
        res, s = timed(lambda: chain_of_thought(ev.session(model, g.tokens()), cot_bound(n)), device)
        cpu = time.process_time() - c0  # this process's CPU time: robust on a shared machine
        _check(res.generated == cot_algorithm1(g), f"4.7 at n={n}: the chain is not Algorithm 1's")
        ns.append(n), secs.append(s)
        print(f"dfs     n={n:5d} p={model.p} exact {device}: {s:9.2f} s  {len(res.generated)} tokens "
              f"({len(res.generated) / s:.1f} tokens/s), cpu time {cpu:.2f} s", flush=True)
        c0 = time.process_time()
        drafted, sd = timed(lambda: drafted_chain_of_thought(lambda: ev.session(model, g.tokens()), cot_algorithm1(g),
                                                             cot_bound(n)), device)
        cpu_d = time.process_time() - c0
        _check(drafted == res, f"4.7 at n={n}: the drafted decode differs from the step-by-step one")
        dsecs.append(sd)
        print(f"dfs     n={n:5d} p={model.p} exact {device}, drafted (Algorithm 1's tour verified in chunks, the "
              f"same chain): {sd:9.2f} s, cpu time {cpu_d:.2f} s, step-by-step / drafted {s / sd:.2f}x", flush=True)
    for what, ts in (("", secs), (" drafted", dsecs)):
        e = fit_exponent(ns, ts)
        if e is not None:
            print(f"dfs    {what} cost exponent: time ~ n^{e:.2f} over n = {', '.join(map(str, ns))}", flush=True)


def _rewired(rng: random.Random, g: Graph) -> Graph:
    """g with one edge moved so that the graph is (almost surely) no tree: n - 1 edges, a cycle."""
    edges = list(g.edges)
    edges.pop(rng.randrange(len(edges)))
    present = {frozenset(e) for e in edges}
    candidates = [(u, v) for u in range(1, g.n + 1) for v in range(u + 1, g.n + 1) if frozenset((u, v)) not in present]
    edges.append(rng.choice(candidates))
    return shuffle_edges(rng, Graph(g.n, tuple(edges)))


def row_batch(count: int, device: str, n: int = 16) -> None:
    from constructions.dfs_transformer import cot_bound, dfs_transformer

    rng = random.Random(16)
    graphs = [random_tree(rng, n) for _ in range(count)]
    graphs = [g if k % 2 == 0 else _rewired(rng, g) for k, g in enumerate(graphs)]
    model, bound = dfs_transformer(n), cot_bound(n)
    want = [istree_answer(g) for g in graphs]
    for mode in ("exact", "float64"):
        ev = FastEvaluator(device=device, mode=mode)
        prompts = [g.tokens() for g in graphs]
        batched, tb = timed(lambda: chain_of_thought_batch(batch_session(ev, model, prompts), bound), device)
        single, ts = timed(lambda: [chain_of_thought(ev.session(model, p), bound) for p in prompts], device)
        _check([r.answer for r in batched] == want, f"batched {mode} answers differ from IsTree")
        _check([r.generated for r in batched] == [r.generated for r in single], f"batched {mode} != one by one")
        kind = type(batch_session(ev, model, prompts[:1])).__name__
        print(f"batch   {count} graphs n={n} {mode:7s} {device}: batched {tb:8.2f} s ({kind}), one by one "
              f"{ts:8.2f} s, ratio {ts / tb:6.2f}x", flush=True)


def row_hybrid(n: int, device: str) -> None:
    from constructions.istree_hybrid import cot_bound, istree_hybrid

    model, g = istree_hybrid(n), random_tree(random.Random(n), n)
    times = {}
    for mode in ("exact", "float64"):
        ev = FastEvaluator(device=device, mode=mode)
        res, s = timed(lambda: chain_of_thought(ev.session(model, g.tokens()), cot_bound(n)), device)
        times[mode] = s
        ok = "correct" if res.answer == istree_answer(g) else f"WRONG ({res.answer})"
        if mode == "exact":
            _check(res.answer == istree_answer(g), f"5.7 (a) exact at n={n} answered {res.answer}")
        print(f"hybrid  n={n} p={model.p} {mode:7s} {device}: {s:9.2f} s  {len(res.generated)} tokens "
              f"({len(res.generated) / s:.1f} tokens/s), answer {ok}", flush=True)
    print(f"hybrid  n={n} exact / float64 time ratio: {times['exact'] / times['float64']:.2f}x", flush=True)


def _find_gemm():
    """The fast evaluator's exact limb GEMM and Limbs, wherever the engine keeps them (today
    ``fast_products._gemm`` and ``fast_limbs.Limbs``; one module holding both also works)."""
    for gname, lname in (("constructions.fast_products", "constructions.fast_limbs"),
                         ("constructions.evaluate_fast", "constructions.evaluate_fast")):
        try:
            gmod, lmod = importlib.import_module(gname), importlib.import_module(lname)
        except ImportError:
            continue
        if hasattr(gmod, "_gemm") and hasattr(lmod, "Limbs"):
            return gmod._gemm, lmod.Limbs
    return None, None


def row_gemm(device: str, m: int, n: int, N: int, p: int, reps: int = 3) -> None:
    gemm, Limbs = _find_gemm()
    if gemm is None:
        print("gemm    skipped: no _gemm / Limbs found in the fast evaluator's modules", flush=True)
        return
    b = Limbs.for_inner_dim(n, p).b
    L = -(-p // b)
    gen = torch.Generator().manual_seed(0)
    W = torch.randint(-(1 << b) + 1, 1 << b, (L, m, n), generator=gen, dtype=torch.int64).to(device)
    X = torch.randint(-(1 << b) + 1, 1 << b, (L, n, N), generator=gen, dtype=torch.int64).to(device)
    Wf, Xf = W[0].to(torch.float64), X[0].to(torch.float64)
    (Wf @ Xf), gemm(W, X, b)  # warm up
    _, tf = timed(lambda: [Wf @ Xf for _ in range(reps)], device)
    _, te = timed(lambda: [gemm(W, X, b) for _ in range(reps)], device)
    macs = m * n * N * reps
    peak, exact = macs / tf, macs / te
    limit = peak / (L * L)
    print(f"gemm    {m}x{n} @ {n}x{N}, p={p}, b={b}, {L}x{L} limb products, {device}: float64 peak "
          f"{peak / 1e9:.2f} GMAC/s, limit / {L * L} = {limit / 1e9:.3f} GMAC/s, exact limb GEMM "
          f"{exact / 1e9:.3f} GMAC/s, limit / exact = {limit / exact:.2f}x", flush=True)


# ---- main ------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: minutes, not hours")
    ap.add_argument("--device", choices=DEVICES, default="cpu")
    ap.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="dfs row n (default 256 512 1024)")
    ap.add_argument("--graphs", type=int, default=None, help="batch row graphs (default 1000)")
    ap.add_argument("--batch-n", type=int, default=16, help="batch row n (default 16)")
    ap.add_argument("--hybrid-n", type=int, default=None, help="hybrid row n (default 512)")
    ap.add_argument("--gemm-p", type=int, default=101)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        device = require_device(args.device)
    except ProofsCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    q = args.quick
    print(f"large_n: device {device}, torch {torch.__version__}, threads {args.threads}, "
          f"{'quick' if q else 'full'} sizes, cpu count {os.cpu_count()}", flush=True)
    t0 = time.perf_counter()
    if "dfs" in args.rows:
        row_dfs(args.sizes or ((16, 32, 64) if q else (256, 512, 1024)), device)
    if "batch" in args.rows:
        row_batch(args.graphs or (8 if q else 1000), device, args.batch_n)
    if "hybrid" in args.rows:
        row_hybrid(args.hybrid_n or (8 if q else 512), device)
    if "gemm" in args.rows:
        big = device == "cuda"
        row_gemm(device, *((256, 256, 1024) if q and not big else (1024, 1024, 4096)), args.gemm_p)
    print(f"large_n: total {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
