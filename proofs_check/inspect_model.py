"""Human-readable views of a Model: a text report, a JSON export and heatmaps.

Every number shown is the exact rational a scaled weight stands for (``q / 2^F``, see
:mod:`constructions.numerics`): integers print as integers, other values as exact decimals
when short, else as fractions.  Every matrix is labelled by names, never bare indices:

* ``W_K``, ``W_Q``: rows are the head's ``key_names``, columns residual dimensions;
* ``W_V``, ``A``, ``B``: rows and columns are residual dimensions;
* ``W1``, ``W2`` (and ``b1``, ``b2``): rows are the FFN's ``hidden_names``, columns residual dims;
* ``W3`` (and ``b3``): rows are residual dimensions, columns the FFN's hidden names;
* ``unembed``: rows are vocabulary tokens, columns residual dimensions.

All-zero rows and columns are elided in the text report and the plot unless asked
(``show_all``); the JSON export always holds every entry.
"""
from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from constructions.errors import ProofsCheckError
from constructions.model import LinearRNNLayer, Model, TransformerLayer
from . import atomic_files

EXPORT_FORMAT = "proofs-check-inspect"
EXPORT_VERSION = 1
MAX_TABLE_WIDTH = 150
MAX_PLOTS = 90  # one PNG; matplotlib refuses pictures over 2^16 pixels a side


# ---- values --------------------------------------------------------------------------------


