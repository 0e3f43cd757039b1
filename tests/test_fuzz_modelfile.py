"""Fuzz: model files (issue #12).  A valid file (a small hybrid construction) is truncated at
every header boundary, has bytes flipped anywhere, has its safetensors header or its model
header rewritten (dtype, shape, a tensor claimed far larger than the file, older and newer
format versions, even or enormous p, deep nesting, NaN, huge numbers), or is replaced by a
pickle whose loading would run code.  Property: ``inspect FILE`` exits 0 or 2 with no
traceback and at most one error line; exit 0 only when the loaded model equals the original
(weights, layout, vocabulary, meta: compared through ``inspect_model.export``); the pickle's
code never runs.
"""
from __future__ import annotations

import functools
import json
import os
import pickle
import struct
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import event, given, strategies as st

from constructions import limits
from constructions.modelfile import load_model, save_model
from fuzz_support import assert_clean, examples, run_cli
from proofs_check import catalog, inspect_model


@functools.lru_cache(maxsize=1)
def original() -> tuple[bytes, dict]:
    """The valid file's bytes and the export of the model it holds."""
    model = catalog.build("index-hybrid", n=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_model(model, path)
        return path.read_bytes(), inspect_model.export(model)


def split(data: bytes) -> tuple[dict, bytes]:
    """(the safetensors header JSON, the data region) of a file."""
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def join(header: dict | bytes, body: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def inspect_bytes(data: bytes):
    """``inspect FILE`` on these bytes; returns the run and, on exit 0, the loaded model's export."""
    fd, path = tempfile.mkstemp(suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        run = run_cli(["inspect", path])
        loaded = inspect_model.export(load_model(path)) if run.code == 0 else None
    finally:
        os.unlink(path)
    assert_clean(run)
    assert len(run.err_lines) <= 1, run.err
    return run, loaded


def assert_refused(data: bytes, fragment: str = "") -> str:
    run, _ = inspect_bytes(data)
    assert run.code == 2 and len(run.err_lines) == 1, run
    assert fragment in run.err_lines[0], run.err_lines[0]
    return run.err_lines[0]


def test_the_valid_file_loads_and_equals_the_model():
    data, exported = original()
    run, loaded = inspect_bytes(data)
    assert run.code == 0 and loaded == exported


# ---- truncation at every header boundary ----------------------------------------------------


def boundaries() -> list[int]:
    """Every length prefix byte, both sides of every JSON object/member boundary in the header, every tensor's data
    start and end, and the last byte: a cut at any of these must be refused."""
    data, _ = original()
    (length,) = struct.unpack("<Q", data[:8])
    header_text = data[8 : 8 + length]
    cuts = set(range(0, 9))
    cuts |= {8 + i + d for i, ch in enumerate(header_text) if ch in b"{},:" for d in (0, 1)}  # before/after
    cuts |= {8 + length - 1, 8 + length, 8 + length + 1, len(data) - 1}
    for info in split(data)[0].values():
        if isinstance(info, dict) and "data_offsets" in info:
            cuts |= {8 + length + info["data_offsets"][0], 8 + length + info["data_offsets"][1] - 1}
    return sorted(c for c in cuts if c < len(data))


def test_truncated_at_every_header_boundary():
    data, _ = original()
    cuts = boundaries()
    assert len(cuts) > 100
    for cut in cuts:
        assert_refused(data[:cut])


# ---- flipped bytes anywhere -----------------------------------------------------------------


@examples(40)
@given(st.data())
def test_fuzz_flipped_bytes(data_):
    data, exported = original()
    (length,) = struct.unpack("<Q", data[:8])
    region = data_.draw(st.sampled_from(["prefix", "header", "data"]), label="region")
    lo, hi = {"prefix": (0, 7), "header": (8, 8 + length - 1), "data": (8 + length, len(data) - 1)}[region]
    flips = data_.draw(st.lists(st.tuples(st.integers(lo, hi), st.integers(1, 255)), min_size=1, max_size=3),
                       label="flips")
    mutated = bytearray(data)
    for pos, mask in flips:
        mutated[pos] ^= mask
    run, loaded = inspect_bytes(bytes(mutated))
    event(f"{region}: {'loaded' if run.code == 0 else 'refused'}")
    if run.code == 0:  # e.g. a padding space turned into another blank: the same model
        assert loaded == exported, flips


# ---- rewritten headers -----------------------------------------------------------------------


def with_tensor(change) -> bytes:
    data, _ = original()
    header, body = split(data)
    name = sorted(k for k in header if k != "__metadata__")[0]
    change(header[name])
    return join(header, body)


def with_model_header(change, raw: str | None = None) -> bytes:
    """The model header (metadata) changed, the optional digest dropped (as a hand-written file)."""
    data, _ = original()
    header, body = split(data)
    meta = header["__metadata__"]
    meta.pop("proofs_check.sha256")
    inner = json.loads(meta["proofs_check.model"])
    change(inner)
    meta["proofs_check.model"] = raw if raw is not None else json.dumps(inner)
    return join(header, body)


def _set(key, value):
    return lambda h: h.__setitem__(key, value)


def _as_v1(**fields):
    """A version-1 header (R_p: no frac / int_bits fields) with ``fields`` changed."""
    def change(h):
        h.pop("frac"), h.pop("int_bits")
        h.update(version=1, **fields)
    return change


TENSOR_EDITS = {
    "dtype F64 (same size)": (lambda t: t.__setitem__("dtype", "F64"), "dtype F64"),
    "dtype I32": (lambda t: t.__setitem__("dtype", "I32"), ""),
    "dtype U8": (lambda t: t.__setitem__("dtype", "U8"), ""),
    "shape flattened": (lambda t: t.__setitem__("shape", [int(__import__("math").prod(t["shape"]))]), ""),
    "shape one more row": (lambda t: t.__setitem__("shape", [t["shape"][0] + 1, *t["shape"][1:]]), ""),
    "huge tensor claimed": (lambda t: (t.__setitem__("shape", [1 << 40, 1 << 20]),
                                       t.__setitem__("data_offsets", [0, 1 << 63])), ""),
    "offsets past the end": (lambda t: t.__setitem__("data_offsets", [0, 1 << 40]), ""),
}


@pytest.mark.parametrize("name", sorted(TENSOR_EDITS))
def test_rewritten_tensor_header(name):
    change, fragment = TENSOR_EDITS[name]
    start = time.perf_counter()
    assert_refused(with_tensor(change), fragment)
    assert time.perf_counter() - start < 10  # refused from the header, nothing allocated


MODEL_EDITS = {
    "older version 0": (_set("version", 0), "version 0"),
    "newer version 3": (_set("version", 3), "version 3"),
    "version as text": (_set("version", "1"), "version '1'"),
    "version true": (_set("version", True), "version True"),
    "other format": (_set("format", "gguf"), "format is 'gguf'"),
    "even p": (_as_v1(p=38), "even"),
    "enormous p": (_as_v1(p=10**6), "larger than this tool supports"),
    "v2 bits disagree with p": (_set("frac", 3), "but p is"),
    "v2 frac zero": (lambda h: h.update(frac=0, int_bits=h["p"] - 1), "F >= 1"),
    "v2 frac missing": (lambda h: h.pop("frac"), "'frac' is missing"),
    "v2 frac as text": (_set("frac", "8"), "'frac'"),
    "v1 with bits": (_set("version", 1), "version 1 has no"),
    "p as float": (_set("p", 39.0), "'p'"),
    "max_len enormous": (_set("max_len", 10**12), "positions"),
    "vocabulary enormous": (lambda h: h["vocab"].__setitem__("n", 10**12), "numbers"),
    "layers not a list": (_set("layers", {"kind": "transformer"}), "'layers'"),
    "unknown layer kind": (lambda h: h["layers"][0].__setitem__("kind", "lstm"), "kind"),
    "layout reordered": (lambda h: h["layout"].reverse(), ""),
    "limb bits": (_set("limb_bits", 32), "limb_bits"),
    "arch unknown": (_set("arch", "mamba"), "mamba"),
}


@pytest.mark.parametrize("name", sorted(MODEL_EDITS))
def test_rewritten_model_header(name):
    change, fragment = MODEL_EDITS[name]
    assert_refused(with_model_header(change), fragment)


@pytest.mark.parametrize("raw, fragment", [
    ("[" * 50000 + "]" * 50000, "nested too deeply"),
    ('{"format": "proofs-check-model", "version": NaN}', "NaN"),
    ('{"version": 1' + "0" * 5000 + "}", "digits"),
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"format": "proofs-check-model", "version": 1, "arch": "\\udcff"}', "lone surrogate"),
])
def test_hostile_model_header_text(raw, fragment):
    assert_refused(with_model_header(lambda h: None, raw=raw), fragment)


def test_a_file_without_the_optional_digest_loads_the_same_model():
    run, loaded = inspect_bytes(with_model_header(lambda h: None))
    assert run.code == 0 and loaded == original()[1]


def test_header_length_prefix_beyond_the_file():
    data, _ = original()
    for claimed in (len(data), 1 << 40, (1 << 64) - 1):
        assert_refused(struct.pack("<Q", claimed) + data[8:])


def test_weight_entry_bound_refuses_before_reading(monkeypatch):
    monkeypatch.setattr(limits, "MAX_FILE_ENTRIES", 10)
    assert_refused(original()[0], "refused before allocating")


# ---- never executes code ---------------------------------------------------------------------


class _Payload:
    """Unpickling this creates the marker file (what a malicious torch/pickle file would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "EXECUTED"
    for blob in (pickle.dumps(_Payload(str(marker))), pickle.dumps({"w": _Payload(str(marker))}, protocol=2)):
        assert_refused(blob, "not a readable safetensors file")
        assert not marker.exists()


def test_a_limb_of_int64_min_is_refused_as_out_of_range():
    """np.abs(-2^63) is -2^63 in int64, so a max(|limb|) test let this limb through."""
    data, _ = original()
    header, body = split(data)
    header["__metadata__"].pop("proofs_check.sha256")
    start = header["unembed"]["data_offsets"][0]
    body = body[:start] + struct.pack("<q", -(1 << 63)) + body[start + 8 :]
    assert_refused(join(header, body), "holds a limb outside")


def test_a_flipped_digest_key_does_not_switch_the_digest_off():
    """Found at the thorough profile: flipping 'p' of 'proofs_check.sha256' made the digest
    optional-and-absent, so a second flip (here in a name, as well in a weight) loaded a
    different model."""
    data, _ = original()
    key = b"proofs_check.sha256"
    at = data.index(key)
    for pos, mask in ((at, 1), (at + len(key) - 1, 2), (at + 5, 0x20)):
        mutated = bytearray(data)
        mutated[pos] ^= mask
        (length,) = struct.unpack("<Q", data[:8])
        mutated[8 + length] ^= 1  # and a weight changed by one step: only the digest can see that
        assert_refused(bytes(mutated), "metadata key")
