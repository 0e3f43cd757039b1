"""Reference algorithms for IsTree: Algorithm 1 (App B.6.2), the walk of the Lemma B.27
Transformer, and Algorithm 2 (App B.10, page 38; used by Theorem 5.3 / App B.9).

All three read the graph's edge order e_1..e_m as given (:class:`graphs.Graph`) and start at
vertex v_1 = 1 ("the Euler tour of the connected component of vertex 1", Sec 4.2.2).

* :func:`algorithm1` - Algorithm 1 literally; its yielded sequence A(G).
* :func:`lemma_b29_answer` - "IsTree(G) iff G has n-1 edges and A(G) has 2n-1 vertices".
* :func:`cot_algorithm1` - the chain of thought of Section 6: A(G) then YES/NO.
* :func:`lemma_b27_chain` - what the B.6.2 Transformer emits (stops with NO at the first
  revisit; checks the position at the end).
* :func:`algorithm2` - the retrieval trace of Algorithm 2 (compact queries, Section 6), with
  :func:`query_regex` / :func:`replay_retrievals` to check every retrieval result against
  Python's ``re`` (Def A.5), independently of the algorithm.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from constructions.vocab import Token, detokenize

from .graphs import EDGE, NO, YES, Graph

START, END, FAILED = "<StartSearch>", "<EndSearch>", "FAILED"
RECORD = "-"  # Algorithm 2's "v - v''" parent record (line 33); an extra special token
ROOT = 1


# ---- Algorithm 1 ----------------------------------------------------------------------------


def algorithm1(g: Graph, root: int = ROOT) -> list[int]:
    """Algorithm 1 (Depth-First Search), literally; returns the yielded sequence A(G).

    S1 = [v_1], S2 = {}; while S1 is not empty: v = top(S1), yield v; if v has a neighbour u
    not in S1 u S2, push the u whose edge (u, v) comes first in the edge order; else pop v
    from S1 to S2.

    On a tree this is the Euler tour (2n - 1 vertices).  On any graph it is the Euler tour of
    a DFS spanning tree of the component of v_1 (Lemma B.29): 2c - 1 vertices for a component
    of c vertices.  It never stops early: a non-tree edge is skipped silently (its far end is
    already in S1 u S2), so on a non-tree it yields the whole tour of vertex 1's component and
    nothing marks the cycle.  (Algorithm 1 needs no n; an isolated v_1 yields just [v_1].)
    """
    if not 1 <= root <= g.n:
        raise ValueError(f"root {root} is not a vertex of a graph on 1..{g.n}")
    s1, s2 = [root], set()
    on_s1 = {root}
    tour: list[int] = []
    adj = {v: g.neighbours_in_order(v) for v in range(1, g.n + 1)}
    while s1:
        v = s1[-1]
        tour.append(v)
        nxt = next((u for _, u in adj[v] if u not in on_s1 and u not in s2), None)
        if nxt is not None:
            s1.append(nxt)
            on_s1.add(nxt)
        else:
            s1.pop()
            on_s1.discard(v)
            s2.add(v)
    return tour


def lemma_b29_answer(g: Graph) -> str:
    """Lemma B.29: IsTree(G) = YES iff m = n - 1 and |A(G)| = 2n - 1."""
    return YES if g.m == g.n - 1 and len(algorithm1(g)) == 2 * g.n - 1 else NO


def cot_algorithm1(g: Graph) -> list[Token]:
    """Section 6's CoT target: A(G) (the full yielded sequence, also on non-trees), then the
    answer of Lemma B.29.  The model input is ``g.tokens()``; this is what follows it."""
    return [*algorithm1(g), lemma_b29_answer(g)]


# ---- the Lemma B.27 Transformer's walk (B.6.2, steps 5-11) ----------------------------------


def lemma_b27_chain(g: Graph, literal_end_check: bool = True) -> list[Token]:
    """The chain of thought the B.6.2 Transformer is built to emit after Tokenize(G).

    v_1 = 1.  At v_l with father f(v_l) (the predecessor of the first appearance of v_l; none
    for v_1): if v_l is new (v_(l-1) = f(v_l) or l = 1) take the first edge containing v_l,
    else (back from child v_(l-1)) the first edge containing v_l after edge {v_l, v_(l-1)};
    skip the father edge once (Layer 8); the potential next vertex is the far end of that
    edge, or f(v_l) when there is none.  Step 11:

    * next vertex is f(v_l), or never appeared -> emit it;
    * next vertex appeared before and is not f(v_l) -> emit NO (cycle) and stop;
    * v_l = 1 and no next edge (f(1) = 0) -> the tour is over: emit YES iff the position of
      v_l is 3n - 2 + 2n - 1 = 5n - 3, else NO.

    On a tree the vertices equal :func:`algorithm1` (the Euler tour).  On a non-tree the walk
    stops at the first edge that closes a cycle in vertex 1's component (the vertices before NO
    are the walk so far); if that component is a tree the whole tour is emitted and only the
    position check decides.  ``literal_end_check`` uses the position test exactly as printed;
    it compares 3m + 1 + r with 5n - 3 and so can say YES for a non-tree (erratum B27-E3: vertex 1
    isolated, n = 7, ten edges among 2..7).  ``literal_end_check=False`` applies Lemma B.29
    instead (m = n - 1 and r = 2n - 1).
    """
    adj = {v: g.neighbours_in_order(v) for v in range(1, g.n + 1)}
    father: dict[int, int | None] = {ROOT: None}
    chain: list[int] = [ROOT]
    while True:
        v = chain[-1]
        f = father[v]
        prev = chain[-2] if len(chain) >= 2 else None
        edges = adj[v]
        if prev is None or prev == f:
            cands = edges
        else:
            idx = next(i for i, (_, u) in enumerate(edges) if u == prev)
            cands = edges[idx + 1 :]
        cands = [(e, u) for e, u in cands if u != f]  # skip the father edge (once: simple graph)
        if cands:
            nxt = cands[0][1]
            if nxt in father:  # appeared before and is not f(v): a cycle
                return [*chain, NO]
            father[nxt] = v
            chain.append(nxt)
        elif f is not None:
            chain.append(f)
        else:  # back at vertex 1 with nothing left
            r = len(chain)
            if literal_end_check:
                position = 3 * g.m + 1 + r
                ok = position == 5 * g.n - 3
            else:
                ok = g.m == g.n - 1 and r == 2 * g.n - 1
            return [*chain, YES if ok else NO]


# ---- Algorithm 2 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One search of the trace: tokens[start] is <StartSearch>, the result is tokens[result_at]."""

    start: int
    kind: str  # "parent" (r2, r4) | "first_edge" (r1 fresh) | "next_edge" (r1 back, r3)
    args: tuple[int, ...]
    result: Token
    result_at: int


