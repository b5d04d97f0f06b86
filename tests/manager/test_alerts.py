"""Alerts that reach people: a budget crossing arrives once at a signed webhook, a Slack webhook and an email
inbox (real servers on 127.0.0.1), survives a receiver that is down and a sender killed mid-delivery."""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from manager import api, budgets
from manager.alerts import channels, delivery, events, messages, rules, watch
from manager.cli import main
from manager.db import write_session
from manager.errors import InvalidInput
from manager.models import AlertDelivery
from tests.utils.factories import record
from tests.utils.receivers import HttpReceiver, SmtpServer, http_receiver, smtp_server

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 3, 18, 12, tzinfo=UTC)
KEY = "whsec-test-signing-key"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as found:
        yield found


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as found:
        yield found


def add_channel(engine: Engine, **data: object) -> None:
    with write_session(engine) as session:
        channels.add_channel(session=session, data=data)


def cross_a_budget(engine: Engine) -> None:
    """Spend $6 on the 18th and evaluate a $5 daily budget there: its warning and alert levels are crossed."""
    api.ingest_records(
        engine,
        [
            record(request_id=f"x-{h}", timestamp=(AT.replace(hour=0) + timedelta(hours=h)).isoformat(), cost="1.0")
            for h in range(6)
        ],
    )
    api.add_budget(engine, {"name": "daily", "scope": "global", "period": "daily", "amount_usd": 5.0})
    budgets.budget_status(engine, AT)


