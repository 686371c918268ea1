"""Write the task workloads to data/workloads/ (deterministic; rerun after changing a task).

Usage: ``python -m engine.tasks.make_workloads [directory]``

- game24.jsonl: all 1820 puzzles with their solvability.
- tictactoe_tactics.jsonl: reachable positions where not every move is optimal.
- connect4_tactics.jsonl: win-in-1, must-block and win-in-3 positions found by
  seeded random play (``connect4.generate_tactics``).
- connect4_deep.jsonl: win-in-5 positions (a forced win at the mover's third move and
  nothing quicker), where the agents differ (``connect4.generate_deep_tactics``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path

from engine.tasks import connect4, game24, tictactoe

__all__ = [
    "CONNECT4_COUNT",
    "CONNECT4_DEEP_COUNT",
    "CONNECT4_DEEP_SEED",
    "CONNECT4_SEED",
    "DEFAULT_DIR",
    "TICTACTOE_PER_KIND",
    "connect4_deep_rows",
    "connect4_rows",
    "game24_rows",
    "main",
    "tictactoe_rows",
    "write_workloads",
]

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "data" / "workloads"
TICTACTOE_PER_KIND = {"win_in_1": 20, "must_block": 15, "other": 15}
CONNECT4_SEED = 2024
CONNECT4_COUNT = 45
CONNECT4_DEEP_SEED = 2025
CONNECT4_DEEP_COUNT = 30


def game24_rows() -> list[dict[str, object]]:
    """One row per puzzle: ``{"query", "task", "solvable"}``, in lexicographic order."""
    return [
        {"query": "24: " + " ".join(map(str, p)), "task": "game24", "solvable": game24.is_solvable(p)}
        for p in game24.all_puzzles()
    ]


def tictactoe_rows(per_kind: dict[str, int] | None = None) -> list[dict[str, object]]:
    """Tactical positions, evenly spaced over the reachable positions of each kind.

    Rows: ``{"query", "task", "kind", "optimal"}`` with ``optimal`` the sorted
    cell labels.  ``per_kind`` maps a ``tictactoe.classify`` kind to a count.
    """
    per_kind = per_kind or TICTACTOE_PER_KIND
    task = tictactoe.TicTacToe()
    by_kind: dict[str, list[tictactoe.State]] = {k: [] for k in per_kind}
    for state in tictactoe.reachable_states():
        kind = tictactoe.classify(state)
        if kind in by_kind:
            by_kind[kind].append(state)
    rows: list[dict[str, object]] = []
    for kind, count in per_kind.items():
        pool = by_kind[kind]
        for i in range(min(count, len(pool))):
            state = pool[i * len(pool) // count]
            optimal = sorted(tictactoe.cell_label(c) for c in tictactoe.optimal_moves(state))
            rows.append(
                {
                    "query": f"tictactoe: {task.render(state)}",
                    "task": "tictactoe",
                    "kind": kind,
                    "optimal": optimal,
                }
            )
    return rows


def connect4_rows(seed: int = CONNECT4_SEED, n: int = CONNECT4_COUNT) -> list[dict[str, object]]:
    """Tactical positions from ``connect4.generate_tactics``: ``{"query", "task", "kind", "optimal"}``."""
    return [
        {"query": f"connect4: {t.moves}", "task": "connect4", "kind": t.kind, "optimal": list(t.optimal)}
        for t in connect4.generate_tactics(seed, n)
    ]


def connect4_deep_rows(
    seed: int = CONNECT4_DEEP_SEED, n: int = CONNECT4_DEEP_COUNT
) -> list[dict[str, object]]:
    """Win-in-5 positions (``connect4.generate_deep_tactics``): ``{"query", "task", "kind", "optimal"}``."""
    return [
        {"query": f"connect4: {t.moves}", "task": "connect4", "kind": t.kind, "optimal": list(t.optimal)}
        for t in connect4.generate_deep_tactics(seed, n)
    ]


def _write(path: Path, rows: Iterable[dict[str, object]]) -> int:
    lines = [json.dumps(row, separators=(", ", ": ")) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def write_workloads(directory: Path = DEFAULT_DIR) -> dict[str, int]:
    """Write the four workload files into ``directory``; returns rows written per file."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "game24.jsonl": _write(directory / "game24.jsonl", game24_rows()),
        "tictactoe_tactics.jsonl": _write(directory / "tictactoe_tactics.jsonl", tictactoe_rows()),
        "connect4_tactics.jsonl": _write(directory / "connect4_tactics.jsonl", connect4_rows()),
        "connect4_deep.jsonl": _write(directory / "connect4_deep.jsonl", connect4_deep_rows()),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: optional target directory as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    counts = write_workloads(Path(args[0]) if args else DEFAULT_DIR)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
