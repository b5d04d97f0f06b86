"""The system overview: totals, provider and category breakdowns, top performers, as a pure function of a Window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from manager.money import NANOS_PER_USD, format_usd
from manager.performance import performance_report
from manager.recommendations import Recommendation, recommendations
from manager.window import Window, data_span, read_window


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

    def as_dict(self) -> dict[str, Any]:
        """Return the overview as JSON-ready data."""
        return {
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
    )


def report(engine: Engine, start: date | None = None, end: date | None = None) -> SystemOverview:
    """Return the system overview with recommendations over the dates (default: all traffic)."""
    span = data_span(engine)
    today = datetime.now(UTC).date()
    first, last = span if span is not None else (today, today)
    return system_overview(read_window(engine, start or first, end or last))
