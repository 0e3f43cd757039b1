"""Generated blocks inside hand-written markdown: text between two marker comments.

A block named ``NAME`` is everything between ``<!-- BEGIN generated: NAME ... -->`` and
``<!-- END generated: NAME -->``; the prose outside stays hand-written.  The errata index
(``notes/errata.md``) and the README's coverage list are such blocks; a test compares each with
what its generator writes now, so a stale block fails the suite.
"""
from __future__ import annotations

import re
from pathlib import Path

from constructions.errors import InputError


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(
        r"(<!-- BEGIN generated: " + re.escape(name) + r"\b[^>]*-->\n)(.*?)(<!-- END generated: " + re.escape(name) + r" -->)",
        re.S,
    )


def read_block(text: str, name: str, where: str) -> str:
    """The body of block ``name``; a clear error if its markers are missing."""
    m = _pattern(name).search(text)
    if m is None:
        raise InputError(
            f"{where} has no generated block {name!r}: add the lines '<!-- BEGIN generated: {name} -->' "
            f"and '<!-- END generated: {name} -->' where it belongs"
        )
    return m.group(2)


def replace_block(text: str, name: str, body: str, where: str) -> str:
    """``text`` with the body of block ``name`` replaced by ``body`` (ending in a newline)."""
    read_block(text, name, where)
    return _pattern(name).sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def write_block(path: Path, name: str, body: str) -> bool:
    """Rewrite block ``name`` of the file at ``path``; True if the file changed."""
    text = path.read_text(encoding="utf-8")
    new = replace_block(text, name, body, str(path))
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
