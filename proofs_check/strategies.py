"""Hypothesis strategies for the task instances (Sec 4.2.1) and IsTree graphs (Sec 4.2.2).

Every strategy takes ``max_n`` (the largest n it draws; checks pass ``profile.max_n``) and
aims at the hard cases: repeated keys, keys at the first/last usable position, multi-digit
numbers (n >= 10), Counting thresholds at / just below / just above the true count; graphs in
every edge order and orientation, trees, cycles, disconnected graphs with exactly n - 1 edges,
too few / too many edges, and the Figure-3 family of Theorem 4.7's proof.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from .graphs import Graph, random_non_tree_n_minus_1, random_tree, shuffle_edges
from .lower_bounds import figure3_graph
from .tasks import ARInstance, CGramInstance, CountingInstance, IndexInstance

if TYPE_CHECKING:
    from constructions.turing_machine import Machine

# ---- task instances -------------------------------------------------------------------------


@st.composite
def _n_and_seq(draw, max_n: int, min_len: int = 1, max_len: int | None = None, min_n: int = 2):
    """n, then a sequence over a (often small) alphabet inside [n] so that keys repeat."""
    n = draw(st.integers(min_n, max(min_n, max_n)))
    max_len = max(min_len, n if max_len is None else max_len)
    alphabet_size = draw(st.sampled_from([1, 2, 3, n]) | st.integers(1, n))
    alphabet = draw(st.lists(st.integers(1, n), min_size=1, max_size=max(1, alphabet_size), unique=True))
    # make sure multi-digit numbers show up when n allows them
    if n >= 10 and draw(st.booleans()):
        alphabet.append(n)
    seq = draw(st.lists(st.sampled_from(alphabet), min_size=min_len, max_size=max_len))
    return n, seq


def _edge_biased_index(draw, hi: int) -> int:
    """An index in 0..hi, often one of the extremes."""
    return draw(st.sampled_from([0, hi]) | st.integers(0, hi))


@st.composite
def index_instances(draw, max_n: int = 16) -> IndexInstance:
    n, seq = draw(_n_and_seq(max_n))
    i = _edge_biased_index(draw, len(seq) - 1) + 1
    return IndexInstance.make(seq, i, n)


@st.composite
def ar_instances(draw, max_n: int = 16) -> ARInstance:
    """Answerable AR instances: the query is the token at some position p <= L - 2, so its first
    occurrence has a next token; p is often 0 (key first) or L - 2 (answer is the last token)."""
    n, seq = draw(_n_and_seq(max_n, min_len=2))
    p = _edge_biased_index(draw, len(seq) - 2)
    return ARInstance.make(seq, seq[p], n)


@st.composite
def ar_unanswerable(draw, max_n: int = 16) -> ARInstance:
    """AR instances with no answer: the key is absent, or occurs only as the last token."""
    n, seq = draw(_n_and_seq(max_n, min_len=1))
    absent = [q for q in range(1, n + 1) if q not in seq]
    last_only = [seq[-1]] if seq.count(seq[-1]) == 1 else []
    options = absent + last_only
    if not options:  # every number occurs: make the last token fresh by dropping its copies
        q = seq[-1]
        seq = [t for t in seq[:-1] if t != q] + [q]
        options = [q]
    return ARInstance.make(seq, draw(st.sampled_from(options)), n, validate=False).validate(require_answer=False)


@st.composite
def cgram_instances(draw, max_n: int = 16, max_c: int = 4) -> CGramInstance:
    """Answerable c-gram instances (2 <= c <= max_c): the query is the (c-1)-gram at a position
    p <= L - c, often the first or the last usable one."""
    c = draw(st.integers(2, max_c))
    n, seq = draw(_n_and_seq(max_n, min_len=c, max_len=max(c, max_n)))
    p = _edge_biased_index(draw, len(seq) - c)
    return CGramInstance.make(seq, seq[p : p + c - 1], n)


@st.composite
def counting_instances(draw, max_n: int = 16) -> CountingInstance:
    """Thresholds at, just below and just above the true count (clipped to 0..n), or random."""
    n, seq = draw(_n_and_seq(max_n, min_len=0))
    q = draw(st.sampled_from(seq) if seq and draw(st.booleans()) else st.integers(1, n))
    count = seq.count(q)
    near = [t for t in (count - 1, count, count + 1) if 0 <= t <= n]
    t = draw(st.sampled_from(near) | st.integers(0, n))
    return CountingInstance.make(seq, q, t, n)


def long_instance(task: str, n: int, rng: random.Random, c: int = 3):
    """One instance of ``task`` with n data tokens (the longest prompt a size-n model takes) over
    an alphabet of about sqrt(n) numbers inside [n] (keys repeat), n itself included (the longest
    number); the query at a random usable position (c-gram: n >= c).  ``task`` in index, ar,
    cgram, count."""
    alphabet = sorted({n, *rng.sample(range(1, n + 1), max(1, min(n, math.isqrt(n) + 1)))})
    seq = [rng.choice(alphabet) for _ in range(n)]
    if task == "index":
        return IndexInstance.make(seq, rng.randint(1, n), n)
    if task == "ar":
        return ARInstance.make(seq, seq[rng.randrange(n - 1)], n)
    if task == "cgram":
        p = rng.randrange(n - c + 1)
        return CGramInstance.make(seq, seq[p : p + c - 1], n)
    q = rng.choice(seq)
    return CountingInstance.make(seq, q, max(0, min(n, seq.count(q) + rng.choice((-1, 0, 1)))), n)


def long_instances(task: str, n: int, c: int = 3) -> st.SearchStrategy:
    """Seeded :func:`long_instance` draws: at ci's derandomized first draw already a full-length
    instance, which Hypothesis' own strategies (shortest first) never give in 20 draws."""
    return st.integers(0, 2**32 - 1).map(lambda s: long_instance(task, n, random.Random(s), c))


