"""The reference evaluator of circuits (``constructions.circuit``): one RNN step, and an RNN run.

Plain Python over 0/1 ints, written from the gate semantics of the proof of Thm 4.8 and nothing
else: gate i of type const1 is 1; ``input l r`` is bit r of input coordinate l; ``state l r`` is
bit r of state coordinate l; ``and`` / ``xor`` combine the values of gates l and r.  The next
state is read off the last K gates, the emitted token off the O output gates (binary index into
the alphabet, bit 0 first).

An RNN run with chain of thought (Def 3.3 / A.4): the state starts at 0 (every bit 0); the RNN
reads the prompt tokens one at a time, and after the prompt reads back each token it emits; the
token it emits after reading the last prompt token is its first chain-of-thought token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from constructions.circuit import Circuit, Gate, circuit_from_json
from constructions.vocab import Token

__all__ = ["Circuit", "Gate", "StepValues", "circuit_from_json", "run", "step"]


@dataclass(frozen=True)
class StepValues:
    """One recurrent step: the token read, every gate value (index i - 1 = gate i), the token
    emitted and the next state's bits."""

    read: Token
    values: tuple[int, ...]
    emitted: Token
    next_state: tuple[int, ...]


def _bit(x: int, b: int) -> int:
    return (x >> b) & 1


def step(c: Circuit, token: Token, state: Sequence[int]) -> StepValues:
    """Evaluate every gate once, in id order, reading ``token``'s code and the state bits
    (``state[j]`` is the bit gate j + 1 reads)."""
    if len(state) != c.state_bits:
        raise ValueError(f"state has {len(state)} bits, the circuit {c.state_bits}")
    code = c.code(token)
    vals: list[int] = []
    for i, g in enumerate(c.gates, start=1):
        if g.kind == "const1":
            v = 1
        elif g.kind == "state":
            v = state[i - 1]
        elif g.kind == "input":
            v = _bit(code[g.l], g.r)
        elif g.kind == "and":
            v = vals[g.l - 1] & vals[g.r - 1]
        else:  # xor
            v = vals[g.l - 1] ^ vals[g.r - 1]
        vals.append(v)
    index = sum(vals[i - 1] << k for k, i in enumerate(c.output_gates))
    nxt = tuple(vals[i - 1] for i in c.next_state_gates)
    return StepValues(token, tuple(vals), c.token_of_index(index), nxt)


def run(c: Circuit, prompt: Sequence[Token], cot_steps: int = 0) -> list[StepValues]:
    """The RNN on ``prompt`` and then ``cot_steps`` of its own tokens: one :class:`StepValues`
    per token read (len(prompt) + cot_steps of them; the generated tokens are the ``emitted`` of
    the steps from the last prompt token on)."""
    state: tuple[int, ...] = (0,) * c.state_bits
    out: list[StepValues] = []
    tokens = list(prompt)
    k = 0
    while k < len(tokens) and k < len(prompt) + cot_steps:
        sv = step(c, tokens[k], state)
        out.append(sv)
        state = sv.next_state
        if k >= len(prompt) - 1:
            tokens.append(sv.emitted)
        k += 1
    return out


def generated(c: Circuit, prompt: Sequence[Token], cot_steps: int) -> list[Token]:
    """The RNN's chain of thought: the ``cot_steps`` tokens it emits after the prompt, the first
    one on reading the last prompt token."""
    steps = run(c, prompt, max(0, cot_steps - 1))
    return [sv.emitted for sv in steps[len(prompt) - 1:]][:cot_steps]
