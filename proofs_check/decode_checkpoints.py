"""Checkpoints of the claims table's longest decodes, so that one decode can span sessions (issue #10).

The longest chains of the claims table are hours of exact decoding on 2 cores (Thm 4.8 at P =
1024, n = 256: 523,775 tokens), longer than a working session.  A decode cell run through
:func:`proofs_check.decode_records.measured` with records gets a :class:`Checkpoint`: every
``every_s`` seconds (default 10 minutes) of decoding the tokens generated so far are written
(gzip'd JSON of token ids, atomically) to ``notes/decodes/partial/<sha256 of the cell key>.json.gz``,
a file kept with the records; a later run of the same cell replays them
(:class:`constructions.decode.Replay`: the tokens appended in chunks, the model's own next token
checked at every chunk end) and goes on from there.  The finished decode is recorded and its
checkpoint removed.  The result is the uninterrupted decode's: the replay is the same tokens,
and the chunk checks refuse a checkpoint that is not this model's own chain.
"""
from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from constructions.decode import Replay
from constructions.errors import ProofsCheckError
from constructions.vocab import Token, Vocabulary

from .atomic_files import atomic_path
from .sweep import Cell, cell_key

#: where the checkpoints of the committed records live (beside notes/decodes/claims.jsonl)
PARTIAL_DIR = "notes/decodes/partial"


def read_file(path: Path) -> dict:
    """A checkpoint file's contents (``key``, ``tokens``, ``ids``, ``saved``); raises OSError,
    ValueError, EOFError or KeyError for a file that is not a whole checkpoint."""
    data = json.loads(gzip.decompress(path.read_bytes()))
    missing = {"key", "tokens", "ids", "saved"} - set(data)
    if missing:
        raise KeyError(f"no {', '.join(sorted(missing))}")
    return data


def read_all(directory: str | Path) -> list[dict]:
    """Every readable checkpoint under ``directory`` (damaged ones skipped: the decode that
    reads its own checkpoint reports it)."""
    out = []
    for path in sorted(Path(directory).glob("*.json.gz")):
        try:
            out.append(read_file(path))
        except (OSError, ValueError, EOFError, KeyError):
            continue
    return out


@dataclass
class Checkpoint:
    """The checkpoint file of one decode cell (module docstring)."""

    path: Path
    key: str
    every_s: float = 600.0
    _last: float = field(default_factory=time.monotonic, repr=False)
    replayed: int = 0  # tokens the last replay() resumed from (0: decoded from the start)

    @staticmethod
    def for_cell(directory: str | Path, cell: Cell, every_s: float = 600.0) -> "Checkpoint":
        key = cell_key(cell)
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        return Checkpoint(Path(directory) / f"{name}.json.gz", key, every_s)

    def load(self, vocab: Vocabulary) -> list[Token]:
        """The tokens saved so far (none without a file)."""
        if not self.path.exists():
            return []
        try:
            data = read_file(self.path)
        except (OSError, ValueError, EOFError, KeyError) as exc:
            raise ProofsCheckError(f"the decode checkpoint {self.path} cannot be read ({exc}); delete it to decode "
                                   "from the start") from None
        if data["key"] != self.key:
            raise ProofsCheckError(f"the decode checkpoint {self.path} belongs to another cell; delete it")
        return [vocab.token_of(i) for i in data["ids"]]

    def save(self, vocab: Vocabulary, generated: Sequence[Token]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"key": self.key, "tokens": len(generated), "ids": [vocab.id_of(t) for t in generated],
                "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(gzip.compress(json.dumps(body, separators=(",", ":")).encode(), mtime=0))
        self._last = time.monotonic()

    def replay(self, vocab: Vocabulary) -> Replay:
        """A Replay of the saved tokens that saves again every ``every_s`` seconds of decoding."""

        def on_token(generated: list[Token]) -> None:
            if time.monotonic() - self._last >= self.every_s:
                self.save(vocab, generated)

        self._last = time.monotonic()
        tokens = self.load(vocab)
        self.replayed = len(tokens)
        return Replay(tokens, on_token)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def run_with_checkpoint(fn, directory: str, cell: Cell):
    """``fn(cell, checkpoint=...)`` with this cell's checkpoint under ``directory``, removed once
    ``fn`` returned (its result is then recorded, with ``resumed_at``: the tokens replayed from
    the checkpoint, where there were any, since the record's seconds are then this last run's
    only).  Top level: sent to Dask workers."""
    cp = Checkpoint.for_cell(directory, cell)
    out = fn(cell, checkpoint=cp)
    cp.clear()
    if cp.replayed and isinstance(out, dict):
        out = {**out, "resumed_at": cp.replayed}
    return out


def saved_tokens(records: str | None, cells: Sequence[Cell]) -> dict[str, int]:
    """Cell key -> tokens decoded so far, for the cells of ``cells`` with a checkpoint beside
    ``records`` (what a "not decoded" row of the claims table can say about its progress)."""
    if records is None:
        return {}
    wanted = {cell_key(c) for c in cells}
    return {d["key"]: int(d["tokens"]) for d in read_all(Path(records).parent / "partial") if d["key"] in wanted}


def progress_note(saved: dict[str, int], cells: Sequence[Cell]) -> str:
    """``"; in progress: 27723 / 25437 tokens decoded"`` for the cells with a checkpoint, else ``""``."""
    got = [saved[cell_key(c)] for c in cells if cell_key(c) in saved]
    return f"; in progress: {' / '.join(map(str, got))} tokens decoded" if got else ""
