"""Progress on long work (issue 15): per token while decoding, per instance while running
(``run``: a bar per instance and one per decode), per case in ``verify``.

A thin layer over tqdm (a well-kept library; see pyproject.toml).  Bars go to stderr and are
shown only when stderr is a terminal and ``--quiet`` was not given, so piped or captured output
(and every test) is unchanged.  Nothing here touches a value: :class:`CountingSession` forwards
every call to the evaluator session it wraps and only counts the tokens asked for.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator


def wanted(quiet: bool = False, stream: Any = None) -> bool:
    """Show progress? Not with --quiet, not when the stream is not a terminal, not without tqdm."""
    stream = sys.stderr if stream is None else stream
    if quiet or not getattr(stream, "isatty", lambda: False)():
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:  # an install without the extra: no bars, same results
        return False
    return True


def bar(show: bool, total: int | None, desc: str, unit: str):
    """A tqdm bar on stderr, or None when progress is not wanted."""
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True, disable=False)


class CountingSession:
    """An evaluator session that advances a bar on every ``next_token`` (one generated token)."""

    def __init__(self, session: Any, progress: Any) -> None:
        self._session, self._progress = session, progress

    def next_token(self, *args: Any, **kwargs: Any) -> Any:
        token = self._session.next_token(*args, **kwargs)
        self._progress.update(1)
        return token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def decoding_session(session: Any, show: bool, total: int):
    """(session to decode with, bar or None): the session itself when progress is not wanted."""
    progress = bar(show, total, "decoding", "token")
    return (session, None) if progress is None else (CountingSession(session, progress), progress)


class BarEvaluator:
    """An evaluator whose every session advances a per-token bar of its own (``run``'s decodes:
    the runners open the sessions).  Values untouched: every call goes to the wrapped evaluator.
    :meth:`close` closes the bars of the sessions opened so far (``run`` calls it per instance)."""

    def __init__(self, evaluator: Any, desc: str = "decoding") -> None:
        self._evaluator, self._desc, self._bars = evaluator, desc, []

    def session(self, *args: Any, **kwargs: Any) -> CountingSession:
        progress = bar(True, None, self._desc, "token")
        self._bars.append(progress)
        return CountingSession(self._evaluator.session(*args, **kwargs), progress)

    def close(self) -> None:
        for progress in self._bars:
            progress.close()
        self._bars.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._evaluator, name)


def each(items: Iterable[Any], show: bool, desc: str, unit: str) -> Iterator[Any]:
    """``items`` with a bar advancing per item (closed at the end) when progress is wanted."""
    progress = bar(show, None, desc, unit)
    try:
        for item in items:
            yield item
            if progress is not None:
                progress.update(1)
    finally:
        if progress is not None:
            progress.close()
