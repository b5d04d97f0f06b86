"""The one path by which request logs get in: validate, de-duplicate, store and roll up, batch by batch."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine
from sqlmodel import Session, select

from manager.budgets import budget_status
from manager.db import read_session, sqlite_timestamps, write_transaction
from manager.errors import DatabaseBusy, InvalidInput, ManagerError, UnusableFile
from manager.integrations.litellm_records import read_model_names
from manager.ledger.attribution import LOG_COLUMNS
from manager.ledger.formats import Batch, Item, Reject, collector_paused, item_batches, read_batches
from manager.ledger.rollups import TotalTooLarge, fold_rollups
from manager.ledger.spend_rollups import fold_spend, spend_sums
from manager.ledger.validate import COLUMNS, Prices, validate_batch
from manager.models import ModelConfig
from manager.spreadsheet import safe_cell

BATCH_SIZE = 20_000
# A typed frame needs no per-record work, so bigger batches spread the fixed cost of each transaction thinner.
FRAME_BATCH_SIZE = 200_000
# Files are read into columns by pyarrow, chunk by chunk: a chunk is a batch.
FILE_BATCH_SIZE = 100_000
Progress = Callable[[int], None]


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
            m.model_id: Prices(
                m.cost_per_1k_input, m.cost_per_1k_output, m.cost_per_1k_cache_read, m.cost_per_1k_cache_write
            )
            for m in session.exec(select(ModelConfig))
        }


def _stored_request_ids(conn: Connection, request_ids: list[str]) -> set[str]:
    """Return which of the ids are already stored, in one indexed query whatever their number."""
    if conn.dialect.name == "sqlite":
        query = "SELECT request_id FROM request_log WHERE request_id IN (SELECT value FROM json_each(?))"
        return {row[0] for row in conn.exec_driver_sql(query, (json.dumps(request_ids),))}
    query = "SELECT request_id FROM request_log WHERE request_id = ANY(%s)"
    return {row[0] for row in conn.exec_driver_sql(query, (request_ids,))}


_NULLABLE = ("request_id", "quality_rating", "error_type", *LOG_COLUMNS)


def _insert_rows(conn: Connection, rows: pd.DataFrame) -> None:
    """Append rows to the request log straight through the driver (no ORM objects, no per-row SQL building)."""
    columns: dict[str, list[Any]] = {}
    for name in COLUMNS:  # a validated row's fields are the request log's columns
        if name == "timestamp":
            continue  # written below in each driver's own form
        values = rows[name]
        if name in _NULLABLE:
            values = values.astype(object).where(values.notna(), None)
        columns[name] = values.tolist()
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        # SQLAlchemy's own text form for SQLite DATETIME columns, so ORM reads see ordinary datetimes.
        columns["timestamp"] = sqlite_timestamps(rows["timestamp"])
        names = list(columns)
        statement = f"INSERT INTO request_log ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        driver.executemany(statement, zip(*columns.values(), strict=True))
        return
    columns["timestamp"] = rows["timestamp"].dt.to_pydatetime().tolist()
    names = list(columns)
    with driver.cursor() as cursor, cursor.copy(f"COPY request_log ({', '.join(names)}) FROM STDIN") as copy:
        for row in zip(*columns.values(), strict=True):
            copy.write_row(row)


def write_frame(engine: Engine, rows: pd.DataFrame) -> tuple[int, int]:
    """Store validated rows and their rollups in one transaction; return (stored, skipped as already stored)."""
    if rows.empty:
        return 0, 0
    with write_transaction(engine, lock=True) as conn:
        fresh = _insert_fresh(conn, rows)
        if not fresh.empty:
            fold_rollups(conn, fresh)
            fold_spend(conn, spend_sums(fresh))
    return len(fresh), len(rows) - len(fresh)


def _insert_fresh(conn: Connection, rows: pd.DataFrame) -> pd.DataFrame:
    """Insert the rows whose request_id is not stored yet and return them.

    Optimistic, because new rows are the rule: all of them go in at once under a savepoint, and only when the
    unique request_id index refuses one are the stored ids looked up and the insert made again without them.
    """
    savepoint = conn.begin_nested()
    try:
        _insert_rows(conn, rows)
    except conn.dialect.loaded_dbapi.IntegrityError:
        savepoint.rollback()
    else:
        savepoint.commit()
        return rows
    ids = rows["request_id"].dropna().tolist()
    stored = _stored_request_ids(conn, ids) if ids else set()
    fresh = rows[~rows["request_id"].isin(stored)]
    if not fresh.empty:
        _insert_rows(conn, fresh)
    return fresh


class IngestStopped(ManagerError):
    """A batch was refused whole after earlier batches were stored: `kept` rows are in, rerunning is safe."""

    def __init__(self, line: int, reason: str, result: IngestResult):
        super().__init__(
            f"stopped at the batch from line {line}: {reason}. {result.accepted:,} rows of earlier batches were "
            "kept; loading the same input again is safe (stored request_ids are skipped)"
        )
        self.kept = result.accepted
        self.result = result  # what the stored batches did, rejects included


def ingest_batches(engine: Engine, batches: Iterable[Batch], *, progress: Progress | None = None) -> IngestResult:
    """The one ingest path: validate, de-duplicate and store batch by batch (one transaction each), then record
    the budget threshold crossings the new spend caused, once.

    A batch refused whole (a total past what the database holds, or the database busy past its timeout) raises
    its error when nothing was stored yet, and IngestStopped, saying what was kept, when earlier batches were.
    """
    result = IngestResult()
    try:
        _store_batches(engine, batches, result, progress)
    except IngestStopped:
        _finish(result)
        with contextlib.suppress(DatabaseBusy):  # a busy database must not hide what was kept
            budget_status(engine, record=True)  # for the batches that were stored
        raise
    _finish(result)
    if result.accepted:
        budget_status(engine, record=True)
    return result


def _finish(result: IngestResult) -> None:
    result.rejects.sort(key=lambda r: r.line)
    result.rejected = len(result.rejects)


def _store_batches(engine: Engine, batches: Iterable[Batch], result: IngestResult, progress: Progress | None) -> None:
    prices = registry_prices(engine)
    for batch in batches:
        result.rejects += batch.refused
        rows, errors = validate_batch(batch.records, range(len(batch.lines)), prices)
        result.rejects += [
            Reject(batch.lines[i], e.column, e.reason, str(batch.raws[i]) if batch.raws else "") for i, e in errors
        ]
        ids = rows["request_id"]
        # Repeats within the batch are dropped here; a repeat of an earlier batch's row is already stored,
        # so the store skips it like any stored request_id.
        repeated = ids.notna() & ids.duplicated()
        result.duplicates += int(repeated.sum())
        try:
            stored, skipped = write_frame(engine, rows[~repeated])
        except (TotalTooLarge, DatabaseBusy) as error:
            if not result.accepted:
                raise  # nothing was stored: the error as it is
            raise IngestStopped(min(batch.lines, default=0), str(error), result) from None
        result.accepted += stored
        result.duplicates += skipped
        if progress is not None:
            progress(result.accepted + result.duplicates + len(result.rejects))


def ingest_items(
    engine: Engine, items: Iterable[Item], *, batch_size: int = BATCH_SIZE, progress: Progress | None = None
) -> IngestResult:
    """Validate and store a reader's records batch by batch; each batch is one transaction."""
    return ingest_batches(engine, item_batches(items, batch_size), progress=progress)


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


