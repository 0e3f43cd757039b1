"""Reading user-supplied JSON and text bytes: one validation layer, one error family.

``json.loads`` alone raises more than :class:`json.JSONDecodeError` on hostile input: a
RecursionError for deeply nested arrays, a plain ValueError for an integer of more than 4300
digits; and it accepts the non-JSON constants NaN and Infinity and strings holding lone
surrogates (``"\\udcff"``), which later crash any UTF-8 output of them.  :func:`parse_json` turns every
one of these into the caller's :class:`~constructions.errors.ProofsCheckError` subclass with a
message that says what is wrong; :func:`decode_utf8` does the same for bytes that are not UTF-8.
Used for JSONL / ``--instance`` input (proofs_check.run_command), model-file headers
(constructions.modelfile) and Turing-machine instances (constructions.turing_machine).
"""
from __future__ import annotations

import json
from typing import Any

from .errors import InputError, ProofsCheckError
from .limits import MAX_JSON_DIGITS

UTF8_BOM = b"\xef\xbb\xbf"


class _Refused(ValueError):
    """Raised from inside the decoder hooks; carries the message for the caller's error."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise _Refused(f"a number with {digits} digits (at most {MAX_JSON_DIGITS}); no input here needs one that large")
    return int(text)


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value (write numbers as plain decimals)")


def parse_json(text: str, error: type[ProofsCheckError] = InputError, what: str = "the input") -> Any:
    """``json.loads(text)``, every failure raised as ``error`` naming ``what`` and the fault."""
    if text.startswith("\ufeff"):  # a BOM, as decode_utf8 drops from bytes
        text = text[1:]
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # every string is Unicode text
        return value
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("utf-8", "backslashreplace").decode("ascii")
        raise error(
            f"{what} holds a string with a lone surrogate ({bad}), which is not Unicode text; "
            "write the text in UTF-8 without \\ud800-\\udfff escapes"
        ) from None
    except _Refused as exc:
        raise error(f"{what} holds {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{what} is nested too deeply to read (arrays or objects thousands of levels deep)") from None
    except ValueError as exc:  # e.g. Python's int-digit limit on a huge float's exponent part
        raise error(f"{what} cannot be read as JSON: {exc}") from None


def decode_utf8(data: bytes, error: type[ProofsCheckError] = InputError, what: str = "the input") -> str:
    """Bytes as UTF-8 text (a leading BOM dropped); a clear error naming the first bad byte."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} is not UTF-8 text: byte 0x{data[exc.start]:02x} at byte {exc.start + 1} "
            f"({exc.reason}); save the file as UTF-8"
        ) from None
