"""Benchmark (issue #10): the exact decode's shortcuts, each against its plain path in one run.

Every row decodes the same tokens both ways, checks they agree, and prints the ratio (threads
pinned to ``--threads``, default 1; process CPU time beside wall time, the steadier figure on
a shared machine):

* ``replay``: resuming a Thm 5.7 (a) chain (its one attention layer is the last) from a
  checkpoint of its first K tokens (``constructions.decode.Replay``): the fast session's
  ``append_replayed`` (the last layer's queries at each chunk's final column only) against the
  same chunks appended by plain ``append`` (every column's query), then the next token checked
  against the uninterrupted decode.
* ``routes``: Thm 4.8 decode steps (random circuit of ``--circuit-p`` gates at ``--circuit-n``),
  the limb GEMM's chosen route (``fast_products._gemm_route``) against the block-Toeplitz
  route forced everywhere; the same tokens.
* ``drafted``: Thm 4.8 (the ``routes`` circuit and n), the first ``--steps`` tokens decoded
  step by step against the circuit evaluator's draft verified in chunks
  (``constructions.decode.drafted_chain_of_thought``); the same DecodeResult.
* ``coarse``: the same drafted decode with far keys found from one bound per column
  (``fast_compact.coarse_candidates``) against the per-entry bounds only; the same result.
* ``key-blocks``: the same drafted decode, longer (``200 --steps`` tokens, so the cache passes
  ``fast_key_blocks.MIN_KEYS``), with whole blocks of keys proven far from their boxes
  (``constructions.fast_key_blocks``) against the per-entry test over every key; the same result.
* ``float-scores``: Thm 5.7 (a) decode steps with candidate scores taken from float64 where
  they are proven exact (``fast_compact.exact_float_entries``) against the limb GEMM for every
  candidate (the proof forced to say "not exact"); the same tokens.

Run:  python benchmarks/decode_paths.py [--quick] [--rows replay routes drafted coarse key-blocks float-scores]
      [--hybrid-n 64] [--circuit-p 1024] [--circuit-n 64] [--steps 100] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from contextlib import contextmanager
from typing import Sequence

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from constructions import fast_compact, fast_key_blocks, fast_products  # noqa: E402
from constructions.circuit_transformer import circuit_transformer, prompt  # noqa: E402
from constructions.decode import Replay, chain_of_thought, drafted_chain_of_thought  # noqa: E402
from constructions.evaluate_fast import FastEvaluator  # noqa: E402
from constructions.istree_hybrid import istree_hybrid  # noqa: E402
from proofs_check.circuit_claims import _rnn_prompt, seeded_circuit  # noqa: E402
from proofs_check.circuit_runners import transformer_draft  # noqa: E402
from proofs_check.graphs import random_tree, shuffle_edges  # noqa: E402

ROWS = ("replay", "routes", "drafted", "coarse", "key-blocks", "float-scores")


@contextmanager
def patched(module, name: str, value):
    real = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, real)


def clocked(fn):
    """(result, wall s, process CPU s) of fn()."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def steps(session, k: int) -> list:
    out = []
    for _ in range(k):
        tok = session.next_token()
        session.append([tok])
        out.append(tok)
    return out


def ratio_line(row: str, what: str, plain: tuple[float, float], fast: tuple[float, float]) -> str:
    return (f"{row:12s} {what}: plain {plain[0]:.2f} s (cpu {plain[1]:.2f}), shortcut {fast[0]:.2f} s "
            f"(cpu {fast[1]:.2f}); ratio {plain[0] / fast[0]:.2f}x (cpu {plain[1] / fast[1]:.2f}x)")


class _PlainAppend:
    """A session seen without ``append_replayed``: the replay appends its chunks by ``append``."""

    def __init__(self, session):
        self._s = session

    @property
    def tokens(self):
        return self._s.tokens

    def next_token(self):
        return self._s.next_token()

    def append(self, toks):
        self._s.append(toks)


def _hybrid_case(n: int):
    rng = random.Random(7)
    g = shuffle_edges(rng, random_tree(rng, n))
    return istree_hybrid(n), g


def row_replay(n: int) -> None:
    model, g = _hybrid_case(n)
    full = chain_of_thought(FastEvaluator().session(model, g.tokens()), 10 * n * n)
    k = len(full.generated) - 2  # the checkpoint stops before the answer
    replay = Replay(full.generated[:k])

    def resumed(wrap) -> object:
        s = FastEvaluator().session(model, g.tokens())
        res = chain_of_thought(wrap(s), len(full.generated), replay=replay)
        return res.generated

    plain, wp, cp = clocked(lambda: resumed(_PlainAppend))
    fast, wf, cf = clocked(lambda: resumed(lambda s: s))
    assert plain == fast == full.generated, "a replayed decode differs from the uninterrupted one"
    print(ratio_line("replay", f"Thm 5.7 (a) n={n}, {k} tokens replayed", (wp, cp), (wf, cf)), flush=True)