def ingest_frame(
    engine: Engine, frame: pd.DataFrame, *, batch_size: int = FRAME_BATCH_SIZE, progress: Progress | None = None
) -> IngestResult:
    """Store a table of request records (one column per field) without building a Python object per row."""
    batches = (
        Batch(frame.iloc[start : start + batch_size], range(start + 1, min(start + batch_size, len(frame)) + 1))
        for start in range(0, len(frame), batch_size)
    )
    return ingest_batches(engine, batches, progress=progress)


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
    """Write rejected rows as CSV: line, column, reason, raw (never through a symbolic link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o600), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "reason", "raw"])
        for reject in rejects:
            writer.writerow([reject.line, safe_cell(reject.column), safe_cell(reject.reason), safe_cell(reject.raw)])


def ingest_file(
    engine: Engine,
    path: Path | str,
    *,
    fmt: str = "auto",
    batch_size: int = FILE_BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestResult:
    """Load a CSV, JSON Lines, OTLP/JSON file or a LiteLLM spend log; bad rows go to `<file>.rejects.csv`."""
    path = Path(path)
    if rejects_path(path).is_symlink():
        raise UnusableFile(f"{rejects_path(path)}: is a symbolic link; the rejects file is never written through one")
    names = None
    if fmt == "litellm":
        with read_session(engine) as session:
            names = read_model_names(session)
    batches = read_batches(path, fmt, batch_size, names)
    try:
        with collector_paused():
            result = ingest_batches(engine, batches, progress=progress)
    except IngestStopped as stopped:
        _write_or_clear_rejects(path, stopped.result)  # the rejects of the batches that were stored
        raise
    _write_or_clear_rejects(path, result)
    return result


def _write_or_clear_rejects(path: Path, result: IngestResult) -> None:
    target = rejects_path(path)
    if result.rejects:
        write_rejects(target, result.rejects)
        result.rejects_file = target
    elif target.exists():
        target.unlink()
