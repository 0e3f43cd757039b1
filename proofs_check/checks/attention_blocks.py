"""Checks B.13-B.19: the attention building blocks against their Definitions.

Each check draws inputs X that satisfy the lemma's preconditions (X_(d,k) = k in "pos",
X_(3,k) = 1[k = 1] in "tok:<s>", X_(I1,1) = 0, integer matched values, contiguous distinct
counting values for MatchNext), runs the standalone model (layer 1: g, layer 2: the head) with
``ReferenceEvaluator().forward_residual`` at the block's declared p (overflow raises), and
compares the *whole* output residual exactly with the Definition computed here in plain
Python: the written dims hold X + Def(X), g's auxiliary dims hold 1, k^2, x^2, every other dim
is unchanged.  Explicit edge cases (no match, several matches, ties, first position, counting
values at both ends of their range) run besides the random ones.

The semantics below are the Definitions with the errata of notes/errata/attention_blocks.md:
COPY reads position max(k - s, 1); Match-family queries are non-zero; MatchNearest ties go to
the later position; MatchNext falls back to position 1 only when nothing matches.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Callable, Sequence

from hypothesis import strategies as st

from constructions.attention_blocks import (
    BOS, NEXT_MIN_P, ONE, POS_SQ, build_copy_model, build_count_model, build_match_close_model, build_match_model,
    build_match_nearest_model, build_match_next_model, build_next_approx_model, sq,
)
from constructions.blocks import read_dims, residual_input
from proofs_check.evaluator_agreement import block_forward
from constructions.layout import NUM, POS
from constructions.model import Model
from proofs_check.registry import Check, CheckOutcome, Profile, combine, property_check

MAX_L = 24  # sequence lengths drawn (the reference evaluator is O(l^2) exps per head)

Col = dict[str, Fraction]


# ---- plain-Python semantics ---------------------------------------------------------------------


def round_p(v: Fraction, p: int) -> Fraction:
    """ROUND(v, p): nearest multiple of 2^-F, ties to even (Python's round of a Fraction)."""
    scale = 1 << ((p - 1) // 2)
    return Fraction(round(Fraction(v) * scale), scale)


def key(col: Col, dims: Sequence[str]) -> tuple:
    return tuple(col[d] for d in dims)


def copy_source(k: int, s: int) -> int:
    """Def B.7 with erratum B7-E1: position max(k - s, 1) (position 0 does not exist)."""
    return max(k - s, 1)


def count_value(cols: list[Col], k: int, I1, I2, p: int) -> Fraction:
    """ROUND(1 / (sum_(h<=k) 1[X_(I1,h) = X_(I2,k)] + 1), p)  (Def B.8, Lemma B.14)."""
    m = sum(1 for h in range(1, k + 1) if key(cols[h - 1], I1) == key(cols[k - 1], I2))
    return round_p(Fraction(1, m + 1), p)


def matches(cols: list[Col], k: int, I1, I2) -> list[int]:
    return [h for h in range(1, k + 1) if key(cols[h - 1], I1) == key(cols[k - 1], I2)]


def match_first(cols, k, I1, I2) -> int:
    hs = matches(cols, k, I1, I2)
    return min(hs) if hs else 1


def match_last(cols, k, I1, I2) -> int:
    hs = matches(cols, k, I1, I2)
    return max(hs) if hs else 1


def match_nearest(cols, k, I1, I2, target: str) -> int:
    """argmin |h - X_(i,k)| over matches, ties to the later h (erratum B17-E1), else 1."""
    hs = matches(cols, k, I1, I2)
    if not hs:
        return 1
    t = cols[k - 1][target]
    return min(hs, key=lambda h: (abs(h - t), -h))


def next_exact(x: Fraction) -> Fraction:
    """next(x) = 1/(m+1), m = argmin_(k in Z, k >= 1) |x - 1/k| (A.2); next(0) = 0 (the limit)."""
    if x == 0:
        return Fraction(0)
    m0 = max(1, math.floor(1 / x))
    m = min((m0, m0 + 1), key=lambda k: (abs(x - Fraction(1, k)), k))
    return Fraction(1, m + 1)


def match_next(cols, k, I1, I2, a: str) -> int:
    """argmin over matches h of |X_(a,h) - next(X_(a,k))|, else 1 (Def B.12 with erratum B12-E1)."""
    hs = matches(cols, k, I1, I2)
    if not hs:
        return 1
    t = next_exact(cols[k - 1][a])
    dist = sorted((abs(cols[h - 1][a] - t), h) for h in hs)
    assert len(dist) == 1 or dist[0][0] != dist[1][0], "Def B.12 input with a tie: the strategy is wrong"
    return dist[0][1]


# ---- running a block and comparing the whole residual ------------------------------------------


def run_and_compare(model: Model, cols: list[Col], expected_A: dict[str, list[Fraction]], aux: dict[str, list[Fraction]], loose: dict[str, Callable[[int, Fraction], bool]] | None = None) -> None:
    """Z = X' + A(X'): written dims = X + expected_A, aux dims = their targets, loose dims
    satisfy their predicate, every other dim = X.  Raises AssertionError with the first diff."""
    X = residual_input(model, cols)
    Z = block_forward(model, X).residual  # reference, asserted bit-equal to the fast evaluator
    names = model.layout.names
    got = read_dims(model, Z, names)
    for i, dim in enumerate(names):
        for k in range(1, len(cols) + 1):
            g = got[i][k - 1]
            if loose and dim in loose:
                assert loose[dim](k, g), f"{model.meta['block']}: dim {dim} at position {k} = {g} violates its bound"
                continue
            x = Fraction(cols[k - 1].get(dim, 0))
            want = aux[dim][k - 1] if dim in aux else x + (expected_A[dim][k - 1] if dim in expected_A else 0)
            assert g == want, (
                f"{model.meta['block']} (n={model.meta['params']}, p={model.p}, boost={model.meta['boost']}): "
                f"dim {dim} at position {k}: got {g}, Definition gives {want}; input {cols}"
            )


def random_value(data, model: Model, frac: int = 4) -> Fraction:
    """An arbitrary R_p value with |v| <= max/4 (so X + A(X) cannot overflow)."""
    prec = model.precision
    q = data.draw(st.integers(-(prec.max_scaled // 4), prec.max_scaled // 4))
    return Fraction(q, prec.scale)


def fill_free_dims(data, model: Model, cols: list[Col], fixed: set[str]) -> None:
    """Arbitrary values in every dim the lemma does not constrain (aux dims included: g overwrites).
    The runtime also computes the output logits i * X_num of the last position (not part of the
    lemma), so "num" stays below max / (4 n) there."""
    prec = model.precision
    for dim in model.layout.names:
        if dim in fixed:
            continue
        for col in cols:
            if dim == NUM:
                bound = prec.max_scaled // (4 * model.vocab.n)
                col[dim] = Fraction(data.draw(st.integers(-bound, bound)), prec.scale)
            else:
                col[dim] = random_value(data, model)


def base_cols(l: int) -> list[Col]:
    return [{POS: Fraction(k), BOS: Fraction(1 if k == 1 else 0)} for k in range(1, l + 1)]


def aux_targets(model: Model, cols: list[Col], squares: Sequence[str]) -> dict[str, list[Fraction]]:
    out = {ONE: [Fraction(1)] * len(cols)}
    if POS_SQ in model.layout:
        out[POS_SQ] = [Fraction(k * k) for k in range(1, len(cols) + 1)]
    for v in squares:
        out[sq(v)] = [round_p(c[v] * c[v], model.p) for c in cols]
    return out


# ---- B.13 COPY -----------------------------------------------------------------------------------


def _copy_case(n: int, s: int, width: int, l: int, tight: bool, draw_vals, data=None) -> None:
    kw = dict(s=s, width=width, max_len=l if tight else n)
    model = build_at(data, build_copy_model, n, **kw) if data is not None else build_copy_model(n, **kw)
    src, dst = [f"src:{j}" for j in range(width)], [f"dst:{j}" for j in range(width)]
    cols = base_cols(l)
    draw_vals(model, cols, {POS, BOS})
    expected = {b: [cols[copy_source(k, s) - 1][a] for k in range(1, l + 1)] for a, b in zip(src, dst)}
    run_and_compare(model, cols, expected, aux_targets(model, cols, []))


def check_copy(profile: Profile) -> CheckOutcome:
    def body(data) -> None:
        n = data.draw(st.integers(2, profile.max_n), label="n")
        l = data.draw(st.integers(1, min(MAX_L, n)), label="l")
        s = data.draw(st.integers(0, l + 1), label="s")
        width = data.draw(st.integers(1, 2), label="width")
        tight = data.draw(st.booleans(), label="max_len = l")
        _copy_case(n, s, width, l, tight, lambda m, cols, fixed: fill_free_dims(data, m, cols, fixed), data)

    def edges(data=None) -> None:
        ones = lambda m, cols, fixed: [c.setdefault(d, Fraction(k + 1, 2)) for k, c in enumerate(cols) for d in m.layout.names if d not in fixed]
        for n, s, l in [(2, 0, 1), (2, 1, 2), (profile.max_n, 3, MAX_L), (16, 5, 4), (16, 1, 1)]:
            _copy_case(n, s, 1, l, True, ones)

    return combine([property_check(st.data(), body, profile), _explicit(edges, 5)])


def build_at(data, build: Callable[..., Model], n: int, **kw) -> Model:
    """The model at its declared p (the window's low end) or, drawn, at the window's high end,
    the largest p at which softmax still rounds the losing entries to 0."""
    model = build(n, **kw)
    lo, hi = model.meta["p_window"]
    if hi != lo and data.draw(st.booleans(), label="p at the top of the window"):
        model = build(n, p=hi, boost=model.meta["boost"], **kw)
    return model


def _explicit(fn: Callable[[], None], cases: int) -> CheckOutcome:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - a failed edge case fails the check
        return CheckOutcome(False, cases, f"edge case: {type(exc).__name__}: {exc}")
    return CheckOutcome(True, cases)


# ---- B.14 COUNT ----------------------------------------------------------------------------------


def _int_cols(data, l: int, dims: list[str], pool: list[int], first_zero: list[str]) -> list[Col]:
    cols = base_cols(l)
    for k, col in enumerate(cols, start=1):
        for dim in dims:
            col[dim] = Fraction(0) if (k == 1 and dim in first_zero) else Fraction(data.draw(st.sampled_from(pool)))
    return cols


def _pool(data, V: int) -> list[int]:
    """A few non-zero values in [-V, V], extremes included on purpose, so matches happen."""
    size = data.draw(st.integers(1, 3), label="pool size")
    vals = data.draw(st.lists(st.sampled_from([V, -V, 1, -1]) | st.integers(-V, V).filter(bool), min_size=size, max_size=size, unique=True))
    return vals


def _count_case(model: Model, cols: list[Col], width: int) -> None:
    keys, queries = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
    l = len(cols)
    expected = {"count": [count_value(cols, k, keys, queries, model.p) for k in range(1, l + 1)]}
    run_and_compare(model, cols, expected, aux_targets(model, cols, keys + queries))


def check_count(profile: Profile) -> CheckOutcome:
    def body(data) -> None:
        n = data.draw(st.integers(2, profile.max_n), label="n")
        l = data.draw(st.integers(1, min(MAX_L, n)), label="l")
        width = data.draw(st.integers(1, 2), label="width")
        model = build_at(data, build_count_model, n, width=width, max_len=l if data.draw(st.booleans()) else n)
        keys, queries = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
        cols = _int_cols(data, l, keys + queries, _pool(data, n), keys)
        fill_free_dims(data, model, cols, {POS, BOS} | set(keys) | set(queries))
        _count_case(model, cols, width)

    def edges() -> None:
        for n, l, keyvals, qval in [
            (16, 16, [0] + [3] * 15, 3),  # every position matches: 1/16 at the end (exact grid value)
            (16, 12, [0] + [5] * 11, 5),  # 1/12, 1/3, 1/6 ... (rounded)
            (16, 8, [0] + [2] * 7, 7),  # no match at all: 1
            (2, 1, [0], 1),  # first position alone
            (profile.max_n, MAX_L, [0] + [profile.max_n, -profile.max_n] * 11 + [profile.max_n], profile.max_n),  # extreme values
        ]:
            model = build_count_model(n, max_len=l)
            cols = base_cols(l)
            for k, col in enumerate(cols):
                col["key:0"], col["query:0"] = Fraction(keyvals[k]), Fraction(qval)
                for d in model.layout.names:
                    col.setdefault(d, Fraction(0))
            _count_case(model, cols, 1)

    return combine([property_check(st.data(), body, profile), _explicit(edges, 5)])


# ---- B.15 / B.16 / B.17 Match, MatchClose, MatchNearest -----------------------------------------


def _match_family(kind: str, profile: Profile) -> CheckOutcome:
    build = {"match": build_match_model, "match-close": build_match_close_model, "match-nearest": build_match_nearest_model}[kind]

    def pick(cols, k, I1, I2):
        if kind == "match":
            return match_first(cols, k, I1, I2)
        if kind == "match-close":
            return match_last(cols, k, I1, I2)
        return match_nearest(cols, k, I1, I2, "target")

    def case(model: Model, cols: list[Col], width: int, vwidth: int) -> None:
        I1, I2 = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
        I3, I4 = [f"out:{j}" for j in range(vwidth)], [f"val:{j}" for j in range(vwidth)]
        l = len(cols)
        src = [pick(cols, k, I1, I2) for k in range(1, l + 1)]
        expected = {o: [cols[src[k - 1] - 1][v] for k in range(1, l + 1)] for o, v in zip(I3, I4)}
        squares = I1 + I2 + (["target"] if kind == "match-nearest" else [])
        run_and_compare(model, cols, expected, aux_targets(model, cols, squares))

    def body(data) -> None:
        n = data.draw(st.integers(3 if kind == "match-nearest" else 2, profile.max_n), label="n")
        c = data.draw(st.sampled_from([1, 1, 2]), label="c")
        l = data.draw(st.integers(1, min(MAX_L, n**c)), label="l")
        width = data.draw(st.integers(1, 2), label="width")
        vwidth = data.draw(st.integers(1, 2), label="vwidth")
        max_len = l if data.draw(st.booleans()) else min(n**c, 4 * MAX_L)
        model = build_at(data, build, n, width=width, vwidth=vwidth, c=c, max_len=max_len)
        I1, I2 = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
        cols = _int_cols(data, l, I1 + I2, _pool(data, n), I1)
        fixed = {POS, BOS} | set(I1) | set(I2)
        if kind == "match-nearest":
            for col in cols:
                col["target"] = Fraction(data.draw(st.integers(0, max_len)))
            fixed.add("target")
        fill_free_dims(data, model, cols, fixed)
        case(model, cols, width, vwidth)

    def edges() -> None:
        n = 16
        layouts = [
            ([0, 4, 4, 4, 2, 4], [4, 4, 4, 4, 4, 4]),  # several matches (incl. k itself)
            ([0, 1, 2, 3], [5, 5, 5, 5]),  # no match: position 1
            ([0], [7]),  # first position
            ([0, 3, 1, 3, 1, 3, 1, 3], [3, 3, 3, 3, 3, 3, 3, 3]),  # alternating
        ]
        for keys, queries in layouts:
            l = len(keys)
            model = build(n, max_len=max(l, 8))
            cols = base_cols(l)
            for k, col in enumerate(cols):
                col["key:0"], col["query:0"] = Fraction(keys[k]), Fraction(queries[k])
                col["val:0"] = Fraction(100 + k)
                if kind == "match-nearest":
                    col["target"] = Fraction(5)  # ties: 4 and 6, 3 and 7
                for d in model.layout.names:
                    col.setdefault(d, Fraction(0))
            case(model, cols, 1, 1)

    return combine([property_check(st.data(), body, profile), _explicit(edges, 4)])


# ---- B.18 MatchNext ------------------------------------------------------------------------------


def counting_grid(n: int, A: int, p: int) -> list[Fraction]:
    """ROUND(1/j, p) for j = 1..n^A (index j-1)."""
    return [round_p(Fraction(1, j), p) for j in range(1, n**A + 1)]


def _match_next_cols(data, model: Model, n: int, A: int, l: int, width: int) -> list[Col]:
    """Keys from a small pool (0 = filler, never matched); each key value's occurrences get
    counting values ROUND(1/j) with j extending a contiguous run at either end, so every
    prefix multiset S_k is contiguous and distinct (Def B.12, condition 3)."""
    N = n**A
    grid = counting_grid(n, A, model.p)
    pool = _pool(data, n)
    runs: dict[tuple, tuple[int, int]] = {}
    I1, I2 = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
    cols = base_cols(l)
    for k, col in enumerate(cols, start=1):
        kv = tuple(data.draw(st.sampled_from(pool)) for _ in range(width)) if k > 1 else (0,) * width
        j = None
        if k > 1 and kv in runs:
            lo, hi = runs[kv]
            sides = [s for s in ("lo", "hi") if (lo > 1 if s == "lo" else hi < N)]
            if sides:
                side = data.draw(st.sampled_from(sides))
                j = lo - 1 if side == "lo" else hi + 1
                runs[kv] = (j, hi) if side == "lo" else (lo, j)
            else:
                kv = (0,) * width  # run exhausted: this position becomes a filler
        elif k > 1:
            j = data.draw(st.sampled_from([1, N]) | st.integers(1, N), label="run start")
            runs[kv] = (j, j)
        for dim, v in zip(I1, kv):
            col[dim] = Fraction(v)
        col["cnt"] = grid[j - 1] if j is not None else (Fraction(0) if data.draw(st.booleans()) else data.draw(st.sampled_from(grid)))
        other = [v for v in (-n, n, 1, -1) if v not in pool][:1]  # a query value that matches nothing
        qv = [data.draw(st.sampled_from(pool + other)) for _ in range(width)]
        for dim, v in zip(I2, qv):
            col[dim] = Fraction(v)
    return cols


def _match_next_case(model: Model, cols: list[Col], width: int, vwidth: int) -> None:
    I1, I2 = [f"key:{j}" for j in range(width)], [f"query:{j}" for j in range(width)]
    I3, I4 = [f"out:{j}" for j in range(vwidth)], [f"val:{j}" for j in range(vwidth)]
    l = len(cols)
    src = [match_next(cols, k, I1, I2, "cnt") for k in range(1, l + 1)]
    expected = {o: [cols[src[k - 1] - 1][v] for k in range(1, l + 1)] for o, v in zip(I3, I4)}
    aux = aux_targets(model, cols, I1 + I2 + ["cnt"])
    aux.pop(POS_SQ, None)
    # next~ is an approximation: |next~(x) - next(x)| <= (25/16) next(x)^3 + 16 * 2^-F
    slack = Fraction(16, model.precision.scale)
    loose = {"next:cnt": lambda k, g: abs(g - next_exact(cols[k - 1]["cnt"])) <= Fraction(25, 16) * next_exact(cols[k - 1]["cnt"]) ** 3 + slack}
    run_and_compare(model, cols, expected, aux, loose)


def check_match_next(profile: Profile) -> CheckOutcome:
    def body(data) -> None:
        n = data.draw(st.integers(3, profile.max_n), label="n")
        A = data.draw(st.sampled_from([1, 1, 2] if n <= 8 else [1]), label="A")
        l = data.draw(st.integers(1, min(MAX_L, n)), label="l")
        width = data.draw(st.integers(1, 2), label="width")
        vwidth = data.draw(st.integers(1, 2), label="vwidth")
        variant = data.draw(st.sampled_from(["quadratic", "cubic"]), label="next variant")
        model = build_at(data, build_match_next_model, n, A=A, width=width, vwidth=vwidth, max_len=l if data.draw(st.booleans()) else n, variant=variant)
        cols = _match_next_cols(data, model, n, A, l, width)
        fixed = {POS, BOS, "cnt"} | {f"key:{j}" for j in range(width)} | {f"query:{j}" for j in range(width)}
        fill_free_dims(data, model, cols, fixed)
        _match_next_case(model, cols, width, vwidth)

    def edges() -> None:
        n = 16
        model = build_match_next_model(n, max_len=12)
        g = counting_grid(n, 1, model.p)
        # key 5 occurrences with counts 1/2, 1/3, 1/4 ...; queries ask for the successor of
        # their own count, the successor of the last one (missing), x = 1 and x = 1/16, x = 0.
        rows = [  # (key, cnt, query)
            (0, Fraction(0), 5), (5, g[1], 5), (5, g[2], 5), (5, g[3], 5), (7, g[0], 5), (7, g[15], 7),
            (7, g[14], 7), (3, g[15], 9), (5, g[4], 5), (0, Fraction(0), 5), (0, g[0], 7), (2, g[0], 2),
        ]
        cols = base_cols(len(rows))
        for k, (kv, cnt, q) in enumerate(rows):
            cols[k].update({"key:0": Fraction(kv), "cnt": cnt, "query:0": Fraction(q), "val:0": Fraction(10 + k)})
            for d in model.layout.names:
                cols[k].setdefault(d, Fraction(0))
        _match_next_case(model, cols, 1, 1)

    return combine([property_check(st.data(), body, profile), _explicit(edges, 1)])


# ---- B.19 the next approximation ------------------------------------------------------------------


def next_approx_values(n: int, A: int, p: int, variant: str) -> list[tuple[Fraction, Fraction]]:
    """(x, next~(x)) for every x in ROUND(1/[n^A], p), computed by running the FFN model."""
    xs = counting_grid(n, A, p)
    model = build_next_approx_model(n, p, A=A, variant=variant, max_len=len(xs))
    cols = [{"x": x, POS: Fraction(k)} for k, x in enumerate(xs, start=1)]
    for col in cols:
        for d in model.layout.names:
            col.setdefault(d, Fraction(0))
    Z = block_forward(model, residual_input(model, cols)).residual
    return list(zip(xs, read_dims(model, Z, ["next:x"])[0]))


def b19_violations(n: int, A: int, p: int, variant: str, const: Fraction = Fraction(1)) -> list[tuple[Fraction, Fraction, Fraction]]:
    """x where |next~(x) - next(x)| > const * next(x)^3 + 1/n^(10A) (Lemma B.19 with O(.) = 1)."""
    out = []
    for x, got in next_approx_values(n, A, p, variant):
        nx = next_exact(x)
        bound = const * nx**3 + Fraction(1, n ** (10 * A))
        if abs(got - nx) > bound:
            out.append((x, got, nx))
    return out


def lemma_b19_p(n: int, A: int) -> int:
    """The smallest odd p > 10 A log2 n (Def B.12's assumption)."""
    p = math.floor(10 * A * math.log2(n)) + 1
    return p if p % 2 else p + 1


def check_b19(profile: Profile) -> CheckOutcome:
    outcomes, worst = [], Fraction(0)
    sizes = sorted({3, 4, 8, 16, profile.max_n})
    cases = 0
    for n in sizes:
        for A in ([1, 2] if n ** 2 <= 256 else [1]):
            for p in sorted({max(lemma_b19_p(n, A), NEXT_MIN_P["cubic"]), build_match_next_model(n, A=A, max_len=2, variant="cubic").p}):
                bad = b19_violations(n, A, p, "cubic")
                cases += n**A
                if bad:
                    outcomes.append(CheckOutcome(False, n**A, f"n={n} A={A} p={p}: |next~ - next| > next^3 + n^-10A at x = {bad[:3]}"))
                for x, got in next_approx_values(n, A, p, "cubic") if n <= 16 else []:
                    nx = next_exact(x)
                    if nx:
                        worst = max(worst, abs(got - nx) / nx**3)
    out = combine(outcomes) if outcomes else CheckOutcome(True, cases)
    out.measured["max |next~ - next| / next^3 (cubic, n <= 16)"] = float(worst)
    return out


CHECKS: list[Check] = [
    Check("B.13", "COPY block (Def B.7, Lemma B.13)", "A(g(X)+X) = COPY[s, I1, I2](X): dims I2 get X_(I1, max(k-s,1)), all others 0", check_copy),
    Check("B.14", "COUNT block (Def B.8, Lemma B.14)", "A(g(X)+X)_i = ROUND(1/(#{h<=k: X_(I1,h) = X_(I2,k)} + 1), p), 0 elsewhere", check_count),
    Check("B.15", "Match block (Def B.9, Lemma B.15)", "A(g(X)+X)_I3 = X_(I4, first match), position 1 if none", lambda pr: _match_family("match", pr)),
    Check("B.16", "MatchClose block (Def B.10, Lemma B.16)", "A(g(X)+X)_I3 = X_(I4, last match), position 1 if none", lambda pr: _match_family("match-close", pr)),
    Check("B.17", "MatchNearest block (Def B.11, Lemma B.17)", "A(g(X)+X)_I3 = X_(I4, match nearest to X_(i,k)) (ties: later), position 1 if none", lambda pr: _match_family("match-nearest", pr)),
    Check("B.18", "MatchNext block (Def B.12, Lemma B.18)", "A(g(X)+X)_I3 = X_(I4, match whose counting value is nearest to next(X_(a,k))), position 1 if none", check_match_next),
    Check("B.19", "next approximation (Lemma B.19)", "|next~(x) - next(x)| <= next(x)^3 + n^(-10A) for every x in ROUND(1/[n^A], p)", check_b19),
]
