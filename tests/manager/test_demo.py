"""Demo traffic: up to the present, topped up without doubling, with incidents that every status shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from manager import api, budgets, demo, health
from tests.utils.factories import record

END = datetime(2026, 3, 18, 14, 37, tzinfo=UTC)


def test_traffic_reaches_the_minute_it_ends_at() -> None:
    records = demo.demo_records(days=2, requests=2000, seed=3, end=END)
    assert len(records) == 2000
    assert records[-1]["timestamp"] < END
    assert records[-1]["timestamp"] > END - timedelta(minutes=30)
    assert records[0]["timestamp"] >= END - timedelta(days=2)


def test_top_up_adds_the_hours_since_the_newest_request_and_nothing_twice(engine: Engine) -> None:
    demo.seed_demo(engine, days=2, requests=2000, seed=3, end=END)
    later = END + timedelta(hours=5)
    added = demo.top_up(engine, seed=3, end=later)
    assert added is not None
    rate = demo.DEFAULT_REQUESTS / (demo.DEFAULT_DAYS * 24)
    assert 0.5 * 5 * rate < added.accepted < 2 * 5 * rate
    assert demo.newest_request(engine)[1] > later - timedelta(hours=1)  # type: ignore[index]
    again = demo.top_up(engine, seed=3, end=later)
    assert again is not None and again.accepted == 0


def test_top_up_leaves_real_traffic_alone(engine: Engine) -> None:
    assert demo.top_up(engine) is None
    demo.seed_demo(engine, days=1, requests=100, seed=3, end=END)
    api.ingest_records(engine, [record(request_id="real-1", timestamp=(END + timedelta(minutes=5)).isoformat())])
    assert demo.top_up(engine, end=END + timedelta(hours=3)) is None


def test_the_incidents_show_a_degraded_model_now_and_an_outage_yesterday(engine: Engine) -> None:
    demo.seed_demo(engine, days=10, requests=demo.DEFAULT_REQUESTS // 3, seed=7, end=END)
    now = {m.model_id: m for m in health.model_health(engine, END)}
    assert now["deepseek-chat"].status == "degraded"
    assert "errors" in now["deepseek-chat"].reason
    assert now["llama2:latest"].status == "degraded"
    assert "x its baseline" in now["llama2:latest"].reason
    assert now["claude-3-haiku-20240307"].status == "healthy"
    timeline = health.health_timeline(engine, END)
    outage = timeline[(timeline["model_id"] == "mistral-small-latest") & (timeline["status"] == "unhealthy")]
    assert not outage.empty
    assert all(
        END - timedelta(hours=31) < hour.replace(tzinfo=UTC) < END - timedelta(hours=20) for hour in outage["hour"]
    )


def test_demo_budgets_are_crossed_and_only_added_once(engine: Engine) -> None:
    demo.seed_demo(engine, days=10, requests=5000, seed=7, end=END, with_budgets=True)
    found = {s.name: s for s in budgets.budget_status(engine, END)}
    assert found["demo-deepseek-daily"].state in ("alert", "exhausted")
    monthly = found["demo-monthly-total"]
    assert monthly.state in ("warning", "alert") or monthly.forecast_usd > monthly.amount_usd
    assert (found["demo-growth-monthly"].scope, found["demo-growth-monthly"].state) == ("team:growth", "warning")
    assert demo.add_demo_budgets(engine, END) == []
