"""The system overview: totals, provider and category breakdowns, top performers, as a pure function of a Window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from manager.money import NANOS_PER_USD, format_usd
from manager.performance import performance_report
from manager.recommendations import Recommendation, recommendations
from manager.window import DEFAULT_DAYS, Window, data_span, default_days, read_window


@dataclass(frozen=True)
class SystemOverview:
    """Totals, breakdowns by provider and category, and the best performers of a window."""

    total_requests: int
    total_cost_usd: float
    success_rate: float | None
    by_provider: pd.DataFrame
    by_category: pd.DataFrame
    top_performers: pd.DataFrame
    recommendations: list[Recommendation] = field(default_factory=list)
    # Requests that reported no token usage, and those of them whose cost is unknown (not in total_cost_usd).
    requests_without_usage: int = 0
    requests_without_cost: int = 0
    # The UTC days it covers, first and last included.
    start: date | None = None
    end: date | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the overview as JSON-ready data."""
        return {
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "total_requests": self.total_requests,
            "total_cost_usd": self.total_cost_usd,
            "requests_without_usage": self.requests_without_usage,
            "requests_without_cost": self.requests_without_cost,
            "success_rate": self.success_rate,
            "by_provider": self.by_provider.to_dict("records"),
            "by_category": self.by_category.to_dict("records"),
            "top_performers": self.top_performers.to_dict("records"),
            "recommendations": [r.as_dict() for r in self.recommendations],
        }


def _breakdown(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    columns = [column, "requests", "success_rate", "cost_usd"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    sums = frame.groupby(column, as_index=False)[["requests", "successes", "cost_nanos"]].sum()
    sums["success_rate"] = sums["successes"] / sums["requests"]
    sums["cost_usd"] = sums["cost_nanos"] / NANOS_PER_USD
    return sums[columns].sort_values("cost_usd", ascending=False, ignore_index=True)


def system_overview(window: Window, *, top: int = 3, with_recommendations: bool = True) -> SystemOverview:
    """Return the window's totals, provider and category breakdowns and top performers."""
    frame = window.daily()
    report = performance_report(window)
    requests = int(frame["requests"].sum()) if not frame.empty else 0
    nanos = int(frame["cost_nanos"].sum()) if not frame.empty else 0
    return SystemOverview(
        total_requests=requests,
        total_cost_usd=float(Decimal(format_usd(nanos))),
        success_rate=int(frame["successes"].sum()) / requests if requests else None,
        by_provider=_breakdown(frame, "provider"),
        by_category=_breakdown(frame, "category"),
        top_performers=report.head(top)[
            [
                "rank",
                "model_id",
                "provider",
                "score",
                "success_rate",
                "p95_response_time_ms",
                "avg_quality_rating",
                "cost_per_request_usd",
            ]
        ],
        recommendations=recommendations(window, report) if with_recommendations else [],
        requests_without_usage=int(frame["usage_unknown"].sum()) if not frame.empty else 0,
        requests_without_cost=int(frame["cost_unknown"].sum()) if not frame.empty else 0,
        start=window.start,
        end=window.end,
    )


def report(engine: Engine, start: date | None = None, end: date | None = None) -> SystemOverview:
    """Return the system overview with recommendations over the dates; by default the Overview page's window
    (the last 30 days of traffic), and from a given first day up to the newest day with traffic."""
    first, last = default_days(data_span(engine), datetime.now(UTC).date())
    if start is None and end is not None:
        first = end - timedelta(days=DEFAULT_DAYS - 1)
    elif start is not None:
        first = start
    return system_overview(read_window(engine, first, end or max(first, last)))
