"""Boolean circuits as data: one recurrent step of an RNN in the form the proof of Thm 4.8 fixes.

Proof of Thm 4.8 (App B.7): "we will unroll the circuit of each recurrent step of the RNN into
P(n) gates ... assign each gate a unique id in [P(n)] and assume the circuit is calculated in the
order of the gate id":

1. each gate i has a type t(i): a constant gate outputting 1, an input gate, a hidden-state gate,
   an AND gate or an XOR gate;
2. its two values l(i), r(i): 0, 0 for a constant gate; for an input gate the coordinate of the
   input embedding and the index of the bit of the value at that coordinate; for a hidden-state
   gate the coordinate of the hidden state and the bit index; for AND / XOR the ids of the two
   gates it depends on;
3. "without loss of generality" the hidden-state gates are the first K = p*Lambda gates, the last
   K gates are the next hidden state, and the O gates before those are the output gates.

Here: ``Circuit.gates[i - 1]`` is gate i (1-based ids, as in the paper).  The hidden state is
``state_coords`` numbers of ``state_width`` bits; gates 1..K (K = state_coords * state_width) are
exactly ``state(c, b)`` in coordinate-major order, and gate P - K + j computes the next value of
the state bit that gate j reads.  The input of one step is the code of one token: ``input_coords``
numbers of ``input_width`` bits (bit 0 = least significant); a token's code is its
``codes`` row (for example the integer entries of its embedding), or, without ``codes``, its index
in ``alphabet`` written in binary in coordinate 0.  The O output gates (bit 0 first) are the
binary index in ``alphabet`` of the token the RNN emits at this step.

An RNN run (the reference is ``proofs_check.circuits``): the state starts at 0; the RNN reads the
prompt tokens one by one and then, with chain of thought, its own emitted tokens.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import MachineError
from .limits import require_gates
from .vocab import Token

KINDS = ("const1", "input", "state", "and", "xor")


@dataclass(frozen=True)
class Gate:
    """t(i), l(i), r(i) of the proof."""

    kind: str
    l: int = 0
    r: int = 0

    def to_json(self) -> list:
        return [self.kind, self.l, self.r]


@dataclass(frozen=True)
class Circuit:
    gates: tuple[Gate, ...]
    input_coords: int
    input_width: int
    state_coords: int
    state_width: int
    output_bits: int
    alphabet: tuple[Token, ...]
    codes: tuple[tuple[int, ...], ...] | None = None
    name: str = "circuit"

    def __post_init__(self) -> None:
        validate(self)

    @property
    def size(self) -> int:
        """P(n): the number of gates."""
        return len(self.gates)

    @property
    def state_bits(self) -> int:
        """K = p * Lambda: gates 1..K read the state, gates P-K+1..P write the next one."""
        return self.state_coords * self.state_width

    def gate(self, i: int) -> Gate:
        return self.gates[i - 1]

    @property
    def output_gates(self) -> range:
        """Ids of the output gates (bit 0 first)."""
        first = self.size - self.state_bits - self.output_bits + 1
        return range(first, first + self.output_bits)

    @property
    def next_state_gates(self) -> range:
        return range(self.size - self.state_bits + 1, self.size + 1)

    def code(self, token: Token) -> tuple[int, ...]:
        """The input coordinates of one token (unsigned, ``input_width`` bits each)."""
        try:
            k = self.alphabet.index(token)
        except ValueError:
            raise MachineError(f"token {token!r} is not in this circuit's alphabet {list(self.alphabet)}") from None
        if self.codes is not None:
            return self.codes[k]
        return (k,) + (0,) * (self.input_coords - 1)

    def token_of_index(self, index: int) -> Token:
        if not 0 <= index < len(self.alphabet):
            raise MachineError(
                f"the circuit's output bits name token index {index}, outside its alphabet of {len(self.alphabet)}"
            )
        return self.alphabet[index]

    # ---- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "input": {"coords": self.input_coords, "width": self.input_width},
            "state": {"coords": self.state_coords, "width": self.state_width},
            "output_bits": self.output_bits,
            "alphabet": list(self.alphabet),
            "gates": [g.to_json() for g in self.gates],
        }
        if self.codes is not None:
            out["codes"] = [list(c) for c in self.codes]
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json())


def _int(value: Any, what: str, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise MachineError(f"{what} must be an integer >= {lo}, got {value!r}")
    return value


def validate(c: Circuit) -> None:
    """Operand ids point backwards, bit indices in range, the state/output layout of the proof."""
    _int(c.input_coords, "input coords", 1), _int(c.input_width, "input width", 1)
    _int(c.state_coords, "state coords", 0), _int(c.state_width, "state width", 1)
    _int(c.output_bits, "output bits", 1)
    if len(c.alphabet) < 1 or len(set(c.alphabet)) != len(c.alphabet):
        raise MachineError("the alphabet must be a non-empty list of distinct tokens")
    if len(c.alphabet) > 2 ** c.output_bits:
        raise MachineError(f"{c.output_bits} output bits cannot name {len(c.alphabet)} tokens")
    if c.codes is not None:
        if len(c.codes) != len(c.alphabet):
            raise MachineError("codes needs one row per alphabet token")
        for row in c.codes:
            if len(row) != c.input_coords or any(not 0 <= v < 2 ** c.input_width for v in row):
                raise MachineError(f"code {row} must be {c.input_coords} unsigned {c.input_width}-bit numbers")
    elif len(c.alphabet) > 2 ** c.input_width:
        raise MachineError(f"{c.input_width} input bits cannot code {len(c.alphabet)} tokens; give codes or widen the input")
    k, p = c.state_bits, require_gates(len(c.gates))
    if p < k + c.output_bits + k:
        raise MachineError(f"{p} gates cannot hold {k} state gates, {c.output_bits} output gates and {k} next-state gates")
    for i, g in enumerate(c.gates, start=1):
        where = f"gate {i} ({g.kind} {g.l} {g.r})"
        if not isinstance(g, Gate) or g.kind not in KINDS:
            raise MachineError(f"{where}: the type must be one of {', '.join(KINDS)}")
        if i <= k:
            want = ((i - 1) // c.state_width, (i - 1) % c.state_width)
            if g.kind != "state" or (g.l, g.r) != want:
                raise MachineError(f"{where}: gates 1..{k} must be the state gates state {want[0]} {want[1]} in order")
            continue
        if g.kind == "state":
            raise MachineError(f"{where}: a state gate after the first {k} gates")
        if g.kind == "const1" and (g.l, g.r) != (0, 0):
            raise MachineError(f"{where}: a constant gate has l = r = 0")
        if g.kind == "input" and not (0 <= g.l < c.input_coords and 0 <= g.r < c.input_width):
            raise MachineError(f"{where}: input coordinate/bit outside {c.input_coords} x {c.input_width}")
        if g.kind in ("and", "xor") and not (1 <= g.l < i and 1 <= g.r < i):
            raise MachineError(f"{where}: operands must be earlier gates 1..{i - 1}")


def circuit_from_json(data: Any) -> Circuit:
    """The inverse of :meth:`Circuit.to_json`, with a clear error for anything malformed."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MachineError(f"the circuit is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MachineError("a circuit is a JSON object with input, state, output_bits, alphabet and gates")
    try:
        if isinstance(data["gates"], list):
            require_gates(len(data["gates"]))
        gates = tuple(_gate(g, i) for i, g in enumerate(data["gates"], start=1))
        codes = data.get("codes")
        return Circuit(
            gates=gates,
            input_coords=data["input"]["coords"], input_width=data["input"]["width"],
            state_coords=data["state"]["coords"], state_width=data["state"]["width"],
            output_bits=data["output_bits"],
            alphabet=tuple(_token(t) for t in data["alphabet"]),
            codes=None if codes is None else tuple(tuple(_int(v, "a code entry") for v in row) for row in codes),
            name=str(data.get("name", "circuit")),
        )
    except (KeyError, TypeError) as exc:
        raise MachineError(f"malformed circuit JSON ({type(exc).__name__}: {exc}); see constructions/circuit.py for the fields") from None


def _gate(g: Any, i: int) -> Gate:
    if not isinstance(g, Sequence) or isinstance(g, str) or len(g) != 3 or g[0] not in KINDS:
        raise MachineError(f"gate {i} must be [kind, l, r] with kind one of {', '.join(KINDS)}, got {g!r}")
    return Gate(g[0], _int(g[1], f"gate {i}'s l"), _int(g[2], f"gate {i}'s r"))


def _token(t: Any) -> Token:
    if isinstance(t, bool) or not isinstance(t, (int, str)):
        raise MachineError(f"alphabet token {t!r} must be a number or a string")
    return t
