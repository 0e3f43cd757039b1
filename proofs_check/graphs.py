"""Graphs for IsTree (Sec 4.2.2, Def A.2): parsing, tokenization (Eq. 4 / Eq. 6), generators.

A :class:`Graph` is ``n`` (vertices 1..n, App A.1) and an ORDERED edge list, kept exactly as
given: the order is the edge ordering e_1..e_m that Algorithms 1 and 2 use, and each edge keeps
the orientation it was given in, because the tokenization writes it that way.

Tokenization (Eq. 4, Eq. 6, Figure 3)::

    Tokenize(G) = <s> u_1 ~ v_1 u_2 ~ v_2 ... u_m ~ v_m

one ``<s>``, then three tokens per edge, no separator between edges (3m + 1 tokens; 3n - 2
for a tree, as B.6.2 says).  Orientation: App A.3 orders the edges as pairs with u_i < v_i;
Eq. (4) says nothing; Figure 3 writes ``<s> 2 ~ 6 1 ~ 5 3 ~ 5 4 ~ 6 2 ~ 3`` (all u < v).  We
tokenize each edge as given; :meth:`Graph.canonical` orients every edge u < v (A.3's form)
keeping the order.  Every algorithm here treats edges as undirected.

Input forms: text ``"1-5 2-6"`` (optionally ``n=6:`` in front) and JSON
``{"n": N, "edges": [[u, v], ...]}``; n defaults to the largest vertex.  Bad input (a vertex
outside 1..n, a self-loop, a repeated edge in either orientation, something that is not a
number) raises :class:`InputError` saying which edge is wrong.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from constructions.errors import InputError
from constructions.vocab import Token, Vocabulary

BOS, EDGE = "<s>", "~"
YES, NO = "YES", "NO"


def _is_decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes '²' (which ``int`` refuses) and other scripts'
    digits, and ``int`` takes '1_000'; a vertex is written in plain decimal."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class Graph:
    """An undirected simple graph on vertices 1..n with an ordered edge list (as given)."""

    n: int
    edges: tuple[tuple[int, int], ...]

    # ---- construction and validation --------------------------------------------------------
    @staticmethod
    def make(n: int | None, edges: Sequence[Sequence[int]]) -> "Graph":
        """Validate and build; ``n=None`` takes the largest vertex (at least 1)."""
        if isinstance(edges, (str, bytes)) or not isinstance(edges, (list, tuple)):
            raise InputError(f"edges must be a list of [u, v] pairs, got {edges!r}")
        pairs: list[tuple[int, int]] = []
        for i, e in enumerate(edges, 1):
            if isinstance(e, (str, bytes)) or not isinstance(e, (list, tuple)) or len(e) != 2:
                raise InputError(f"edge {i} must be a pair [u, v], got {e!r}")
            u, v = e
            for x in (u, v):
                if isinstance(x, bool) or not isinstance(x, int):
                    raise InputError(f"edge {i} ({u!r}, {v!r}): vertices must be whole numbers, got {x!r}")
            pairs.append((u, v))
        if n is None:
            n = max([1, *(max(u, v) for u, v in pairs)])
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"n (the number of vertices) must be a whole number >= 1, got {n!r}")
        seen: dict[frozenset, int] = {}
        for i, (u, v) in enumerate(pairs, 1):
            for x in (u, v):
                if not 1 <= x <= n:
                    raise InputError(f"edge {i} ({u}-{v}): vertex {x} is outside 1..{n}; vertices are numbered 1..n")
            if u == v:
                raise InputError(f"edge {i} ({u}-{v}) is a self-loop; IsTree graphs are simple")
            key = frozenset((u, v))
            if key in seen:
                raise InputError(
                    f"edge {i} ({u}-{v}) repeats edge {seen[key]} (either orientation counts); give each edge once"
                )
            seen[key] = i
        return Graph(n, tuple(pairs))

    @staticmethod
    def parse(text: str, n: int | None = None) -> "Graph":
        """``"1-5 2-6 3-5"`` (edges separated by spaces or commas), optionally ``"n=6: 1-5 ..."``."""
        if not isinstance(text, str):
            raise InputError(f"a graph in text form must be a string like '1-5 2-6', got {text!r}")
        body = text.strip()
        if body.startswith("n="):
            head, sep, body = body.partition(":")
            if not sep:
                raise InputError("write the vertex count as 'n=6: 1-5 2-6' (colon after n)")
            if not _is_decimal(head[2:].strip()):
                raise InputError(f"cannot read the vertex count in {head!r}; write e.g. 'n=6: 1-5 2-6'")
            n_text = int(head[2:].strip())
            if n is not None and n != n_text:
                raise InputError(f"the text says n={n_text} but n={n} was given")
            n = n_text
        edges = []
        for word in body.replace(",", " ").split():
            parts = word.split("-")
            if len(parts) != 2 or not all(_is_decimal(p) for p in parts):
                raise InputError(f"cannot read edge {word!r}: write an edge as two vertex numbers joined by '-', e.g. 1-5")
            edges.append((int(parts[0]), int(parts[1])))
        return Graph.make(n, edges)

    @staticmethod
    def from_json(data: Any) -> "Graph":
        if not isinstance(data, dict) or "edges" not in data:
            raise InputError(f'a graph in JSON form must be {{"n": N, "edges": [[u, v], ...]}}, got {data!r}')
        extra = set(data) - {"n", "edges"}
        if extra:
            raise InputError(f"unknown graph keys {sorted(extra)}; expected 'n' and 'edges'")
        return Graph.make(data.get("n"), data["edges"])

    def to_json(self) -> dict:
        return {"n": self.n, "edges": [list(e) for e in self.edges]}

    def to_text(self) -> str:
        return " ".join(f"{u}-{v}" for u, v in self.edges)

    # ---- views -------------------------------------------------------------------------------
    @property
    def m(self) -> int:
        return len(self.edges)

    def canonical(self) -> "Graph":
        """A.3's form: every edge written (u, v) with u < v, order kept."""
        return Graph(self.n, tuple((min(u, v), max(u, v)) for u, v in self.edges))

    def reordered(self, order: Sequence[int]) -> "Graph":
        return Graph(self.n, tuple(self.edges[i] for i in order))

    def neighbours_in_order(self, v: int) -> list[tuple[int, int]]:
        """(edge index, other endpoint) of every edge containing v, in edge order."""
        out = []
        for i, (a, b) in enumerate(self.edges):
            if a == v:
                out.append((i, b))
            elif b == v:
                out.append((i, a))
        return out

    def tokens(self) -> list[Token]:
        """Eq. (4)/(6): ``<s> u_1 ~ v_1 ... u_m ~ v_m`` (edges as given)."""
        out: list[Token] = [BOS]
        for u, v in self.edges:
            out += [u, EDGE, v]
        return out

    @staticmethod
    def from_tokens(tokens: Sequence[Token], n: int | None = None) -> "Graph":
        """Inverse of :meth:`tokens`."""
        toks = list(tokens)
        if not toks or toks[0] != BOS or (len(toks) - 1) % 3:
            raise InputError("a tokenized graph is '<s>' followed by triples 'u ~ v'")
        edges = []
        for i in range(1, len(toks), 3):
            u, t, v = toks[i : i + 3]
            if t != EDGE:
                raise InputError(f"token {i + 2} should be '~' in a tokenized graph, got {t!r}")
            edges.append((u, v))
        return Graph.make(n, edges)

    def vocabulary(self, extras: Sequence[str] = ()) -> Vocabulary:
        return Vocabulary.with_extras(self.n, extras)


