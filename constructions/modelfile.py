"""Model files: a :class:`~constructions.model.Model` as one safetensors file (no pickle, no eval).

The format is specified in ``notes/model-format.md``; in short:

* every weight matrix is stored exactly, as its scaled integers ``q = w * 2^F``
  (:mod:`constructions.numerics`) split into signed 31-bit limbs: a weight of shape ``S`` is an
  ``int64`` tensor of shape ``(L, *S)`` with ``q = sum_k limb[k] * 2^(31 k)``, every limb in
  ``[-(2^31 - 1), 2^31 - 1]`` and carrying the sign of ``q`` (sign-magnitude), so any p fits;
* the safetensors header metadata holds one JSON document under the key ``proofs_check.model``
  (format name and version, p, architecture, layout names, vocabulary, max_len, per-layer
  structure, the construction's ``meta``) and a SHA-256 digest of that document and all tensors
  under ``proofs_check.sha256`` (optional for hand-written files; checked when present).

:func:`load_model` validates everything and raises :class:`ModelFileError` with a message that
says what is wrong; the model it returns has passed :meth:`Model.validate`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError, ProofsCheckError
from .json_text import parse_json
from .layout import Layout
from .limits import require_weight_entries
from .model import AttentionHead, FeedForward, LinearRNNLayer, Model, TransformerLayer
from .numerics import Precision
from .vocab import Vocabulary

FORMAT_NAME = "proofs-check-model"
FORMAT_VERSION = 2  # 2: the header names the fractional and integer bits (R(I, F)); 1: R_p
READABLE_VERSIONS = (1, 2)
HEADER_KEY = "proofs_check.model"
DIGEST_KEY = "proofs_check.sha256"
LIMB_BITS = 31
LIMB_MAX = (1 << LIMB_BITS) - 1
FFN_PARTS = ("W1", "b1", "W2", "b2", "W3", "b3")
HEAD_PARTS = ("W_K", "W_Q", "W_V")
RNN_PARTS = ("A", "B")


# ---- limbs --------------------------------------------------------------------------------


def limbs_for(p: int) -> int:
    """Limbs save_model writes for precision p: enough for |q| <= 2^(p-1) - 1."""
    return max(1, math.ceil((p - 1) / LIMB_BITS))


def to_limbs(values: np.ndarray, n_limbs: int) -> np.ndarray:
    """Scaled integers (object array) -> int64 array (n_limbs, *shape), sign-magnitude limbs."""
    flat = [int(v) for v in values.reshape(-1)]
    for q in flat:
        if abs(q) >> (LIMB_BITS * n_limbs):
            raise ModelFileError(f"weight {q} needs more than {n_limbs} limbs of {LIMB_BITS} bits")
    out = np.zeros((n_limbs, len(flat)), dtype=np.int64)
    if all(abs(q) < 1 << 62 for q in flat):  # fast path: the magnitudes fit in int64
        q64 = np.array(flat, dtype=np.int64)
        sign, mag = np.where(q64 < 0, -1, 1), np.abs(q64)
        for k in range(n_limbs):
            out[k] = sign * ((mag >> min(LIMB_BITS * k, 62)) & LIMB_MAX)
    else:
        for i, q in enumerate(flat):
            sign, mag = (-1 if q < 0 else 1), abs(q)
            for k in range(n_limbs):
                out[k, i] = sign * ((mag >> (LIMB_BITS * k)) & LIMB_MAX)
    return out.reshape((n_limbs, *values.shape))


def from_limbs(limbs: np.ndarray, what: str) -> np.ndarray:
    """int64 limbs (L, *shape) -> object array of Python ints; checks the limb invariants."""
    if limbs.ndim < 1 or limbs.shape[0] < 1:
        raise ModelFileError(f"tensor {what!r} has shape {limbs.shape}: the first axis counts limbs and must be >= 1")
    if limbs.size and (int(limbs.max()) > LIMB_MAX or int(limbs.min()) < -LIMB_MAX):  # np.abs(-2^63) < 0
        raise ModelFileError(f"tensor {what!r} holds a limb outside [-(2^31 - 1), 2^31 - 1]; limbs are 31-bit")
    if limbs.size and (np.any(limbs > 0, axis=0) & np.any(limbs < 0, axis=0)).any():
        raise ModelFileError(
            f"tensor {what!r} has an entry whose limbs mix signs; every limb must carry the sign of the weight"
        )
    out = np.zeros(limbs.shape[1:], dtype=object)  # Python ints
    for k in range(limbs.shape[0]):
        out = out + limbs[k].astype(object) * (1 << (LIMB_BITS * k))
    return out


# ---- structure ----------------------------------------------------------------------------


def tensor_names(layers: list[dict], unembed: bool) -> list[str]:
    """Names of the tensors a file with this layer structure holds, in order."""
    names: list[str] = []
    for li, layer in enumerate(layers, start=1):
        if layer["kind"] == "transformer":
            for hi in range(1, len(layer["heads"]) + 1):
                names += [f"layer{li}.head{hi}.{part}" for part in HEAD_PARTS]
        else:
            names += [f"layer{li}.{part}" for part in RNN_PARTS]
        names += [f"layer{li}.ffn.{part}" for part in FFN_PARTS]
    if unembed:
        names.append("unembed")
    return names


def _layer_header(layer: TransformerLayer | LinearRNNLayer) -> dict:
    entry: dict[str, Any] = {"kind": layer.kind, "name": layer.name}
    if isinstance(layer, TransformerLayer):
        entry["heads"] = [{"name": h.name, "key_names": list(h.key_names)} for h in layer.heads]
    entry["ffn"] = {"hidden_names": list(layer.ffn.hidden_names)}
    return entry


def _weights(model: Model) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for li, layer in enumerate(model.layers, start=1):
        if isinstance(layer, TransformerLayer):
            for hi, head in enumerate(layer.heads, start=1):
                for part in HEAD_PARTS:
                    out[f"layer{li}.head{hi}.{part}"] = getattr(head, part)
        else:
            for part in RNN_PARTS:
                out[f"layer{li}.{part}"] = getattr(layer, part)
        for part in FFN_PARTS:
            out[f"layer{li}.ffn.{part}"] = getattr(layer.ffn, part)
    if model.unembed is not None:
        out["unembed"] = model.unembed
    return out


def digest(header_json: str, tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over the header JSON text, then each tensor (sorted by name): name, shape, bytes."""
    h = hashlib.sha256(header_json.encode("utf-8"))
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name], dtype="<i8")
        h.update(f"{name}:{json.dumps(list(t.shape))}\n".encode("utf-8"))
        h.update(t.tobytes())
    return h.hexdigest()