def row_routes(P: int, n: int, k: int) -> None:
    c = seeded_circuit(P)
    model = circuit_transformer(c, n, n)

    def run():
        return steps(FastEvaluator().session(model, prompt(c, _rnn_prompt(c, n))), k)

    with patched(fast_products, "_gemm_route", lambda *a: "toeplitz"):
        plain, wp, cp = clocked(run)
    fast, wf, cf = clocked(run)
    assert plain == fast, "the GEMM routes give different tokens"
    print(ratio_line("routes", f"Thm 4.8 P={P} n={n}, prompt + {k} tokens", (wp, cp), (wf, cf)), flush=True)


def _drafted_case(P: int, n: int, k: int):
    c = seeded_circuit(P)
    model, rp = circuit_transformer(c, n, n), _rnn_prompt(c, n)
    new = lambda: FastEvaluator().session(model, prompt(c, rp))  # noqa: E731
    return new, transformer_draft(c, rp, n)[:k]


def row_drafted(P: int, n: int, k: int) -> None:
    new, draft = _drafted_case(P, n, k)
    plain, wp, cp = clocked(lambda: chain_of_thought(new(), k - 1, answers=lambda t: False))
    fast, wf, cf = clocked(lambda: drafted_chain_of_thought(new, draft, k - 1, answers=lambda t: False))
    assert plain == fast, "the drafted decode differs from the step-by-step one"
    print(ratio_line("drafted", f"Thm 4.8 P={P} n={n}, {k} tokens", (wp, cp), (wf, cf)), flush=True)


def row_coarse(P: int, n: int, k: int) -> None:
    new, draft = _drafted_case(P, n, k)
    run = lambda: drafted_chain_of_thought(new, draft, k - 1, answers=lambda t: False)  # noqa: E731
    with patched(fast_compact, "coarse_candidates", lambda *a: None):
        plain, wp, cp = clocked(run)
    fast, wf, cf = clocked(run)
    assert plain == fast, "the coarse far test changes the tokens"
    print(ratio_line("coarse", f"Thm 4.8 P={P} n={n}, {k} tokens drafted", (wp, cp), (wf, cf)), flush=True)


def row_key_blocks(P: int, n: int, k: int) -> None:
    new, draft = _drafted_case(P, n, k)
    k = len(draft)  # at most the whole chain
    run = lambda: drafted_chain_of_thought(new, draft, k - 1, answers=lambda t: False)  # noqa: E731
    drafted_chain_of_thought(new, draft[:200], min(k, 200) - 1, answers=lambda t: False)  # warm-up: first-call costs
    with patched(fast_key_blocks, "MIN_KEYS", 1 << 62):
        plain, wp, cp = clocked(run)
    fast, wf, cf = clocked(run)
    assert plain == fast, "the key blocks change the tokens"
    print(ratio_line("key-blocks", f"Thm 4.8 P={P} n={n}, {k} tokens drafted", (wp, cp), (wf, cf)), flush=True)


def row_float_scores(n: int, k: int) -> None:
    model, g = _hybrid_case(n)
    head = chain_of_thought(FastEvaluator().session(model, g.tokens()), 10 * n * n).generated
    k = min(k, len(head) - 1)

    def run():
        s = FastEvaluator().session(model, g.tokens())
        return steps(s, k)

    with patched(fast_compact, "exact_float_entries", lambda A, *a: torch.zeros_like(A, dtype=torch.bool)):
        plain, wp, cp = clocked(run)
    fast, wf, cf = clocked(run)
    assert plain == fast == head[:k], "the float-score shortcut changes the tokens"
    print(ratio_line("float-scores", f"Thm 5.7 (a) n={n}, prompt + {k} tokens", (wp, cp), (wf, cf)), flush=True)


def parse(argv: Sequence[str] | None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a minute or two")
    ap.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    ap.add_argument("--hybrid-n", type=int, default=None, help="replay / float-scores n (default 64; quick 16)")
    ap.add_argument("--circuit-p", type=int, default=None, help="routes row gates (default 1024; quick 64)")
    ap.add_argument("--circuit-n", type=int, default=None, help="routes row n (default 64; quick 8)")
    ap.add_argument("--steps", type=int, default=None, help="decode steps per timed run (default 100; quick 20)")
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    hn = args.hybrid_n or (16 if q else 64)
    k = args.steps or (20 if q else 100)
    print(f"decode_paths: torch {torch.__version__}, threads {args.threads}, cpu count {os.cpu_count()}", flush=True)
    if "replay" in args.rows:
        row_replay(hn)
    if "routes" in args.rows:
        row_routes(args.circuit_p or (64 if q else 1024), args.circuit_n or (8 if q else 64), k)
    cp, cn = args.circuit_p or (64 if q else 1024), args.circuit_n or (8 if q else 64)
    if "drafted" in args.rows:
        row_drafted(cp, cn, 10 * k)
    if "coarse" in args.rows:
        row_coarse(cp, cn, 30 * k)
    if "key-blocks" in args.rows:
        row_key_blocks(cp, cn, 200 * k)
    if "float-scores" in args.rows:
        row_float_scores(hn, k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
