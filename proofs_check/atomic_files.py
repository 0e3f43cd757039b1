"""Output files written whole or not at all: a temporary file in the same folder, renamed over
the target only when the writer finished (``os.replace`` is atomic on POSIX and Windows).

A writer that crashes or is interrupted half-way (a disk that fills up, a bug, Ctrl-C) leaves
neither a truncated target nor the temporary file behind, and an ``OSError`` (folder missing,
target is a directory, no permission, disk full) becomes one :class:`ProofsCheckError` naming
the path.  Used by ``data istree --out``, ``inspect --export/--plot`` and the precision table.
"""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from constructions.errors import InputError, ProofsCheckError


def _refuse(path: Path, exc: OSError) -> ProofsCheckError:
    return ProofsCheckError(f"cannot write {path}: {exc.strerror or exc}; choose another output path")


def check_target(path: str | os.PathLike) -> Path:
    """The one check of an output path before any work: no NUL character, an existing folder,
    not a directory itself (names too long and the like are refused with the system's reason)."""
    text = os.fspath(path)
    if not text or "\x00" in text:
        raise InputError(f"the output path {text!r} is empty or holds a NUL character; give a file name")
    path = Path(text)
    try:
        if not path.parent.is_dir():
            raise InputError(f"the folder {path.parent} does not exist; create it or choose another output path")
        if path.is_dir():
            raise InputError(f"cannot write {path}: it is a directory; give a file name")
    except OSError as exc:
        raise _refuse(path, exc) from None
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path (not yet created) to write; renamed to ``path`` when the block ends without an exception."""
    path = check_target(path)
    # a fresh name beside the target (same file system, so the rename is atomic); the writer
    # creates it with the usual permissions (tempfile.mkstemp would make it 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise _refuse(path, exc) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # the folder itself is unusable (e.g. /dev/null/x): nothing was created
            pass


@contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[IO[str]]:
    """An open UTF-8 text handle whose contents replace ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                yield fh
        except OSError as exc:
            raise _refuse(Path(path), exc) from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    with atomic_text(path) as fh:
        fh.write(text)
    return Path(path)
