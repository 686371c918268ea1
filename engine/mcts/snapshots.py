"""Snapshots: the readable top of a growing tree, for live views and scrubbing."""

from __future__ import annotations

from engine.mcts.selection import explore_term
from engine.mcts.tree import Tree
from engine.mcts.types import ActionStat, SnapshotNode, TreeSnapshot
from engine.tasks.base import Task

__all__ = ["root_actions", "take_snapshot"]


def root_actions(tree: Tree, task: Task) -> tuple[ActionStat, ...]:
    """Every child of the root as it stands now (visits, Q, prior, proven value and status for
    the player to move at the root), most visited first."""
    root_state = tree.state[0]
    return tuple(
        ActionStat(
            tree.action[k],
            task.action_label(root_state, tree.action[k]),
            tree.N[k],
            tree.q(k),
            tree.P[k],
            tree.proven(k),
            tree.status(k),
        )
        for k in sorted(tree.children[0], key=lambda k: -tree.N[k])
    )


def take_snapshot(
    tree: Tree,
    task: Task,
    *,
    iteration: int,
    elapsed_s: float,
    rule: str,
    c: float,
    top_k: int,
    max_depth: int,
    max_nodes: int,
) -> TreeSnapshot:
    """The principal variation plus the ``top_k`` most visited children of every
    shown node, breadth first, at most ``max_depth`` deep and ``max_nodes`` nodes.

    Levels are shown whole or not at all, so the picture stays balanced; past
    the last whole level only the principal variation continues.
    """
    N, W, P = tree.N, tree.W, tree.P
    pv_ids = tree.principal_variation(0, max_depth)
    on_pv = {0, *pv_ids}
    shown: list[int] = [0]
    level = [0]
    while level:
        nxt: list[int] = []
        for node in level:
            if tree.depth[node] < max_depth:
                kids = sorted(tree.children[node], key=lambda k: (k in on_pv, N[k]), reverse=True)
                nxt.extend(kids[:top_k])
        if len(shown) + len(nxt) > max_nodes:
            # the full level would not fit: keep the principal variation going, alone
            nxt = [k for k in nxt if k in on_pv][: max(0, max_nodes - len(shown))]
        shown.extend(nxt)
        level = nxt
    nodes = []
    for i in shown:
        p = tree.parent[i]
        n = N[i]
        q = W[i] / n if n else 0.0
        nodes.append(
            SnapshotNode(
                id=i,
                parent=p,
                depth=tree.depth[i],
                label=tree.label(task, i),
                visits=n,
                value=q,
                prior=P[i],
                exploit=q if p >= 0 else 0.0,
                explore=explore_term(rule, c, N[p], n, P[i]) if p >= 0 else 0.0,
                on_pv=i in on_pv,
                proven=tree.proven(i),
                status=tree.status(i),
            )
        )
    return TreeSnapshot(
        iteration=iteration,
        elapsed_s=elapsed_s,
        tree_size=len(tree),
        nodes=tuple(nodes),
        pv=tuple(tree.label(task, i) for i in pv_ids),
        root_value=tree.q(0),
        best_action_label=tree.label(task, pv_ids[0]) if pv_ids else "",
        actions=root_actions(tree, task),
        root_proven=tree.proven(0),
        root_status=tree.status(0),
    )
