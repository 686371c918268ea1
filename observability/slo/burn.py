"""Error-budget burn rates: the windows SLO error ratios are recorded over and the multi-window
multi-burn-rate alert conditions (Google SRE workbook, chapter 5).

A burn rate is ``error ratio / error budget`` (``1 - objective``): 1 spends exactly the budget
over the SLO period. An alert condition says "``share`` of the budget was spent within
``long_window``", which is a burn rate of::

    factor = share x period / long_window

The policy (:data:`BURN_RATE_POLICY`) pages when 2 % of the budget is spent in 1 h (confirmed
over 5 m) or 5 % in 6 h (30 m), and opens a ticket when 10 % is spent in 3 d (6 h). For a 30-day
period that gives the workbook's factors 14.4, 6 and 1; for 28 days 13.44, 5.6 and 0.9333.
The short window only confirms that the burn is still going on (it resets the alert quickly).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from observability.durations import parse_duration

__all__ = [
    "BURN_RATE_POLICY",
    "ERROR_RATIO_WINDOWS",
    "BurnRatePolicy",
    "BurnRateWindow",
    "burn_rate_windows",
]

#: Windows every SLO's error ratio is recorded over (the SLO period is added to them).
ERROR_RATIO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h", "1d", "3d")


@dataclass(frozen=True)
class BurnRatePolicy:
    """One alert condition: ``budget_share`` (0..1) of the error budget spent in ``long_window``,
    still burning over ``short_window`` (Prometheus durations); ``severity`` is page or ticket."""

    severity: str
    long_window: str
    short_window: str
    budget_share: float

    def factor(self, period: timedelta) -> float:
        """The burn-rate factor for an SLO ``period``: budget_share x period / long_window."""
        return self.budget_share * (period / parse_duration(self.long_window))


#: The SRE workbook's policy: page on 2 % in 1h/5m or 5 % in 6h/30m, ticket on 10 % in 3d/6h.
BURN_RATE_POLICY: tuple[BurnRatePolicy, ...] = (
    BurnRatePolicy("page", "1h", "5m", 0.02),
    BurnRatePolicy("page", "6h", "30m", 0.05),
    BurnRatePolicy("ticket", "3d", "6h", 0.10),
)


@dataclass(frozen=True)
class BurnRateWindow:
    """One multi-window burn-rate condition: alert when both windows burn faster than ``factor``."""

    severity: str
    long_window: str
    short_window: str
    factor: float


def burn_rate_windows(
    period: timedelta, policy: tuple[BurnRatePolicy, ...] = BURN_RATE_POLICY
) -> list[BurnRateWindow]:
    """The policy's conditions with their factors for an SLO ``period`` (14.4/6/1 for 30 days).

    Raises ValueError for a period that is not positive.
    """
    if period <= timedelta():
        raise ValueError(f"SLO period must be positive, got {period!r}")
    return [BurnRateWindow(p.severity, p.long_window, p.short_window, p.factor(period)) for p in policy]
