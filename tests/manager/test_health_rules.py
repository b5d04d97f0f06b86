"""The health rules as pure functions: widening a quiet window, the confidence bound, holding a status."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manager.health_rules import HealthThresholds, Tally, Verdict, judge, settle, widen, wilson_interval

RULES = HealthThresholds()
HOUR = timedelta(hours=1)


def verdict(failures: int, requests: int, **options: object) -> Verdict:
    arguments: dict[str, object] = {
        "registry_status": "active",
        "enabled": True,
        "tally": Tally(requests, failures, {100: requests}),
        "span": HOUR,
        "widened": False,
        "baseline_p95": None,
        "thresholds": RULES,
    }
    arguments.update(options)
    return judge(**arguments)  # type: ignore[arg-type]


def test_one_failure_in_fifteen_is_no_incident_but_ten_in_a_hundred_is() -> None:
    assert verdict(1, 15).status == "healthy"
    assert verdict(10, 100).status == "degraded"


def test_the_bound_is_the_wilson_interval() -> None:
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-4)
    assert high == pytest.approx(0.1744, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@given(st.integers(min_value=1, max_value=10_000), st.data())
def test_the_interval_holds_the_observed_rate(requests: int, data: st.DataObject) -> None:
    failures = data.draw(st.integers(min_value=0, max_value=requests))
    low, high = wilson_interval(failures, requests)
    assert 0.0 <= low <= failures / requests <= high <= 1.0


def test_a_high_rate_on_enough_requests_is_unhealthy_and_the_reason_is_short() -> None:
    judged = verdict(40, 100)
    assert judged.status == "unhealthy"
    assert judged.reason == "40.0% errors of 100 in 1 h"
    assert "at least 30.9% with 95% confidence, at or above 25%" in judged.detail


def test_too_few_requests_even_widened_are_not_judged_on_errors() -> None:
    judged = verdict(5, 8, span=timedelta(hours=24), widened=True)
    assert judged.status == "healthy"
    assert judged.reason == "too few to judge errors: 8 in 24 h, widened"


def test_a_quiet_window_widens_until_it_holds_enough_requests() -> None:
    hours = [Tally(3, 1, {10: 3}), Tally(0, 0), Tally(9, 0, {12: 9}), Tally(10, 2, {10: 10}), Tally(50, 0)]
    tally, taken = widen(hours, 1, 20)
    assert (tally.requests, tally.failures, taken) == (22, 3, 4)
    assert tally.hist == {10: 13, 12: 9}


def test_a_busy_window_is_not_widened_and_a_quiet_day_takes_every_hour() -> None:
    assert widen([Tally(30, 0), Tally(30, 0)], 1, 20)[1] == 1
    assert widen([Tally(1, 0)] * 24, 2, 20) == (Tally(20, 0, {}), 20)
    assert widen([Tally(1, 0)] * 5, 2, 20)[1] == 5


def test_registry_state_comes_first_and_inactive_and_deprecated_have_their_own_status() -> None:
    assert verdict(50, 100, enabled=False).status == "disabled"
    assert verdict(50, 100, registry_status="inactive").status == "inactive"
    assert verdict(50, 100, registry_status="deprecated").status == "deprecated"
    assert verdict(50, 100, registry_status="maintenance").status == "maintenance"


def test_no_traffic_is_idle_unless_a_fact_says_otherwise() -> None:
    assert verdict(0, 0).reason == "no requests in the last 1 h"
    blocked = verdict(0, 0, blocked_reason="hard budget 'cap' (global, daily) is exhausted")
    assert (blocked.status, blocked.firm) == ("degraded", True)
    assert blocked.reason == "hard budget 'cap' (global, daily) is exhausted"


def test_latency_over_the_factor_of_its_baseline_is_degraded() -> None:
    slow = verdict(0, 100, tally=Tally(100, 0, {240: 100}), baseline_p95=500.0)
    assert slow.status == "degraded"
    assert "x its baseline" in slow.reason
    assert "over 2x its 7 days baseline of 500 ms" in slow.detail


HEALTHY, DEGRADED = verdict(0, 100), verdict(20, 100)


def test_a_status_changes_only_after_it_held_for_two_evaluations() -> None:
    shown = settle([HEALTHY, DEGRADED, HEALTHY, DEGRADED, DEGRADED, HEALTHY], 2)
    assert [v.status for v in shown] == ["healthy", "healthy", "healthy", "healthy", "degraded", "degraded"]
    assert shown[1].reason.startswith("degraded if it holds: ")
    assert shown[5].reason.startswith("healthy if it holds: ")


def test_facts_change_a_status_at_once() -> None:
    idle = verdict(0, 0)
    off = verdict(0, 100, enabled=False)
    blocked = verdict(0, 100, blocked_reason="hard budget 'cap' (global, daily) is exhausted")
    assert [v.status for v in settle([HEALTHY, idle, DEGRADED], 2)] == ["healthy", "idle", "degraded"]
    assert [v.status for v in settle([HEALTHY, off, HEALTHY], 2)] == ["healthy", "disabled", "healthy"]
    assert settle([HEALTHY, blocked], 2)[-1].status == "degraded"
