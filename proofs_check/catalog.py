"""Named model builders, for ``proofs-check inspect NAME`` and ``proofs-check run``.

Construction modules listed in :data:`CATALOG_MODULES` may export
``CATALOG: dict[str, Callable[..., Model]]``: a name (e.g. ``"copy"``, ``"dfs-transformer"``)
and a builder taking keyword parameters (``n``, ``p``, ``c``, ``A``, ...).  Modules not written
yet are skipped, as in :func:`proofs_check.registry.all_checks`; there is no global mutable
registry.  This module itself contributes one demo entry, ``random-transformer``: a seeded
random small model (it computes nothing in particular) so that inspection works on its own.
"""
from __future__ import annotations

import inspect
import random
from fractions import Fraction
from typing import Callable

from constructions.errors import PrecisionError, ProofsCheckError
from constructions.layout import LayoutBuilder
from constructions.limits import require_n, require_weight_entries
from constructions.model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer, zeros
from constructions.numerics import Precision
from constructions.vocab import Vocabulary
from proofs_check.plugins import import_modules

Builder = Callable[..., Model]

CATALOG_MODULES: tuple[str, ...] = (
    "constructions.ffn_blocks",
    "constructions.attention_blocks",
    "constructions.rnn_blocks",
    "constructions.retrieval_tasks",
    "constructions.dfs_transformer",
    "constructions.istree_rag",
    "constructions.turing_rag",
    "constructions.istree_hybrid",
    "constructions.index_memory_rnn",
    "constructions.rnn_circuit_cases",
    "constructions.turing_hybrid",
    "proofs_check.circuit_runners",
    "constructions.turing_cot_rnn",
)


# ---- the demo entry ------------------------------------------------------------------------

_DEMO_VALUES: tuple[Fraction, ...] = tuple(Fraction(v) for v in ("-2", "-1", "-1/2", "1/4", "1/2", "1", "2"))


