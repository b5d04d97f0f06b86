"""The weekly and monthly digest: spend by team and model against the period before, movers, risks, incidents."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine

from manager import api, digest
from manager.alerts import events, rules
from manager.cli import main
from manager.db import write_session
from tests.utils.factories import record
from tests.utils.receivers import http_receiver

AT = datetime(2026, 3, 18, 9, tzinfo=UTC)  # a Wednesday: last week is 9 to 15 March, the one before 2 to 8


def test_the_last_whole_week_and_month_and_the_ones_before() -> None:
    assert digest.last_whole_period("weekly", date(2026, 3, 18)) == (
        date(2026, 3, 9), date(2026, 3, 15), date(2026, 3, 2), date(2026, 3, 8)
    )  # fmt: skip
    assert digest.last_whole_period("monthly", date(2026, 3, 18)) == (
        date(2026, 2, 1), date(2026, 2, 28), date(2026, 1, 1), date(2026, 1, 31)
    )  # fmt: skip


def spend_by(engine: Engine, day: date, team: str, model_id: str, cost: str, n: int) -> None:
    moment = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
    api.ingest_records(
        engine,
        [
            record(request_id=f"{day}-{team}-{model_id}-{i}", timestamp=moment.isoformat(), team=team,
                   model_id=model_id, cost=cost)
            for i in range(n)
        ],
    )  # fmt: skip


def test_the_weekly_digest_compares_teams_and_models_with_the_week_before(engine: Engine) -> None:
    spend_by(engine, date(2026, 3, 4), "growth", "deepseek-chat", "1.0", 2)  # the week before: $2
    spend_by(engine, date(2026, 3, 10), "growth", "deepseek-chat", "1.0", 5)  # last week: $5 ...
    spend_by(engine, date(2026, 3, 11), "search", "claude-3-haiku-20240307", "0.5", 2)  # ... and $1
    with write_session(engine) as session:
        changed, _ = rules.health_changes(
            {"model deepseek-chat": "healthy"}, {"model deepseek-chat": ("unhealthy", "40% errors of 50")},
            datetime(2026, 3, 12, 8, tzinfo=UTC),
        )  # fmt: skip
        events.record(session, changed[0])
    found = digest.build(engine, "weekly", at=AT)
    data = found.as_dict()
    assert (data["from"], data["to"]) == ("2026-03-09", "2026-03-15")
    assert data["total"] == {"name": "total", "cost_usd": 6.0, "previous_usd": 2.0, "change_pct": 200.0}
    assert [(t["name"], t["cost_usd"], t["previous_usd"]) for t in data["teams"]] == [
        ("growth", 5.0, 2.0),
        ("search", 1.0, 0.0),
    ]
    assert [m["name"] for m in data["movers"]] == [
        "team growth", "model deepseek-chat", "team search", "model claude-3-haiku-20240307"
    ]  # fmt: skip
    assert [i["subject"] for i in data["incidents"]] == [
        "Model deepseek-chat is unhealthy (was healthy): 40% errors of 50"
    ]
    assert found.subject() == "Weekly digest 2026-03-09 to 2026-03-15: $6.00 spent (+200.0% on the period before)"


def test_digest_send_delivers_it_to_the_channel_once(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    spend_by(engine, datetime.now(UTC).date() - timedelta(days=8), "growth", "deepseek-chat", "1.0", 3)
    with http_receiver() as hook:
        api.add_channel(engine, {"name": "weekly", "kind": "slack", "target": hook.url("/digest")})
        assert main(["--db", db_url, "digest", "--send", "weekly", "--json"]) == 0
        sent = json.loads(capsys.readouterr().out)
        assert sent["sent"]["delivered"] == 1
        assert main(["--db", db_url, "digest", "--send", "weekly"]) == 0
    assert len(hook.requests) == 1
    message = json.loads(hook.requests[0].body)
    assert message["text"].startswith("AI Model Manager: Weekly digest ")
    assert "growth" in json.dumps(message["blocks"])
    assert main(["--db", db_url, "digest", "--send", "nobody"]) == 2
    assert "alert channel 'nobody' does not exist" in capsys.readouterr().err
