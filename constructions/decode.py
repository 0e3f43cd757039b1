"""Decoding loops: greedy chain of thought (Def A.4) and in-context retrieval (Def A.5, Sec 5.1).

Both work on any *session* (an object with ``append(tokens)`` and ``next_token()``, as made by
an evaluator's ``session(model, prompt)``), so they never see weights or tasks.

RETRIEVE (Section 5.1): when the model emits ``<EndSearch>``, the pattern is Detokenize of the
tokens strictly between the last ``<StartSearch>`` and that ``<EndSearch>``, the string is
Detokenize of everything before that ``<StartSearch>``; Python's ``re.search(pattern, string)``
runs in a separate worker process under a time bound; ``group(1)`` is tokenized and appended,
or ``FAILED`` when nothing matches (or group 1 did not take part in the match).  The paper's
formula Detokenize(S_{l_s:l_e}) would include the two markers themselves; erratum A5-E1 in notes/errata/foundation.md.
"""
from __future__ import annotations

import multiprocessing as mp
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from .errors import InputError, ReplayError, RetrievalError, TokenError
from .vocab import Token, Vocabulary, detokenize

START, END, FAILED = "<StartSearch>", "<EndSearch>", "FAILED"
DEFAULT_ANSWERS: frozenset = frozenset({"YES", "NO"})


class Session(Protocol):
    tokens: list

    def append(self, tokens: Sequence[Token]) -> None: ...

    def next_token(self) -> Token: ...


@dataclass
class Retrieval:
    pattern: str
    result: list[Token]
    position: int  # index in the full sequence where the result was appended

    def to_json(self) -> dict:
        return {"pattern": self.pattern, "result": " ".join(str(t) for t in self.result)}


@dataclass
class DecodeResult:
    prompt: list[Token]
    sequence: list[Token]  # prompt + every generated and retrieved token, in order
    generated: list[Token]  # tokens the model emitted itself, in order
    answer: Token | None
    stopped: str  # "answer" | "max_steps"
    retrievals: list[Retrieval] = field(default_factory=list)

    @property
    def steps(self) -> int:
        """CoT steps: generated tokens before the answer (Def A.4 counts S_i with i steps)."""
        return len(self.generated) - (1 if self.answer is not None else 0)


def _stop_predicate(answers: Iterable[Token] | Callable[[Token], bool]) -> Callable[[Token], bool]:
    if callable(answers):
        return answers
    allowed = frozenset(answers)
    return lambda t: t in allowed


@dataclass(frozen=True)
class Replay:
    """Resuming a long chain of thought (hours at the theorems' sizes) after an interruption.

    ``tokens``: the first tokens this very decode generated in an earlier run (a checkpoint).
    :func:`chain_of_thought` appends them in chunks, the session's prefill path (far cheaper than
    one step per token), and after the prompt and at every chunk end (the last replayed token
    included) asks the model for its next token, which must be the replayed one: a checkpoint of
    another model, prompt or evaluator is refused, never continued.  Tokens inside a chunk are
    not predicted one by one (that is the saving); the checkpoint's own key and gzip CRC guard
    them, and the long decodes check every token against their reference afterwards
    (proofs_check.decode_checkpoints).  The prompt's pass is an ordinary one; a fast session computes
    only the last column of each replayed chunk's last layer (``FastSession.append_replayed``).
    ``on_token(generated)`` is called after each token generated from then on (the caller
    writes checkpoints there).  ``max_chunk_entries`` bounds chunk x sequence length (the
    attention score entries of one chunk, per head)."""

    tokens: Sequence[Token] = ()
    on_token: Callable[[list[Token]], None] | None = None
    max_chunk_entries: int = 1 << 24


