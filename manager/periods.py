"""Budget periods and states: a period's UTC bounds, a budget's state, the hour a threshold was first crossed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta


def period_bounds(period: str, at: datetime) -> tuple[datetime, datetime]:
    """Return the UTC start (inclusive) and end (exclusive) of the daily, weekly (Monday) or monthly period."""
    day = at.astimezone(UTC).date()
    if period == "daily":
        start = day
        end = day + timedelta(days=1)
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"period {period!r} is not one of daily, weekly, monthly")
    return datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)


def budget_state(spent: float, amount: float, warn: float, alert: float, hard: bool) -> str:
    """Return ok, warning, alert, or exhausted (a hard budget at or past its amount)."""
    if hard and spent >= amount:
        return "exhausted"
    if spent >= alert * amount:
        return "alert"
    if spent >= warn * amount:
        return "warning"
    return "ok"


def first_crossing(cumulative: Sequence[tuple[datetime, float]], level: float) -> datetime | None:
    """Return the first hour whose running total reaches the level, or None."""
    for hour, total in cumulative:
        if total >= level:
            return hour
    return None
