"""Exports: every report the CLI writes as CSV (registry, usage, performance, budgets, health, raw logs)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TextIO

import pandas as pd
from sqlalchemy import Engine, select

from manager import api, registry, spend
from manager.budgets import budget_status
from manager.errors import InvalidInput
from manager.health import COLUMNS as HEALTH_COLUMNS
from manager.health import model_health
from manager.ledger.attribution import DIMENSIONS
from manager.ledger.validate import RECORD_COLUMNS
from manager.models import RequestLog
from manager.money import format_usd
from manager.performance import EXPORT_PERFORMANCE_COLUMNS, performance_export_rows, performance_report
from manager.spreadsheet import csv_text, write_csv
from manager.timeutil import as_utc
from manager.usage import USAGE_COLUMNS, usage_by_day
from manager.window import data_span, day_window, read_window

EXPORT_KINDS = ("registry", "usage", "performance", "budgets", "health", "logs", "spend")
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
LOG_COLUMNS = list(RECORD_COLUMNS)


def _log_rows(engine: Engine, start: date | None, end: date | None) -> Iterable[list[Any]]:
    """Yield the raw log as ingest reads it back: unknown usage and cost as empty cells, dollars exact."""
    table = RequestLog.__table__  # type: ignore[attr-defined]
    query = select(table).order_by(table.c.timestamp, table.c.id)
    if start is not None or end is not None:
        low, high = day_window(start or date(1970, 1, 1), end or date(9999, 12, 30))
        query = query.where(table.c.timestamp >= low, table.c.timestamp < high)
    tokens = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=10_000).execute(query).mappings():
            record = dict(row)
            record["timestamp"] = as_utc(row["timestamp"]).isoformat()
            record["cost"] = format_usd(row["cost_nanos"]) if row["cost_known"] else None
            record["user"] = row["end_user"]
            for name in tokens:
                record[name] = row[name] if row["usage_known"] else None
            yield [record[name] for name in LOG_COLUMNS]


def export_csv(
    engine: Engine, kind: str, *, start: date | None = None, end: date | None = None, by: str | None = None
) -> str:
    """Return a report as CSV text: registry, usage (per day and model), performance, budgets, health, logs (raw
    requests) or spend (per day, value of the dimension `by`, and model)."""
    if kind == "registry":
        rows = api.list_models(engine)
        header = registry.public_fields() + ["price"]
        return csv_text(header, ([r[h] for h in header] for r in rows))
    if kind == "usage":
        span = data_span(engine)
        if span is None:
            return csv_text(USAGE_COLUMNS, [])
        return csv_text(USAGE_COLUMNS, usage_by_day(read_window(engine, start or span[0], end or span[1])))
    if kind == "performance":
        span = data_span(engine)
        if span is None:
            return csv_text(EXPORT_PERFORMANCE_COLUMNS, [])
        report = performance_report(read_window(engine, start or span[0], end or span[1]))
        return csv_text(EXPORT_PERFORMANCE_COLUMNS, performance_export_rows(report))
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
    if kind == "spend":
        if by is None:
            raise InvalidInput(["export spend needs --by: one of " + ", ".join(DIMENSIONS)])
        text = io.StringIO()
        write_spend_csv(engine, text, by, start=start, end=end)
        return text.getvalue()
    raise InvalidInput([f"export kind {kind!r} is not one of {', '.join(EXPORT_KINDS)}"])


def write_spend_csv(
    engine: Engine, handle: TextIO, dimension: str, *, start: date | None = None, end: date | None = None
) -> int:
    """Write spend per UTC day, value of a dimension and model as CSV, row by row; return the rows written."""
    rows = spend.export_rows(engine, dimension, start, end)
    return write_csv(handle, spend.EXPORT_COLUMNS, ([row[c] for c in spend.EXPORT_COLUMNS] for row in rows))


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