def _replay(session: Session, replay: Replay, is_answer: Callable[[Token], bool]) -> list[Token]:
    """Append ``replay.tokens`` to the session, checking the model's next token after the prompt
    and at each chunk end."""
    toks = list(replay.tokens)
    if any(is_answer(t) for t in toks):
        raise ReplayError("a replayed chain of thought must stop before its answer (the decode it comes from had not ended)")

    def expect(k: int) -> None:  # the model's next token must be replayed token k
        if (got := session.next_token()) != toks[k]:
            raise ReplayError(f"the replayed chain differs from the model's at generated token {k}: the model "
                             f"gives {got!r}, the replay {toks[k]!r} (a checkpoint of another model or prompt); "
                             "delete the checkpoint to decode from the start")

    if toks:
        expect(0)  # the prompt's pass is an ordinary one (every position checked)
    # a session that can skip the outputs no one reads (evaluate_fast.FastSession) is told so
    append = getattr(session, "append_replayed", session.append)
    done = 0
    while done < len(toks):
        chunk = max(1, min(512, replay.max_chunk_entries // max(1, len(session.tokens))))
        end = min(len(toks), done + chunk)
        if end == len(toks) > done + 1:
            end -= 1  # the last replayed token is checked too (then appended alone)
        append(toks[done:end])
        done = end
        if done < len(toks):
            expect(done)
    return toks


def chain_of_thought(
    session: Session,
    max_steps: int,
    answers: Iterable[Token] | Callable[[Token], bool] = DEFAULT_ANSWERS,
    replay: Replay | None = None,
) -> DecodeResult:
    """Def A.4: append argmax tokens until one is an answer token, at most max_steps + 1 tokens.
    ``replay``: continue an interrupted decode of the same model and prompt (:class:`Replay`);
    the result is the one an uninterrupted decode gives."""
    is_answer = _stop_predicate(answers)
    prompt = list(session.tokens)
    generated: list[Token] = _replay(session, replay, is_answer) if replay is not None else []
    if len(generated) > max_steps:
        raise ReplayError(f"a replayed chain of {len(generated)} tokens is longer than max_steps = {max_steps}")
    return _greedy_steps(session, prompt, generated, max_steps, is_answer, replay.on_token if replay else None)


def _greedy_steps(session: Session, prompt: list[Token], generated: list[Token], max_steps: int,
                  is_answer: Callable[[Token], bool], on_token: Callable[[list[Token]], None] | None) -> DecodeResult:
    """Def A.4's loop from a session holding prompt + generated (the model's own tokens)."""
    for _ in range(max_steps + 1 - len(generated)):
        tok = session.next_token()
        generated.append(tok)
        session.append([tok])
        if is_answer(tok):
            return DecodeResult(prompt, list(session.tokens), generated, tok, "answer")
        if on_token is not None:
            on_token(generated)
    return DecodeResult(prompt, list(session.tokens), generated, None, "max_steps")


def drafted_chain_of_thought(
    new_session: Callable[[], Session],
    draft: Sequence[Token],
    max_steps: int,
    answers: Iterable[Token] | Callable[[Token], bool] = DEFAULT_ANSWERS,
    replay: Replay | None = None,
) -> DecodeResult:
    """:func:`chain_of_thought`'s result (the same DecodeResult, token for token), found by
    verifying a draft of the chain in chunks instead of one step per token: speculative decoding
    with greedy acceptance, where the draft is an independent reference's chain (Algorithm 1,
    the circuit evaluator).  The model decides every token: a chunk of draft tokens is appended
    in one exact pass and the model's next token after each of them is read
    (``session.predictions``); the draft is kept while each of its tokens is the model's argmax
    after the tokens before it (so, by induction, it *is* the greedy chain that far), and where
    the model first disagrees, or a pass records an error, the decode goes on step by step
    from the agreed prefix (a fresh session from ``new_session``, the prefix replayed), so a
    wrong draft costs time, never a wrong result.  ``replay`` (a checkpoint): its tokens, when
    they are a prefix of the draft, are replayed first, and ``on_token`` is called after each
    agreed chunk; a session without ``predictions`` decodes step by step."""
    is_answer = _stop_predicate(answers)
    draft = list(draft)[: max_steps + 1]
    on_token = replay.on_token if replay is not None else None
    done = list(replay.tokens) if replay is not None else []
    session = new_session()
    prompt = list(session.tokens)
    if not hasattr(session, "predictions") or done != draft[: len(done)]:
        return chain_of_thought(session, max_steps, answers, replay)
    agreed = len(_replay(session, replay, is_answer)) if done else 0
    nxt = session.next_token() if agreed < len(draft) else None
    while agreed < len(draft) and nxt == draft[agreed]:
        if is_answer(nxt):  # the greedy chain ends with this (agreed) answer
            session.append([nxt])
            return DecodeResult(prompt, list(session.tokens), draft[: agreed + 1], nxt, "answer")
        size = max(1, min(1024, (1 << 24) // max(1, len(session.tokens))))
        chunk = draft[agreed : agreed + size]
        stop = next((i for i, t in enumerate(chunk) if is_answer(t)), None)
        chunk = chunk if stop is None else chunk[:stop]  # an answer is checked as nxt, then ends the chain
        if not chunk:
            break
        preds = session.predictions(chunk)
        if preds is None:  # a pass that cannot say (an error somewhere in it): step from the agreed prefix
            return chain_of_thought(new_session(), max_steps, answers, Replay(draft[:agreed], on_token))
        k = 0  # chunk[0] is agreed (it was nxt); chunk[k + 1] is agreed when the model gives it
        while k + 1 < len(chunk) and preds[k] == chunk[k + 1]:
            k += 1
        agreed += k + 1
        if k + 1 < len(chunk):  # the model leaves the draft after chunk[k]: the session holds more
            return chain_of_thought(new_session(), max_steps, answers, Replay(draft[:agreed], on_token))
        nxt = preds[-1]
        if on_token is not None:
            on_token(draft[:agreed])
    return _greedy_steps(session, prompt, draft[:agreed], max_steps, is_answer, on_token)


# ---- the regular-expression oracle ---------------------------------------------------------


def _regex_worker(conn) -> None:  # pragma: no cover - runs in the child process
    while True:
        try:
            pattern, string = conn.recv()
        except EOFError:
            return
        try:
            m = re.search(pattern, string)
            if m is None:
                conn.send(("nomatch", None))
            elif m.re.groups < 1:
                conn.send(("error", "the pattern has no capturing group, so group(1) does not exist"))
            else:
                conn.send(("match", m.group(1)))
        except re.error as exc:
            conn.send(("error", f"invalid regular expression: {exc}"))
        except Exception as exc:  # noqa: BLE001 - report anything else to the parent
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class RegexOracle:
    """``re.search(pattern, string).group(1)`` in a worker process, bounded in time.

    Catastrophic patterns cannot be interrupted inside CPython's ``re``; the worker is killed
    and restarted instead, and the caller gets a :class:`RetrievalError`.
    """

    def __init__(self, timeout_s: float = 5.0):
        self.timeout_s = timeout_s
        self._ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_regex_worker, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._conn.close()
        self._proc = self._conn = None

    def __enter__(self) -> "RegexOracle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover
        try:
            self.close()
        except Exception:
            pass

    def search(self, pattern: str, string: str) -> str | None:
        """group(1) of the first match, or None when nothing matches / group 1 is unset."""
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((pattern, string))
        if not self._conn.poll(self.timeout_s):
            self.close()
            raise RetrievalError(
                f"retrieval pattern {pattern!r} ran longer than {self.timeout_s} s on a string of "
                f"{len(string)} characters (catastrophic backtracking?); the query was abandoned"
            )
        kind, value = self._conn.recv()
        if kind == "error":
            raise RetrievalError(f"retrieval pattern {pattern!r}: {value}")
        return value if kind == "match" else None


def retrieve(sequence: Sequence[Token], vocab: Vocabulary, oracle: RegexOracle) -> tuple[str, list[Token]]:
    """RETRIEVE of Def A.5 for a sequence whose last token is <EndSearch>."""
    if not sequence or sequence[-1] != END:
        raise RetrievalError("RETRIEVE needs a sequence that ends with <EndSearch>")
    starts = [i for i, t in enumerate(sequence[:-1]) if t == START]
    if not starts:
        raise RetrievalError("<EndSearch> without a preceding <StartSearch>")
    ls = starts[-1]
    pattern = detokenize(sequence[ls + 1 : -1])
    string = detokenize(sequence[:ls])
    group = oracle.search(pattern, string)
    if group is None:
        return pattern, [FAILED]
    try:
        return pattern, vocab.tokenize(group)
    except TokenError as exc:
        raise RetrievalError(f"retrieval result {group!r} of pattern {pattern!r} is not a token sequence: {exc}") from exc


def retrieval_augmented(
    session: Session,
    vocab: Vocabulary,
    max_steps: int,
    answers: Iterable[Token] | Callable[[Token], bool] = DEFAULT_ANSWERS,
    oracle: RegexOracle | None = None,
) -> DecodeResult:
    """Def A.5 / Sec 5.1: greedy decoding with RETRIEVE after every <EndSearch>.

    An answer token emitted while a search is open (after <StartSearch>, before <EndSearch>)
    is part of the query, not the answer.
    """
    is_answer = _stop_predicate(answers)
    own = oracle is None
    oracle = oracle or RegexOracle()
    prompt = list(session.tokens)
    generated: list[Token] = []
    retrievals: list[Retrieval] = []
    in_query = False
    try:
        for _ in range(max_steps + 1):
            tok = session.next_token()
            generated.append(tok)
            session.append([tok])
            if tok == START:
                in_query = True
            elif tok == END:
                pattern, result = retrieve(session.tokens, vocab, oracle)
                retrievals.append(Retrieval(pattern, result, len(session.tokens)))
                session.append(result)
                in_query = False
            elif not in_query and is_answer(tok):
                return DecodeResult(prompt, list(session.tokens), generated, tok, "answer", retrievals)
        return DecodeResult(prompt, list(session.tokens), generated, None, "max_steps", retrievals)
    finally:
        if own:
            oracle.close()


# ---- many sequences at once ------------------------------------------------------------------


class BatchSession(Protocol):
    """Many sessions advanced together: ``next_tokens(active)`` gives the next token of each
    listed sequence (in that order) without appending it; ``append(i, tokens)`` extends
    sequence i; ``tokens(i)`` is its whole current sequence."""

    size: int

    def append(self, i: int, tokens: Sequence[Token]) -> None: ...

    def next_tokens(self, active: Sequence[int]) -> list[Token]: ...

    def tokens(self, i: int) -> list[Token]: ...


class SequentialBatchSession:
    """A BatchSession over ordinary sessions, one after the other (the fallback for an
    evaluator without ``batch_session``, e.g. the reference)."""

    def __init__(self, sessions: Sequence[Session]):
        self.sessions = list(sessions)
        self.size = len(self.sessions)

    def append(self, i: int, tokens: Sequence[Token]) -> None:
        self.sessions[i].append(tokens)

    def next_tokens(self, active: Sequence[int]) -> list[Token]:
        return [self.sessions[i].next_token() for i in active]

    def tokens(self, i: int) -> list[Token]:
        return list(self.sessions[i].tokens)


def batch_session(evaluator, model, prompts: Sequence[Sequence[Token]]) -> BatchSession:
    """The evaluator's own batch session: a float-mode FastEvaluator's
    (constructions.evaluate_float), else ``evaluator.batch_session`` where it exists, else one
    ordinary session per prompt (:class:`SequentialBatchSession`)."""
    if getattr(evaluator, "mode", "exact") != "exact":
        from .evaluate_float import float_batch_session

        return float_batch_session(evaluator, model, prompts)
    if hasattr(evaluator, "batch_session"):
        return evaluator.batch_session(model, prompts)
    return SequentialBatchSession([evaluator.session(model, p) for p in prompts])


def _per_sequence(value: int | Sequence[int], size: int) -> list[int]:
    if isinstance(value, int):
        return [value] * size
    if len(value) != size:
        raise InputError(f"max_steps has {len(value)} entries for a batch of {size} sequences; give one per sequence")
    return list(value)


@dataclass
class _Track:
    """One sequence's decoding so far (for the batch drivers)."""

    prompt: list[Token]
    max_steps: int
    generated: list[Token] = field(default_factory=list)
    retrievals: list[Retrieval] = field(default_factory=list)
    in_query: bool = False

    def result(self, sequence: list[Token], answer: Token | None) -> DecodeResult:
        return DecodeResult(self.prompt, list(sequence), self.generated, answer,
                            "answer" if answer is not None else "max_steps", self.retrievals)


def _run_batch(bs: BatchSession, max_steps, after: Callable[[int, _Track, Token], bool]) -> list[DecodeResult]:
    """Step every unfinished sequence; ``after(i, track, tok)`` (tok already appended) returns
    whether tok is sequence i's answer.  A sequence also stops after max_steps + 1 tokens."""
    tracks = [_Track(list(bs.tokens(i)), m) for i, m in enumerate(_per_sequence(max_steps, bs.size))]
    results: list[DecodeResult | None] = [tr.result(tr.prompt, None) if tr.max_steps < 0 else None for tr in tracks]
    active = [i for i in range(bs.size) if results[i] is None]
    while active:
        still = []
        for i, tok in zip(active, bs.next_tokens(active)):
            tr = tracks[i]
            tr.generated.append(tok)
            bs.append(i, [tok])
            if after(i, tr, tok):
                results[i] = tr.result(bs.tokens(i), tok)
            elif len(tr.generated) == tr.max_steps + 1:
                results[i] = tr.result(bs.tokens(i), None)
            else:
                still.append(i)
        active = still
    return results  # type: ignore[return-value]


def chain_of_thought_batch(
    bs: BatchSession,
    max_steps: int | Sequence[int],
    answers: Iterable[Token] | Callable[[Token], bool] = DEFAULT_ANSWERS,
) -> list[DecodeResult]:
    """:func:`chain_of_thought` for every sequence of a batch session (max_steps: one for all
    or one per sequence); the same DecodeResults as decoding each sequence alone."""
    is_answer = _stop_predicate(answers)
    return _run_batch(bs, max_steps, lambda i, tr, tok: is_answer(tok))


def retrieval_augmented_batch(
    bs: BatchSession,
    vocab: Vocabulary,
    max_steps: int | Sequence[int],
    answers: Iterable[Token] | Callable[[Token], bool] = DEFAULT_ANSWERS,
    oracle: RegexOracle | None = None,
) -> list[DecodeResult]:
    """:func:`retrieval_augmented` for every sequence of a batch session, each with its own
    retrievals (RETRIEVE runs on that sequence alone)."""
    is_answer = _stop_predicate(answers)
    own = oracle is None
    oracle = oracle or RegexOracle()

    def after(i: int, tr: _Track, tok: Token) -> bool:
        if tok == START:
            tr.in_query = True
        elif tok == END:
            pattern, result = retrieve(bs.tokens(i), vocab, oracle)
            tr.retrievals.append(Retrieval(pattern, result, len(bs.tokens(i))))
            bs.append(i, result)
            tr.in_query = False
        elif not tr.in_query and is_answer(tok):
            return True
        return False

    try:
        return _run_batch(bs, max_steps, after)
    finally:
        if own:
            oracle.close()
