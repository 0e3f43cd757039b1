"""Measured sizes of the constructions: the "constant size, O(log n) bits" claims, as a table.

:func:`measure` reads a built :class:`constructions.model.Model` only (no builder knowledge):
layers, heads, residual width d (padded to a square, as assembled), the *active* width (the
dimensions some layer weight reads or writes: A.3 gives every special token its own one-hot
dimension, so a vocabulary with n extra special tokens has d = Theta(n) even where no weight
touches those dimensions), the widest FFN, the non-zero parameters of the layers and of the
explicit readout separately, parameter bits (count x p), recurrent state bits, and p.

:func:`claims_rows` produces the rows (extensible: :data:`ROW_SOURCES` lists functions
``() -> list[ClaimRow]``; an IsTree module can add its own), and :func:`write_markdown` the
table in ``notes/claims.md``::

    python -m proofs_check.claims --write notes/claims.md [--sizes 16 64 256 1024]
    python -m proofs_check.claims --write notes/claims.md --only istree   # just the IsTree rows

``--only NAME ...`` runs only the row sources ``*:NAME_rows`` (``istree``, ``retrieval``,
``turing``, ...) and, with ``--write`` onto an existing table, replaces only their rows there
(:func:`merge_rows`): the slow IsTree decodes can be re-run alone.
"""
from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from constructions.errors import InputError, ProofsCheckError
from constructions.model import LinearRNNLayer, Model, TransformerLayer
from proofs_check.decode_records import DEFAULT_RECORDS, DecodeOptions
from proofs_check.plugins import import_modules

SIZES: tuple[int, ...] = (16, 64, 256, 1024)


def _nonzero(mat: np.ndarray) -> int:
    return int(np.count_nonzero(mat != 0)) if mat.size else 0


def _touched_dims(model: Model) -> set[int]:
    """Residual dims some layer weight reads (non-zero column) or writes (non-zero row)."""
    dims: set[int] = set()

    def cols(m: np.ndarray) -> None:
        if m.size:
            dims.update(int(j) for j in np.nonzero((m != 0).any(axis=0))[0])

    def rows(m: np.ndarray) -> None:
        if m.size:
            dims.update(int(i) for i in np.nonzero((m != 0).any(axis=1))[0])

    for layer in model.layers:
        f = layer.ffn
        cols(f.W1), cols(f.W2), rows(f.W3)
        dims.update(int(i) for i in np.nonzero(f.b3 != 0)[0]) if f.b3.size else None
        if isinstance(layer, TransformerLayer):
            for h in layer.heads:
                cols(h.W_K), cols(h.W_Q), cols(h.W_V), rows(h.W_V)
        else:
            cols(layer.A), rows(layer.A), cols(layer.B), rows(layer.B)
    return dims


def measure(model: Model) -> dict:
    """Sizes of one model (see module docstring); ``cot_steps`` from the builder's meta if given."""
    unembed_params = _nonzero(model.unembed) if model.unembed is not None else 0
    layer_params = sum(_nonzero(m) for name, m in model.all_weights().items() if name != "unembed")
    state_dims = model.state_dims()
    return {
        "arch": model.arch,
        "p": model.p,
        "layers": len(model.layers),
        "transformer_layers": sum(1 for l in model.layers if isinstance(l, TransformerLayer)),
        "rnn_layers": sum(1 for l in model.layers if isinstance(l, LinearRNNLayer)),
        "heads": model.n_heads(),
        "width": model.d,
        "active_width": len(_touched_dims(model)),
        "ffn_width": model.max_ffn_width(),
        "vocab": len(model.vocab),
        "params": layer_params,
        "param_bits": layer_params * model.p,
        "readout_params": unembed_params,
        "state_dims": state_dims,
        "state_bits": state_dims * model.p,
        "cot_steps": model.meta.get("cot_steps"),
        "max_len": model.max_len,
    }


@dataclass
class ClaimRow:
    theorem: str
    task: str
    model: str
    n: int
    sizes: dict = field(default_factory=dict)


