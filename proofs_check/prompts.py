"""What each named model reads and when it stops: the prompt format, the decoding and the answer
tokens, declared in the model's metadata (and so in its model file) by :func:`declare`.

``run-model`` decodes with them by default and ``inspect`` prints them, so a user need not know
that ``index-rag-rnn`` answers with a number (issue 15).  The table restates the tasks' token
formats (:mod:`proofs_check.tasks` ``tokens()``, Eq. 4 for graphs); it never touches weights.

Metadata keys (set only where the construction did not set them itself):

* ``prompt_format``: the prompt in words, e.g. ``<s> x_1 ... x_n i``;
* ``prompt_example``: one prompt for this n (text, as ``--tokens`` takes it);
* ``decoding``: ``one_step`` (the next token is the answer, Def A.4 with no CoT),
  ``chain_of_thought`` (Def A.4) or ``retrieval_augmented`` (Def A.5);
* ``answers``: the tokens that end decoding (outside a search), as text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from constructions.model import Model

ONE_STEP, COT, RAG = "one_step", "chain_of_thought", "retrieval_augmented"
DECODINGS = (ONE_STEP, COT, RAG)


@dataclass(frozen=True)
class PromptSpec:
    fmt: str | None
    example: Callable[[int], str] | None  # n -> one prompt
    answers: str  # "numbers" (every number token of the vocabulary) or space-separated tokens


def _graph_example(n: int) -> str:
    """The path 1 ~ 2 ~ ... ~ n (a tree: answer YES)."""
    return "<s> " + " ".join(f"{v} ~ {v + 1}" for v in range(1, max(n, 2)))


_GRAPH = "Tokenize(G) = <s> u_1 ~ v_1 ... u_m ~ v_m (Eq. 4), vertices 1..n"
TASKS: dict[str, PromptSpec] = {
    "index": PromptSpec("<s> x_1 ... x_m i  (answer: x_i)", lambda n: "<s> 3 1 4 1 " + str(min(5, n)) + " 3", "numbers"),
    "ar": PromptSpec("<s> x_1 ... x_m q  (answer: the token after the first q)", lambda n: "<s> 2 4 3 1 3", "numbers"),
    "cgram": PromptSpec("<s> x_1 ... x_m q_1 ... q_(c-1)  (answer: the token after the first q_1 ... q_(c-1))",
                        lambda n: "<s> 1 4 3 2 3 1 4", "numbers"),
    "count": PromptSpec("<s> x_1 ... x_m q t  (answer: 1 if q occurs more than t times, else 0)",
                        lambda n: "<s> 3 1 3 3 1", "numbers"),
}
FAMILIES: dict[str, tuple[PromptSpec, str]] = {
    **{f"{task}-{arch}": (spec, RAG if arch == "rag-rnn" else ONE_STEP)
       for task, spec in TASKS.items() for arch in ("transformer", "hybrid", "rag-rnn")},
    "dfs-transformer": (PromptSpec(_GRAPH, _graph_example, "YES NO"), COT),
    "istree-rag-rnn": (PromptSpec(_GRAPH, _graph_example, "YES NO"), RAG),
    "istree-hybrid": (PromptSpec(_GRAPH, _graph_example, "YES NO"), COT),
    "tm-rag": (PromptSpec(None, None, "HALT"), RAG),
    "tm-hybrid": (PromptSpec(None, None, "HALT"), COT),
    "tm-cot-rnn": (PromptSpec(None, None, "YES NO"), COT),
}


def answer_tokens(model: Model, answers: str) -> list[str]:
    if answers == "numbers":
        return [str(t) for t in range(model.vocab.min_number, model.vocab.n + 1)]
    return answers.split()


def declare(name: str, model: Model) -> Model:
    """Add the family's prompt format, decoding and answers to ``model.meta`` (keys the
    construction set itself win); models of no known family are returned unchanged."""
    if name not in FAMILIES:
        return model
    spec, decoding = FAMILIES[name]
    n = model.meta.get("n", model.vocab.n)
    declared = {"decoding": decoding, "answers": answer_tokens(model, spec.answers)}
    if spec.fmt is not None:
        declared["prompt_format"] = spec.fmt
    if spec.example is not None:
        declared["prompt_example"] = spec.example(n if isinstance(n, int) else model.vocab.n)
    for key, value in declared.items():
        model.meta.setdefault(key, value)
    return model


def describe(meta: dict) -> list[str]:
    """``inspect``'s lines on the prompt (empty when the model declares nothing)."""
    lines = []
    if "prompt_format" in meta:
        lines.append(f"prompt format: {meta['prompt_format']}")
    if "prompt_example" in meta:
        lines.append(f"example: --tokens \"{meta['prompt_example']}\"")
    if "decoding" in meta:
        lines.append(f"decoding: {meta['decoding']} (run-model's default mode)")
    if "answers" in meta:
        shown = meta["answers"] if len(meta["answers"]) <= 12 else [*meta["answers"][:3], "...", meta["answers"][-1]]
        lines.append(f"answer tokens (decoding stops there): {' '.join(map(str, shown))}")
    return lines
