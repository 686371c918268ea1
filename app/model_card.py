"""The GRU router's model card: its training report read tolerantly from ``data/models``.

Pure (no streamlit import).  ``python -m engine train-router`` writes ``router_report.json``
(and ``.md``) next to the weights ``router_gru.npz``; :func:`router_report` reads them on every
call, so the Routing page shows a report as soon as training writes it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.models import AGENTS

__all__ = [
    "MODELS_DIR",
    "ROUTER_REPORT",
    "ROUTER_WEIGHTS",
    "RouterReport",
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

    ``accuracy`` and ``train_accuracy`` map gru / rules / majority to their accuracy on the
    held-out and training steps; ``confusion`` is the GRU's held-out confusion matrix (rows: label,
    columns: prediction) over ``labels``.
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


def parse_router_report(
    raw: dict[str, Any], path: Path, markdown: str | None = None, *, weights_present: bool = False
) -> RouterReport:
    """The report's figures by name (see RouterReport); entries it lacks stay empty.
    ``weights_present`` says whether the trained weights exist beside the report."""
    model, data, held, fit = (_section(raw, k) for k in ("model", "data", "held_out", "train_fit"))
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