COLUMNS: tuple[tuple[str, str], ...] = (
    ("p", "p"), ("layers", "layers"), ("heads", "heads"), ("width", "d"), ("active_width", "active d"),
    ("ffn_width", "FFN width"), ("params", "params"), ("param_bits", "param bits"),
    ("readout_params", "readout params"), ("state_bits", "state bits"), ("cot_steps", "CoT steps"),
    ("gates", "circuit gates P"),
)


def decoded_cot_steps(task: str, model: Model, n: int, c: int = 3) -> int:
    """CoT steps measured by a decode: one full-length instance (n data tokens,
    ``strategies.long_instance`` seeded by n) through the fast evaluator and the decoding loop;
    the answer must be the task's plain-Python answer (``proofs_check.tasks``)."""
    import random

    from constructions.evaluate_fast import FastEvaluator
    from proofs_check.retrieval_runners import decode
    from proofs_check.strategies import long_instance

    inst = long_instance(task, n, random.Random(n), c)
    res = decode(model, inst.tokens(), FastEvaluator())
    if res.answer != inst.answer():
        raise AssertionError(f"{task} at n={n}: the model answered {res.answer}, the task's answer is {inst.answer()}")
    return res.steps


def retrieval_rows(sizes: Sequence[int] = SIZES, c: int = 3) -> list[ClaimRow]:
    """Thm 4.6 / 5.6 / 5.2 for the four tasks at each n (c-gram with the given c); the CoT steps
    column measured by :func:`decoded_cot_steps` (the builder's declared count is not used)."""
    from constructions.retrieval_tasks import build

    rows = []
    for theorem, model_name in (("4.6", "transformer"), ("5.6", "hybrid"), ("5.2", "rag-rnn")):
        for task in ("index", "ar", "cgram", "count"):
            for n in sizes:
                m = build(task, model_name, n, c=c)
                sizes_n = {**measure(m), "cot_steps": f"measured {decoded_cot_steps(task, m, n, c)}"}
                rows.append(ClaimRow(theorem, task if task != "cgram" else f"cgram (c={c})", model_name, n, sizes_n))
    return rows


ROW_SOURCES: tuple[str, ...] = (
    "proofs_check.claims:retrieval_rows",
    "proofs_check.turing_claims:turing_rows",
    "proofs_check.istree_claims:istree_rows",
    "proofs_check.rnn_circuit_claims:rnn_circuit_rows",
    "proofs_check.tm_claims:tm_hybrid_rows",
    "proofs_check.circuit_claims:circuit_rows",
    "proofs_check.turing_cot_claims:tm_cot_rows",
)


#: paragraphs appended after the table, functions ``() -> str`` ("" to add nothing)
PARAGRAPH_SOURCES: tuple[str, ...] = ("proofs_check.frontier_notes:claims_paragraph",)


def claims_paragraphs() -> str:
    texts = []
    for spec in PARAGRAPH_SOURCES:
        mod_name, fn_name = spec.split(":")
        (module,) = import_modules([mod_name])
        texts.append(getattr(module, fn_name)())
    return "".join("\n" + t for t in texts if t)


def source_names() -> list[str]:
    """The ``--only`` names: ``NAME`` of each ``module:NAME_rows`` in :data:`ROW_SOURCES`."""
    return [spec.split(":")[1].removesuffix("_rows") for spec in ROW_SOURCES]


def _call_source(fn, sizes: Sequence[int], decode):
    """``fn(sizes)``, with ``decode=`` too where the source measures chains from decode records
    (proofs_check.decode_records) and declares that parameter."""
    if decode is not None and "decode" in inspect.signature(fn).parameters:
        return fn(sizes, decode=decode)
    return fn(sizes)


