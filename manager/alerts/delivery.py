"""Delivering what the outbox holds: each pending delivery claimed, sent, and marked delivered or retried.

Retries back off exponentially (30 s, 1 min, 2 min, ... at most an hour apart) for 24 hours after the event
was recorded; then the delivery is marked failed. A delivery is claimed for CLAIM_SECONDS before it is sent,
so concurrent senders never send it twice at once; a sender killed mid-send leaves its claim to lapse and the
delivery to the next run, which sends it again with the same idempotency key.
"""

from __future__ import annotations

import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update

from manager.alerts import messages
from manager.alerts.messages import Event
from manager.db import write_transaction
from manager.models import AlertChannel, AlertDelivery, AlertEvent
from manager.timeutil import as_utc

DELIVERIES = AlertDelivery.__table__  # type: ignore[attr-defined]
EVENTS = AlertEvent.__table__  # type: ignore[attr-defined]
CHANNELS = AlertChannel.__table__  # type: ignore[attr-defined]
RETRY_WINDOW = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
CLAIM_SECONDS = 120
TIMEOUT_SECONDS = 10


class DeliveryFailed(Exception):
    """A channel did not take a message; the text says why, in a line."""


def next_attempt(attempts: int, now: datetime) -> datetime:
    """Return when to try again after `attempts` failed tries: 30 s, doubling, at most an hour apart."""
    wait: timedelta = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
    return now + wait


@dataclass(frozen=True)
class SendResult:
    """What one run of the sender did: delivered, failed attempts, and what is still pending after it."""

    delivered: int = 0
    failed: int = 0
    pending: int = 0
    gave_up: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the CLI's JSON contract."""
        return {"delivered": self.delivered, "failed": self.failed, "pending": self.pending, "gave_up": self.gave_up}


def deliver(channel: Any, event: Event, key: str) -> None:
    """Send one event to one channel now; raise DeliveryFailed saying why it did not arrive."""
    if channel.kind == "email":
        _send_email(channel, event, key)
        return
    if channel.kind == "slack":
        body, headers = messages.slack_body(event), {"Content-Type": "application/json", "Idempotency-Key": key}
    else:
        body = messages.webhook_body(event, key)
        headers = messages.webhook_headers(key, event, body, channel.secret, str(int(time.time())))
    request = urllib.request.Request(channel.target, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (the user's URL)
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryFailed(f"HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryFailed(f"could not reach {channel.target}: {reason}") from None


def _send_email(channel: Any, event: Event, key: str) -> None:
    settings = channel.settings
    message = messages.email_message(event, key, settings["sender"], channel.target)
    context = ssl.create_default_context(cafile=settings.get("ca_file"))
    try:
        with smtplib.SMTP(settings["smtp_host"], int(settings["smtp_port"]), timeout=TIMEOUT_SECONDS) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DeliveryFailed(f"{settings['smtp_host']} does not offer STARTTLS; nothing is sent in the clear")
            smtp.starttls(context=context)
            smtp.ehlo()
            if settings.get("smtp_user"):
                smtp.login(settings["smtp_user"], channel.secret or "")
            smtp.send_message(message)
    except DeliveryFailed:
        raise
    except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
        raise DeliveryFailed(f"SMTP {settings['smtp_host']}:{settings['smtp_port']}: {error}") from None


def _event(row: Any) -> Event:
    return Event(row.key, row.kind, row.subject, as_utc(row.occurred_at), dict(row.data))


def send_pending(engine: Engine, *, now: datetime | None = None, limit: int = 200) -> SendResult:
    """Deliver every delivery that is due, once each; return what was delivered, failed and is still pending."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    claimed = _claim(engine, now, limit)
    delivered = failed = gave_up = 0
    for delivery_id, channel, event, key, created_at, attempts in claimed:
        try:
            deliver(channel, event, key)
        except DeliveryFailed as error:
            failed += 1
            done = max(now, datetime.now(UTC))
            give_up = done - created_at >= RETRY_WINDOW
            gave_up += give_up
            _finish(
                engine,
                delivery_id,
                status="failed" if give_up else "pending",
                attempts=attempts + 1,
                next_attempt_at=next_attempt(attempts + 1, done),
                last_error=str(error)[:512],
            )
            continue
        delivered += 1
        delivered_at = max(now, datetime.now(UTC))
        _finish(engine, delivery_id, status="delivered", attempts=attempts + 1, delivered_at=delivered_at)
    with engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(DELIVERIES).where(DELIVERIES.c.status == "pending")
        ).scalar_one()
    return SendResult(delivered, failed, int(pending), gave_up)


def _claim(engine: Engine, now: datetime, limit: int) -> list[tuple[int, Any, Event, str, datetime, int]]:
    """Return the due deliveries (with their channel and event), each claimed for CLAIM_SECONDS; a delivery whose
    channel was removed is marked failed instead."""
    found = []
    with write_transaction(engine, bump=False) as conn:
        due = conn.execute(
            select(DELIVERIES, EVENTS.c.key, EVENTS.c.kind, EVENTS.c.subject, EVENTS.c.occurred_at, EVENTS.c.data)
            .join(EVENTS, EVENTS.c.id == DELIVERIES.c.event_id)
            .where(
                DELIVERIES.c.status == "pending",
                DELIVERIES.c.next_attempt_at <= now,
                or_(DELIVERIES.c.claimed_until.is_(None), DELIVERIES.c.claimed_until < now),
            )
            .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
            .limit(limit)
        ).all()
        channels = {row.name: row for row in conn.execute(select(CHANNELS)).all()}
        for row in due:
            channel = channels.get(row.channel)
            if channel is None:
                conn.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.id == row.id)
                    .values(status="failed", last_error="the channel was removed")
                )
                continue
            conn.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == row.id)
                .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
            found.append((row.id, channel, _event(row), row.idempotency_key, as_utc(row.created_at), row.attempts))
    return found


def _finish(engine: Engine, delivery_id: int, **values: Any) -> None:
    with write_transaction(engine, bump=False) as conn:
        conn.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(claimed_until=None, **values))


def send_test(channel: Any, *, now: datetime | None = None) -> None:
    """Send a test message to a channel at once (not through the outbox); raise DeliveryFailed if it fails."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    event = Event(
        key=f"test:{channel.name}:{at.isoformat()}",
        kind="test",
        subject=f"Test message to the '{channel.name}' channel: alerts reach you here",
        occurred_at=at,
        data={"channel": channel.name, "kind": channel.kind},
    )
    deliver(channel, event, messages.idempotency_key(event.key, channel.name))
