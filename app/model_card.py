"""The GRU router's model card: its training report read tolerantly from ``data/models``.

Pure (no streamlit import).  ``python -m engine train-router`` writes ``router_report.json``
(and ``.md``) next to the weights ``router_gru.npz``; :func:`router_report` reads them on every
call, so the Routing page shows a report as soon as training writes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.models import AGENTS

__all__ = [
    "CARD_ROUTERS",
    "MODELS_DIR",
    "ROUTER_REPORT",
    "ROUTER_WEIGHTS",
    "CardRow",
    "RouterReport",
    "card_rows",
    "parse_router_report",
    "router_report",
    "router_weights_present",
]

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
#: Where training writes the report (read at call time: tests point these elsewhere).
ROUTER_REPORT = MODELS_DIR / "router_report.json"
ROUTER_WEIGHTS = MODELS_DIR / "router_gru.npz"


@dataclass(frozen=True, slots=True)
class RouterReport:
    """The GRU router's training report (``data/models/router_report.json`` and ``.md``, written
    by ``python -m engine train-router``), read tolerantly: a missing entry is None or empty.

    ``accuracy`` and ``train_accuracy`` map gru / rules / majority / always_<agent> to their
    label agreement on the held-out and training steps (``accuracy_by_task``: held out, per
    task); ``confusion`` is the GRU's held-out confusion matrix (rows: label, columns:
    prediction) over ``labels``.  ``end_to_end`` maps each router replayed over the held-out
    queries' recorded runs (rules, gru, hybrid, fixed:<agent>, best) to its numbers
    (correct_share, mean_ms, p50_ms, p95_ms, mean_steps, missed, regret_ms, n, correct);
    ``end_to_end_by_task`` the same per task.
    """

    path: Path
    raw: dict[str, Any]
    markdown: str | None
    weights_present: bool
    architecture: str | None
    queries: int | None
    train_queries: int | None
    held_out_queries: int | None
    train_steps: int | None
    held_out_steps: int | None
    by_task: dict[str, int]
    train_label_counts: dict[str, int]
    majority_class: str | None
    accuracy: dict[str, float]
    train_accuracy: dict[str, float]
    confusion: list[list[float]] | None
    labels: list[str]
    training: dict[str, Any]
    accuracy_by_task: dict[str, dict[str, float]] = field(default_factory=dict)
    end_to_end: dict[str, dict[str, float | None]] = field(default_factory=dict)
    end_to_end_by_task: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    end_to_end_queries: int | None = None
    end_to_end_latency: str | None = None


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _accuracies(section: dict[str, Any]) -> dict[str, float]:
    """``accuracy_<router>`` entries as {router: accuracy}."""
    return {
        k.removeprefix("accuracy_"): float(v)
        for k, v in section.items()
        if k.startswith("accuracy_") and isinstance(v, int | float) and math.isfinite(v)
    }


def _matrix(value: Any) -> list[list[float]] | None:
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return [[float(c) for c in r] for r in value]
    return None


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _e2e_rows(section: Any) -> dict[str, dict[str, float | None]]:
    """{router: {figure: number or None}} from an ``end_to_end`` routers section."""
    if not isinstance(section, dict):
        return {}
    return {
        str(name): {k: _number(v) for k, v in row.items()}
        for name, row in section.items()
        if isinstance(row, dict)
    }


def parse_router_report(
    raw: dict[str, Any], path: Path, markdown: str | None = None, *, weights_present: bool = False
) -> RouterReport:
    """The report's figures by name (see RouterReport); entries it lacks stay empty.
    ``weights_present`` says whether the trained weights exist beside the report."""
    model, data, held, fit, e2e = (
        _section(raw, k) for k in ("model", "data", "held_out", "train_fit", "end_to_end")
    )
    labels = model.get("agents")
    return RouterReport(
        path=path,
        raw=raw,
        markdown=markdown,
        weights_present=weights_present,
        architecture=model.get("architecture") if isinstance(model.get("architecture"), str) else None,
        queries=_int(data.get("queries")),
        train_queries=_int(data.get("train_queries")),
        held_out_queries=_int(data.get("held_out_queries")),
        train_steps=_int(data.get("train_steps")),
        held_out_steps=_int(held.get("steps")),
        by_task={k: v for k, v in _section(data, "by_task").items() if _int(v) is not None},
        train_label_counts={
            k: v for k, v in _section(data, "train_label_counts").items() if _int(v) is not None
        },
        majority_class=data.get("majority_class") if isinstance(data.get("majority_class"), str) else None,
        accuracy=_accuracies(held),
        train_accuracy=_accuracies(fit),
        confusion=_matrix(held.get("confusion_matrix")),
        labels=[str(x) for x in labels] if isinstance(labels, list) else list(AGENTS),
        training=_section(raw, "training"),
        accuracy_by_task={
            str(task): _accuracies(section)
            for task, section in _section(held, "by_task").items()
            if isinstance(section, dict)
        },
        end_to_end=_e2e_rows(e2e.get("routers")),
        end_to_end_by_task={str(task): _e2e_rows(rows) for task, rows in _section(e2e, "by_task").items()},
        end_to_end_queries=_int(e2e.get("queries")),
        end_to_end_latency=e2e.get("latency") if isinstance(e2e.get("latency"), str) else None,
    )


def router_report(path: Path | None = None) -> RouterReport | None:
    """The trained router's report (default :data:`ROUTER_REPORT`), or None when it has not been
    trained yet.  Read on every call (cheap) so the page shows a report as soon as training writes
    it.  Raises ValueError when the file exists but is not a JSON object, OSError when it cannot
    be read."""
    path = path or ROUTER_REPORT
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    md_path = path.with_suffix(".md")
    markdown = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    return parse_router_report(raw, path, markdown, weights_present=router_weights_present())


def router_weights_present() -> bool:
    """Whether the GRU's trained weights (:data:`ROUTER_WEIGHTS`) exist (gru and hybrid can run)."""
    return ROUTER_WEIGHTS.exists()


