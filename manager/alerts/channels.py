"""Alert channels: add, list, remove; each validated whole, audited, and its secret never shown again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, select

from manager.accounts import authorize
from manager.audit import SYSTEM_ACTOR, record_change
from manager.errors import InvalidInput, NotFound
from manager.models import AlertChannel, Role

KINDS = ("webhook", "slack", "email")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$|^[^@\s<>]+@localhost$")
DEFAULT_SMTP_PORT = 587


def _check_url(target: str, problems: list[str]) -> None:
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"target: {target!r} is not an http:// or https:// URL")


def validate_channel(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return a channel's fields cleaned, or raise InvalidInput naming every bad field."""
    problems: list[str] = []
    known = {"name", "kind", "target", "secret", "smtp_host", "smtp_port", "smtp_user", "sender", "ca_file"}
    problems += [f"{name}: unknown field" for name in data if name not in known]
    name = str(data.get("name") or "").strip()
    kind = str(data.get("kind") or "").strip()
    target = str(data.get("target") or "").strip()
    if not _NAME.match(name):
        problems.append(
            f"name: {name!r} is not 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if kind not in KINDS:
        problems.append(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    settings: dict[str, Any] = {}
    if kind in ("webhook", "slack"):
        _check_url(target, problems)
    elif kind == "email":
        if not _ADDRESS.match(target):
            problems.append(f"target: {target!r} is not an email address")
        host = str(data.get("smtp_host") or "").strip()
        if not host:
            problems.append("smtp_host: an email channel needs the SMTP server's host name")
        port = data.get("smtp_port") or DEFAULT_SMTP_PORT
        try:
            port = int(port)
            if not 1 <= port <= 65535:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"smtp_port: {data.get('smtp_port')!r} is not a port from 1 to 65535")
        sender = str(data.get("sender") or "").strip() or "ai-model-manager@localhost"
        if not _ADDRESS.match(sender):
            problems.append(f"sender: {sender!r} is not an email address")
        settings = {
            "smtp_host": host,
            "smtp_port": port,
            "smtp_user": str(data.get("smtp_user") or "").strip() or None,
            "sender": sender,
            "ca_file": str(data.get("ca_file") or "").strip() or None,
        }
    secret = data.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) > 512 or "\n" in secret):
        problems.append("secret: must be one line of at most 512 characters")
    if problems:
        raise InvalidInput(problems)
    return {"name": name, "kind": kind, "target": target, "secret": secret or None, "settings": settings}


def to_public(channel: AlertChannel) -> dict[str, Any]:
    """Return a channel as it may be shown: never its secret, only whether it has one."""
    return {
        "name": channel.name,
        "kind": channel.kind,
        "target": channel.target,
        "secret": "set" if channel.secret else None,
        **{k: v for k, v in channel.settings.items() if v is not None},
    }


def list_channels(*, session: Session) -> list[AlertChannel]:
    """Return every channel, by name."""
    return list(session.exec(select(AlertChannel).order_by(AlertChannel.name)))


def get_channel(*, session: Session, name: str) -> AlertChannel:
    """Return one channel, or raise NotFound."""
    channel = session.get(AlertChannel, name)
    if channel is None:
        raise NotFound(f"alert channel {name!r} does not exist")
    return channel


def add_channel(*, session: Session, data: Mapping[str, Any], actor: str = SYSTEM_ACTOR) -> AlertChannel:
    """Add a validated channel (audited without its secret); refuse a duplicate name."""
    authorize(session, actor, Role.EDITOR, "change alert channels")
    fields = validate_channel(data)
    if session.get(AlertChannel, fields["name"]) is not None:
        raise InvalidInput([f"name: an alert channel named {fields['name']!r} already exists"])
    channel = AlertChannel(**fields, created_at=datetime.now(UTC))
    session.add(channel)
    record_change(
        session,
        actor=actor,
        entity="channel",
        entity_id=channel.name,
        action="create",
        field="*",
        old=None,
        new=to_public(channel),
    )
    session.flush()
    return channel


def remove_channel(*, session: Session, name: str, actor: str = SYSTEM_ACTOR) -> None:
    """Remove a channel; its delivery log stays, and what it had pending is no longer sent."""
    authorize(session, actor, Role.EDITOR, "change alert channels")
    channel = get_channel(session=session, name=name)
    record_change(
        session,
        actor=actor,
        entity="channel",
        entity_id=name,
        action="delete",
        field="*",
        old=to_public(channel),
        new=None,
    )
    session.delete(channel)
    session.flush()