@dataclass
class RetrievalTrace:
    """Algorithm 2's list L: the tokens the retrieval-augmented RNN emits after Tokenize(G),
    with the retrieval results in place, ending with YES or NO."""

    tokens: list[Token] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    @property
    def answer(self) -> Token:
        return self.tokens[-1]

    def _search(self, kind: str, args: tuple[int, ...], body: list[Token], result: Token) -> None:
        start = len(self.tokens)
        self.tokens += [START, *body, END, result]
        self.queries.append(Query(start, kind, args, result, len(self.tokens) - 1))


def _parent_query(v: int) -> list[Token]:
    return [RECORD, v]


def _first_edge_query(v: int) -> list[Token]:
    return [EDGE, v]


def _next_edge_query(a: int, v: int) -> list[Token]:
    return [a, EDGE, v]


def algorithm2(g: Graph, literal_line13: bool = False) -> RetrievalTrace:
    """Algorithm 2 (DFS with retrieving), as the list L of tokens.

    Queries are written in Section 6's compact form ("only the vertices and special tokens of
    the regular expression"); :func:`query_regex` gives the Python regex each stands for:

    * ``<StartSearch> - v <EndSearch>``     r2 / r4: the u of the first record "u - v" (f(v)),
      FAILED if v was never discovered (or v = v_1, which has no record);
    * ``<StartSearch> ~ v <EndSearch>``     r1 (v new): far end of the first edge containing v;
    * ``<StartSearch> a ~ v <EndSearch>``   r1 (back from child a) / r3 (skipping the father a):
      far end of the first edge containing v after edge {a, v}, FAILED if none.

    Per visit of v (lines 3-40): ``v``, the parent search and its result f(v), an edge search
    and its result v''; when v'' = f(v) a second edge search (skip the father edge); then if
    v'' = FAILED, v is finished (pop); otherwise the parent search for v'' and

    * v'' never discovered: result FAILED, then the record ``v - v''``, and v'' is pushed;
    * v'' still on S1 (a back edge: a cycle): result f(v'') (FAILED when v'' = v_1), then
      ``NO`` - the trace stops there.

    After S1 empties: ``YES`` iff S2 holds all n vertices, else ``NO`` (line 42).

    Readings (see notes/errata/tasks.md): line 31's trailing "0" is dropped (lines 33/37 push
    the retrieval result themselves); line 36's "predecessor of v" is read as of v''; line 13
    for the fresh case (v' = f(v)) is read as "v has a neighbour" so that the pushed v'' is
    what the r1 retrieval really returns.  ``literal_line13=True`` keeps the printed
    condition ("a neighbour u != f(v)", choose the first such u); its trace then disagrees
    with RETRIEVE (e.g. at a leaf it pushes FAILED where r1 returns the father).
    """
    trace = RetrievalTrace()
    adj = {v: g.neighbours_in_order(v) for v in range(1, g.n + 1)}
    s1: list[int] = [ROOT]
    s2: list[int] = []
    first_pred: dict[int, int] = {}
    v_prime: Token = FAILED

    def after(v: int, a: int) -> Token:
        idx = next(i for i, (_, u) in enumerate(adj[v]) if u == a)
        rest = adj[v][idx + 1 :]
        return rest[0][1] if rest else FAILED

    while s1:
        v = s1[-1]
        trace.tokens.append(v)
        f: Token = first_pred.get(v, FAILED)
        trace._search("parent", (v,), _parent_query(v), f)
        if v_prime != f:
            v2 = after(v, v_prime)  # v_prime is a child of v
            trace._search("next_edge", (v_prime, v), _next_edge_query(v_prime, v), v2)
        else:
            if literal_line13:
                cand = [u for _, u in adj[v] if u != f]
            else:
                cand = [u for _, u in adj[v]]
            v2 = cand[0] if cand else FAILED
            trace._search("first_edge", (v,), _first_edge_query(v), v2)
        if v2 != FAILED and v2 == f:
            v2 = after(v, v2)
            trace._search("next_edge", (f, v), _next_edge_query(f, v), v2)
        if v2 == FAILED:
            s1.pop()
            s2.append(v)
            v_prime = v
            continue
        on_s1 = v2 in s1
        result = first_pred.get(v2, FAILED)
        trace._search("parent", (v2,), _parent_query(v2), result)
        if not on_s1:
            if v2 in s2:  # impossible in an undirected DFS before a NO (see docstring)
                raise AssertionError(f"Algorithm 2 reached finished vertex {v2} from {v}")
            trace.tokens += [v, RECORD, v2]
            s1.append(v2)
            first_pred[v2] = v
            v_prime = v
        else:
            trace.tokens.append(NO)
            return trace
    trace.tokens.append(YES if len(s2) == g.n else NO)
    return trace


