"""The audit trail: who changed which field of which registry or budget row, when, from what to what."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from manager.models import AuditEntry

SYSTEM_ACTOR = "system"


def record_change(
    session: Session, *, actor: str, entity: str, entity_id: str, action: str, field: str, old: Any, new: Any
) -> None:
    """Add one audit entry to the session's transaction."""
    session.add(
        AuditEntry(
            at=datetime.now(UTC),
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            field=field,
            old_value=None if old is None else json.dumps(old, default=str),
            new_value=None if new is None else json.dumps(new, default=str),
        )
    )


def audit_trail(*, session: Session, entity: str | None = None, limit: int = 500) -> list[AuditEntry]:
    """Return the newest audit entries first, optionally of one kind of entity ('model', 'budget')."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())  # type: ignore[attr-defined, union-attr]
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    return list(session.exec(query.limit(limit)))
