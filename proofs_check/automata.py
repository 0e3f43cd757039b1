"""Finite automata written as RNN circuits (issue 9, part 1 (b)): a source of RNNs for Thm 4.8.

A DFA with states 0..S-1 over an alphabet reads one token per step; as an RNN its hidden state is
the DFA state in binary (``state_width`` = ceil(log2 S) bits, one coordinate), its input the
token's index in binary, and it emits, after each token, the DFA's state then (``emits`` =
``"state"``: the alphabet of emitted tokens is 0..S-1, the state names) or its acceptance
(``"accept"``: 0 / 1).  With chain of thought the RNN reads back what it emitted, so for
``"state"`` the emitted names are also inputs: the DFA's input alphabet must then contain them
(:func:`dfa_circuit` checks it).

The compiler :func:`truth_table_circuit` writes any Boolean function of the K state bits and the
input bits as AND / XOR gates only: each output bit is the XOR of the minterms where it is 1
(the minterms are disjoint, so OR = XOR), a minterm is the AND of literals, and NOT x = x XOR 1
(one constant-1 gate).  Size O(2^(K+I) (K+I)): fine for the small automata here.

:func:`run_dfa` is the plain DFA (no circuit) that the tests and the check compare against.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

from constructions.circuit import Circuit, Gate
from constructions.errors import InputError
from constructions.vocab import Token


@dataclass(frozen=True)
class DFA:
    """delta[s][k] = the state after reading alphabet[k] in state s; accepting states."""

    n_states: int
    alphabet: tuple[Token, ...]
    delta: tuple[tuple[int, ...], ...]
    accepting: frozenset[int]
    name: str = "dfa"


def run_dfa(dfa: DFA, tokens: Sequence[Token]) -> list[int]:
    """The state after each token, starting in state 0."""
    s, out = 0, []
    for t in tokens:
        s = dfa.delta[s][dfa.alphabet.index(t)]
        out.append(s)
    return out


def dfa_outputs(dfa: DFA, tokens: Sequence[Token], emits: str) -> list[Token]:
    """What the DFA-as-RNN emits after each token (no chain of thought)."""
    states = run_dfa(dfa, tokens)
    return states if emits == "state" else [int(s in dfa.accepting) for s in states]


def dfa_chain(dfa: DFA, prompt: Sequence[Token], emits: str, steps: int) -> list[Token]:
    """The DFA-as-RNN's chain of thought: ``steps`` tokens, each read back as the next input."""
    tokens, out = list(prompt), []
    for _ in range(steps):
        last = dfa_outputs(dfa, tokens, emits)[-1]
        out.append(last)
        tokens.append(last)
    return out


def _bits(x: int, width: int) -> list[int]:
    return [(x >> b) & 1 for b in range(width)]


def _width(count: int) -> int:
    return max(1, (count - 1).bit_length())


