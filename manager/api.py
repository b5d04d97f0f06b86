"""The manager's public Python API: what the dashboard, the CLI and the managed application call."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from manager import accounts, analytics, audit, budgets, health, registry, reports
from manager.analytics import (
    DIMENSIONS,
    GRANULARITIES,
    Filters,
    Recommendation,
    SystemOverview,
    errors_by_type,
    filter_options,
    frontier,
    latency_distribution,
    latency_over_time,
    performance_report,
    period_totals,
    recommendations,
    series_usage_note,
    system_overview,
    usage_series,
)
from manager.budgets import BudgetStatus, blocked_models
from manager.db import (
    create_db_engine,
    data_version,
    describe_database,
    read_session,
    write_session,
)
from manager.demo import seed_demo
from manager.errors import DatabaseUnavailable, InvalidInput, SignInRefused
from manager.export import csv_text
from manager.health import HealthThresholds, ModelHealth, provider_health, system_health
from manager.ingest import IngestResult, ingest_file, ingest_frame, ingest_records, log_usage
from manager.integrity import Drift, rebuild_rollups, verify
from manager.models import RequestLog
from manager.money import format_usd
from manager.records import RECORD_COLUMNS
from manager.reports import Kpis, cost_by_day, data_span, kpis, usage_by_day, usage_by_model
from manager.rollups import as_utc
from manager.schema import initialize, schema_is_current
from manager.scoring import HIGHER_IS_BETTER as RANKING_METRICS
from manager.scoring import describe_composite
from manager.selection import DEFAULT_WEIGHTS, WEIGHT_NAMES, Policy, Selection
from manager.whatif import (
    ReplayResult,
    frontier_points,
    replay,
    routing_table,
    scenario_summary,
    select_model,
    selection_board,
)

__all__ = [
    "Drift", "rebuild_rollups", "verify",
    "DEFAULT_WEIGHTS",
    "WEIGHT_NAMES",
    "Policy",
    "ReplayResult",
    "Selection",
    "replay",
    "routing_table",
    "select_model",
    "frontier_points",
    "scenario_summary",
    "selection_board",
    "ingest_frame",
    "BudgetStatus",
    "HealthThresholds",
    "ModelHealth",
    "add_budget",
    "blocked_models",
    "budget_alerts",
    "budget_spend_path",
    "budget_status",
    "health_timeline",
    "list_budgets",
    "model_health",
    "provider_health",
    "remove_budget",
    "system_health",
    "update_budget",
    "DIMENSIONS",
    "GRANULARITIES",
    "RANKING_METRICS",
    "Filters",
    "Recommendation",
    "SystemOverview",
    "errors_by_type",
    "filter_options",
    "frontier",
    "latency_distribution",
    "latency_over_time",
    "performance_report",
    "recommendations",
    "system_overview",
    "series_usage_note",
    "usage_series",
    "describe_composite",
    "period_totals",
    "IngestResult",
    "Kpis",
    "add_models",
    "apply_registry_edits",
    "audit_trail",
    "cost_by_day",
    "data_span",
    "data_version",
    "describe_database",
    "export_csv",
    "get_model",
    "ingest_file",
    "ingest_records",
    "initialize",
    "is_empty",
    "kpis",
    "list_models",
    "log_usage",
    "open_engine",
    "remove_model",
    "seed_demo",
    "update_model",
    "usage_by_day",
    "usage_by_model",
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
        return accounts.to_public(
            accounts.set_password(session=session, name=name, password=password, actor=actor)
        )


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
    return reports.data_span(engine) is None


EXPORT_KINDS = ("registry", "usage", "performance", "budgets", "health", "logs")
BUDGET_COLUMNS = [
    "name",
    "scope",
    "period",
    "period_start",
    "period_end",
    "amount_usd",
    "spent_usd",
    "percent",
    "forecast_usd",
    "state",
    "alerts",
    "requests_without_cost",
]
HEALTH_COLUMNS = ["model_id", "provider", "status", "requests", "error_rate", "p95_response_time_ms", "reason"]
LOG_COLUMNS = list(RECORD_COLUMNS)


def _log_rows(engine: Engine, start: date | None, end: date | None) -> Iterable[list[Any]]:
    """Yield the raw log as ingest reads it back: unknown usage and cost as empty cells, dollars exact."""
    table = RequestLog.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(table.c.timestamp, table.c.id)
    if start is not None or end is not None:
        low, high = reports.day_window(start or date(1970, 1, 1), end or date(9999, 12, 30))
        query = query.where(table.c.timestamp >= low, table.c.timestamp < high)
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=10_000).execute(query).mappings():
            record = dict(row)
            record["timestamp"] = as_utc(row["timestamp"]).isoformat()
            record["cost"] = format_usd(row["cost_nanos"]) if row["cost_known"] else None
            for name in tokens:
                record[name] = row[name] if row["usage_known"] else None
            yield [record[name] for name in LOG_COLUMNS]


def export_csv(engine: Engine, kind: str, *, start: date | None = None, end: date | None = None) -> str:
    """Return a report as CSV text: registry, usage (per day and model), performance or logs (raw requests)."""
    if kind == "registry":
        rows = list_models(engine)
        header = registry.public_fields() + ["price"]
        return csv_text(header, ([r[h] for h in header] for r in rows))
    if kind == "usage":
        span = data_span(engine)
        if span is None:
            return csv_text(reports.USAGE_COLUMNS, [])
        return csv_text(reports.USAGE_COLUMNS, usage_by_day(engine, start or span[0], end or span[1]))
    if kind == "performance":
        span = data_span(engine)
        if span is None:
            return csv_text(analytics.EXPORT_PERFORMANCE_COLUMNS, [])
        report = performance_report(engine, start or span[0], end or span[1])
        return csv_text(analytics.EXPORT_PERFORMANCE_COLUMNS, analytics.performance_export_rows(report))
    if kind == "budgets":
        budget_rows: list[list[Any]] = []
        for status in budget_status(engine):
            data = status.as_dict()
            data["alerts"] = "; ".join(f"{a['level']} at {a['crossed_at']}" for a in data["alerts"])
            budget_rows.append([data[c] for c in BUDGET_COLUMNS])
        return csv_text(BUDGET_COLUMNS, budget_rows)
    if kind == "health":
        return csv_text(HEALTH_COLUMNS, ([m.as_dict()[c] for c in HEALTH_COLUMNS] for m in model_health(engine)))
    if kind == "logs":
        return csv_text(LOG_COLUMNS, _log_rows(engine, start, end))
    raise InvalidInput([f"export kind {kind!r} is not one of {', '.join(EXPORT_KINDS)}"])


def clear_caches() -> None:
    """Forget the manager's cached rollup reads, so the next report reads the database again."""
    reports.clear_cache()


