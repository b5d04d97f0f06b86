"""Every figure is a pure function of a Window: these build one from records through the ledger's own pure
rollup code, with no database, and check usage, performance, overview, health, budgets and selection on it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from manager import budgets, health, overview, performance, selection, usage
from manager.health_rules import HealthThresholds
from manager.ledger.rollups import by_model, rollup_frame
from manager.ledger.validate import Prices, validate_batch
from manager.models import Budget
from manager.registry import ModelInfo
from manager.window import Filters, Reads, Window, with_registry
from tests.utils.factories import record

AT = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
REGISTRY = {
    "cheap": ModelInfo("acme", "translation", True, "active", 0.6, 0.0001, 0.0002),
    "dear": ModelInfo("zenith", "translation", True, "active", 0.9, 0.01, 0.03),
    "idle": ModelInfo("acme", "general", True, "active", 0.5, 0.001, 0.002),
}


def traffic() -> list[dict[str, Any]]:
    """Return three days of requests: 'cheap' fast with half failing in the last hours, 'dear' slow and rated."""
    records = []
    for i in range(300):
        moment = AT - timedelta(minutes=10 * i)
        failing = i < 30 and i % 2 == 0
        records.append(
            record(
                request_id=f"c{i}",
                timestamp=moment.isoformat(),
                model_id="cheap",
                language="fr" if i % 3 else "es",
                response_time_ms=200 + i % 7,
                cost="0.001",
                quality_rating=3.0,
                success="false" if failing else "true",
                error_type="RateLimitError" if failing else "",
            )
        )
        records.append(
            record(
                request_id=f"d{i}",
                timestamp=moment.isoformat(),
                model_id="dear",
                response_time_ms=2000 + i % 11,
                cost="0.02",
                quality_rating=4.8,
            )
        )
    return records


def window_of(records: list[dict[str, Any]], start: date, end: date, *, budgets_: tuple[Budget, ...] = ()) -> Window:
    """Return the Window the database would hold for these records, made by the ledger's pure rollup code."""
    prices = {m: Prices(i.cost_per_1k_input, i.cost_per_1k_output) for m, i in REGISTRY.items()}
    rows, errors = validate_batch(records, range(len(records)), prices)
    assert errors == []
    days = rollup_frame(rows, "day")
    hours = rollup_frame(rows, "hour")
    return Window(
        start,
        end,
        AT,
        REGISTRY,
        with_registry(by_model(days), REGISTRY),
        with_registry(by_model(hours), REGISTRY),
        with_registry(days, REGISTRY),
        "day",
        budgets_,
    )


def test_kpis_and_usage_series_count_every_request_once() -> None:
    window = window_of(traffic(), date(2026, 3, 1), date(2026, 3, 3))
    figures = usage.kpis(window)
    assert (figures.requests, figures.successes) == (600, 585)
    assert figures.cost_nanos == 300 * 1_000_000 + 300 * 20_000_000
    by_language = usage.usage_series(window, group_by="language")
    assert by_language["requests"].sum() == 600
    french = usage.usage_series(window, filters=Filters(languages=("fr",)))
    assert french["requests"].sum() == 200


def test_the_ranking_and_the_overview_agree_on_the_window() -> None:
    window = window_of(traffic(), date(2026, 3, 1), date(2026, 3, 3))
    report = performance.performance_report(window, rank_by="p95_response_time_ms")
    assert report["model_id"].tolist() == ["cheap", "dear"]
    assert report.set_index("model_id").loc["cheap", "success_rate"] == pytest.approx(0.95)
    summary = overview.system_overview(window)
    assert summary.total_requests == 600
    assert set(summary.by_provider["provider"]) == {"acme", "zenith"}
    assert any(r.kind == "no_traffic" and r.model_id == "idle" for r in summary.recommendations)


def test_health_judges_the_last_hour_from_the_window() -> None:
    window = window_of(traffic(), AT.date(), AT.date())
    judged = {m: shown[-1] for m, shown in health.evaluate(window, health.grid(AT, 2), HealthThresholds()).items()}
    # 5 of the 10 requests since 11:00 failed; widened to 20 requests, 11 of 22 have.
    assert judged["cheap"].status == "unhealthy"
    assert judged["cheap"].window_hours == 4
    assert judged["dear"].status == "healthy"
    assert judged["idle"].status == "idle"


def test_an_exhausted_hard_budget_blocks_its_models_in_selection() -> None:
    cap = Budget(
        name="cap",
        scope="provider:zenith",
        period="daily",
        amount_nanos=1_000_000_000,
        warn_threshold=0.8,
        alert_threshold=1.0,
        hard=True,
        created_at=AT,
        updated_at=AT,
    )
    window = window_of(traffic(), AT.date(), AT.date(), budgets_=(cap,))
    status = budgets.evaluations(window)[0].status
    assert status.state == "exhausted"
    assert "dear" in budgets.blocked_by(window)
    chosen = selection.select_in(window, selection.Policy(weights={"quality": 1.0}))
    assert "dear" not in [r.model_id for r in chosen.ranking]


def test_reads_combine_to_cover_what_each_feature_needs() -> None:
    combined = health.reads(AT) | budgets.reads(AT) | Reads(segments="hour")
    assert combined.budgets and combined.segments == "hour"
    assert combined.hours_from is not None and combined.hours_from <= AT - timedelta(hours=48)
    assert combined.days_from is not None and combined.days_from <= AT.date() - timedelta(days=150)