class _Builder:
    """Gates appended in id order; literals and minterms shared between output bits."""

    def __init__(self, k: int, state_width: int) -> None:
        self.gates: list[Gate] = [Gate("state", i // state_width, i % state_width) for i in range(k)]
        self.one = self.add(Gate("const1"))
        self.neg: dict[int, int] = {}

    def add(self, g: Gate) -> int:
        self.gates.append(g)
        return len(self.gates)

    def literal(self, var: int, value: int) -> int:
        if value:
            return var
        if var not in self.neg:
            self.neg[var] = self.add(Gate("xor", var, self.one))
        return self.neg[var]

    def conj(self, ids: list[int]) -> int:
        acc = ids[0]
        for i in ids[1:]:
            acc = self.add(Gate("and", acc, i))
        return acc

    def xor_all(self, ids: list[int]) -> int:
        if not ids:
            return self.add(Gate("xor", self.one, self.one))  # constant 0
        acc = ids[0]
        for i in ids[1:]:
            acc = self.add(Gate("xor", acc, i))
        return acc

    def copy(self, i: int) -> int:
        """A fresh gate with gate i's value (i AND i): output / next-state gates are the last ones."""
        return self.add(Gate("and", i, i))


def truth_table_circuit(
    f: Callable[[int, int], tuple[int, int]], *, state_width: int, input_width: int, output_bits: int,
    alphabet: Sequence[Token], codes: Sequence[int] | None = None, name: str = "circuit",
) -> Circuit:
    """The circuit of a step ``f(state, input code) -> (output index, next state)`` over every
    state < 2^state_width and every code a token of ``alphabet`` has (``codes``, default its index)."""
    codes = list(range(len(alphabet))) if codes is None else list(codes)
    k = state_width
    bld = _Builder(k, state_width)
    inputs = [bld.add(Gate("input", 0, r)) for r in range(input_width)]
    variables = list(range(1, k + 1)) + inputs
    rows = []
    for s in range(2 ** k):
        for code in sorted(set(codes)):
            out, nxt = f(s, code)
            lits = [bld.literal(v, b) for v, b in zip(variables, _bits(s, k) + _bits(code, input_width))]
            rows.append((bld.conj(lits), _bits(out, output_bits) + _bits(nxt, k)))
    sums = [bld.xor_all([m for m, bits in rows if bits[j]]) for j in range(output_bits + k)]
    for j in sums:
        bld.copy(j)
    return Circuit(tuple(bld.gates), 1, input_width, 1, state_width, output_bits, tuple(alphabet),
                   None if codes == list(range(len(alphabet))) else tuple((c,) for c in codes), name)


def dfa_circuit(dfa: DFA, emits: str = "accept") -> Circuit:
    """The DFA as an RNN circuit (module docstring); states >= n_states (unreachable) stay put."""
    if emits not in ("state", "accept"):
        raise InputError(f"emits must be 'state' or 'accept', got {emits!r}")
    outs: tuple[Token, ...] = tuple(range(dfa.n_states)) if emits == "state" else (0, 1)
    if not set(outs) <= set(dfa.alphabet):
        raise InputError(f"the RNN reads back what it emits {list(outs)}: the DFA's alphabet must contain them")
    sw = _width(dfa.n_states)
    iw = _width(len(dfa.alphabet))

    def step(s: int, code: int) -> tuple[int, int]:
        if s >= dfa.n_states or code >= len(dfa.alphabet):
            return 0, s
        t = dfa.delta[s][code]
        out = t if emits == "state" else int(t in dfa.accepting)
        return outs.index(out), t

    ob = _width(len(dfa.alphabet))
    # the emitted alphabet is the circuit's alphabet: its index is the output; the DFA reads tokens
    # by their index in dfa.alphabet, which we give as the code
    alphabet = tuple(dfa.alphabet)
    if outs != alphabet[: len(outs)]:
        raise InputError("the emitted tokens must be the first tokens of the DFA's alphabet, in order")
    return truth_table_circuit(step, state_width=sw, input_width=iw, output_bits=ob, alphabet=alphabet,
                               name=dfa.name)


def parity_dfa() -> DFA:
    return DFA(2, (0, 1), ((0, 1), (1, 0)), frozenset({1}), "parity")


def mod_count_dfa(k: int) -> DFA:
    """Counting 1s mod k over {0, 1}, accepting count = 0 mod k."""
    if k < 2:
        raise InputError("counting mod k needs k >= 2")
    delta = tuple((s, (s + 1) % k) for s in range(k))
    return DFA(k, (0, 1), delta, frozenset({0}), f"mod{k}")


def random_dfa(seed: int, n_states: int = 3, n_symbols: int = 3) -> DFA:
    rng = random.Random(seed)
    delta = tuple(tuple(rng.randrange(n_states) for _ in range(n_symbols)) for _ in range(n_states))
    accepting = frozenset(s for s in range(n_states) if rng.random() < 0.5)
    return DFA(n_states, tuple(range(n_symbols)), delta, accepting, f"dfa{n_states}x{n_symbols}s{seed}")


NAMED: dict[str, Callable[[], Circuit]] = {
    "parity": lambda: dfa_circuit(parity_dfa()),
    "mod3": lambda: dfa_circuit(mod_count_dfa(3)),
    "mod3-state": lambda: dfa_circuit(DFA(3, (0, 1, 2), tuple((s, (s + 1) % 3, (s + 2) % 3) for s in range(3)),
                                          frozenset({0}), "mod3-state"), emits="state"),
    "dfa": lambda: dfa_circuit(random_dfa(0)),
}


def named_dfa(name: str) -> DFA | None:
    return {"parity": parity_dfa(), "mod3": mod_count_dfa(3), "dfa": random_dfa(0)}.get(name)


def named_circuit(name: str) -> Circuit:
    if name not in NAMED:
        raise InputError(f"unknown circuit {name!r}; named ones: {', '.join(NAMED)} (or give a FILE.json)")
    return NAMED[name]()


def to_text(c: Circuit) -> str:
    """A readable form: a header line, then one gate per line ``id: kind l r``."""
    head = (f"# {c.name}: P={c.size} input {c.input_coords}x{c.input_width} state {c.state_coords}x{c.state_width} "
            f"output_bits {c.output_bits} alphabet {' '.join(map(str, c.alphabet))}")
    return "\n".join([head] + [f"{i}: {g.kind} {g.l} {g.r}" for i, g in enumerate(c.gates, 1)])