# ---- graphs ---------------------------------------------------------------------------------


@st.composite
def shuffled(draw, g: Graph) -> Graph:
    """``g`` in an arbitrary edge order, each edge in an arbitrary orientation."""
    order = draw(st.permutations(range(g.m))) if g.m else []
    flips = draw(st.lists(st.booleans(), min_size=g.m, max_size=g.m))
    edges = [g.edges[i] for i in order]
    return Graph(g.n, tuple((v, u) if f else (u, v) for (u, v), f in zip(edges, flips)))


@st.composite
def _relabelled_tree_edges(draw, n: int) -> list[tuple[int, int]]:
    """A random labelled tree on 1..n: random parents, then a random relabelling."""
    parents = [draw(st.integers(1, v - 1)) for v in range(2, n + 1)]
    perm = draw(st.permutations(range(1, n + 1)))
    return [(perm[p - 1], perm[v - 1]) for v, p in zip(range(2, n + 1), parents)]


@st.composite
def trees(draw, max_n: int = 16, min_n: int = 2) -> Graph:
    n = draw(st.integers(min_n, max(min_n, max_n)))
    return draw(shuffled(Graph(n, tuple(draw(_relabelled_tree_edges(n))))))


def _chords(n: int, present: set) -> list[tuple[int, int]]:
    return [(u, v) for u in range(1, n + 1) for v in range(u + 1, n + 1) if frozenset((u, v)) not in present]


@st.composite
def cyclic_graphs(draw, max_n: int = 16, min_cycles: int = 1) -> Graph:
    """Connected graphs with n - 1 + k edges, k >= min_cycles (so k independent cycles)."""
    n = draw(st.integers(3, max(3, max_n)))
    edges = draw(_relabelled_tree_edges(n))
    chords = _chords(n, {frozenset(e) for e in edges})
    k = draw(st.integers(min(min_cycles, len(chords)), min(len(chords), max(min_cycles, 3))))
    extra = draw(st.lists(st.sampled_from(chords), min_size=k, max_size=k, unique=True)) if chords else []
    return draw(shuffled(Graph(n, tuple(edges + extra))))


