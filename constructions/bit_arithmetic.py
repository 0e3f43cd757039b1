"""Two's-complement integer arithmetic lowered to AND / XOR gates of a :class:`~constructions.circuit.Circuit`.

The building material of ``constructions.rnn_circuit`` (compiling a linear RNN's exact R_p step to
the gate form of Thm 4.8's proof): a :class:`GateBuilder` appends gates (constant-1, input,
hidden-state, AND, XOR) with constant folding and structural hashing, and :class:`Vec` is a signed
integer as a list of wires (bit 0 first, two's complement) together with an interval [lo, hi] known
to contain its value; widths follow the intervals, so no bit is computed that the value cannot need.

Circuits of the textbook kind, each checked against Python's integers in ``tests/test_rnn_circuit.py``:
ripple-carry addition / subtraction (full adder: s = a ^ b ^ c, carry = (a & b) ^ (c & (a ^ b)),
the two AND terms never both 1, so their OR is their XOR), multiplication by a constant as
shift-and-add over the constant's non-adjacent form, the signed x unsigned array multiplier, ReLU,
rounding q / 2^k to the nearest integer with ties to even (``numerics.div_round``), the range test
of R_p (``Precision.check``) as a flag wire, signed comparison and multiplexers.

Wires: a gate id (1-based, as in the paper) or one of the constants :data:`ZERO`, :data:`ONE`, which
are folded away and cost no gate unless a gate needs a constant operand (then one const-1 gate).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .circuit import Gate
from .numerics import div_round

ZERO, ONE = 0, -1  # constant wires; gate ids are >= 1
Wire = int


def width_for(lo: int, hi: int) -> int:
    """The fewest two's-complement bits holding every integer of [lo, hi]."""
    w = 1
    while not (-(1 << (w - 1)) <= lo and hi <= (1 << (w - 1)) - 1):
        w += 1
    return w


@dataclass(frozen=True)
class Vec:
    """A signed integer: ``bits`` (bit 0 first, two's complement, the last bit the sign) whose value
    lies in [lo, hi] whenever the circuit's inputs are valid."""

    bits: tuple[Wire, ...]
    lo: int
    hi: int

    @property
    def width(self) -> int:
        return len(self.bits)

    @property
    def sign(self) -> Wire:
        return self.bits[-1]

    def extend(self, w: int) -> "Vec":
        """The same value in w >= width bits (sign-extended)."""
        assert w >= self.width, "extend never cuts; cut with narrow"
        return Vec(self.bits + (self.sign,) * (w - self.width), self.lo, self.hi)

    def narrow(self, lo: int, hi: int) -> "Vec":
        """Tighten the interval to [max(lo, self.lo), min(hi, self.hi)] (a fact the caller knows,
        e.g. the exact range of a product) and drop the bits it makes redundant."""
        lo, hi = max(lo, self.lo), min(hi, self.hi)
        w = width_for(lo, hi)  # the value fits in w bits, so its low w bits are its two's complement
        return Vec(self.bits[:w] if w <= self.width else self.extend(w).bits, lo, hi)

    def shift(self, k: int) -> "Vec":
        """The value times 2^k (k >= 0)."""
        return Vec((ZERO,) * k + self.bits, self.lo << k, self.hi << k)


def constant(c: int) -> Vec:
    w = width_for(c, c)
    return Vec(tuple(ONE if (c >> i) & 1 else ZERO for i in range(w)), c, c)