def claims_rows(sizes: Sequence[int] = SIZES, only: Sequence[str] | None = None, decode=None) -> list[ClaimRow]:
    """The rows of every source (or of ``only``); ``decode``: a
    :class:`proofs_check.decode_records.DecodeOptions` for the sources that decode chains."""
    unknown = sorted(set(only or ()) - set(source_names()))
    if unknown:
        raise InputError(f"--only {' '.join(unknown)}: no such row source; choose from {', '.join(source_names())}")
    rows: list[ClaimRow] = []
    for spec, name in zip(ROW_SOURCES, source_names()):
        if only and name not in only:
            continue
        mod_name, fn_name = spec.split(":")
        (module,) = import_modules([mod_name])
        rows.extend(_call_source(getattr(module, fn_name), sizes, decode))
    return rows


def growth_summary(rows: Iterable[ClaimRow]) -> list[str]:
    """Per (theorem, task, model): which columns stay constant in n, and the p per n."""
    groups: dict[tuple, list[ClaimRow]] = {}
    for r in rows:
        groups.setdefault((r.theorem, r.task, r.model), []).append(r)
    out = []
    for (thm, task, model), rs in groups.items():
        const = [label for key, label in COLUMNS if key not in ("p", "param_bits", "state_bits")
                 and len({r.sizes.get(key) for r in rs}) == 1]
        ps = ", ".join(f"n={r.n}: p={r.sizes['p']}" for r in rs)
        out.append(f"- Thm {thm} {task} / {model}: constant in n: {', '.join(const) or 'none'}; {ps}")
    return out


