"""Recording events: each once, by its key, with a pending delivery to every channel, in the caller's
transaction (the outbox): what records a budget crossing records its alert in the same commit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlmodel import Session
from sqlmodel import select as select_rows

from manager.alerts.messages import Event, idempotency_key
from manager.models import AlertChannel, AlertDelivery, AlertEvent
from manager.timeutil import as_utc

EVENTS = AlertEvent.__table__  # type: ignore[attr-defined]


def known_keys(engine: Engine, keys: Iterable[str]) -> set[str]:
    """Return which of the event keys are recorded already."""
    wanted = sorted(set(keys))
    if not wanted:
        return set()
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(select(EVENTS.c.key).where(EVENTS.c.key.in_(wanted)))}


def record(session: Session, event: Event, *, only: str | None = None) -> bool:
    """Add an event and a pending delivery to each channel (or `only` that one) to the session's transaction,
    unless its key is recorded already; return whether it was new."""
    if session.exec(select_rows(AlertEvent).where(AlertEvent.key == event.key)).first() is not None:
        return False
    now = datetime.now(UTC)
    row = AlertEvent(
        key=event.key,
        kind=event.kind,
        subject=event.subject[:256],
        data=event.data,
        occurred_at=event.occurred_at,
        recorded_at=now,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    for channel in session.exec(select_rows(AlertChannel)).all():
        if only is not None and channel.name != only:
            continue
        session.add(
            AlertDelivery(
                event_id=row.id,
                channel=channel.name,
                idempotency_key=idempotency_key(event.key, channel.name),
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    return True


DELIVERIES = AlertDelivery.__table__  # type: ignore[attr-defined]


def recent(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """Return the newest events first, each with its deliveries (channel, status, attempts, error, when)."""
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS).order_by(EVENTS.c.recorded_at.desc(), EVENTS.c.id.desc()).limit(limit)).all()
        ids = [row.id for row in rows]
        deliveries = (
            conn.execute(select(DELIVERIES).where(DELIVERIES.c.event_id.in_(ids)).order_by(DELIVERIES.c.channel)).all()
            if ids
            else []
        )
    by_event: dict[int, list[dict[str, Any]]] = {}
    for d in deliveries:
        by_event.setdefault(d.event_id, []).append(
            {
                "channel": d.channel,
                "status": d.status,
                "attempts": d.attempts,
                "idempotency_key": d.idempotency_key,
                "last_error": d.last_error,
                "delivered_at": as_utc(d.delivered_at).isoformat() if d.delivered_at else None,
                "next_attempt_at": as_utc(d.next_attempt_at).isoformat() if d.status == "pending" else None,
            }
        )
    return [
        {
            "key": row.key,
            "kind": row.kind,
            "subject": row.subject,
            "occurred_at": as_utc(row.occurred_at).isoformat(),
            "recorded_at": as_utc(row.recorded_at).isoformat(),
            "data": row.data,
            "deliveries": by_event.get(row.id, []),
        }
        for row in rows
    ]


LOG_COLUMNS = ["recorded_at", "kind", "subject", "channel", "status", "attempts", "last_error", "delivered_at"]


def log_table(found: list[dict[str, Any]]) -> pd.DataFrame:
    """Return recent events as the delivery log: one row per (event, channel), or per event told to no channel."""
    rows = []
    for event in found:
        base = {
            "recorded_at": pd.Timestamp(event["recorded_at"]).tz_convert(None),
            "kind": event["kind"],
            "subject": event["subject"],
        }
        for told in event["deliveries"] or [{"channel": None, "status": "no channel"}]:
            delivered = told.get("delivered_at")
            rows.append(
                base
                | {
                    "channel": told["channel"],
                    "status": told["status"],
                    "attempts": told.get("attempts", 0),
                    "last_error": told.get("last_error"),
                    "delivered_at": pd.Timestamp(delivered).tz_convert(None) if delivered else None,
                }
            )
    return pd.DataFrame(rows, columns=LOG_COLUMNS)