class GateBuilder:
    """Appends gates in evaluation order; the first ``state_coords * state_width`` are the state gates."""

    def __init__(self, state_coords: int, state_width: int):
        self.state_width = state_width
        self.gates: list[Gate] = [Gate("state", c, b) for c in range(state_coords) for b in range(state_width)]
        self._memo: dict[tuple[str, int, int], int] = {}
        self._one: int | None = None

    def _add(self, kind: str, l: int, r: int) -> int:
        key = (kind, l, r)
        if key not in self._memo:
            self.gates.append(Gate(kind, l, r))
            self._memo[key] = len(self.gates)
        return self._memo[key]

    def state(self, coord: int, bit: int) -> Wire:
        return coord * self.state_width + bit + 1

    def input(self, coord: int, bit: int) -> Wire:
        return self._add("input", coord, bit)

    def one(self) -> int:
        """The gate id of the constant 1 (created on first use)."""
        if self._one is None:
            self._one = self._add("const1", 0, 0)
        return self._one

    def _real(self, a: Wire) -> int:
        assert a != ZERO, "a constant 0 operand is always folded"
        return self.one() if a == ONE else a

    def and_(self, a: Wire, b: Wire) -> Wire:
        if ZERO in (a, b):
            return ZERO
        if a == ONE or a == b:
            return b
        if b == ONE:
            return a
        return self._add("and", min(a, b), max(a, b))

    def xor(self, a: Wire, b: Wire) -> Wire:
        if a == ZERO:
            return b
        if b == ZERO:
            return a
        if a == b:
            return ZERO
        return self._add("xor", min(self._real(a), self._real(b)), max(self._real(a), self._real(b)))

    def not_(self, a: Wire) -> Wire:
        return self.xor(a, ONE)

    def or_(self, a: Wire, b: Wire) -> Wire:
        if ONE in (a, b):
            return ONE
        return self.xor(self.xor(a, b), self.and_(a, b))

    def any_(self, wires: Iterable[Wire]) -> Wire:
        out = ZERO
        for w in wires:
            out = self.or_(out, w)
        return out

    def copy(self, a: Wire) -> int:
        """A fresh gate equal to ``a`` (the proof wants the outputs to be the last gates, in order):
        AND(a, a), and for constants AND(1, 1) / XOR(1, 1); never folded or shared."""
        if a in (ZERO, ONE):
            self.gates.append(Gate("and" if a == ONE else "xor", self.one(), self.one()))
        else:
            self.gates.append(Gate("and", a, a))
        return len(self.gates)

    # ---- integer circuits on Vec ----------------------------------------------------------------

    def add(self, x: Vec, y: Vec, subtract: bool = False) -> Vec:
        """x + y (or x - y): a ripple-carry adder over the result's width (x - y = x + ~y + 1)."""
        lo, hi = (x.lo - y.hi, x.hi - y.lo) if subtract else (x.lo + y.lo, x.hi + y.hi)
        w = width_for(lo, hi)  # the sum mod 2^w is exact since it fits: operands may be cut to w bits
        xs, ys = x.extend(max(w, x.width)).bits[:w], y.extend(max(w, y.width)).bits[:w]
        carry, out = (ONE if subtract else ZERO), []
        for a, b in zip(xs, ys):
            b = self.not_(b) if subtract else b
            t = self.xor(a, b)
            out.append(self.xor(t, carry))
            carry = self.xor(self.and_(a, b), self.and_(t, carry))
        return Vec(tuple(out), lo, hi)

    def signed_sum(self, terms: Sequence[tuple[int, Vec]], const: int = 0) -> Vec:
        """sum of sign * vec over the terms (sign +-1), plus a constant."""
        positive = [v for s, v in terms if s > 0]
        acc = positive[0] if positive else constant(0)
        for v in positive[1:]:
            acc = self.add(acc, v)
        for s, v in terms:
            if s < 0:
                acc = self.add(acc, v, subtract=True)
        return self.add(acc, constant(const)) if const else acc

    def linear_form(self, coefs: Sequence[int], xs: Sequence[Vec], const: int = 0) -> Vec:
        """sum_j coefs[j] * xs[j] + const, every coefficient a constant: shift-and-add over the
        non-adjacent form of each coefficient (digits -1, 0, 1, no two adjacent non-zero)."""
        terms = [(d, x.shift(k)) for c, x in zip(coefs, xs) if c for k, d in enumerate(naf(c)) if d]
        return self.signed_sum(terms, const)

    def relu(self, x: Vec) -> Vec:
        if x.hi <= 0:
            return constant(0)
        if x.lo >= 0:
            return x
        keep = self.not_(x.sign)
        return Vec(tuple(self.and_(b, keep) for b in x.bits[:-1]) + (ZERO,), 0, x.hi)

    def multiply(self, x: Vec, y: Vec) -> Vec:
        """x * y for x >= 0 (x.lo >= 0) and any signed y: the sum over the bits x_k of
        (x_k AND y) * 2^k (a masked two's-complement y is y or 0)."""
        assert x.lo >= 0, "the multiplier's first factor must be non-negative"
        corners = [a * b for a in (x.lo, x.hi) for b in (y.lo, y.hi)]
        partials = []
        for k, xk in enumerate(x.bits[:-1]):  # the sign bit of x is 0
            if xk != ZERO:
                masked = Vec(tuple(self.and_(xk, b) for b in y.bits), min(0, y.lo), max(0, y.hi))
                partials.append((1, masked.shift(k)))
        return self.signed_sum(partials).narrow(min(corners), max(corners))

    def round_shift(self, x: Vec, k: int) -> Vec:
        """The integer nearest to x / 2^k, ties to even (``numerics.div_round(x, 2^k, "even")``):
        floor(x / 2^k) (the bits from k up), plus 1 if the remainder's top bit is set and
        (some lower remainder bit is set or the floor is odd)."""
        x = x.extend(max(x.width, k + 1))
        low, q = x.bits[:k], Vec(x.bits[k:], x.lo >> k, x.hi >> k)
        up = self.and_(low[-1], self.or_(self.any_(low[:-1]), q.bits[0])) if k else ZERO
        lo, hi = div_round(x.lo, 1 << k), div_round(x.hi, 1 << k)
        return self.add(q, Vec((up, ZERO), 0, 1)).narrow(lo, hi) if up != ZERO else q.narrow(lo, hi)

    def out_of_range(self, x: Vec, bound: int) -> tuple[Vec, Wire]:
        """(x cut to fit [-bound, bound], flag = 1 iff x lies outside), bound = 2^(w-1) - 1:
        x fits iff its bits from w-1 up all equal the sign and x != -2^(w-1)."""
        if -bound <= x.lo and x.hi <= bound:
            return x, ZERO
        if x.lo > bound or x.hi < -bound:
            return constant(0), ONE  # always outside: the value is never used
        w = width_for(-bound, bound)
        x = x.extend(max(x.width, w))
        top = x.bits[w - 1]
        wide = self.any_(self.xor(b, top) for b in x.bits[w:])
        lowest = self.and_(top, self.not_(self.any_(x.bits[: w - 1])))
        return Vec(x.bits[:w], max(x.lo, -bound), min(x.hi, bound)), self.or_(wide, lowest)

    def greater(self, x: Vec, y: Vec) -> Wire:
        """1 iff x > y (signed): the sign of y - x."""
        return self.add(y, x, subtract=True).sign

    def mux(self, sel: Wire, x: Vec, y: Vec) -> Vec:
        """sel ? x : y, bit by bit y ^ (sel & (x ^ y))."""
        w = max(x.width, y.width)
        bits = tuple(self.xor(b, self.and_(sel, self.xor(a, b))) for a, b in zip(x.extend(w).bits, y.extend(w).bits))
        return Vec(bits, min(x.lo, y.lo), max(x.hi, y.hi))


def naf(c: int) -> list[int]:
    """The non-adjacent form of c: digits in {-1, 0, 1}, bit 0 first, sum d_k 2^k = c."""
    digits = []
    while c:
        if c & 1:
            d = 2 - (c & 3)  # c = 1 mod 4 -> 1, c = 3 mod 4 -> -1
            c -= d
        else:
            d = 0
        digits.append(d)
        c >>= 1
    return digits


def prune(gates: Sequence[Gate], keep_first: int, roots: Iterable[int]) -> tuple[Gate, ...]:
    """Drop gates no root depends on (the first ``keep_first`` gates stay) and renumber."""
    live: set[int] = set()
    stack = list(roots)
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            g = gates[i - 1]
            if g.kind in ("and", "xor"):
                stack += [g.l, g.r]
    live |= set(range(1, keep_first + 1))
    new_id: dict[int, int] = {}
    out: list[Gate] = []
    for i, g in enumerate(gates, start=1):
        if i in live:
            if g.kind in ("and", "xor"):
                g = Gate(g.kind, new_id[g.l], new_id[g.r])
            out.append(g)
            new_id[i] = len(out)
    return tuple(out)
