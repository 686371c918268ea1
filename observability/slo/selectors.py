"""PromQL instant-vector selectors as the SLO file writes them (``name{label="value",...}``).

Only what an SLO's ratio metric needs: a metric name and label matchers (``=``, ``!=``, ``=~``,
``!~``, double-quoted values). Every selector must name a metric family the metric catalogue
(:mod:`observability.metrics`) declares, and a histogram ``_bucket`` selector must pick exactly
one of that histogram's bucket bounds, spelled as the exporter spells ``le``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from observability.metrics.catalogue import BUCKETS, METRIC_NAMES, bucket_label

__all__ = ["Selector", "parse_selector"]

_SELECTOR = re.compile(r"^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(?P<matchers>.*)\})?\s*$", re.S)
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


@dataclass(frozen=True)
class Selector:
    """A parsed instant-vector selector: metric name and label matchers (label, op, value)."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    @property
    def family(self) -> str:
        """The metric family in METRIC_NAMES this selector reads (histogram suffixes stripped)."""
        for suffix in _HISTOGRAM_SUFFIXES:
            base = self.name.removesuffix(suffix)
            if base != self.name and base in BUCKETS:
                return base
        return self.name

    def render(self) -> str:
        """The selector as PromQL text, in canonical form."""
        if not self.matchers:
            return self.name
        inner = ",".join(f'{label}{op}"{value}"' for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}"


def parse_selector(text: str) -> Selector:
    """Parse ``name{label="v",...}`` and check the metric is one the catalogue declares.

    A ``_bucket`` selector must match ``le`` exactly to one of the histogram's bucket bounds,
    spelled as the exporter spells it (``le="0.5"``, ``le="1.0"``).

    Raises:
        ValueError: not a selector, unparsable matchers, an undeclared metric or a bucket
            selector without exactly one declared ``le``.
    """
    match = _SELECTOR.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a PromQL selector: {text!r}")
    name = match.group("name")
    raw = (match.group("matchers") or "").strip()
    matchers: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(raw):
        part = _MATCHER.match(raw, pos)
        if part is None or part.end() == pos:
            raise ValueError(f"cannot parse label matchers in {text!r} at {raw[pos:]!r}")
        matchers.append((part.group(1), part.group(2), part.group(3)))
        pos = part.end()
    selector = Selector(name=name, matchers=tuple(matchers))
    if selector.family not in METRIC_NAMES:
        raise ValueError(f"{text!r} reads {selector.family!r}, which observability.metrics does not declare")
    if name.endswith("_bucket"):
        bounds = {bucket_label(b) for b in BUCKETS[selector.family]}
        les = [value for label, op, value in selector.matchers if label == "le" and op == "="]
        if len(les) != 1 or les[0] not in bounds:
            raise ValueError(
                f'{text!r} must select one bucket with le="..." among {sorted(bounds, key=float)}'
            )
    return selector