@st.composite
def disconnected_n_minus_1(draw, max_n: int = 16) -> Graph:
    """Exactly n - 1 edges, not a tree (hence a cycle AND more than one component); n >= 4:
    a tree plus one chord on c >= 3 of the vertices, a spanning forest on the other n - c."""
    n = draw(st.integers(4, max(4, max_n)))
    perm = draw(st.permutations(range(1, n + 1)))
    c = draw(st.integers(3, n - 1))
    side_a, side_b = perm[:c], perm[c:]
    edges = [(side_a[draw(st.integers(0, i - 1))], side_a[i]) for i in range(1, c)]
    chords = [(u, v) for (u, v) in _chords(n, {frozenset(e) for e in edges}) if u in side_a and v in side_a]
    edges.append(draw(st.sampled_from(chords)))
    edges += [(side_b[draw(st.integers(0, i - 1))], side_b[i]) for i in range(1, len(side_b))]
    return draw(shuffled(Graph(n, tuple(edges))))


@st.composite
def forests(draw, max_n: int = 16) -> Graph:
    """Fewer than n - 1 edges (a tree with at least one edge removed; n >= 2)."""
    n = draw(st.integers(2, max(2, max_n)))
    edges = draw(_relabelled_tree_edges(n))
    keep = draw(st.integers(0, n - 2))
    chosen = draw(st.lists(st.sampled_from(range(n - 1)), min_size=keep, max_size=keep, unique=True))
    return draw(shuffled(Graph(n, tuple(edges[i] for i in sorted(chosen)))))


@st.composite
def arbitrary_graphs(draw, max_n: int = 10) -> Graph:
    """Any simple graph on 1..n (each possible edge in or out), any order and orientation."""
    n = draw(st.integers(2, max(2, max_n)))
    pairs = _chords(n, set())
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=min(len(pairs), 3 * n)))
    return draw(shuffled(Graph(n, tuple(chosen))))


@dataclass(frozen=True)
class Figure3Case:
    x: tuple[int, ...]
    k: int
    graph: Graph

    @property
    def tree_expected(self) -> bool:
        """Sec 4.2.2: the graph is a tree iff x_k != x_(k+1)."""
        return self.x[self.k - 1] != self.x[self.k]


@st.composite
def figure3_cases(draw, max_n: int = 16, any_order: bool = True) -> Figure3Case:
    """Theorem 4.7's family: x in {0,1}^(n-2), k in [n-3]; n >= 4."""
    n = draw(st.integers(4, max(4, max_n)))
    x = tuple(draw(st.lists(st.integers(0, 1), min_size=n - 2, max_size=n - 2)))
    k = draw(st.integers(1, n - 3))
    g = figure3_graph(x, k)
    return Figure3Case(x, k, draw(shuffled(g)) if any_order else g)


def istree_graphs(max_n: int = 16) -> st.SearchStrategy[Graph]:
    """A mix of every graph family above (about half trees)."""
    return st.one_of(
        trees(max_n),
        trees(max_n),
        cyclic_graphs(max_n),
        disconnected_n_minus_1(max_n),
        forests(max_n),
        arbitrary_graphs(min(max_n, 10)),
        figure3_cases(max_n).map(lambda c: c.graph),
    )


