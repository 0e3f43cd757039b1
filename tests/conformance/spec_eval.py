"""An independent implementation of notes/model-format.md and notes/numerics.md ("the spec").

Written from the spec's numbered forward-pass steps only, in exact rationals (Fraction), with
its own file reader (safetensors + JSON header, limbs decoded here) and its own softmax rounding
(mpmath at growing precision, not arb).  It shares no code with constructions/: the
conformance vectors in this folder are what it computes, and the tests check that both of the
project's evaluators reproduce them.  Slow and plain on purpose (tiny models only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

import mpmath
from safetensors import safe_open

LIMB = 31


class SpecOverflow(Exception):
    """Step failed a range check: ``where`` as the spec writes locations, ``value`` exact."""

    def __init__(self, where: str, value: Fraction):
        super().__init__(f"{where}: {value}")
        self.where, self.value = where, value


def location(layer=None, sublayer=None, head=None, position=None, dim=None) -> str:
    """The spec's location text: the present parts, comma-separated; dim as a quoted name."""
    parts = []
    if layer is not None:
        parts.append(f"layer {layer}")
    if sublayer is not None:
        parts.append(sublayer)
    if head is not None:
        parts.append(f"head {head}")
    if position is not None:
        parts.append(f"position {position}")
    if dim is not None:
        parts.append(f"dim {dim!r}")
    return ", ".join(parts)


@dataclass
class SpecModel:
    header: dict
    weights: dict  # tensor name -> nested lists of Fraction (the real weight values)

    @property
    def p(self) -> int:
        return self.header["p"]


def _decode(arr, F: int):
    """int64 limbs (L, *shape) -> nested lists of Fraction q / 2^F, q = sum_k limb_k 2^(31 k)."""
    L = arr.shape[0]
    flat = arr.reshape(L, -1)
    vals = [Fraction(sum(int(flat[k, i]) << (LIMB * k) for k in range(L)), 1 << F) for i in range(flat.shape[1])]
    shape = arr.shape[1:]
    if len(shape) == 1:
        return vals
    rows, cols = shape
    return [vals[r * cols : (r + 1) * cols] for r in range(rows)]


def read_model(path) -> SpecModel:
    with safe_open(str(path), framework="numpy") as f:
        header = json.loads(f.metadata()["proofs_check.model"])
        F = (header["p"] - 1) // 2
        weights = {name: _decode(f.get_tensor(name), F) for name in f.keys()}
    return SpecModel(header, weights)