def query_regex(body: Sequence[Token]) -> str:
    """The Python regular expression a compact query stands for (our rendering; Def A.5 runs
    ``re.search(pattern, Detokenize(prefix)).group(1)``).

    The string is ``<s> u_1 ~ v_1 ... u_m ~ v_m`` followed by the trace so far, tokens joined by
    single spaces.  Edge searches are confined to the graph part (``^<s>[^<]*?``: the graph
    holds no other '<'), match whole tokens, and capture the far end in ONE group whichever
    way the edge is written; parent searches match the first record ``u - v`` anywhere.
    """
    b = list(body)
    def tok(v: Token) -> str:
        return re.escape(str(v))

    def any_edge_far_end(v: Token) -> str:
        # at a token start: either "v ~ X" (consume "v ~ ", capture X) or "X ~ v" (capture X)
        return rf"(?<!\S)(?:{tok(v)} ~ (?=\d)|(?=\d+ ~ {tok(v)}(?!\S)))(\d+)(?!\S)"

    if len(b) == 2 and b[0] == RECORD:
        return rf"(?<!\S)(\d+) - {tok(b[1])}(?!\S)"
    if len(b) == 2 and b[0] == EDGE:
        return rf"^<s>[^<]*?{any_edge_far_end(b[1])}"
    if len(b) == 3 and b[1] == EDGE:
        a, v = b[0], b[2]
        anchor = rf"(?<!\S)(?:{tok(a)} ~ {tok(v)}|{tok(v)} ~ {tok(a)})(?!\S)"
        return rf"^<s>[^<]*?{anchor}[^<]*?{any_edge_far_end(v)}"
    raise ValueError(f"not a compact Algorithm 2 query: {b!r}")


def replay_retrievals(graph_tokens: Sequence[Token], trace: RetrievalTrace) -> list[tuple[Query, Token]]:
    """Run every query of ``trace`` with Python's ``re`` on Detokenize of everything before its
    <StartSearch> (Def A.5); return (query, what RETRIEVE gives) for each: group(1) as a
    number, or FAILED when nothing matches."""
    full = [*graph_tokens, *trace.tokens]
    offset = len(graph_tokens)
    out = []
    for q in trace.queries:
        s = offset + q.start
        body = full[s + 1 : full.index(END, s)]
        m = re.search(query_regex(body), detokenize(full[:s]))
        got: Token = FAILED if m is None or m.group(1) is None else int(m.group(1))
        out.append((q, got))
    return out


# ---- the paper's printed regular expressions, for the errata ----------------------------------

PAPER_R1_FRESH = r"\b(\S+)\b ~ \b{v}\b|\b{v}\b ~ \b(\S+)\b"
PAPER_R1_BACK = r"(\b{a}\b ~ \b{v}\b|\b{v}\b ~ \b{a}\b).*?(\b(\S+)\b ~ \b{v}\b|\b{v}\b ~ \b(\S+)\b)"


def paper_regex(template: str, **values: int) -> str:
    """Algorithm 2's r1 as printed, with '~' spaced as Detokenize writes it."""
    return template.format(**values)