def spread_graphs(max_n: int, count: int, seed: int = 0) -> list[Graph]:
    """``count`` (<= max_n - 2) graphs with distinct n spread evenly over 3..max_n, the family
    cycling through tree (m = n - 1), cyclic (a tree plus a chord: m = n), non-tree with n - 1
    edges (n >= 4), forest (m = n - 2) and too many edges (m = n + 1); seeded, every edge order
    shuffled.  Explicit examples for the ``ci`` draws, which derandomization clusters (5.3's 20
    draws had one (n, m) six times)."""
    rng = random.Random(seed)
    out: list[Graph] = []
    for j in range(count):
        n = 3 + round(j * (max(3, max_n) - 3) / max(1, count - 1))
        t = random_tree(rng, n)
        chords = _chords(n, {frozenset(e) for e in t.edges})
        kind = j % 5
        if kind == 0 or (kind == 2 and n < 4) or (kind in (1, 4) and len(chords) < kind // 2 + 1):
            g = t
        elif kind == 1:
            g = Graph(n, t.edges + (rng.choice(chords),))
        elif kind == 2:
            g = random_non_tree_n_minus_1(rng, n)
        elif kind == 3:
            g = Graph(n, t.edges[:-1])
        else:
            g = Graph(n, t.edges + tuple(rng.sample(chords, 2)))
        out.append(shuffle_edges(rng, g))
    return out


def trees_on(n: int) -> st.SearchStrategy[Graph]:
    """Trees on exactly n vertices: first a seeded uniform random tree (Pruefer; so that even one
    derandomized example is a typical tree, not Hypothesis' simplest, the star 1-2 1-3 ...),
    then Hypothesis' own (:func:`trees`)."""
    return st.one_of(st.integers(0, 2**32 - 1).map(lambda s: random_tree(random.Random(s), n)), trees(n, min_n=n))


def non_trees_on(n: int) -> st.SearchStrategy[Graph]:
    """Graphs on exactly n >= 4 vertices with n - 1 edges that are not trees (seeded)."""
    return st.integers(0, 2**32 - 1).map(lambda s: random_non_tree_n_minus_1(random.Random(s), n))


def large_sizes(table: dict[str, tuple[tuple[int, int], ...]], profile_name: str, max_n: int) -> tuple[tuple[int, int], ...]:
    """(N, examples) pairs of a check's per-profile table, N <= max_n (unknown profiles: as ci)."""
    return tuple((n, k) for n, k in table.get(profile_name, table["ci"]) if n <= max_n)


# ---- Turing machines (Thm 5.4, 5.8, 4.1) ------------------------------------------------------


@dataclass(frozen=True)
class TMCase:
    """A machine, its input cells 1..n and a step limit (``proofs_check.turing.simulate``'s
    arguments)."""

    machine: "Machine"
    tape: tuple[int, ...]
    max_steps: int


@st.composite
def machines(draw, min_states: int = 2, max_states: int = 4, min_symbols: int = 2, max_symbols: int = 3,
             undefined: bool = True) -> "Machine":
    """Random machines with B states and S symbols whose state graph reaches a halting transition
    (a ``Z`` letter, or ``---`` when ``undefined``): each transition writes any symbol, moves
    either way and goes to any state or halts; one cell is forced to halt if none does."""
    from constructions.turing_machine import HALT, Machine, Transition

    b = draw(st.integers(min_states, max_states))
    s = draw(st.integers(min_symbols, max_symbols))
    # live next states are drawn first (Hypothesis' simplest choice is a live state, not a halt)
    next_state = st.one_of(st.integers(1, b), st.integers(1, b), st.integers(1, b), st.just(HALT))
    cell = st.builds(Transition, st.integers(0, s - 1), st.sampled_from((1, -1)), next_state)
    if undefined:
        cell = st.one_of(cell, cell, cell, cell, cell, st.none())
    rows = [draw(st.lists(cell, min_size=s, max_size=s)) for _ in range(b)]
    m = Machine(b, s, tuple(map(tuple, rows)))
    if not m.can_halt():
        q, sym = draw(st.integers(1, b)), draw(st.integers(0, s - 1))
        rows[q - 1][sym] = Transition(draw(st.integers(0, s - 1)), draw(st.sampled_from((-1, 1))), HALT)
        m = Machine(b, s, tuple(map(tuple, rows)))
        if not m.can_halt():  # the forced cell is not reachable from A: halt on A's first symbol
            rows[0][0] = Transition(rows[0][0].write if rows[0][0] else 1, 1, HALT)
            m = Machine(b, s, tuple(map(tuple, rows)))
    return m


@st.composite
def tm_cases(draw, max_n: int = 6, max_steps: int = 40, min_steps: int = 1, min_states: int = 2,
             max_states: int = 4, min_symbols: int = 2, max_symbols: int = 3) -> TMCase:
    """A random machine that halts on a random input within ``max_steps`` steps, after at least
    ``min_steps`` (when its state graph allows): the transition table is drawn *lazily along the
    run*, as in the busy-beaver literature's tree normal form: a transition is drawn the first
    time the run needs it, a halting one only from step ``min_steps`` on (always when it is the
    last undefined cell), and the cells the run never uses are drawn at the end (any value,
    ``---`` included).  Rejected (``assume``) when the run loops inside the defined cells."""
    from hypothesis import assume, target

    from constructions.turing_machine import HALT, Machine, Transition

    b = draw(st.integers(min_states, max_states))
    s = draw(st.integers(min_symbols, max_symbols))
    tape = tuple(draw(st.lists(st.integers(0, s - 1), max_size=max_n)))
    limit = draw(st.integers(max(1, min_steps), max(max_steps, min_steps)))
    table: dict[tuple[int, int], Transition | None] = {}
    cells = {i: v for i, v in enumerate(tape, start=1)}
    state, head, steps = 1, 1, 0
    while state != HALT and steps < limit:
        key = (state, cells.get(head, 0))
        steps += 1
        if key not in table:
            last = len(table) == b * s - 1
            halt = last or (steps >= min(min_steps, limit) and draw(st.integers(0, 3)) == 0)
            nxt = HALT if halt else draw(st.integers(1, b))
            if halt and draw(st.integers(0, 4)) == 0:
                table[key] = None  # an undefined transition halts in place
            else:
                table[key] = Transition(draw(st.integers(0, s - 1)), draw(st.sampled_from((1, -1))), nxt)
        tr = table[key]
        if tr is None:
            state = HALT
            break
        cells[head] = tr.write
        head += tr.move
        state = tr.next_state
    assume(state == HALT)
    target(float(steps), label="tm steps")
    live = st.builds(Transition, st.integers(0, s - 1), st.sampled_from((1, -1)), st.integers(0, b))
    rows = tuple(
        tuple(table[(q, a)] if (q, a) in table else draw(st.one_of(live, st.none())) for a in range(s))
        for q in range(1, b + 1)
    )
    return TMCase(Machine(b, s, rows), tape, limit)


# ---- circuits (Thm 4.8) ---------------------------------------------------------------------


@st.composite
def circuits(draw, max_middle: int = 8, max_state_bits: int = 3):
    """Random RNN circuits in Thm 4.8's form (constructions.circuit): state widths 0..3 bits,
    1-2 input coordinates of 1-2 bits (random token codes), 1-2 output bits naming an alphabet
    of 2^O tokens (ints or words), a middle of const / input / AND / XOR gates, and output and
    next-state gates of any non-state kind over earlier gates."""
    from constructions.circuit import Circuit, Gate

    sc = draw(st.integers(0, 2))
    sw = draw(st.integers(1, max(1, max_state_bits // max(sc, 1))))
    ic, iw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ob = draw(st.integers(1, 2))
    alphabet = tuple(range(2 ** ob)) if draw(st.booleans()) else tuple("abcd"[: 2 ** ob])
    codes = tuple(tuple(draw(st.integers(0, 2 ** iw - 1)) for _ in range(ic)) for _ in alphabet)
    k = sc * sw
    gates = [Gate("state", i // sw, i % sw) for i in range(k)]

    def free_gate(i: int) -> Gate:
        kinds = ["const1", "input"] + (["and", "xor"] if i > 1 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "input":
            return Gate("input", draw(st.integers(0, ic - 1)), draw(st.integers(0, iw - 1)))
        if kind == "const1":
            return Gate("const1")
        return Gate(kind, draw(st.integers(1, i - 1)), draw(st.integers(1, i - 1)))

    for _ in range(draw(st.integers(1, max_middle)) + ob + k):
        gates.append(free_gate(len(gates) + 1))
    return Circuit(tuple(gates), ic, iw, sc, sw, ob, alphabet, codes, name="random")


@st.composite
def circuit_runs(draw, max_middle: int = 8, max_n: int = 3, max_steps: int = 2):
    """(circuit, RNN prompt, chain-of-thought steps) for the Thm 4.8 check."""
    c = draw(circuits(max_middle))
    n = draw(st.integers(1, max_n))
    prompt = draw(st.lists(st.sampled_from(c.alphabet), min_size=n, max_size=n))
    return c, prompt, draw(st.integers(1, max_steps))
