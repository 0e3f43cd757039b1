"""Benchmark: token-layers per second of the reference and the fast evaluator (same run).

Models: random 8-layer width-64 Transformer (2 heads, key dim 16, ReGLU width 64) and 8-layer
width-64 linear RNN (ReGLU width 64), at p = 61 and p = 201, from tests/random_models.py.
Bounded activations: weights are sparse (about 2 non-zeros per row: density 2/64) and small
(+-1/8, +-1/16, +-3/32, +-1/4 and random grid values in [-1/8, 1/8]: every weight times 2^-3),
so each affine map is a contraction-ish sum of at most a few terms of size <= 1/4 times its
inputs; the linear-RNN state h_t = A h_(t-1) + B x_t with row sums of |A| around 1/4 stays
bounded; residual values stay far below 2^30 (p = 61's largest magnitude is about 1.07e9).

Fast evaluator: batch of 32 sequences of length 512 (the issue's size) for every row, the
p = 201 Transformer included (its softmax certifies in vectorized fixed point,
constructions/softmax_fixed.py; --small-201 runs that row at 4 x 64 instead).
Reference: one sequence, whose length is chosen per row so that it runs about --ref-seconds
(default 60, "what it finishes in about a minute"): two short probes (32 and 64 tokens) fit
time(l) = a l + c l^2 (attention makes the per-token cost grow with the length) and the length
is solved from the fit (multiple of 16, at most the fast length); --ref-len fixes it instead.
The chosen length and the reference's seconds are printed per row.  The outputs are compared
on a shared subset: the reference's sequence is the first `ref_len` tokens of the fast batch's
first sequence, and causality makes the fast residual's first `ref_len` columns equal to the
reference residual; the short sequence through the fast evaluator must also give the same
residual and logits.  Threads pinned to 1.
Same-run ratios measured (threads = 1, defaults, on a shared 2-core machine with other jobs):
transformer p=201 33.8x (fast 32 x 512 in 126 s, 1039 token-layers/s; reference length 288 in
75 s, 30.7 token-layers/s; agree True).  Earlier runs (reference at length 128): transformer
p=61 187x, linear RNN p=61 120x, linear RNN p=201 24.7x.
Round-each-product row (``--only dfs:round_products``): one forward pass of Thm 4.7's DFS
Transformer at n = 4 (p = 43, d = 64, 7 layers) on a path graph's prompt plus its tour (17
tokens) under Arithmetic(matmul="round_products"), reference and fast in the same run (the
fast pass warmed up once first), outputs compared.  Measured (threads = 1, shared machine):
reference 1.32 s, fast 0.092 s, ratio 14.3x; two runs under heavier load 4.69 s vs 0.224 s (21.0x) and
4.56 s vs 0.343 s (13.3x) (before the int64 word path for rounded products:
fast 0.49 s, 2.7x; one run after the two-word products: 2.11 s vs 0.190 s, 11.1x).  With
two-word products (operands below 2^62) the DFS Transformer at n = 8 (p = 51, 30 tokens) runs
all its products in words: 4.82 s vs 0.64 s; the p = 61 random models of the rows above at 32
tokens: Transformer 9.4 s vs 1.2 s, linear RNN 5.9 s vs 0.33 s; operands beyond 2^62 (p = 201)
take the limb path: 7.3 s vs 3.5 s.
Run:  python benchmarks/evaluator.py [--batch B --length L --ref-len R --ref-seconds S --small-201 --only ARCH:P]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from constructions.evaluate_reference import ReferenceEvaluator  # noqa: E402
from constructions.numerics import Arithmetic  # noqa: E402
from tests.random_models import ModelSpec, random_model, random_tokens  # noqa: E402

LAYERS, WIDTH = 8, 64


def bench_model(arch: str, p: int):
    spec = ModelSpec(
        arch, p, extra_dims=WIDTH - 10, n_layers=LAYERS, n_heads=2, key_dim=16, ffn_width=WIDTH,
        n=50, n_specials=7, density=2 / WIDTH, fractional=0.3, scale_log2=-3, max_len=1024, seed=p,
    )
    model = random_model(spec)
    assert model.d == WIDTH
    return model


def reference_length(model, tokens, target_s: float, max_len: int) -> int:
    """A reference length expected to take about ``target_s`` seconds: probes at 32 and 64
    tokens fit time(l) = a l + c l^2 (a, c >= 0), solved for time = target_s."""
    ref = ReferenceEvaluator()
    times = []
    for n in (32, 64):
        t = time.perf_counter()
        ref.forward(model, tokens[:n])
        times.append(time.perf_counter() - t)
    # t1 = 32 a + 1024 c, t2 = 64 a + 4096 c
    c = max(0.0, (times[1] - 2 * times[0]) / 2048)
    a = max(1e-9, (times[0] - 1024 * c) / 32)
    if c > 0:
        n = (-a + math.sqrt(a * a + 4 * c * target_s)) / (2 * c)
    else:
        n = target_s / a
    return int(max(64, min(max_len, 16 * round(n / 16))))


def round_products_row(device: str) -> None:
    """One forward pass of the DFS Transformer (n = 4) under round_products, both evaluators."""
    from constructions.dfs_transformer import dfs_transformer
    from proofs_check.algorithms import algorithm1
    from proofs_check.graphs import Graph

    model = dfs_transformer(4)
    g = Graph.parse("1-2 2-3 3-4", 4)
    tokens = (g.tokens() + algorithm1(g))[: model.max_len]
    arith = Arithmetic(matmul="round_products")
    t = time.perf_counter()
    r = ReferenceEvaluator(arith).forward(model, tokens)
    t_ref = time.perf_counter() - t
    fast = FastEvaluator(arith, device=device)
    fast.forward(model, tokens)  # warm-up (torch kernels, first allocations)
    t = time.perf_counter()
    f = fast.forward(model, tokens)
    t_fast = time.perf_counter() - t
    agree = bool((f.residual == r.residual).all()) and f.logits == r.logits
    print(f"{'dfs n=4 round_products':<28}{model.p:>5}{len(tokens):>8} tokens  ref {t_ref:.3f} s  "
          f"fast {t_fast:.3f} s  ratio {t_ref / t_fast:.1f}x  agree {agree}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--ref-len", type=int, default=0, help="fixed reference length (default: ~--ref-seconds)")
    ap.add_argument("--ref-seconds", type=float, default=60.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--small-201", action="store_true", help="p = 201 Transformer at 4 x 64 only")
    ap.add_argument("--only", action="append", default=[], help="run only these rows, e.g. transformer:61")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"threads=1 device={args.device} fast: batch {args.batch} x length {args.length}; "
          f"reference: one sequence, {'length ' + str(args.ref_len) if args.ref_len else f'~{args.ref_seconds:.0f} s'}")
    print(f"{'model':<14}{'p':>5}{'fast size':>11}{'fast s':>8}{'ref len':>8}{'ref s':>7}"
          f"{'ref tok-layer/s':>17}{'fast tok-layer/s':>18}{'ratio':>8}  agree")
    for arch in ("transformer", "linear_rnn"):
        for p in (61, 201):
            if args.only and f"{arch}:{p}" not in args.only:
                continue
            bench_row(args, arch, p)
    if not args.only or "dfs:round_products" in args.only:
        round_products_row(args.device)


def bench_row(args, arch: str, p: int) -> None:
    """One random-model row: fast batch vs reference single sequence, same run."""
    model = bench_model(arch, p)
    batch, length = args.batch, args.length
    if arch == "transformer" and p == 201 and args.small_201:
        batch, length = min(batch, 4), min(length, 64)
    seqs = [random_tokens(model, length, seed=1000 * p + s) for s in range(batch)]
    ref_len = args.ref_len or reference_length(model, seqs[0], args.ref_seconds, length)
    ref_tokens = seqs[0][:ref_len]
    ref = ReferenceEvaluator()
    t = time.perf_counter()
    r = ref.forward(model, ref_tokens)
    t_ref = time.perf_counter() - t
    ref_rate = ref_len * LAYERS / t_ref
    fast = FastEvaluator(device=args.device)
    t = time.perf_counter()
    out = fast.forward_batch(model, seqs)
    t_fast = time.perf_counter() - t
    fast_rate = batch * length * LAYERS / t_fast
    agree = bool((out[0].residual[:, :ref_len] == r.residual).all())
    # the short sequence itself through the fast evaluator: residual and next token
    short = fast.forward(model, ref_tokens)
    agree = agree and bool((short.residual == r.residual).all()) and short.logits == r.logits
    print(f"{arch:<14}{p:>5}{f'{batch}x{length}':>11}{t_fast:>8.1f}{ref_len:>8}{t_ref:>7.1f}"
          f"{ref_rate:>17.1f}{fast_rate:>18.1f}{fast_rate / ref_rate:>8.1f}  {agree}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
