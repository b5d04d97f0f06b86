"""Opening the database, and the sessions around registry, account, budget and audit changes.

This is what the managed application and scripts call: `open_engine`, then `log_usage` for each request
(or `ingest_records` in bulk) and `select_model` to ask for a model. Reports, health, budgets' status and
what-if replays live in their feature modules (usage, performance, health, budgets, whatif), each a pure
function of a `manager.window.Window`; see the README's Architecture section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from manager import accounts, audit, budgets, registry
from manager.alerts import channels, delivery
from manager.db import create_db_engine, describe_database, read_session, write_session
from manager.errors import DatabaseUnavailable, ManagerError, SignInRefused
from manager.ledger.ingest import ingest_records, log_usage
from manager.schema import initialize, schema_is_current
from manager.selection import select_model
from manager.timeutil import as_utc
from manager.window import data_span

__all__ = [
    "open_engine",
    "log_usage",
    "ingest_records",
    "select_model",
    "is_empty",
    "list_models",
    "get_model",
    "update_model",
    "add_models",
    "remove_model",
    "apply_registry_edits",
    "audit_trail",
    "account_count",
    "list_accounts",
    "get_account",
    "add_account",
    "remove_account",
    "set_account_role",
    "set_account_password",
    "unlock_account",
    "sign_in",
    "list_budgets",
    "add_budget",
    "update_budget",
    "remove_budget",
]


def open_engine(url: str | None = None, *, prepare: bool = True, create: bool = True) -> Engine:
    """Return an engine on the URL (default: DATABASE_URL, else data/manager.db), initialised unless told not to.

    Raise DatabaseUnavailable, in one line, when the database cannot be reached or is not one.
    """
    engine = create_db_engine(url, create=create)
    try:
        if prepare and not schema_is_current(engine):
            initialize(engine)
        elif not prepare:
            with engine.connect():
                pass
    except DBAPIError as error:
        engine.dispose()
        reason = _first_line(str(error.orig) if error.orig is not None else str(error))
        raise DatabaseUnavailable(f"cannot use the database at {describe_database(engine)}: {reason}") from None
    return engine


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no reason given"


def _public(model: Any) -> dict[str, Any]:
    row = registry.to_public(model)
    row["price"] = registry.price_label(model)
    return row


def list_models(engine: Engine) -> list[dict[str, Any]]:
    """Return every registry row under SPEC's field names, plus a 'price' label ('unpriced' when unknown)."""
    with read_session(engine) as session:
        return [_public(m) for m in registry.list_models(session=session)]


def get_model(engine: Engine, model_id: str) -> dict[str, Any]:
    """Return one registry row, or raise NotFound."""
    with read_session(engine) as session:
        return _public(registry.get_model(session=session, model_id=model_id))


def update_model(engine: Engine, model_id: str, changes: Mapping[str, Any], *, actor: str = "system") -> dict[str, Any]:
    """Change fields of a model (validated, audited) and return the new row."""
    with write_session(engine) as session:
        return _public(registry.update_model(session=session, model_id=model_id, changes=changes, actor=actor))


def add_models(engine: Engine, rows: Sequence[Mapping[str, Any]], *, actor: str = "system") -> list[dict[str, Any]]:
    """Add models all-or-nothing, prices filled from the catalog where missing; return the new rows."""
    apply_registry_edits(engine, additions=rows, actor=actor)
    return [get_model(engine, str(r["model_id"])) for r in rows]


def remove_model(engine: Engine, model_id: str, *, actor: str = "system") -> None:
    """Remove a model from the registry (its history stays)."""
    with write_session(engine) as session:
        registry.remove_model(session=session, model_id=model_id, actor=actor)


def apply_registry_edits(
    engine: Engine,
    *,
    updates: Mapping[str, Mapping[str, Any]] | None = None,
    additions: Sequence[Mapping[str, Any]] = (),
    deletions: Sequence[str] = (),
    actor: str = "system",
) -> None:
    """Apply a table of edits all-or-nothing; raise InvalidInput listing every bad row and field."""
    if not (updates or additions or deletions):
        return
    with write_session(engine) as session:
        registry.apply_edits(
            session=session, updates=updates or {}, additions=additions, deletions=deletions, actor=actor
        )