def frame_csv(frame: pd.DataFrame) -> str:
    """Return a table exactly as shown, as safe CSV text (timestamps in UTC ISO-8601)."""

    def cell(value: Any) -> Any:
        if isinstance(value, pd.Timestamp | datetime):
            return value.isoformat()
        if value is None or (isinstance(value, float) and value != value):
            return None
        return value

    return csv_text(list(frame.columns), ([cell(v) for v in row] for row in frame.itertuples(index=False)))


def json_text(value: Any) -> str:
    """Return a value as compact JSON text, as the registry table shows metadata."""
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def report(engine: Engine, start: date | None = None, end: date | None = None) -> SystemOverview:
    """Return the system overview with recommendations over the dates (default: all traffic)."""
    span = data_span(engine)
    if span is None:
        today = datetime.now().date()
        return system_overview(engine, start or today, end or today)
    return system_overview(engine, start or span[0], end or span[1])




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


def budget_status(engine: Engine, at: datetime | None = None) -> list[BudgetStatus]:
    """Return every budget's spend, forecast, state and alerts at a moment (default now)."""
    return budgets.budget_status(engine, at)


def budget_alerts(engine: Engine) -> pd.DataFrame:
    """Return every recorded budget alert, newest first."""
    return budgets.alerts_table(engine)


def budget_spend_path(engine: Engine, name: str, at: datetime | None = None) -> pd.DataFrame:
    """Return a budget's cumulative spend per hour of its current period."""
    return budgets.spend_path(engine, name, at)


def model_health(engine: Engine, at: datetime | None = None, **options: Any) -> list[ModelHealth]:
    """Return each model's health over the trailing window (see manager.health.model_health)."""
    return health.model_health(engine, at, **options)


def health_timeline(engine: Engine, end: datetime | None = None, **options: Any) -> pd.DataFrame:
    """Return each model's status per hour over the last hours (default 48)."""
    return health.health_timeline(engine, end, **options)
