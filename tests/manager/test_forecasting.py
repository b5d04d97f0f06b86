from datetime import UTC, date, datetime, timedelta

import pytest

from manager.forecasting import budget_state, day_of_week_profile, first_crossing, forecast_period_end, period_bounds

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