def format_value(value: Fraction) -> str:
    """An exact rational as text: ``3``, ``-0.375``, or ``5/1073741824`` when long."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    if den & (den - 1) == 0:  # 2^k: a finite decimal with k digits after the point
        k = den.bit_length() - 1
        digits = str(abs(value.numerator) * 5**k).rjust(k + 1, "0")
        text = ("-" if value < 0 else "") + digits[:-k] + "." + digits[-k:]
        if len(text) <= 12:
            return text
    return f"{value.numerator}/{value.denominator}"


def exact_string(value: Fraction) -> str:
    """The canonical, parseable exact form used in the JSON export (``Fraction(s)`` reads it)."""
    return str(value)


# ---- named matrices ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NamedMatrix:
    """A weight matrix (or a vector, as one column) with row and column names."""

    name: str  # as in Model.all_weights(), e.g. "layer1.head2.W_K"
    values: np.ndarray  # 2-D object array of scaled ints
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    row_kind: str
    col_kind: str
    is_vector: bool = False

    def nonzero(self) -> int:
        return int(sum(1 for v in self.values.reshape(-1) if v != 0))

    def live_rows(self) -> list[int]:
        return [i for i in range(self.values.shape[0]) if any(v != 0 for v in self.values[i])]

    def live_cols(self) -> list[int]:
        return [j for j in range(self.values.shape[1]) if any(v != 0 for v in self.values[:, j])]


def _names(given: Sequence[str], count: int, prefix: str) -> tuple[str, ...]:
    if len(given) == count:
        return tuple(given)
    return tuple(f"{prefix}{i}" for i in range(count))


def named_matrices(model: Model) -> dict[str, NamedMatrix]:
    """Every weight of the model with its row and column names, in Model.all_weights order."""
    dims = model.layout.names
    out: dict[str, NamedMatrix] = {}

    def put(name: str, values: np.ndarray, rows, cols, row_kind: str, col_kind: str) -> None:
        vec = values.ndim == 1
        mat = values.reshape(-1, 1) if vec else values
        out[name] = NamedMatrix(name, mat, tuple(rows), tuple(cols) if not vec else ("value",), row_kind,
                                col_kind if not vec else "", vec)

    for li, layer in enumerate(model.layers, start=1):
        if isinstance(layer, TransformerLayer):
            for hi, head in enumerate(layer.heads, start=1):
                keys = _names(head.key_names, head.W_K.shape[0], "key")
                base = f"layer{li}.head{hi}"
                put(f"{base}.W_K", head.W_K, keys, dims, "head key dims", "residual dims")
                put(f"{base}.W_Q", head.W_Q, keys, dims, "head key dims", "residual dims")
                put(f"{base}.W_V", head.W_V, dims, dims, "residual dims", "residual dims")
        else:
            put(f"layer{li}.A", layer.A, dims, dims, "residual dims (state)", "residual dims (state)")
            put(f"layer{li}.B", layer.B, dims, dims, "residual dims (state)", "residual dims")
        ffn = layer.ffn
        hidden = _names(ffn.hidden_names, ffn.width, "hidden")
        put(f"layer{li}.ffn.W1", ffn.W1, hidden, dims, "ffn hidden units", "residual dims")
        put(f"layer{li}.ffn.b1", ffn.b1, hidden, (), "ffn hidden units", "")
        put(f"layer{li}.ffn.W2", ffn.W2, hidden, dims, "ffn hidden units", "residual dims")
        put(f"layer{li}.ffn.b2", ffn.b2, hidden, (), "ffn hidden units", "")
        put(f"layer{li}.ffn.W3", ffn.W3, dims, hidden, "residual dims", "ffn hidden units")
        put(f"layer{li}.ffn.b3", ffn.b3, dims, (), "residual dims", "")
    if model.unembed is not None:
        put("unembed", model.unembed, [str(t) for t in model.vocab.all_tokens()], dims, "vocabulary tokens", "residual dims")
    missing = set(model.all_weights()) - set(out)
    assert not missing, f"inspect does not name {sorted(missing)}"
    return out


def select_matrices(model: Model, patterns: Sequence[str]) -> list[NamedMatrix]:
    """Matrices whose name matches any pattern (exact or shell glob, e.g. ``layer1.*.W_K``)."""
    table = named_matrices(model)
    chosen: list[NamedMatrix] = []
    for pattern in patterns:
        hits = [m for name, m in table.items() if name == pattern or fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise ProofsCheckError(
                f"no weight matrix matches {pattern!r}; this model has: {', '.join(table)} "
                f"(globs such as 'layer1.*' work)"
            )
        chosen.extend(m for m in hits if all(m.name != c.name for c in chosen))
    return chosen


# ---- the text report -----------------------------------------------------------------------


def _readers_writers(model: Model) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Which blocks read (non-zero column) and write (non-zero row) each residual dimension."""
    dims = model.layout.names
    reads: dict[str, list[str]] = {n: [] for n in dims}
    writes: dict[str, list[str]] = {n: [] for n in dims}

    def nz_cols(*mats: np.ndarray) -> set[int]:
        return {j for m in mats for j in range(m.shape[1]) if any(v != 0 for v in m[:, j])}

    def nz_rows(*mats: np.ndarray) -> set[int]:
        return {i for m in mats for i in range(m.shape[0]) if any(v != 0 for v in m.reshape(m.shape[0], -1)[i])}

    vocab = model.vocab
    writes[dims[0]].append("embedding")
    for s in vocab.specials:
        writes[f"tok:{s}"].append("embedding")
    writes[dims[-1]].append("embedding")
    for li, layer in enumerate(model.layers, start=1):
        if isinstance(layer, TransformerLayer):
            for hi, head in enumerate(layer.heads, start=1):
                tag = f"L{li}.head{hi}"
                for j in nz_cols(head.W_K, head.W_Q, head.W_V):
                    reads[dims[j]].append(tag)
                for i in nz_rows(head.W_V):
                    writes[dims[i]].append(tag)
        else:
            tag = f"L{li}.rnn"
            for j in nz_cols(layer.A, layer.B):
                reads[dims[j]].append(tag)
            for i in nz_rows(layer.A, layer.B):
                writes[dims[i]].append(tag)
        ffn = layer.ffn
        for j in nz_cols(ffn.W1, ffn.W2):
            reads[dims[j]].append(f"L{li}.ffn")
        for i in nz_rows(ffn.W3, ffn.b3):
            writes[dims[i]].append(f"L{li}.ffn")
    if model.unembed is not None:
        out_cols = nz_cols(model.unembed)
    else:
        out_cols = {0} | {1 + vocab.special_rank(s) for s in vocab.specials}
    for j in sorted(out_cols):
        reads[dims[j]].append("output")
    return reads, writes


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    lines = [indent + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)).rstrip()]
    for r in rows:
        lines.append(indent + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    return lines


def matrix_text(m: NamedMatrix, model: Model, show_all: bool = False) -> list[str]:
    """One matrix as labelled table(s), wide ones split into column chunks."""
    scale = model.precision.scale
    shape = "x".join(str(s) for s in m.values.shape) if not m.is_vector else str(m.values.shape[0])
    nz = m.nonzero()
    head = f"{m.name}  ({shape}; rows: {m.row_kind}" + (f", columns: {m.col_kind}" if m.col_kind else "") + f"; {nz} non-zero)"
    if nz == 0 and not show_all:
        return [head + ": all zero"]
    rows = list(range(m.values.shape[0])) if show_all else m.live_rows()
    cols = list(range(m.values.shape[1])) if show_all else m.live_cols()
    hidden = []
    if len(rows) < m.values.shape[0]:
        hidden.append(f"{m.values.shape[0] - len(rows)} all-zero rows")
    if not m.is_vector and len(cols) < m.values.shape[1]:
        hidden.append(f"{m.values.shape[1] - len(cols)} all-zero columns")
    lines = [head + (f"; hidden: {', '.join(hidden)} (--all shows them)" if hidden else "")]
    if not rows or not cols:
        return lines
    cells = {(i, j): format_value(Fraction(int(m.values[i, j]), scale)) for i in rows for j in cols}
    row_w = max(len(m.rows[i]) for i in rows)
    col_w = {j: max(len(m.cols[j]), *(len(cells[(i, j)]) for i in rows)) for j in cols}
    chunks: list[list[int]] = [[]]
    used = row_w + 2
    for j in cols:
        if chunks[-1] and used + col_w[j] + 2 > MAX_TABLE_WIDTH:
            chunks.append([])
            used = row_w + 2
        chunks[-1].append(j)
        used += col_w[j] + 2
    for chunk in chunks:
        lines.append("    " + " " * row_w + "  " + "  ".join(m.cols[j].rjust(col_w[j]) for j in chunk))
        for i in rows:
            lines.append("    " + m.rows[i].ljust(row_w) + "  " + "  ".join(cells[(i, j)].rjust(col_w[j]) for j in chunk))
    return lines


def summary(model: Model) -> dict[str, Any]:
    """The size figures a claims table uses (all exact integers)."""
    layers = []
    for li, layer in enumerate(model.layers, start=1):
        entry: dict[str, Any] = {"index": li, "kind": layer.kind, "name": layer.name, "ffn_width": layer.ffn.width}
        if isinstance(layer, TransformerLayer):
            entry["heads"] = len(layer.heads)
            entry["key_dims"] = [h.W_K.shape[0] for h in layer.heads]
            entry["head_names"] = [h.name for h in layer.heads]
        else:
            entry["state_dims"] = len(layer.state_dims())
        layers.append(entry)
    out: dict[str, Any] = {
        "arch": model.arch,
        "p": model.p,
        "fractional_bits": model.precision.F,
        "integer_bits": model.precision.I,
        "format": model.precision.label,
        "d": model.d,
        "max_len": model.max_len,
        "n_layers": len(model.layers),
        "n_heads": model.n_heads(),
        "max_ffn_width": model.max_ffn_width(),
        "parameter_count": model.parameter_count(),
        "parameter_bits": model.parameter_bits(),
        "output": "explicit unembed" if model.unembed is not None else "tied W_E (A.3)",
        "layers": layers,
    }
    if any(isinstance(l, LinearRNNLayer) for l in model.layers):
        out["state_dims"] = model.state_dims()
        out["state_bits"] = model.state_bits()
    return out


def _meta_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def report(model: Model, matrices: Sequence[str] = (), show_all: bool = False, title: str = "") -> str:
    """The text report: architecture, sizes, vocabulary, meta, residual dims, chosen matrices.

    ``matrices``: names or globs of the weight matrices to print; with none given and
    ``show_all`` every matrix is printed.  ``show_all`` also keeps all-zero rows and columns.
    """
    s = summary(model)
    prec = model.precision
    vocab = model.vocab
    construction = model.meta.get("construction")
    name = title or str(construction or "(unnamed)")
    if construction and title and not title.startswith(str(construction)):
        name += f" (construction {construction})"
    lines = [f"model: {name}"]
    lines.append(f"architecture: {model.arch}, {s['n_layers']} layer(s), {s['n_heads']} attention head(s) in all")
    lines.append(
        f"precision: p = {model.p} ({prec.label}: {prec.I} integer and {prec.F} fractional bits, "
        f"largest magnitude 2^{prec.I} - 2^-{prec.F} ~ {float(prec.max_value):.6g})"
    )
    lines.append(f"residual width: d = {model.d}; max_len = {model.max_len}")
    lines.append(
        f"vocabulary: numbers {vocab.min_number}..{vocab.n}, specials {' '.join(vocab.specials)} (|V| = {len(vocab)})"
    )
    lines.append(f"parameters: {s['parameter_count']} non-zero weights, {s['parameter_bits']} bits (p each)")
    lines.append(f"output layer: {s['output']}")
    if "state_dims" in s:
        lines.append(f"recurrent state: {s['state_dims']} dims that can be non-zero, {s['state_bits']} bits")
    lines.append("layers:")
    for entry in s["layers"]:
        name = f" {entry['name']!r}" if entry["name"] else ""
        if entry["kind"] == "transformer":
            keys = ", ".join(str(k) for k in entry["key_dims"])
            mix = f"{entry['heads']} head(s) (key dims {keys})"
        else:
            mix = f"linear RNN, {entry['state_dims']} state dims"
        lines.append(f"  {entry['index']}. {entry['kind']}{name}: {mix}; ffn width {entry['ffn_width']}")
    if model.meta:
        lines.append("meta:")
        for k, v in model.meta.items():
            lines.append(f"  {k}: {_meta_text(v)}")
    from .prompts import describe as prompt_lines

    declared = prompt_lines(model.meta)
    if declared:
        lines.append("how to run it (run-model uses these by default):")
        lines += ["  " + line for line in declared]
    reads, writes = _readers_writers(model)
    lines.append(f"residual dimensions (d = {model.d}):")
    lines += _table(
        ["idx", "name", "written by", "read by"],
        [[str(i), n, ", ".join(writes[n]) or "-", ", ".join(reads[n]) or "-"] for i, n in enumerate(model.layout.names)],
    )
    chosen = select_matrices(model, matrices) if matrices else (list(named_matrices(model).values()) if show_all else [])
    if chosen:
        lines.append("weights (exact values):")
        for m in chosen:
            lines += ["  " + line for line in matrix_text(m, model, show_all)]
    else:
        lines.append("weights: " + ", ".join(named_matrices(model)) + "  (--matrix NAME or --all prints them)")
    return "\n".join(lines) + "\n"


# ---- JSON export ---------------------------------------------------------------------------


def export(model: Model) -> dict[str, Any]:
    """Everything in plain JSON: exact decoded weights as strings, names, sizes and meta."""
    scale = model.precision.scale
    weights = {}
    for name, m in named_matrices(model).items():
        vals = [[exact_string(Fraction(int(v), scale)) for v in row] for row in m.values]
        weights[name] = {
            "shape": list(m.values.shape[:1]) if m.is_vector else list(m.values.shape),
            "rows": list(m.rows),
            "cols": [] if m.is_vector else list(m.cols),
            "values": [r[0] for r in vals] if m.is_vector else vals,
        }
    heads = {}
    for li, layer in enumerate(model.layers, start=1):
        if isinstance(layer, TransformerLayer):
            for hi, head in enumerate(layer.heads, start=1):
                heads[f"layer{li}.head{hi}"] = {"name": head.name, "key_names": list(head.key_names)}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "values": "exact rationals as strings (Python Fraction syntax)",
        "arch": model.arch,
        "p": model.p,
        "max_len": model.max_len,
        "vocabulary": model.vocab.to_dict(),
        "layout": list(model.layout.names),
        "heads": heads,
        "summary": summary(model),
        "meta": json.loads(json.dumps(model.meta, default=str)),
        "weights": weights,
    }