# ---- the IsTree reference (Def A.2) ----------------------------------------------------------


def components(g: Graph) -> list[set[int]]:
    """Connected components by union-find (independent of the DFS algorithms)."""
    parent = list(range(g.n + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in g.edges:
        parent[find(u)] = find(v)
    groups: dict[int, set[int]] = {}
    for x in range(1, g.n + 1):
        groups.setdefault(find(x), set()).add(x)
    return list(groups.values())


def is_tree(g: Graph) -> bool:
    """Def A.2: G is a tree iff it is connected and has n - 1 edges."""
    return g.m == g.n - 1 and len(components(g)) == 1


def istree_answer(g: Graph) -> str:
    return YES if is_tree(g) else NO


# ---- seeded generators (for data files; Hypothesis strategies live in strategies.py) ----------


def random_tree(rng: random.Random, n: int) -> Graph:
    """Uniform labelled tree via a random Pruefer sequence; edges in random order/orientation."""
    if n == 1:
        return Graph(1, ())
    if n == 2:
        edges = [(1, 2)]
    else:
        seq = [rng.randint(1, n) for _ in range(n - 2)]
        degree = [1] * (n + 1)
        for x in seq:
            degree[x] += 1
        edges = []
        for x in seq:
            leaf = min(v for v in range(1, n + 1) if degree[v] == 1)
            edges.append((leaf, x))
            degree[leaf] -= 1
            degree[x] -= 1
        u, w = [v for v in range(1, n + 1) if degree[v] == 1]
        edges.append((u, w))
    return shuffle_edges(rng, Graph(n, tuple(edges)))


def shuffle_edges(rng: random.Random, g: Graph, orient: bool = True) -> Graph:
    """Random edge order; with ``orient`` also a random orientation per edge."""
    edges = list(g.edges)
    rng.shuffle(edges)
    if orient:
        edges = [(v, u) if rng.random() < 0.5 else (u, v) for u, v in edges]
    return Graph(g.n, tuple(edges))


def random_non_tree_n_minus_1(rng: random.Random, n: int) -> Graph:
    """A graph with exactly n - 1 edges that is not a tree (so it has a cycle and is
    disconnected): a random tree with one edge replaced by a chord that closes a cycle.
    Needs n >= 4 (for n <= 3 every graph with n - 1 edges and a cycle needs a repeated edge)."""
    if n < 4:
        raise InputError(f"a non-tree with n - 1 edges needs n >= 4, got n = {n}")
    while True:
        t = random_tree(rng, n)
        present = {frozenset(e) for e in t.edges}
        chords = [(u, v) for u in range(1, n + 1) for v in range(u + 1, n + 1) if frozenset((u, v)) not in present]
        u, v = rng.choice(chords)
        edges = list(t.edges)
        edges[rng.randrange(len(edges))] = (u, v)
        g = Graph.make(n, edges)
        if not is_tree(g):
            return shuffle_edges(rng, g)