# ---- save ---------------------------------------------------------------------------------


def _header_json(model: Model) -> str:
    """The header of ``model``'s file as JSON text (model.meta must be plain JSON)."""
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "p": model.p,
        "frac": model.precision.F,
        "int_bits": model.precision.I,
        "arch": model.arch,
        "max_len": model.max_len,
        "layout": list(model.layout.names),
        "vocab": model.vocab.to_dict(),
        "layers": [_layer_header(layer) for layer in model.layers],
        "unembed": model.unembed is not None,
        "limb_bits": LIMB_BITS,
        "meta": model.meta,
    }
    try:
        header_json = json.dumps(header, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(
            f"model.meta must be plain JSON (str keys; str, int, finite float, bool, None, lists, dicts): {exc}"
        ) from exc
    if json.loads(header_json)["meta"] != _lists_for_tuples(model.meta):
        raise ModelFileError("model.meta does not survive JSON unchanged (dict keys must be strings)")
    return header_json


def _limb_tensors(model: Model) -> dict[str, np.ndarray]:
    n_limbs = limbs_for(model.p)
    return {name: to_limbs(w, n_limbs) for name, w in _weights(model).items()}


def model_digest(model: Model) -> str:
    """The SHA-256 digest that :func:`save_model` stores for ``model`` (header and weights): two
    models with the same digest compute the same function bit for bit."""
    return digest(_header_json(model), _limb_tensors(model))


def save_model(model: Model, path: str | os.PathLike) -> None:
    """Write ``model`` (validated first) to ``path`` as a safetensors model file."""
    from safetensors.numpy import save_file

    try:
        model.validate()
    except ProofsCheckError as exc:
        raise ModelFileError(f"refusing to save an invalid model: {exc}") from exc
    header_json = _header_json(model)
    tensors = _limb_tensors(model)
    metadata = {HEADER_KEY: header_json, DIGEST_KEY: digest(header_json, tensors)}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def _lists_for_tuples(value: Any) -> Any:
    """What JSON gives back for ``value``: tuples become lists (recursively)."""
    if isinstance(value, (list, tuple)):
        return [_lists_for_tuples(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists_for_tuples(v) for k, v in value.items()}
    return value


# ---- load ---------------------------------------------------------------------------------


def _field(header: dict, key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    if key not in header:
        raise ModelFileError(f"model file {path}: header field {key!r} is missing")
    value = header[key]
    if isinstance(value, bool) and kind is not bool:
        raise ModelFileError(f"model file {path}: header field {key!r} must be {kind}, got {value!r}")
    if not isinstance(value, kind):
        raise ModelFileError(f"model file {path}: header field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _str_list(value: Any, what: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ModelFileError(f"model file {path}: {what} must be a list of strings")
    return tuple(value)


def _read_file(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    from safetensors import safe_open

    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            entries = 0
            for name in f.keys():  # dtypes and sizes from the header, before any tensor is read
                dtype = f.get_slice(name).get_dtype()
                if dtype != "I64":
                    raise ModelFileError(f"model file {path}: tensor {name!r} has dtype {dtype}; weights are int64 limbs (I64)")
                entries += math.prod(f.get_slice(name).get_shape())
            require_weight_entries(entries, f"model file {path}")
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except ProofsCheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise ModelFileError(
            f"model file {path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc
    return metadata, tensors


def _check_metadata_keys(path: Path, metadata: dict[str, str]) -> None:
    """Refuse a metadata key that is a corrupted form of this format's keys (our namespace, or
    the same length as a known key with at most 3 characters changed): a flipped byte in
    ``proofs_check.sha256`` would otherwise turn the digest off silently, and a second flip
    in a weight would then load a different model.  Other keys (other tools' metadata) pass."""
    for key in metadata:
        if key in (HEADER_KEY, DIGEST_KEY):
            continue
        for known in (HEADER_KEY, DIGEST_KEY):
            near = len(key) == len(known) and sum(a != b for a, b in zip(key, known)) <= 3
            if near or key.startswith("proofs_check."):
                raise ModelFileError(
                    f"model file {path} is corrupt: its metadata key {key!r} is not one this format defines "
                    f"(a damaged {known!r}?); rewrite the file with save_model"
                )


def load_model(path: str | os.PathLike) -> Model:
    """Read and fully validate a model file; raise ModelFileError on any inconsistency."""
    path = Path(path)
    metadata, tensors = _read_file(path)
    if HEADER_KEY not in metadata:
        raise ModelFileError(f"{path} is a safetensors file but not a {FORMAT_NAME} file (no {HEADER_KEY!r} metadata)")
    header_json = metadata[HEADER_KEY]
    _check_metadata_keys(path, metadata)
    if DIGEST_KEY in metadata and digest(header_json, tensors) != metadata[DIGEST_KEY]:
        raise ModelFileError(f"model file {path} is corrupt: its SHA-256 digest does not match its contents")
    header = parse_json(header_json, ModelFileError, f"model file {path}: the {HEADER_KEY!r} metadata")
    if not isinstance(header, dict):
        raise ModelFileError(f"model file {path}: the {HEADER_KEY!r} metadata must be a JSON object")
    if header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"model file {path}: format is {header.get('format')!r}, expected {FORMAT_NAME!r}")
    version = header.get("version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise ModelFileError(
            f"model file {path} has format version {version!r}; this tool reads versions 1 and {FORMAT_VERSION} only "
            f"(rebuild the model with this tool's builders)"
        )
    try:
        return _build(path, header, tensors)
    except ModelFileError:
        raise
    except ProofsCheckError as exc:
        raise ModelFileError(f"model file {path} describes an invalid model: {exc}") from exc


def _build(path: Path, header: dict, tensors: dict[str, np.ndarray]) -> Model:
    p = _field(header, "p", int, path)
    prec = _format(path, header, p)
    arch = _field(header, "arch", str, path)
    max_len = _field(header, "max_len", int, path)
    limb_bits = header.get("limb_bits", LIMB_BITS)
    if limb_bits != LIMB_BITS:
        raise ModelFileError(f"model file {path}: limb_bits is {limb_bits!r}; version {FORMAT_VERSION} uses {LIMB_BITS}")
    layout = Layout(_str_list(_field(header, "layout", list, path), "layout", path))
    vocab_dict = _field(header, "vocab", dict, path)
    for key in ("n", "min_number"):
        _field(vocab_dict, key, int, path)
    vocab = Vocabulary(vocab_dict["n"], _str_list(vocab_dict.get("specials"), "vocab specials", path), vocab_dict["min_number"])
    layout.check_embedding(vocab)
    layer_entries = _field(header, "layers", list, path)
    has_unembed = _field(header, "unembed", bool, path)
    meta = _field(header, "meta", dict, path)
    for li, entry in enumerate(layer_entries, start=1):
        if not isinstance(entry, dict) or entry.get("kind") not in ("transformer", "linear_rnn"):
            raise ModelFileError(f"model file {path}: layer {li} must be an object with kind 'transformer' or 'linear_rnn'")
        if entry["kind"] == "transformer" and not isinstance(entry.get("heads"), list):
            raise ModelFileError(f"model file {path}: transformer layer {li} needs a list 'heads'")
    expected = tensor_names(layer_entries, has_unembed)
    missing = [n for n in expected if n not in tensors]
    extra = sorted(set(tensors) - set(expected))
    if missing:
        raise ModelFileError(f"model file {path} is missing tensor(s) {', '.join(missing)}")
    if extra:
        raise ModelFileError(f"model file {path} has unexpected tensor(s) {', '.join(extra)} for its declared structure")
    d = layout.d

    def weight(name: str, shape: tuple[int, ...]) -> np.ndarray:
        w = from_limbs(tensors[name], name)
        if tuple(w.shape) != shape:
            raise ModelFileError(f"model file {path}: tensor {name!r} holds weights of shape {w.shape}, expected {shape}")
        for q in w.reshape(-1):
            if abs(q) > prec.max_scaled:
                raise ModelFileError(
                    f"model file {path}: tensor {name!r} holds the scaled weight {q}, outside {prec.label} "
                    f"(|q| <= 2^{p - 1} - 1)"
                )
        return w

    def rows(name: str) -> int:
        shape = tensors[name].shape
        if len(shape) != 3:
            raise ModelFileError(f"model file {path}: tensor {name!r} must be (limbs, rows, {d}), got {shape}")
        return shape[1]

    layers: list[TransformerLayer | LinearRNNLayer] = []
    for li, entry in enumerate(layer_entries, start=1):
        ffn_entry = entry.get("ffn", {})
        if not isinstance(ffn_entry, dict):
            raise ModelFileError(f"model file {path}: layer {li} 'ffn' must be an object")
        hidden = _str_list(ffn_entry.get("hidden_names", []), f"layer {li} ffn hidden_names", path)
        w = rows(f"layer{li}.ffn.W1")
        if hidden and len(hidden) != w:
            raise ModelFileError(f"model file {path}: layer {li} has {len(hidden)} hidden_names for an FFN of width {w}")
        pre = f"layer{li}.ffn."
        ffn = FeedForward(
            weight(pre + "W1", (w, d)), weight(pre + "b1", (w,)), weight(pre + "W2", (w, d)),
            weight(pre + "b2", (w,)), weight(pre + "W3", (d, w)), weight(pre + "b3", (d,)), hidden,
        )
        name = entry.get("name", "")
        if not isinstance(name, str):
            raise ModelFileError(f"model file {path}: layer {li} name must be a string")
        if entry["kind"] == "transformer":
            heads = []
            for hi, h in enumerate(entry["heads"], start=1):
                if not isinstance(h, dict):
                    raise ModelFileError(f"model file {path}: layer {li} head {hi} must be an object")
                hname = h.get("name", "")
                if not isinstance(hname, str):
                    raise ModelFileError(f"model file {path}: layer {li} head {hi} name must be a string")
                key_names = _str_list(h.get("key_names", []), f"layer {li} head {hi} key_names", path)
                hp = f"layer{li}.head{hi}."
                k = rows(hp + "W_K")
                if key_names and len(key_names) != k:
                    raise ModelFileError(f"model file {path}: layer {li} head {hi} has {len(key_names)} key_names for {k} key rows")
                heads.append(AttentionHead(weight(hp + "W_K", (k, d)), weight(hp + "W_Q", (k, d)), weight(hp + "W_V", (d, d)), hname, key_names))
            layers.append(TransformerLayer(heads, ffn, name))
        else:
            layers.append(LinearRNNLayer(weight(f"layer{li}.A", (d, d)), weight(f"layer{li}.B", (d, d)), ffn, name))
    unembed = weight("unembed", (len(vocab), d)) if has_unembed else None
    model = Model(arch, p, layout, vocab, layers, max_len, unembed, meta, prec.frac)
    return model.validate()


def _format(path: Path, header: dict, p: int) -> Precision:
    """The number format: version 1 is R_p (odd p); version 2 names F (``frac``) and I
    (``int_bits``), which must add up with the sign bit to p (R(I, F); I = F is R_p)."""
    if header["version"] == 1:
        for key in ("frac", "int_bits"):
            if key in header:
                raise ModelFileError(f"model file {path}: version 1 has no {key!r} field (only version 2 names the bits)")
        return Precision(p)  # PrecisionError for even / too small p
    F, I = _field(header, "frac", int, path), _field(header, "int_bits", int, path)
    if I + F + 1 != p:
        raise ModelFileError(f"model file {path}: int_bits {I} + frac {F} + 1 sign bit is {I + F + 1}, but p is {p}")
    return Precision.split(I, F)  # PrecisionError for I or F < 1 or too many bits