def markdown(rows: list[ClaimRow]) -> str:
    head = "| Thm | task | model | n | " + " | ".join(label for _, label in COLUMNS) + " |"
    sep = "|" + "---|" * (4 + len(COLUMNS))
    lines = [head, sep]
    for r in rows:
        cells = [str(r.sizes.get(key, "")) for key, _ in COLUMNS]
        lines.append(f"| {r.theorem} | {r.task} | {r.model} | {r.n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PREAMBLE = """# Claims: measured sizes of the constructions

Generated by `python -m proofs_check.claims --write notes/claims.md` (do not edit by hand).
Every size is read off the built model (`proofs_check.claims.measure`), not from the builder.
CoT steps come from decodes, never from builder metadata: in the retrieval rows (4.6, 5.6, 5.2)
"measured K" = the steps of one decode at that n of an instance with n data tokens
(`claims.decoded_cot_steps`, its answer checked against the task's plain answer); the IsTree,
Turing-machine and circuit rows as their paragraphs say; a cell that says "not decoded" is a
bound or formula only.

Columns: p = the precision the builder declares (smallest it accepts); layers / heads; d = residual
width as assembled (padded to a square for the exact 1/sqrt(d) compensation); active d = dims any
layer weight reads or writes; FFN width = widest FFN; params = non-zero weights of the layers;
param bits = params x p; readout params = non-zero entries of the explicit unembedding
(erratum D32-E1: A.3's tied readout cannot name a number, so every model here carries one; it has
Theta(n) rows like W_E, which the paper does not count as parameters); state bits = non-zero
recurrent state dims x p (RNN layers); CoT steps = tokens generated before the answer.

Reading: for each construction, layers, heads, active d, FFN width, params and state dims are
the same at every n (constant size); p, param bits and state bits grow like log n.  d of the
retrieval-augmented RNNs for Index and Counting grows with n only because their quantifier
tokens `{j}` are n special tokens, each with its own one-hot embedding dimension (A.3) that no
weight touches (erratum T52-E1 in notes/errata/retrieval_tasks.md).

Decoded chains are kept as records (`proofs_check.decode_records`: notes/decodes/claims.jsonl,
one line per decode, keyed by the model's SHA-256 digest and the input, with the seconds, the
machine and the date it took): a recorded chain is read back, an unrecorded one is decoded now
where that takes seconds to minutes, and `--decode-all` (or `PROOFS_CHECK_DECODE_ALL=1`) decodes
every unrecorded chain, on a Dask LocalCluster or `--scheduler ADDRESS`, each recorded as it ends
(interrupt and re-run at will; `--decodes none` decodes again without the records).

IsTree rows (`proofs_check.istree_claims`, n = 8, 32, 128, 512, and 1024, 2048 for 4.7; re-run
alone with `--only istree`): "measured L (bound B)" = the longest chain over
the graphs decoded at that n, one session each (a uniform random tree and a randomly labelled path;
5.7 (b): a Figure 3 family instance), each answer checked against IsTree and each 4.7 chain
against Algorithm 1, next to the theorem's bound B.  4.7 and 5.7 (a) count generated tokens
before the answer; 5.3 counts generated and retrieved tokens before the answer (retrieval
results are part of the sequence).
"""


def parse_table(text: str) -> list[ClaimRow]:
    """The rows of a table written by :func:`markdown` (cells kept as text)."""
    head = "| Thm | task | model | n | "
    lines = text.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith(head)), None)
    if start is None:
        raise InputError("the existing file holds no claims table; write the whole table without --only")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        sizes = {key: cell for (key, _), cell in zip(COLUMNS, cells[4:])}
        rows.append(ClaimRow(cells[0], cells[1], cells[2], int(cells[3]), sizes))
    return rows


def merge_rows(old: list[ClaimRow], new: list[ClaimRow]) -> list[ClaimRow]:
    """``old`` with every (theorem, task, model) group that ``new`` has replaced by new's rows
    (at the place of the group's first old row; groups old lacks go at the end)."""
    groups = {(r.theorem, r.task, r.model) for r in new}
    out: list[ClaimRow] = []
    placed: set[tuple] = set()
    for r in old:
        key = (r.theorem, r.task, r.model)
        if key not in groups:
            out.append(r)
        elif key not in placed:
            placed.add(key)
            out.extend(x for x in new if (x.theorem, x.task, x.model) == key)
    return out + [x for x in new if (x.theorem, x.task, x.model) not in placed]


def write_markdown(path: str, sizes: Sequence[int] = SIZES, only: Sequence[str] | None = None, decode=None) -> str:
    rows = claims_rows(sizes, only, decode)
    if only:
        try:
            with open(path, encoding="utf-8") as fh:
                rows = merge_rows(parse_table(fh.read()), rows)
        except FileNotFoundError:
            pass
    text = PREAMBLE + "\n## Table\n\n" + markdown(rows) + "\n\n## Growth\n\n" + "\n".join(growth_summary(rows)) + "\n" + claims_paragraphs()
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proofs_check.claims", description="write the claims table")
    ap.add_argument("--write", metavar="FILE", help="write the markdown table to FILE (else print it)")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--only", nargs="+", metavar="NAME", choices=source_names(),
                    help="only these row sources (with --write: replace just their rows in the existing table)")
    ap.add_argument("--decodes", metavar="FILE", default=DEFAULT_RECORDS,
                    help=f"the decode records read and appended to (default {DEFAULT_RECORDS}; 'none': "
                         "neither read nor write, decode every allowed chain again)")
    ap.add_argument("--decode-all", action="store_true",
                    help="decode every chain not yet recorded, at every n (hours on 2 cores; "
                         "env PROOFS_CHECK_DECODE_ALL=1 does the same); interrupt and re-run at will")
    ap.add_argument("--workers", type=int, default=None, help="decoding processes (default: the cores)")
    ap.add_argument("--scheduler", metavar="ADDRESS", default=None,
                    help="run the decodes on an existing Dask cluster (tcp://HOST:PORT)")
    args = ap.parse_args(argv)
    try:
        decode = DecodeOptions(records=None if args.decodes == "none" else args.decodes,
                               decode_all=args.decode_all or DecodeOptions().decode_all,
                               workers=args.workers, scheduler=args.scheduler)
    except InputError as exc:
        ap.error(str(exc))
    try:
        if args.write:
            write_markdown(args.write, args.sizes, args.only, decode)
            print(f"wrote {args.write}")
        else:
            rows = claims_rows(args.sizes, args.only, decode)
            print(markdown(rows))
            print("\n".join(growth_summary(rows)))
    except ProofsCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