#: The model card's routers, in order, and the label-agreement entry each one's predictions are
#: scored by (None: not scored on labels -- hybrid was not evaluated on them, and ``best`` *is*
#: the labels).
CARD_ROUTERS: dict[str, str | None] = {
    "gru": "gru",
    "hybrid": None,
    "rules": "rules",
    "fixed:hrm": "always_hrm",
    "fixed:trm": "always_trm",
    "fixed:mcts": "always_mcts",
    "best": None,
}


@dataclass(frozen=True, slots=True)
class CardRow:
    """One router on the model card: label agreement next to its end-to-end results (held out).

    ``label_agreement``: share of held-out routing steps where it picks the labelled agent;
    ``correct_share``: share of held-out queries it ends correctly; ``mean_ms`` / ``p95_ms``: the
    summed agent time per query (ms); ``missed``: queries the best choice ends correctly and it
    does not.  None where the report lacks the figure.
    """

    router: str
    task: str
    label_agreement: float | None
    correct_share: float | None
    mean_ms: float | None
    p95_ms: float | None
    mean_steps: float | None
    missed: float | None
    queries: float | None


def card_rows(report: RouterReport, task: str | None = None) -> list[CardRow]:
    """The model card's table for all held-out queries (``task`` None) or one task: a row per
    router of :data:`CARD_ROUTERS` that the report has any figure for."""
    accuracy = report.accuracy if task is None else report.accuracy_by_task.get(task, {})
    e2e = report.end_to_end if task is None else report.end_to_end_by_task.get(task, {})
    rows = []
    for router, label_key in CARD_ROUTERS.items():
        agreement = accuracy.get(label_key) if label_key is not None else None
        numbers = e2e.get(router, {})
        if agreement is None and not numbers:
            continue
        rows.append(
            CardRow(
                router,
                task or "all",
                agreement,
                numbers.get("correct_share"),
                numbers.get("mean_ms"),
                numbers.get("p95_ms"),
                numbers.get("mean_steps"),
                numbers.get("missed"),
                numbers.get("n"),
            )
        )
    return rows
