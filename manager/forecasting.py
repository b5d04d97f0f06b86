"""Spend forecasts for a budget period: a trend with a day-of-week profile, its band and its track record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from manager.periods import period_bounds

PROFILE_DAYS = 28  # history for the day-of-week profile
TREND_DAYS = 14  # history for the burn-rate trend
FORECAST_METHOD = (
    f"linear trend of the last {TREND_DAYS} days' spend with the day-of-week effect removed, "
    f"projected to the period's end and scaled by the day-of-week profile of the last {PROFILE_DAYS} days"
)


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


def _trend(daily: Mapping[date, float], today: date) -> tuple[list[float], list[tuple[float, float]]]:
    """Return the day-of-week profile and the deseasonalised recent days (offset from today, spend)."""
    history = {d: v for d, v in daily.items() if today - timedelta(days=PROFILE_DAYS) <= d < today}
    profile = day_of_week_profile(history)
    recent = [
        (float((d - today).days), v / profile[d.weekday()])
        for d, v in history.items()
        if (today - d).days <= TREND_DAYS
    ]
    return profile, recent


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
    profile, recent = _trend(daily, today)
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


BAND_Z = 1.645  # standard normal quantile of a two-sided 90% band
TRACK_PERIODS = 4  # past periods whose mid-period forecast is checked against what they spent


def forecast_band(
    daily: Mapping[date, float], spent_to_date: float, at: datetime, period_start: datetime, period_end: datetime
) -> tuple[float, float]:
    """Return the 90% prediction band of the period-end spend around the forecast.

    The rest of the period is a sum of k days predicted by the fitted trend (n recent days at offsets x, mean
    x̄, spread Sxx = Σ(x - x̄)², residual deviation σ); the variance of that sum is the days' own noise plus the
    fitted line's uncertainty, σ² · (k + k²/n + (Σ_j (x_j - x̄))² / Sxx), scaled back by the day-of-week profile.
    """
    forecast = forecast_period_end(daily, spent_to_date, at, period_start, period_end)
    at = at.astimezone(UTC)
    profile, recent = _trend(daily, at.date())
    future = [
        (float((day - at.date()).days), profile[day.weekday()])
        for day in (at.date() + timedelta(days=i) for i in range(1, 400))
        if datetime.combine(day, time(), UTC) < period_end
    ]
    if not future or len(recent) < 3:
        return forecast, forecast  # nothing left to forecast, or too little history to say how far it may miss
    intercept, slope = _linear_fit(recent)
    n = len(recent)
    mean_x = sum(x for x, _ in recent) / n
    spread_x = sum((x - mean_x) ** 2 for x, _ in recent) or 1.0
    sigma2 = sum((y - (intercept + slope * x)) ** 2 for x, y in recent) / (n - 2)
    k = len(future)
    weight = sum(w for _, w in future) / k  # the future days' mean day-of-week weight
    variance = sigma2 * (k + k * k / n + sum(x - mean_x for x, _ in future) ** 2 / spread_x)
    half = BAND_Z * weight * variance**0.5
    return max(forecast - half, spent_to_date), forecast + half


def forecast_errors(daily: Mapping[date, float], period: str, at: datetime) -> list[float]:
    """Return, for up to TRACK_PERIODS whole periods before the one holding `at`, how far the forecast made at
    each period's middle was from what the period spent (forecast over actual, minus one), newest first."""
    if not daily:
        return []
    first = min(daily)
    errors = []
    start, _ = period_bounds(period, at)
    for _ in range(TRACK_PERIODS):
        start, end = period_bounds(period, start - timedelta(days=1))
        if start.date() < first:
            break
        middle = datetime.combine((start + (end - start) / 2).date(), time(), UTC)
        spent = sum(v for d, v in daily.items() if start.date() <= d < middle.date())
        actual = sum(v for d, v in daily.items() if start.date() <= d < end.date())
        if actual > 0:
            before = {d: v for d, v in daily.items() if d < middle.date()}
            errors.append(forecast_period_end(before, spent, middle, start, end) / actual - 1)
    return errors
