"""Benchmark: token-layers per second of the reference and the fast evaluator (same run).

Models: random 8-layer width-64 Transformer (2 heads, key dim 16, ReGLU width 64) and 8-layer
width-64 linear RNN (ReGLU width 64), at p = 61 and p = 201, from tests/random_models.py.
Bounded activations: weights are sparse (about 2 non-zeros per row: density 2/64) and small
(+-1/8, +-1/16, +-3/32, +-1/4 and random grid values in [-1/8, 1/8]: every weight times 2^-3),
so each affine map is a contraction-ish sum of at most a few terms of size <= 1/4 times its
inputs; the linear-RNN state h_t = A h_(t-1) + B x_t with row sums of |A| around 1/4 stays
bounded; residual values stay far below 2^30 (p = 61's largest magnitude is about 1.07e9).

Fast evaluator: batch of 32 sequences of length 512 (the issue's size), except the p = 201
Transformer: at F = 100 fractional bits float64 cannot certify the rounding of soft softmax
columns and nearly every column goes to the arb fallback (numerics.softmax_column, the
reference's own cost per entry, and attention columns of a length-512 sequence are long), so
that row runs batch 4 x length 64 unless --full-201 is given (the size is printed in the table).
Reference: one sequence of length --ref-len (default 128: tens of seconds per row; its rate
per token falls with the length, as attention costs grow with it).  The outputs are compared on
a shared subset: the reference's sequence is the first `ref_len` tokens of the fast batch's
first sequence, and causality makes the fast residual's first `ref_len` columns equal to the
reference residual; the short sequence through the fast evaluator must also give the same
residual and logits.  Threads pinned to 1.
Same-run ratios measured (threads = 1, defaults, two rows at a time on a 2-core machine):
transformer p=61 187x, linear RNN p=61 120x, linear RNN p=201 24.7x, transformer p=201 4.9x
(4 x 64; the goal of 20x at p = 201 is not met for the Transformer: its softmax needs a
vectorized ~150-bit exp, see the fast evaluator's docstring).  A full default run takes about
two minutes.
Run:  python benchmarks/evaluator.py [--batch B --length L --ref-len R --full-201 --only ARCH:P]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from constructions.evaluate_reference import ReferenceEvaluator  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--ref-len", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full-201", action="store_true", help="p = 201 Transformer at the full size too (slow)")
    ap.add_argument("--only", action="append", default=[], help="run only these rows, e.g. transformer:61")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"threads=1 device={args.device} fast: batch {args.batch} x length {args.length}; reference: length {args.ref_len}")
    print(f"{'model':<14}{'p':>5}{'fast size':>11}{'ref tok-layer/s':>18}{'fast tok-layer/s':>18}{'ratio':>9}  agree")
    for arch in ("transformer", "linear_rnn"):
        for p in (61, 201):
            if args.only and f"{arch}:{p}" not in args.only:
                continue
            model = bench_model(arch, p)
            batch, length = args.batch, args.length
            if arch == "transformer" and p == 201 and not args.full_201:
                batch, length = min(batch, 4), min(length, 64)
            seqs = [random_tokens(model, length, seed=1000 * p + s) for s in range(batch)]
            ref_tokens = seqs[0][: args.ref_len]
            ref = ReferenceEvaluator()
            t = time.perf_counter()
            r = ref.forward(model, ref_tokens)
            t_ref = time.perf_counter() - t
            ref_rate = args.ref_len * LAYERS / t_ref
            fast = FastEvaluator(device=args.device)
            t = time.perf_counter()
            out = fast.forward_batch(model, seqs)
            t_fast = time.perf_counter() - t
            fast_rate = batch * length * LAYERS / t_fast
            agree = bool((out[0].residual[:, : args.ref_len] == r.residual).all())
            # the short sequence itself through the fast evaluator: residual and next token
            short = fast.forward(model, ref_tokens)
            agree = agree and bool((short.residual == r.residual).all()) and short.logits == r.logits
            print(f"{arch:<14}{p:>5}{f'{batch}x{length}':>11}{ref_rate:>18.1f}{fast_rate:>18.1f}{fast_rate / ref_rate:>9.1f}  {agree}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