class Spec:
    """One forward pass under one reading of A.2 (tie "even"/"away", matmul
    "round_once"/"round_products"); overflow always raises (SpecOverflow)."""

    def __init__(self, model: SpecModel, tie: str, matmul: str):
        self.m, self.tie, self.matmul = model, tie, matmul
        self.F = (model.p - 1) // 2
        self.ulp = Fraction(1, 1 << self.F)
        self.max = Fraction((1 << (model.p - 1)) - 1, 1 << self.F)
        self.names = model.header["layout"]
        self.d = len(self.names)

    # ---- A.2 ---------------------------------------------------------------------------------
    def nearest(self, x: Fraction) -> Fraction:
        """Nearest multiple of 2^-F; exact halves by the tie rule."""
        t = x / self.ulp
        lo = t.numerator // t.denominator
        rest = t - lo
        if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (lo % 2 == 1 if self.tie == "even" else x > 0)):
            lo += 1
        return lo * self.ulp

    def checked(self, v: Fraction, where: str) -> Fraction:
        if abs(v) > self.max:
            raise SpecOverflow(where, v)
        return v

    def rounded(self, x: Fraction, where: str) -> Fraction:
        return self.checked(self.nearest(x), where)

    def dot(self, w: list, x: list, bias: Fraction, where: str) -> Fraction:
        """One entry of W x + b: exact then one rounding (round_once), or every product
        rounded and checked in order, then the exact sum plus bias checked (round_products)."""
        if self.matmul == "round_once":
            return self.rounded(sum((a * b for a, b in zip(w, x)), Fraction(0)) + bias, where)
        total = Fraction(0)
        for a, b in zip(w, x):
            total += self.rounded(a * b, where)
        return self.checked(total + bias, where)

    def affine(self, W, X, b, sub, layer, head=None, rows=None):
        """Columns of R(W X + b), position by position, row by row; X, result: lists of columns."""
        out = []
        for c, col in enumerate(X):
            out.append([
                self.dot(W[r], col, b[r] if b is not None else Fraction(0),
                         location(layer, sub, head, self.t0 + c + 1, rows[r] if rows else str(r)))
                for r in range(len(W))
            ])
        return out

    def add(self, A, B, sub, layer):
        return [[self.checked(a + b, location(layer, sub, None, c + 1, self.names[r]))
                 for r, (a, b) in enumerate(zip(ca, cb))] for c, (ca, cb) in enumerate(zip(A, B))]

    # ---- softmax -------------------------------------------------------------------------------
    def softmax(self, scores: list) -> list:
        """ROUND(softmax(s / sqrt(d))) of one column: 1/m rounded if all equal, else mpmath at
        growing precision until every 2^F softmax_j is provably off its rounding midpoint."""
        m = len(scores)
        if all(s == scores[0] for s in scores):
            return [self.nearest(Fraction(1, m))] * m
        bits = 4 * self.F + 128
        while True:
            with mpmath.workprec(bits):
                top = max(scores)
                sq = mpmath.sqrt(self.d)
                e = [mpmath.exp(mpmath.mpf((s - top).numerator) / (s - top).denominator / sq) for s in scores]
                tot = mpmath.fsum(e)
                out, ok = [], True
                for ej in e:
                    v = ej / tot * (1 << self.F)
                    k = int(mpmath.floor(v + mpmath.mpf(1) / 2))
                    if abs(v - k - mpmath.mpf(1) / 2) < mpmath.mpf(2) ** (-bits // 2) or \
                            abs(v - k + mpmath.mpf(1) / 2) < mpmath.mpf(2) ** (-bits // 2):
                        ok = False
                    out.append(Fraction(k, 1 << self.F))
            if ok:
                return out
            bits *= 2

    # ---- layers --------------------------------------------------------------------------------
    def attention(self, li, entry, X):
        names = self.names
        l = len(X)
        total = None
        for hi in range(1, len(entry["heads"]) + 1):
            w = lambda part: self.m.weights[f"layer{li}.head{hi}.{part}"]
            K = self.affine(w("W_K"), X, None, "attention.keys", li, hi)
            Q = self.affine(w("W_Q"), X, None, "attention.queries", li, hi)
            V = self.affine(w("W_V"), X, None, "attention.values", li, hi, names)
            P = []  # P[k] = weights of query position k + 1 over key positions 1..l
            for k in range(l):
                scores = []
                for j in range(k + 1):
                    where = location(li, "attention.scores", hi, k + 1, f"key position {j + 1}")
                    if self.matmul == "round_once":
                        s = self.checked(sum((a * b for a, b in zip(K[j], Q[k])), Fraction(0)), where)
                    else:
                        s = self.dot(K[j], Q[k], Fraction(0), where)
                    scores.append(s)
                P.append(self.softmax(scores) + [Fraction(0)] * (l - k - 1))
            Vrows = [[V[j][r] for j in range(l)] for r in range(self.d)]
            out = self.affine(Vrows, P, None, "attention", li, hi, names)
            total = out if total is None else self.add(total, out, "attention (sum of heads)", li)
        return total if total is not None else [[Fraction(0)] * self.d for _ in X]

    def linear_unit(self, li, X):
        A, B = self.m.weights[f"layer{li}.A"], self.m.weights[f"layer{li}.B"]
        h = [Fraction(0)] * self.d
        out = []
        for t, x in enumerate(X):
            h = [self.dot(A[i] + B[i], h + x, Fraction(0), location(li, "linear_unit", None, t + 1, self.names[i]))
                 for i in range(self.d)]
            out.append(h)
        return out

    def ffn(self, li, entry, Y):
        w = lambda part: self.m.weights[f"layer{li}.ffn.{part}"]
        hidden = entry["ffn"]["hidden_names"] or None
        H1 = self.affine(w("W1"), Y, w("b1"), "ffn.W1", li, None, hidden)
        H2 = self.affine(w("W2"), Y, w("b2"), "ffn.W2", li, None, hidden)
        G = [[self.rounded(max(a, Fraction(0)) * b, location(li, "ffn.product", None, c + 1, hidden[i] if hidden else str(i)))
              for i, (a, b) in enumerate(zip(c1, c2))] for c, (c1, c2) in enumerate(zip(H1, H2))]
        return self.affine(w("W3"), G, w("b3"), "ffn.W3", li, None, self.names)

    # ---- the pass ------------------------------------------------------------------------------
    def embed(self, tokens):
        vocab = self.m.header["vocab"]
        X = []
        for l, tok in enumerate(tokens, start=1):
            col = [Fraction(0)] * self.d
            if isinstance(tok, int):
                col[0] = self.checked(Fraction(tok), location(None, "embedding", None, l, self.names[0]))
            else:
                col[1 + 1 + vocab["specials"].index(tok)] = Fraction(1)  # rank k from 1 -> dim 1 + k
            col[-1] = self.checked(Fraction(l), location(None, "embedding", None, l, self.names[-1]))
            X.append(col)
        return X

    def tokens(self) -> list:
        v = self.m.header["vocab"]
        return list(range(v["min_number"], v["n"] + 1)) + list(v["specials"])

    def run(self, tokens=None, X=None) -> dict:
        """{'residual': columns, 'logits': list, 'next_token': token} or raises SpecOverflow.
        Give ``tokens`` (embedding) or ``X`` (a residual input: list of columns of Fractions)."""
        self.t0 = 0
        if X is None:
            X = self.embed(tokens)
        else:
            X = [[self.checked(v, location(None, "input", None, c + 1, self.names[r])) for r, v in enumerate(col)]
                 for c, col in enumerate(X)]
        for li, entry in enumerate(self.m.header["layers"], start=1):
            if entry["kind"] == "transformer":
                mixed, sub = self.attention(li, entry, X), "attention"
            else:
                mixed, sub = self.linear_unit(li, X), "linear_unit"
            Y = self.add(X, mixed, f"residual after {sub}", li)
            X = self.add(Y, self.ffn(li, entry, Y), "residual after ffn", li)
        l = len(X)
        toks = self.tokens()
        if self.m.header["unembed"]:
            U = self.m.weights["unembed"]
        else:
            U = []
            for tok in toks:
                row = [Fraction(0)] * self.d
                if isinstance(tok, int):
                    row[0] = self.checked(Fraction(tok), location(None, "output embedding W_E", None, l, str(tok)))
                else:
                    row[2 + self.m.header["vocab"]["specials"].index(tok)] = Fraction(1)
                U.append(row)
        self.t0 = l - 1
        logits = self.affine(U, [X[-1]], None, "output logits", None, None, [str(t) for t in toks])[0]
        best = max(range(len(logits)), key=lambda i: (logits[i], -i))
        return {"residual": X, "logits": logits, "next_token": toks[best]}