def random_model(
    n: int = 8,
    p: int = 61,
    seed: int = 0,
    layers: int = 1,
    heads: int = 2,
    key_dim: int = 2,
    width: int = 3,
    extra_dims: int = 3,
    max_len: int = 16,
    density: Fraction | float = Fraction(2, 5),
    arch: str = "transformer",
) -> Model:
    """A seeded random small model (demo only: it computes nothing in particular).

    Weights are drawn from {-2, -1, -1/2, 1/4, 1/2, 1, 2} with probability ``density`` each
    (so some rows and columns are all zero, as in real constructions).  Blocks read any
    residual dimension but write only the ``extra_dims`` scratch dimensions ``x1``, ``x2``, ...
    ``arch`` is ``transformer`` (``layers`` Transformer layers), ``linear_rnn`` (``layers``
    linear-RNN layers, A = diag(1/2) on the scratch dims) or ``hybrid`` (``layers`` linear-RNN
    layers then one Transformer layer, Def 5.5).  Needs p >= 5 (weights 1/4 need F >= 2);
    whether a forward pass stays inside R_p depends on n, max_len and p (default p = 61 does
    for the defaults).
    """
    prec = Precision.of(p)  # an odd p (R_p) or a Precision such as R(I, F)
    if prec.F < 2:
        raise PrecisionError(f"random-transformer uses weights 1/4, which need p >= 5 (got {prec.label})")
    for name, value, low in (("layers", layers, 0), ("heads", heads, 1), ("key_dim", key_dim, 1),
                             ("width", width, 0), ("extra_dims", extra_dims, 1), ("max_len", max_len, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ProofsCheckError(f"random-transformer: {name} must be an integer >= {low}, got {value!r}")
    if arch not in ("transformer", "linear_rnn", "hybrid"):
        raise ProofsCheckError(f"random-transformer: arch must be transformer, linear_rnn or hybrid, got {arch!r}")
    if not 0 <= Fraction(density) <= 1:
        raise ProofsCheckError(f"random-transformer: density must lie in [0, 1], got {density}")
    rng = random.Random(seed)
    vocab = Vocabulary(n)
    lb = LayoutBuilder(vocab)
    scratch = lb.alloc_many(f"x{i}" for i in range(1, extra_dims + 1))
    layout = lb.build()
    d = layout.d
    require_weight_entries(max(layers, 1) * (heads * (2 * key_dim + d) + 3 * width + 2 * d) * d, "random-transformer")
    writable = set(layout.indices(scratch))
    keep = float(Fraction(density))

    def draw() -> int:
        return prec.encode(rng.choice(_DEMO_VALUES)) if rng.random() < keep else 0

    def matrix(rows: int, cols: int, row_ok=lambda i: True):
        m = zeros(rows, cols)
        for i in range(rows):
            if row_ok(i):
                for j in range(cols):
                    m[i, j] = draw()
        return m

    def vector(size: int, ok=lambda i: True):
        v = zeros(size)
        for i in range(size):
            if ok(i):
                v[i] = draw()
        return v

    def ffn(li: int) -> FeedForward:
        return FeedForward(
            W1=matrix(width, d), b1=vector(width), W2=matrix(width, d), b2=vector(width),
            W3=matrix(d, width, lambda i: i in writable), b3=vector(d, lambda i: i in writable),
            hidden_names=tuple(f"L{li}.g{k}" for k in range(1, width + 1)),
        )

    def transformer_layer(li: int) -> TransformerLayer:
        hs = [
            AttentionHead(
                W_K=matrix(key_dim, d), W_Q=matrix(key_dim, d), W_V=matrix(d, d, lambda i: i in writable),
                name=f"head{h}", key_names=tuple(f"L{li}.h{h}.k{k}" for k in range(1, key_dim + 1)),
            )
            for h in range(1, heads + 1)
        ]
        return TransformerLayer(hs, ffn(li), name=f"random transformer layer {li}")

    def rnn_layer(li: int) -> LinearRNNLayer:
        A = zeros(d, d)
        for i in writable:
            A[i, i] = prec.encode(Fraction(1, 2))
        return LinearRNNLayer(A, matrix(d, d, lambda i: i in writable), ffn(li), name=f"random linear-RNN layer {li}")

    if arch == "transformer":
        stack = [transformer_layer(li) for li in range(1, layers + 1)]
    elif arch == "linear_rnn":
        stack = [rnn_layer(li) for li in range(1, layers + 1)]
    else:
        stack = [rnn_layer(li) for li in range(1, layers + 1)] + [transformer_layer(layers + 1)]
    if not stack:
        raise ProofsCheckError("random-transformer: a model needs at least one layer")
    meta = {
        "construction": "random-transformer",
        "note": "demo: seeded random weights, computes nothing in particular",
        "seed": seed,
        "density": str(Fraction(density)),
        "precision": prec.label,
    }
    return Model(arch, prec.p, layout, vocab, stack, max_len, meta=meta, frac=prec.frac).validate()


DEMO: dict[str, Builder] = {"random-transformer": random_model}


# ---- lookup --------------------------------------------------------------------------------


def catalog() -> dict[str, Builder]:
    """Every named builder: the demo entry, then each module's CATALOG in module order."""
    entries: dict[str, Builder] = dict(DEMO)
    for module in import_modules(CATALOG_MODULES):
        for name, builder in getattr(module, "CATALOG", {}).items():
            if name in entries:
                raise RuntimeError(f"catalog name {name!r} is registered twice (again by {module.__name__})")
            entries[name] = builder
    return entries


def names() -> list[str]:
    return list(catalog())


def describe(name: str) -> str:
    """``name(params)``: the first line of the builder's docstring."""
    builder = _lookup(name)
    doc = [_first_sentence(inspect.getdoc(builder) or "")]
    params = []
    for prm in inspect.signature(builder).parameters.values():
        if prm.kind in (prm.VAR_POSITIONAL, prm.VAR_KEYWORD):
            params.append(("*" if prm.kind is prm.VAR_POSITIONAL else "**") + prm.name)
        else:
            params.append(prm.name if prm.default is prm.empty else f"{prm.name}={prm.default}")
    return f"{name}({', '.join(params)})" + (f": {doc[0]}" if doc[0] else "")


def _first_sentence(doc: str) -> str:
    """The docstring's first paragraph up to its first full stop (``. `` or the end), so that a
    description wrapped over several lines is never cut mid-sentence."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    for k in range(len(paragraph)):
        if paragraph[k] == "." and (k + 1 == len(paragraph) or paragraph[k + 1] == " ") and not paragraph[:k].endswith(
                ("e.g", "i.e", "Thm", "Lemma", "Def", "App", "Sec", "Prop", "cf", "resp")):
            return paragraph[: k + 1]
    return paragraph


def _lookup(name: str) -> Builder:
    entries = catalog()
    try:
        return entries[name]
    except KeyError:
        raise ProofsCheckError(
            f"no catalog model named {name!r} (and no such file); known names: {', '.join(entries)}"
        ) from None


def build(name: str, **params) -> Model:
    """Build the named model; unknown or missing parameters are a clear ProofsCheckError."""
    builder = _lookup(name)
    sig = inspect.signature(builder)
    try:
        sig.bind(**params)
    except TypeError as exc:
        raise ProofsCheckError(f"{exc}; the catalog model is {describe(name)}") from None
    require_n(params.get("n"), f"{name}: n")
    model = builder(**params)
    if not isinstance(model, Model):
        raise RuntimeError(f"catalog builder {name!r} returned {type(model).__name__}, not a Model")
    from .prompts import declare

    return declare(name, model)  # its prompt format, decoding and answer tokens in model.meta


def parse_param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` from the command line: VALUE as int, rational (``1/3``, ``0.5``), bool, else text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ProofsCheckError(f"parameter {text!r} is not of the form KEY=VALUE (e.g. --param c=2)")
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return key, raw.lower() == "true"
    try:
        return key, int(raw)
    except ValueError:
        pass
    try:
        return key, Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return key, raw