def write_export(model: Model, path: str | Path) -> Path:
    return atomic_files.write_text(path, json.dumps(export(model), indent=1) + "\n")


# ---- heatmaps ------------------------------------------------------------------------------


def _as_float(v: Fraction) -> float:
    try:
        return float(v)
    except OverflowError:  # beyond double range (p > ~2000): clamp for the picture only
        return math.copysign(1e300, v)


MIN_LEVEL = 0.3  # the colour of the smallest non-zero weight: 30% of full intensity, never white
ANNOTATE_CELLS = 400  # exact values are written in the cells of a heatmap with at most this many


def colour_levels(data: np.ndarray) -> np.ndarray:
    """Each weight's colour level in [-1, 1]: 0 for 0; a non-zero w gets sign(w) times
    MIN_LEVEL + (1 - MIN_LEVEL) * (log2|w| - log2 min) / (log2 max - log2 min), so magnitudes
    spread on a log scale and the smallest non-zero weight stays visible (issue 15)."""
    out = np.zeros_like(data, dtype=float)
    mags = np.abs(data)
    nz = mags > 0
    if not nz.any():
        return out
    lo, hi = np.log2(mags[nz].min()), np.log2(mags[nz].max())
    spread = (np.log2(mags[nz]) - lo) / (hi - lo) if hi > lo else np.ones(int(nz.sum()))
    out[nz] = np.sign(data[nz]) * (MIN_LEVEL + (1 - MIN_LEVEL) * spread)
    return out


