"""The one path by which request logs get in: validate, de-duplicate, store and roll up, batch by batch."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlmodel import Session
from sqlmodel import select as select_models

from manager.db import write_transaction
from manager.errors import InvalidInput
from manager.export import safe_cell
from manager.models import ModelConfig, RequestLog
from manager.readers import Item, read_records
from manager.records import LogRow, Prices, RowError, validate_record
from manager.rollups import fold_into_hourly, fold_into_stats, hourly_totals, model_totals

BATCH_SIZE = 5_000
LOG = RequestLog.__table__  # type: ignore[attr-defined]
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Reject:
    """A refused input row: where it was, which column, why, and its original text."""

    line: int
    column: str
    reason: str
    raw: str


@dataclass
class IngestResult:
    """What one ingest did: rows accepted, rejected and skipped as duplicates."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejects_file: Path | None = None
    rejects: list[Reject] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejects_file": str(self.rejects_file) if self.rejects_file else None,
        }


def registry_prices(engine: Engine) -> dict[str, Prices]:
    """Return every registered model's prices, keyed by model_id."""
    with Session(engine) as session:
        return {
            m.model_id: Prices(m.cost_per_1k_input, m.cost_per_1k_output)
            for m in session.exec(select_models(ModelConfig))
        }


def _stored_request_ids(conn: Connection, request_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(request_ids), 500):
        chunk = request_ids[start : start + 500]
        found.update(conn.execute(select(LOG.c.request_id).where(LOG.c.request_id.in_(chunk))).scalars())
    return found


def write_batch(engine: Engine, rows: list[LogRow]) -> tuple[int, int]:
    """Store rows and their rollups in one transaction; return (stored, skipped as already stored)."""
    if not rows:
        return 0, 0
    with write_transaction(engine, lock=True) as conn:
        ids = [r.request_id for r in rows if r.request_id is not None]
        stored = _stored_request_ids(conn, ids) if ids else set()
        fresh = [r for r in rows if r.request_id is None or r.request_id not in stored]
        if fresh:
            conn.execute(insert(LOG), [r._asdict() for r in fresh])
            hourly = hourly_totals(fresh)
            fold_into_hourly(conn, hourly)
            fold_into_stats(conn, model_totals(hourly))
    return len(fresh), len(rows) - len(fresh)


def ingest_items(
    engine: Engine, items: Iterable[Item], *, batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> IngestResult:
    """Validate and store records batch by batch; each batch is one transaction."""
    prices = registry_prices(engine)
    result = IngestResult()
    seen: set[str] = set()
    batch: list[LogRow] = []

    def flush() -> None:
        stored, skipped = write_batch(engine, batch)
        result.accepted += stored
        result.duplicates += skipped
        batch.clear()
        if progress is not None:
            progress(result.accepted + result.duplicates + result.rejected)

    for line, record, raw in items:
        try:
            if isinstance(record, RowError):
                raise record
            row = validate_record(record, prices)
        except RowError as error:
            result.rejects.append(Reject(line, error.column, error.reason, raw))
            result.rejected += 1
            continue
        if row.request_id is not None:
            if row.request_id in seen:
                result.duplicates += 1
                continue
            seen.add(row.request_id)
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    flush()
    return result


def ingest_records(
    engine: Engine,
    records: Iterable[Mapping[str, Any]],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestResult:
    """Store many request records (the bulk Python API); rejects are returned, numbered from 1."""
    items = ((n, r, "") for n, r in enumerate(records, start=1))
    return ingest_items(engine, items, batch_size=batch_size, progress=progress)


def log_usage(engine: Engine, **record: Any) -> bool:
    """Store one request; return False when its request_id was already stored. Raise InvalidInput if refused."""
    result = ingest_records(engine, [record])
    if result.rejects:
        reject = result.rejects[0]
        raise InvalidInput([f"{reject.column}: {reject.reason}"])
    return result.accepted == 1


def rejects_path(path: Path) -> Path:
    """Return where the rejects of an input file are written."""
    return path.with_name(path.name + ".rejects.csv")


def write_rejects(path: Path, rejects: list[Reject]) -> None:
    """Write rejected rows as CSV: line, column, reason, raw."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "reason", "raw"])
        for reject in rejects:
            writer.writerow([reject.line, safe_cell(reject.column), safe_cell(reject.reason), safe_cell(reject.raw)])


def ingest_file(
    engine: Engine,
    path: Path | str,
    *,
    fmt: str = "auto",
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestResult:
    """Load a CSV, JSON Lines or OTLP/JSON file; bad rows go to `<file>.rejects.csv`."""
    path = Path(path)
    items = read_records(path, fmt)
    result = ingest_items(engine, items, batch_size=batch_size, progress=progress)
    target = rejects_path(path)
    if result.rejects:
        write_rejects(target, result.rejects)
        result.rejects_file = target
    elif target.exists():
        target.unlink()
    return result
