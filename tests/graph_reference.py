"""An IsTree reference for tests, independent of proofs_check.graphs (which uses union-find)."""
from __future__ import annotations

from collections import deque


def bfs_is_tree(n, edges):
    """No union-find, no DFS: BFS from 1 over an adjacency list, plus the edge count."""
    adj = {v: [] for v in range(1, n + 1)}
    for u, v in edges:
        adj[u].append(v)
        adj[v].append(u)
    seen, queue = {1}, deque([1])
    while queue:
        x = queue.popleft()
        for y in adj[x]:
            if y not in seen:
                seen.add(y)
                queue.append(y)
    return len(edges) == n - 1 and len(seen) == n


def recursive_euler_tour(edges, v=1, seen=None):
    """Textbook recursive DFS, neighbours in edge order, writing v again after each child."""
    seen = {v} if seen is None else seen
    tour = [v]
    for a, b in edges:
        if v in (a, b):
            u = b if a == v else a
            if u not in seen:
                seen.add(u)
                tour += recursive_euler_tour(edges, u, seen) + [v]
    return tour