def cell_labels(exact: Sequence[Sequence[Fraction]]) -> list[tuple[int, int, str]]:
    """(row, col, exact value) of every non-zero cell, when the matrix has at most
    ANNOTATE_CELLS cells (else none: the text would be unreadable)."""
    if sum(len(row) for row in exact) > ANNOTATE_CELLS:
        return []
    return [(i, j, str(v)) for i, row in enumerate(exact) for j, v in enumerate(row) if v != 0]


def plot(model: Model, path: str | Path, matrices: Sequence[str] = (), show_all: bool = False) -> Path:
    """Each non-empty weight matrix as a labelled heatmap in one PNG: colours on the log scale of
    :func:`colour_levels`, exact values written in small matrices (:func:`cell_labels`)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, Agg on savefig

    chosen = select_matrices(model, matrices) if matrices else list(named_matrices(model).values())
    chosen = [m for m in chosen if m.nonzero() > 0]
    if not chosen:
        raise ProofsCheckError("every selected weight matrix is all zero: nothing to plot")
    if len(chosen) > MAX_PLOTS:
        raise ProofsCheckError(
            f"{len(chosen)} non-empty weight matrices are too many for one picture (at most {MAX_PLOTS}); "
            f"choose some with --matrix, e.g. --matrix 'layer1.*'"
        )
    scale = model.precision.scale
    ncols = min(3, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig = Figure(figsize=(6.5 * ncols, 5.5 * nrows), layout="constrained")
    for k, m in enumerate(chosen):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        rows = list(range(m.values.shape[0])) if show_all else m.live_rows()
        cols = list(range(m.values.shape[1])) if show_all else m.live_cols()
        exact = [[Fraction(int(m.values[i, j]), scale) for j in cols] for i in rows]
        data = np.array([[_as_float(v) for v in row] for row in exact], dtype=float)
        image = ax.imshow(colour_levels(data), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        bar = fig.colorbar(image, ax=ax, shrink=0.8)
        ticks = sorted({float(v) for v in (data.min(), data.max(), 0.0)} | set(np.abs(data[data != 0]).min() * np.array([-1, 1])))
        bar.set_ticks(list(colour_levels(np.array(ticks))), labels=[f"{t:.3g}" for t in ticks])
        for i, j, text in cell_labels(exact):
            ax.text(j, i, text, ha="center", va="center", fontsize=6)
        ax.set_title(m.name, fontsize=9)
        fs = max(3, min(8, int(300 / max(len(rows), len(cols), 1))))
        ax.set_yticks(range(len(rows)), [m.rows[i] for i in rows], fontsize=fs)
        ax.set_xticks(range(len(cols)), [m.cols[j] for j in cols], fontsize=fs, rotation=90)
    with atomic_files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(path)