def audit_trail(engine: Engine, *, entity: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Return the newest changes first (at, actor, entity, entity_id, action, field, old, new)."""
    with read_session(engine) as session:
        entries = audit.audit_trail(session=session, entity=entity, limit=limit)
        rows = [
            (as_utc(e.at), e.actor, e.entity, e.entity_id, e.action, e.field, e.old_value, e.new_value) for e in entries
        ]
    return pd.DataFrame(
        rows, columns=["at", "actor", "entity", "entity_id", "action", "field", "old_value", "new_value"]
    )


def account_count(engine: Engine) -> int:
    """Return how many dashboard accounts exist; 0 means local single-user mode."""
    with read_session(engine) as session:
        return accounts.count_accounts(session=session)


def list_accounts(engine: Engine) -> list[dict[str, Any]]:
    """Return every account (name, role, times, failed attempts, locked_until), never a password hash."""
    with read_session(engine) as session:
        return [accounts.to_public(a) for a in accounts.list_accounts(session=session)]


def get_account(engine: Engine, name: str) -> dict[str, Any]:
    """Return one account, or raise NotFound."""
    with read_session(engine) as session:
        return accounts.to_public(accounts.get_account(session=session, name=name))


def add_account(engine: Engine, name: str, role: str, password: str, *, actor: str = "system") -> dict[str, Any]:
    """Create an account (admins only, or the CLI); the first one must be an admin."""
    with write_session(engine) as session:
        return accounts.to_public(
            accounts.add_account(session=session, name=name, role=role, password=password, actor=actor)
        )


def remove_account(engine: Engine, name: str, *, actor: str = "system") -> None:
    """Delete an account (admins only, or the CLI)."""
    with write_session(engine) as session:
        accounts.remove_account(session=session, name=name, actor=actor)


def set_account_role(engine: Engine, name: str, role: str, *, actor: str = "system") -> dict[str, Any]:
    """Change an account's role (admins only, or the CLI)."""
    with write_session(engine) as session:
        return accounts.to_public(accounts.set_role(session=session, name=name, role=role, actor=actor))


def set_account_password(engine: Engine, name: str, password: str, *, actor: str = "system") -> dict[str, Any]:
    """Replace an account's password (its owner, an admin or the CLI); lifts a lockout."""
    with write_session(engine) as session:
        return accounts.to_public(accounts.set_password(session=session, name=name, password=password, actor=actor))


def unlock_account(engine: Engine, name: str, *, actor: str = "system") -> dict[str, Any]:
    """Lift an account's sign-in lockout (admins only, or the CLI)."""
    with write_session(engine) as session:
        return accounts.to_public(accounts.unlock(session=session, name=name, actor=actor))


def sign_in(
    engine: Engine, name: str, password: str, *, client: str = "", at: datetime | None = None
) -> dict[str, Any]:
    """Return the account when the password matches; raise SignInRefused otherwise (failures are counted per
    name and client address)."""
    refused: SignInRefused | None = None
    for attempt in range(2):  # two first failures of one name and client at once: the second retries
        try:
            with write_session(engine, bump=False) as session:
                try:
                    signed_in = accounts.sign_in(session=session, name=name, password=password, client=client, at=at)
                    return accounts.to_public(signed_in, at)
                except SignInRefused as error:
                    refused = error
            break
        except IntegrityError:
            if attempt:
                raise
    assert refused is not None
    raise refused


def is_empty(engine: Engine) -> bool:
    """Return True when no request has been stored yet."""
    return data_span(engine) is None


def list_budgets(engine: Engine) -> list[dict[str, Any]]:
    """Return every budget as plain data in dollars."""
    with read_session(engine) as session:
        return [budgets.to_public(b) for b in budgets.list_budgets(session=session)]


def add_budget(engine: Engine, data: Mapping[str, Any], *, actor: str = "system") -> dict[str, Any]:
    """Add a validated budget (audited) and return it."""
    with write_session(engine) as session:
        return budgets.to_public(budgets.add_budget(session=session, data=data, actor=actor))


def update_budget(engine: Engine, name: str, changes: Mapping[str, Any], *, actor: str = "system") -> dict[str, Any]:
    """Change a budget (validated whole, audited per field) and return it."""
    with write_session(engine) as session:
        return budgets.to_public(budgets.update_budget(session=session, name=name, changes=changes, actor=actor))


def remove_budget(engine: Engine, name: str, *, actor: str = "system") -> None:
    """Remove a budget (its recorded alerts stay)."""
    with write_session(engine) as session:
        budgets.remove_budget(session=session, name=name, actor=actor)


def list_channels(engine: Engine) -> list[dict[str, Any]]:
    """Return every alert channel as it may be shown (never its secret)."""
    with read_session(engine) as session:
        return [channels.to_public(c) for c in channels.list_channels(session=session)]


def add_channel(engine: Engine, data: Mapping[str, Any], *, actor: str = "system") -> dict[str, Any]:
    """Add a validated alert channel (audited without its secret) and return it as shown."""
    with write_session(engine) as session:
        return channels.to_public(channels.add_channel(session=session, data=data, actor=actor))


def remove_channel(engine: Engine, name: str, *, actor: str = "system") -> None:
    """Remove an alert channel; its delivery log stays."""
    with write_session(engine) as session:
        channels.remove_channel(session=session, name=name, actor=actor)


def test_channel(engine: Engine, name: str) -> None:
    """Send a test message to a channel now; raise ManagerError saying why it did not arrive."""
    with read_session(engine) as session:
        channel = channels.get_channel(session=session, name=name)
    try:
        delivery.send_test(channel)
    except delivery.DeliveryFailed as error:
        raise ManagerError(f"channel {name}: {error}") from None


def send_alerts(engine: Engine) -> dict[str, int]:
    """Deliver every alert that is due; return {"delivered", "failed", "pending", "gave_up"}."""
    return delivery.send_pending(engine).as_dict()
