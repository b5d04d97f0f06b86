"""What each kind of channel is sent for an event: a signed JSON webhook, Slack's format, an email (pure).

A webhook's body is signed with HMAC-SHA256 over `{timestamp}.{body}` with the channel's key, sent as
`X-Manager-Signature: sha256=<hex>` beside `X-Manager-Timestamp`; the receiver recomputes it with the same key
and rejects an old timestamp. Every message carries an idempotency key, the same on every retry of the same
event to the same channel, so a receiver can drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

PRODUCT = "AI Model Manager"


@dataclass(frozen=True)
class Event:
    """An event as it is sent: what happened, when, and its figures."""

    key: str
    kind: str
    subject: str
    occurred_at: datetime
    data: dict[str, Any]


def idempotency_key(event_key: str, channel: str) -> str:
    """Return the key every delivery of an event to a channel carries (a hex digest of both names)."""
    return hashlib.sha256(f"{event_key}\x1f{channel}".encode()).hexdigest()[:40]


def webhook_body(event: Event, key: str) -> bytes:
    """Return the JSON body of a generic webhook."""
    body = {
        "id": key,
        "event": event.kind,
        "subject": event.subject,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.data,
        "source": PRODUCT,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Manager-Signature value of a body sent at a timestamp (unix seconds, as text)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(key: str, event: Event, body: bytes, secret: str | None, timestamp: str) -> dict[str, str]:
    """Return the headers of a generic webhook: the idempotency key, the event kind and, with a key, the signature."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ai-model-manager-alerts",
        "Idempotency-Key": key,
        "X-Manager-Event": event.kind,
        "X-Manager-Timestamp": timestamp,
    }
    if secret:
        headers["X-Manager-Signature"] = signature(secret, timestamp, body)
    return headers


def details(event: Event) -> list[str]:
    """Return the event's figures as short 'name: value' lines."""
    return [f"{name.replace('_', ' ')}: {value}" for name, value in event.data.items() if value is not None]


def slack_body(event: Event) -> bytes:
    """Return a Slack incoming-webhook message: the subject as text, the figures in a section below it."""
    lines = "\n".join(f"• {line}" for line in details(event))
    message = {
        "text": f"{PRODUCT}: {event.subject}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_slack_escape(event.subject)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(lines) or "-"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{event.kind} at {event.occurred_at:%Y-%m-%d %H:%M} UTC"}],
            },
        ],
    }
    return json.dumps(message).encode()


def _slack_escape(text: str) -> str:
    """Return text with the three characters Slack's mrkdwn reserves escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_message(event: Event, key: str, sender: str, recipient: str) -> EmailMessage:
    """Return the email of an event: the subject, the figures as lines, a Message-ID made of the idempotency key."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"[{PRODUCT}] {event.subject}"
    message["Message-ID"] = f"<{key}@ai-model-manager>"
    message["X-Idempotency-Key"] = key
    message.set_content(
        "\n".join([event.subject, "", *details(event), "", f"{event.kind} at {event.occurred_at:%Y-%m-%d %H:%M} UTC"])
    )
    return message
