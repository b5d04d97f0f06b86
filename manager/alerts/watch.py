"""Watching for what people should hear about, and sending it: what `alerts watch` runs every minute.

Each check records its events once (budgets record their crossings and forecasts as they are evaluated;
health changes and spend spikes are recorded here) and the sender then delivers whatever is due.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlmodel import Session

from manager import budgets, health
from manager.alerts import delivery, events, rules
from manager.alerts.delivery import SendResult
from manager.db import write_session
from manager.models import AlertState
from manager.window import Reads, read_window

LOG = logging.getLogger("manager.alerts")
STATE = AlertState.__table__  # type: ignore[attr-defined]


def health_subjects(models: list[health.ModelHealth]) -> dict[str, tuple[str, str]]:
    """Return each model's and provider's settled status with its reason, keyed "model X" and "provider Y"."""
    found = {f"model {m.model_id}": (m.status, m.reason) for m in models}
    for row in health.provider_health(models).to_dict("records"):
        found[f"provider {row['provider']}"] = (str(row["status"]), str(row["reason"]))
    return found


def check_health(engine: Engine, at: datetime) -> int:
    """Record an event for each model or provider whose status changed since it was last told; return how many."""
    now = health_subjects(health.model_health(engine, at))
    with engine.connect() as conn:
        told = {row.subject: row.status for row in conn.execute(select(STATE)).all()}
    changes, remember = rules.health_changes(told, now, at)
    if not changes and all(told.get(s) == status for s, status in remember.items()):
        return 0
    with write_session(engine, bump=bool(changes)) as session:
        for event in changes:
            events.record(session, event)
        _remember(session, remember, at)
    return len(changes)


def _remember(session: Session, statuses: dict[str, str], at: datetime) -> None:
    for subject, status in statuses.items():
        row = session.get(AlertState, subject)
        if row is None:
            session.add(AlertState(subject=subject, status=status, since=at))
        elif row.status != status:
            row.status, row.since = status, at
            session.add(row)


def check_spike(engine: Engine, at: datetime) -> int:
    """Record an event when the last whole hour's spend was over three times the day before's average hour."""
    first = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=rules.SPIKE_BASELINE_HOURS + 1)
    window = read_window(engine, first.date(), at.date(), Reads(hours_from=first), at=at)
    hours = window.hours_between(first, at)
    if hours.empty:
        return 0
    event = rules.spend_spike(hours.groupby("start")["cost_nanos"].sum(), at)
    if event is None or events.known_keys(engine, [event.key]):
        return 0
    with write_session(engine) as session:
        return int(events.record(session, event))


def check(engine: Engine, at: datetime | None = None) -> int:
    """Evaluate budgets, health and spend at a moment (default now), recording new events; return how many
    health and spike events were new (budget events are recorded by the budgets' own evaluation)."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    budgets.budget_status(engine, at)
    return check_health(engine, at) + check_spike(engine, at)


def run(engine: Engine, *, interval: float = 60.0, stop: threading.Event | None = None) -> None:
    """Check and send every `interval` seconds until `stop` is set; a failed round is logged, never fatal."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            check(engine)
            result: SendResult = delivery.send_pending(engine)
            if result.delivered or result.failed:
                LOG.info("alerts: %s", result.as_dict())
        except Exception:  # noqa: BLE001 (a loop that must outlive a bad round: logged, retried next round)
            LOG.exception("alerts: this round failed; trying again in %s s", interval)
        stop.wait(interval)
