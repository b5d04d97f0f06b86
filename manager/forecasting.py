"""Budget periods, states and spend forecasts: pure functions over plain numbers and dates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

PROFILE_DAYS = 28  # history for the day-of-week profile
TREND_DAYS = 14  # history for the burn-rate trend
FORECAST_METHOD = (
    f"linear trend of the last {TREND_DAYS} days' spend with the day-of-week effect removed, "
    f"projected to the period's end and scaled by the day-of-week profile of the last {PROFILE_DAYS} days"
)
STATES = ("ok", "warning", "alert", "exhausted")


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


def day_of_week_profile(daily: Mapping[date, float]) -> list[float]:
    """Return seven weights (Monday first) averaging 1: each weekday's mean spend over the overall mean."""
    sums, counts = [0.0] * 7, [0] * 7
    for day, spend in daily.items():
        sums[day.weekday()] += spend
        counts[day.weekday()] += 1
    means = [sums[d] / counts[d] if counts[d] else None for d in range(7)]
    known = [m for m in means if m is not None]
    overall = sum(known) / len(known) if known else 0.0
    if overall <= 0:
        return [1.0] * 7
    return [m / overall if m is not None and m > 0 else 1.0 for m in means]


def _linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Return (intercept, slope) of the least-squares line through the points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return mean_y, 0.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - slope * mean_x, slope


def forecast_period_end(
    daily: Mapping[date, float], spent_to_date: float, at: datetime, period_start: datetime, period_end: datetime
) -> float:
    """Return the spend expected by the period's end: spent so far plus the projected rest (see FORECAST_METHOD).

    `daily` holds the scope's spend of whole UTC days before the day of `at`.
    """
    at = at.astimezone(UTC)
    today = at.date()
    if at >= period_end:
        return spent_to_date
    history = {d: v for d, v in daily.items() if today - timedelta(days=PROFILE_DAYS) <= d < today}
    profile = day_of_week_profile(history)
    recent = [
        ((d - today).days, v / profile[d.weekday()]) for d, v in history.items() if (today - d).days <= TREND_DAYS
    ]
    if len(recent) >= 2:
        intercept, slope = _linear_fit(recent)
    else:  # no history: the burn rate so far in this period
        elapsed_days = max((at - period_start).total_seconds() / 86400, 1 / 24)
        intercept, slope = spent_to_date / elapsed_days, 0.0
    rest_of_today = (datetime.combine(today + timedelta(days=1), time(), UTC) - at).total_seconds() / 86400
    projected = max(intercept, 0.0) * profile[today.weekday()] * rest_of_today
    day, offset = today + timedelta(days=1), 1
    while datetime.combine(day, time(), UTC) < period_end:
        projected += max(intercept + slope * offset, 0.0) * profile[day.weekday()]
        day, offset = day + timedelta(days=1), offset + 1
    return spent_to_date + projected