def statuses(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        table = AlertDelivery.__table__  # type: ignore[attr-defined]
        return sorted((r.channel, r.status) for r in conn.execute(select(table)).all())


def test_a_crossing_reaches_a_signed_webhook_slack_and_email_each_once(
    engine: Engine, receiver: HttpReceiver, smtp: SmtpServer
) -> None:
    add_channel(engine, name="ops-hook", kind="webhook", target=receiver.url("/hook"), secret=KEY)
    add_channel(engine, name="ops-slack", kind="slack", target=receiver.url("/slack"))
    add_channel(
        engine,
        name="ops-mail",
        kind="email",
        target="finance@example.com",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        sender="alerts@example.com",
        ca_file=str(smtp.certificate),
    )
    cross_a_budget(engine)
    budgets.budget_status(engine, AT)  # evaluated again: nothing new is recorded
    first = delivery.send_pending(engine)
    again = delivery.send_pending(engine)
    assert first.as_dict() == {"delivered": 6, "failed": 0, "pending": 0, "gave_up": 0}  # 2 levels x 3 channels
    assert again.as_dict() == {"delivered": 0, "failed": 0, "pending": 0, "gave_up": 0}

    hooks = [r for r in receiver.requests if r.path == "/hook"]
    assert len(hooks) == 2
    for hook in hooks:
        expected = messages.signature(KEY, hook.headers["X-Manager-Timestamp"], hook.body)
        assert hook.headers["X-Manager-Signature"] == expected
        body = json.loads(hook.body)
        assert body["id"] == hook.headers["Idempotency-Key"]
        assert body["event"] in ("budget_warning", "budget_alert")
        assert body["data"]["budget"] == "daily" and body["data"]["amount_usd"] == 5.0
    slack = [json.loads(r.body) for r in receiver.requests if r.path == "/slack"]
    assert len(slack) == 2
    assert all(m["text"].startswith("AI Model Manager: Budget 'daily' crossed") for m in slack)
    assert len(smtp.messages) == 2
    sender, recipients, raw = smtp.messages[0]
    mail = email.message_from_bytes(raw)
    assert (sender, recipients) == ("alerts@example.com", ["finance@example.com"])
    assert mail["Subject"].startswith("[AI Model Manager] Budget 'daily' crossed")
    assert mail["X-Idempotency-Key"] in mail["Message-ID"]
    listed = events.recent(engine)
    assert {e["kind"] for e in listed} == {"budget_warning", "budget_alert"}
    assert all(d["status"] == "delivered" for e in listed for d in e["deliveries"])


def test_with_the_receiver_down_the_event_waits_and_arrives_once_it_is_back(engine: Engine) -> None:
    with http_receiver() as first:
        port = first.port
    add_channel(engine, name="hook", kind="webhook", target=f"http://127.0.0.1:{port}/hook")
    cross_a_budget(engine)
    down = delivery.send_pending(engine)
    assert (down.delivered, down.failed, down.pending) == (0, 2, 2)
    assert delivery.send_pending(engine).failed == 0  # not due again before its backoff
    listed = events.recent(engine)
    assert all("could not reach" in d["last_error"] for e in listed for d in e["deliveries"])
    with http_receiver(port) as back:
        later = datetime.now(UTC) + timedelta(minutes=5)
        result = delivery.send_pending(engine, now=later)
        assert (result.delivered, result.pending) == (2, 0)
        assert delivery.send_pending(engine, now=later + timedelta(hours=1)).delivered == 0
    assert len(back.requests) == 2


def test_a_delivery_failing_for_24_hours_is_given_up_and_says_why(engine: Engine) -> None:
    with http_receiver() as hook:
        hook.status = 503
        add_channel(engine, name="hook", kind="webhook", target=hook.url("/hook"))
        cross_a_budget(engine)
        assert delivery.send_pending(engine).failed == 2
        result = delivery.send_pending(engine, now=datetime.now(UTC) + timedelta(hours=25))
    assert (result.gave_up, result.pending) == (2, 0)
    assert statuses(engine) == [("hook", "failed"), ("hook", "failed")]
    assert all(
        d["last_error"] == "HTTP 503 Service Unavailable" for e in events.recent(engine) for d in e["deliveries"]
    )


def test_a_sender_killed_mid_delivery_loses_nothing_and_repeats_with_the_same_key(
    db_url: str, engine: Engine, receiver: HttpReceiver
) -> None:
    add_channel(engine, name="hook", kind="webhook", target=receiver.url("/hook"))
    api.ingest_records(engine, [record(request_id="k-1", timestamp=(AT - timedelta(hours=1)).isoformat(), cost="9.0")])
    api.add_budget(engine, {"name": "hard", "scope": "global", "period": "daily", "amount_usd": 5.0, "hard": True})
    budgets.budget_status(engine, AT)
    receiver.hold = hold = threading.Event()
    sender = subprocess.Popen(
        [sys.executable, "-m", "manager", "--db", db_url, "alerts", "send"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert receiver.arrived.wait(60), "the sender never reached the receiver"
    os.kill(sender.pid, signal.SIGKILL)
    sender.wait(30)
    hold.set()
    receiver.hold = None
    assert statuses(engine) == [("hook", "pending")] * 3  # warning, alert, exhausted: none marked delivered
    result = delivery.send_pending(engine, now=datetime.now(UTC) + timedelta(minutes=3))  # the claim has lapsed
    assert (result.delivered, result.pending) == (3, 0)
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == 4 and len(set(keys)) == 3  # the killed one repeated, with the key it had
    assert statuses(engine) == [("hook", "delivered")] * 3


def test_a_channel_is_refused_naming_each_bad_field_and_its_secret_is_never_shown(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidInput) as caught:
        add_channel(engine, name="bad name", kind="pager", target="ftp://x")
    assert caught.value.problems == [
        "name: 'bad name' is not 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        "kind: 'pager' is not one of webhook, slack, email",
    ]
    with pytest.raises(InvalidInput, match="smtp_host: an email channel needs the SMTP server's host name"):
        add_channel(engine, name="mail", kind="email", target="ops@example.com")
    monkeypatch.setenv("HOOK_KEY", "s3cret-signing-key")
    args = ["channels", "add", "--name", "hook", "--kind", "webhook", "--target", "https://hooks.example.com/x"]
    assert main(["--db", db_url, *args, "--secret-env", "HOOK_KEY"]) == 0
    capsys.readouterr()
    assert main(["--db", db_url, "channels", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == [
        {"name": "hook", "kind": "webhook", "target": "https://hooks.example.com/x", "secret": "set"}
    ]
    assert "s3cret" not in out
    trail = api.audit_trail(engine, entity="channel")
    assert not trail.empty and "s3cret" not in trail.to_csv()
    assert main(["--db", db_url, "channels", "test", "nowhere"]) == 2
    assert "alert channel 'nowhere' does not exist" in capsys.readouterr().err


def test_channels_test_sends_at_once_and_alerts_send_prints_the_cron_contract(
    db_url: str, engine: Engine, receiver: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--db", db_url, "channels", "add", "--name", "s", "--kind", "slack", "--target", receiver.url("/s")]) == 0
    )
    assert main(["--db", db_url, "channels", "test", "s"]) == 0
    assert json.loads(receiver.requests[0].body)["text"].startswith("AI Model Manager: Test message")
    capsys.readouterr()
    assert main(["--db", db_url, "alerts", "send", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"delivered": 0, "failed": 0, "pending": 0, "gave_up": 0}


def test_a_forecast_past_the_amount_is_told_once_a_period(engine: Engine) -> None:
    api.ingest_records(
        engine,
        [record(request_id=f"f-{d}", timestamp=(AT - timedelta(days=d)).isoformat(), cost="1.0") for d in range(1, 30)],
    )
    api.add_budget(engine, {"name": "month", "scope": "global", "period": "monthly", "amount_usd": 25.0})
    budgets.budget_status(engine, AT)
    budgets.budget_status(engine, AT + timedelta(hours=1))
    told = [e for e in events.recent(engine) if e["kind"] == "budget_forecast"]
    assert len(told) == 1
    assert told[0]["subject"].startswith("Budget 'month' is forecast to reach $")


def test_health_changes_are_told_once_and_a_first_sight_is_not() -> None:
    at = datetime(2026, 3, 18, 12, tzinfo=UTC)
    first, remembered = rules.health_changes({}, {"model m": ("healthy", "ok")}, at)
    assert first == [] and remembered == {"model m": "healthy"}
    changed, remembered = rules.health_changes(remembered, {"model m": ("degraded", "12% errors of 100")}, at)
    assert [e.subject for e in changed] == ["Model m is degraded (was healthy): 12% errors of 100"]
    same, _ = rules.health_changes(remembered, {"model m": ("degraded", "13% errors of 100")}, at)
    assert same == []


def test_an_hour_over_three_times_the_day_before_is_a_spike() -> None:
    at = datetime(2026, 3, 18, 12, 5, tzinfo=UTC)
    hours = pd.date_range(end=datetime(2026, 3, 18, 11, tzinfo=UTC), periods=25, freq="h")
    calm = pd.Series([1_000_000_000] * 25, index=hours)
    assert rules.spend_spike(calm, at) is None
    spiked = calm.copy()
    spiked.iloc[-1] = 4_000_000_000
    event = rules.spend_spike(spiked, at)
    assert event is not None and event.key == "spike:2026-03-18T11"
    assert event.subject.startswith("Spend from 11:00 to 12:00 UTC was $4.00, 4.0x the average hour")


def test_backoff_doubles_from_thirty_seconds_to_at_most_an_hour() -> None:
    now = datetime(2026, 3, 18, tzinfo=UTC)
    waits = [(delivery.next_attempt(n, now) - now).total_seconds() for n in (1, 2, 3, 8, 20)]
    assert waits == [30, 60, 120, 3600, 3600]


def test_the_watcher_records_a_health_change_when_it_holds(engine: Engine) -> None:
    now = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
    good = [record(request_id=f"h-{i}", timestamp=(now - timedelta(minutes=50 - i)).isoformat()) for i in range(40)]
    api.ingest_records(engine, good)
    assert watch.check_health(engine, now) == 0  # first sight: remembered, not told
    bad = [
        record(
            request_id=f"b-{h}-{i}",
            timestamp=(now + timedelta(hours=h, minutes=i)).isoformat(),
            success="false",
            error_type="timeout",
        )
        for h in range(3)
        for i in range(30)
    ]
    api.ingest_records(engine, bad)
    changes = sum(watch.check_health(engine, now + timedelta(hours=h, minutes=45)) for h in range(3))
    told = [e for e in events.recent(engine) if e["kind"] == "health_change"]
    assert changes == len(told) >= 1
    assert any(e["data"]["subject"] == "model deepseek-chat" and e["data"]["status"] == "unhealthy" for e in told)
