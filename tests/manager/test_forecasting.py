from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from manager.forecasting import day_of_week_profile, forecast_band, forecast_errors, forecast_period_end
from manager.periods import budget_state, first_crossing, period_bounds

AT = datetime(2026, 3, 18, 15, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("daily", datetime(2026, 3, 18, tzinfo=UTC), datetime(2026, 3, 19, tzinfo=UTC)),
        ("weekly", datetime(2026, 3, 16, tzinfo=UTC), datetime(2026, 3, 23, tzinfo=UTC)),
        ("monthly", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    ],
)
def test_periods_are_utc_and_weeks_start_on_monday(period: str, start: datetime, end: datetime) -> None:
    assert period_bounds(period, AT) == (start, end)


def test_december_ends_on_the_first_of_january() -> None:
    assert period_bounds("monthly", datetime(2026, 12, 31, 23, tzinfo=UTC))[1] == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spent", "hard", "state"),
    [(79, False, "ok"), (80, False, "warning"), (100, False, "alert"), (100, True, "exhausted"), (99, True, "warning")],
)
def test_state_changes_at_the_thresholds(spent: float, hard: bool, state: str) -> None:
    assert budget_state(spent, 100, 0.8, 1.0, hard) == state


def test_first_crossing_is_the_first_hour_at_or_over_the_level() -> None:
    hours = [datetime(2026, 3, 1, h, tzinfo=UTC) for h in range(4)]
    assert first_crossing(list(zip(hours, [10, 50, 80, 120], strict=True)), 80) == hours[2]


def test_weekend_days_weigh_less_in_the_profile() -> None:
    daily = {date(2026, 3, 2) + timedelta(days=i): (5.0 if i % 7 >= 5 else 10.0) for i in range(28)}
    profile = day_of_week_profile(daily)
    assert profile[5] == pytest.approx(profile[0] / 2)


def test_forecast_follows_a_rising_trend_with_weekly_seasonality() -> None:
    def spend(day: date) -> float:
        growth = 100 + 2.0 * (day - date(2026, 1, 1)).days
        return growth * (0.5 if day.weekday() >= 5 else 1.15)

    history = {date(2026, 2, 15) + timedelta(days=i): spend(date(2026, 2, 15) + timedelta(days=i)) for i in range(31)}
    start, end = period_bounds("monthly", AT)
    so_far = sum(v for d, v in history.items() if d >= date(2026, 3, 1)) + spend(AT.date()) * 15.5 / 24
    truth = sum(spend(date(2026, 3, 1) + timedelta(days=i)) for i in range(31))
    forecast = forecast_period_end(history, so_far, AT, start, end)
    assert forecast == pytest.approx(truth, rel=0.10)


def test_without_history_the_forecast_extrapolates_the_period_so_far() -> None:
    start, end = period_bounds("daily", AT)
    assert forecast_period_end({}, 31.0, AT, start, end) == pytest.approx(31.0 / 15.5 * 24)


def _noisy_trend(days: int, seed: int = 3) -> dict[date, float]:
    """Daily spend rising 1% a day, weekends at 60%, with 10% day-to-day noise."""
    rng = np.random.default_rng(seed)
    first = AT.date() - timedelta(days=days)
    return {
        first + timedelta(days=i): 100
        * (1.01**i)
        * (0.6 if (first + timedelta(days=i)).weekday() >= 5 else 1.0)
        * float(rng.normal(1, 0.1))
        for i in range(days)
    }


def test_the_band_surrounds_the_forecast_and_collapses_without_noise() -> None:
    start, end = period_bounds("monthly", AT)
    noisy = _noisy_trend(40)
    low, high = forecast_band(noisy, 1000.0, AT, start, end)
    assert low < forecast_period_end(noisy, 1000.0, AT, start, end) < high
    steady = {AT.date() - timedelta(days=i): 50.0 for i in range(1, 30)}
    low, high = forecast_band(steady, 1000.0, AT, start, end)
    assert low == high == pytest.approx(forecast_period_end(steady, 1000.0, AT, start, end))


def test_the_band_holds_what_the_period_then_spends_in_most_periods() -> None:
    held = 0
    for seed in range(40):
        days = _noisy_trend(120, seed=seed)
        middle = datetime(2026, 3, 1, tzinfo=UTC) - timedelta(days=15)
        start, end = period_bounds("monthly", middle)
        before = {d: v for d, v in days.items() if d < middle.date()}
        spent = sum(v for d, v in days.items() if start.date() <= d < middle.date())
        actual = sum(v for d, v in days.items() if start.date() <= d < end.date())
        low, high = forecast_band(before, spent, middle, start, end)
        held += low <= actual <= high
    assert held >= 32  # a 90% band: at least 80% of 40 periods, with room for chance


def test_the_track_record_checks_past_whole_periods_at_their_middle() -> None:
    errors = forecast_errors(_noisy_trend(200), "monthly", AT)
    assert len(errors) == 4
    assert max(abs(e) for e in errors) < 0.05
