"""Checking and repairing the rollups: recompute them from the raw request log and compare or replace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select

from manager.db import INGEST_LOCK_KEY, write_transaction
from manager.ledger import histogram, spend_rollups
from manager.ledger.grains import (
    COUNTERS,
    DAILY,
    HOURLY,
    KEYS,
    MODEL_DAILY,
    MODEL_HOURLY,
    STATS,
    TOKEN_COUNTERS,
    RollupKey,
    Totals,
    decode_counts,
    merge_counts,
)
from manager.ledger.rollups import fold_rollups, merge_sums, rollup_frame, write_rollups
from manager.models import (
    AttributionDaily,
    AttributionDimensionDaily,
    AttributionMonthly,
    ModelUsageDaily,
    ModelUsageHourly,
    ModelUsageStats,
    RequestLog,
    UsageDaily,
    UsageHourly,
)
from manager.timeutil import as_utc

LOG = RequestLog.__table__  # type: ignore[attr-defined]
SCAN_CHUNK = 200_000
ALL = "*"  # the segment of a per-model rollup row: every request type and language
_FLOATS = ("latency_sum_ms", "quality_sum")
_SUMMED = tuple(name for name in COUNTERS if name not in _FLOATS)


@dataclass(frozen=True)
class Drift:
    """One place where a stored rollup disagrees with the raw log."""

    table: str
    key: str
    field: str
    stored: Any
    expected: Any

    def as_dict(self) -> dict[str, Any]:
        """Return the drift as plain data."""
        return {k: str(v) if k in ("stored", "expected") else v for k, v in asdict(self).items()}


def _add(into: dict[RollupKey, Totals], more: dict[RollupKey, Totals]) -> None:
    for key, part in more.items():
        total = into.get(key)
        if total is None:
            into[key] = part
            continue
        for name in (*_SUMMED, *_FLOATS):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.hist = histogram.merge([total.hist, part.hist])
        total.errors = merge_counts([total.errors, part.errors])
        total.first = min(filter(None, (total.first, part.first)), default=None)
        total.last = max(filter(None, (total.last, part.last)), default=None)


def _log_chunks(conn: Connection, *conditions: Any) -> Iterator[pd.DataFrame]:
    """Yield the raw request log (rows matching the conditions) as frames of SCAN_CHUNK rows, typed as ingest's
    validated rows are."""
    columns = [c.name for c in LOG.c]
    query = select(LOG).where(*conditions).execution_options(stream_results=True, yield_per=SCAN_CHUNK)
    result = conn.execute(query)
    for chunk in result.partitions(SCAN_CHUNK):
        frame = pd.DataFrame(chunk, columns=columns)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        for flag in ("success", "usage_known", "cost_known"):
            frame[flag] = frame[flag].astype(bool)
        frame["quality_rating"] = frame["quality_rating"].astype(float)
        yield frame


def recompute(
    conn: Connection, progress: Callable[[int], None] | None = None
) -> tuple[dict[RollupKey, Totals], dict[RollupKey, Totals], pd.DataFrame]:
    """Return the hourly and daily rollups, and the spend per attribution value, as the raw request log says they
    should be (one full scan).

    The rollups are summed with the row-by-key Totals path, independent of the vectorised one that ingest writes
    with; the attribution sums are each chunk's spend_sums added up, independent of the fold that adds each batch
    to what is stored.
    """
    hourly: dict[RollupKey, Totals] = {}
    daily: dict[RollupKey, Totals] = {}
    spend = _SpendSums()
    done = 0
    for frame in _log_chunks(conn):
        _add(hourly, totals_from_frame(frame, "hour"))
        _add(daily, totals_from_frame(frame, "day"))
        spend.add(frame)
        done += len(frame)
        if progress:
            progress(done)
    return hourly, daily, spend.total()


class _SpendSums:
    """Attribution sums of a scan, chunk by chunk, merged whenever the parts grow large (bounded memory)."""

    def __init__(self) -> None:
        self.parts: list[pd.DataFrame] = []
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        """Add a chunk of validated rows."""
        part = spend_rollups.spend_sums(frame)
        self.parts.append(part)
        self.rows += len(part)
        if self.rows > 2_000_000 and len(self.parts) > 1:
            self.parts = [spend_rollups.merged(self.parts)]
            self.rows = len(self.parts[0])

    def total(self) -> pd.DataFrame:
        """Return the sums of every chunk added."""
        return spend_rollups.merged(self.parts)


def _stored(conn: Connection, table: Any, grain: str) -> dict[RollupKey, dict[str, Any]]:
    rows = {}
    for row in conn.execute(select(table)).mappings():
        key = (as_utc(row[grain]), row["model_id"], row.get("request_type", ALL), row.get("language", ALL))
        rows[key] = dict(row)
    return rows


def _per_model(sums: dict[RollupKey, Totals]) -> dict[RollupKey, Totals]:
    """Return per-segment sums folded per (period, model), keyed with ALL for the segment."""
    folded: dict[RollupKey, Totals] = {}
    for (start, model_id, _, _), part in sums.items():
        copy = replace(part, hist=dict(part.hist), errors=dict(part.errors))
        _add(folded, {(start, model_id, ALL, ALL): copy})
    return folded


def _label(key: RollupKey) -> str:
    return f"{key[0].isoformat()} {key[1]} {key[2]} {key[3]}"


def _compare(table: str, stored: dict[RollupKey, dict[str, Any]], expected: dict[RollupKey, Totals]) -> list[Drift]:
    drift = []
    for key in sorted(set(stored) | set(expected)):
        have, want = stored.get(key), expected.get(key)
        if have is None or want is None:
            drift.append(Drift(table, _label(key), "*", "row" if have else "missing", "row" if want else "none"))
            continue
        impossible = [name for name in _SUMMED if int(have[name]) < 0]
        if int(have["successes"]) + int(have["failures"]) != int(have["requests"]):
            impossible.append("successes + failures != requests")
        drift += [Drift(table, _label(key), name, "impossible", "a total that cannot be") for name in impossible]
        for name in _SUMMED:
            if int(have[name]) != getattr(want, name):
                drift.append(Drift(table, _label(key), name, have[name], getattr(want, name)))
        for name in _FLOATS:
            if abs(float(have[name]) - getattr(want, name)) > 1e-6 * max(1.0, abs(getattr(want, name))):
                drift.append(Drift(table, _label(key), name, have[name], getattr(want, name)))
        if histogram.decode(have["latency_hist"]) != want.hist:
            stored_hist = histogram.describe(histogram.decode(have["latency_hist"]))
            drift.append(Drift(table, _label(key), "latency_hist", stored_hist, histogram.describe(want.hist)))
        if decode_counts(have["error_types"]) != want.errors:
            drift.append(Drift(table, _label(key), "error_types", have["error_types"], want.errors))
    return drift


def verify(engine: Engine, *, progress: Callable[[int], None] | None = None) -> list[Drift]:
    """Return every difference between the stored rollups and usage stats and a recomputation from the raw log
    (`progress` is told the rows scanned so far)."""
    with engine.connect() as conn, conn.begin():
        hourly, daily, spend = recompute(conn, progress)
        drift = _compare("usage_hourly", _stored(conn, HOURLY, "hour"), hourly)
        drift += _compare("usage_daily", _stored(conn, DAILY, "day"), daily)
        drift += _compare("usage_model_hourly", _stored(conn, MODEL_HOURLY, "hour"), _per_model(hourly))
        drift += _compare("usage_model_daily", _stored(conn, MODEL_DAILY, "day"), _per_model(daily))
        stats = {row["model_id"]: row for row in conn.execute(select(STATS)).mappings()}
        stored_spend = spend_rollups.stored_spend(conn)
    for (table, _, keys), (name, expected) in zip(
        spend_rollups.TABLES, spend_rollups.levels(spend).items(), strict=True
    ):
        found = spend_rollups.differences(stored_spend[name], expected, keys)
        drift += [Drift(table.name, key, field, stored, want) for key, field, stored, want in found]
    for model_id, want in sorted(model_totals(daily).items()):
        have = stats.get(model_id)
        pairs = {
            "total_requests": want.requests,
            "failed_requests": want.failures,
            "total_cost_nanos": want.cost_nanos,
            "usage_unknown_requests": want.usage_unknown,
            "cost_unknown_requests": want.cost_unknown,
        }
        for name, value in pairs.items():
            if have is None or int(have[name]) != value:
                drift.append(Drift("model_usage_stats", model_id, name, None if have is None else have[name], value))
    return drift


def rebuild_rollups(engine: Engine, *, progress: Callable[[int], None] | None = None) -> int:
    """Replace the rollups and usage stats with a recomputation from the raw log; return the rollup rows written.

    The recomputation reads a snapshot of the log without any lock, so ingests, sign-ins and edits go on while
    it runs; only the swap (emptying the tables, writing the new rows, folding in what was ingested meanwhile)
    holds the write lock, for about as long as an ingest batch of that size.
    """
    with _snapshot(engine) as (conn, last_id):
        parts: dict[str, list[pd.DataFrame]] = {"hour": [], "day": []}
        spend = _SpendSums()
        done = 0
        for frame in _log_chunks(conn, LOG.c.id <= last_id):
            for grain, found in parts.items():
                found.append(rollup_frame(frame, grain))
            spend.add(frame)
            done += len(frame)
            if progress:
                progress(done)
    sums = {grain: merge_sums(pd.concat(found, ignore_index=True), KEYS) for grain, found in parts.items() if found}
    with write_transaction(engine, lock=True) as conn:
        for table in _REBUILT:
            conn.execute(delete(table.__table__))  # type: ignore[union-attr]
        if sums:
            write_rollups(conn, sums)
        spend_rollups.write_spend(conn, spend.total())
        for frame in _log_chunks(conn, LOG.c.id > last_id):
            fold_rollups(conn, frame)
            spend_rollups.fold_spend(conn, spend_rollups.spend_sums(frame))
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (HOURLY, DAILY)]
    return int(sum(counts))


_REBUILT = (
    UsageHourly,
    UsageDaily,
    ModelUsageHourly,
    ModelUsageDaily,
    ModelUsageStats,
    AttributionDaily,
    AttributionMonthly,
    AttributionDimensionDaily,
)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[tuple[Connection, int]]:
    """Yield a connection reading one consistent snapshot of the log, and the last request id in it.

    Rows that later ingests add have larger ids: on SQLite writers are serialised and row ids grow; on
    PostgreSQL the ingest lock is held while the snapshot is taken, so no ingest is half-way through.
    """
    if engine.dialect.name != "postgresql":
        with engine.connect() as conn, conn.begin():
            yield conn, int(conn.execute(select(func.coalesce(func.max(LOG.c.id), 0))).scalar_one())
        return
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({INGEST_LOCK_KEY})")
        try:
            last_id = int(conn.execute(select(func.coalesce(func.max(LOG.c.id), 0))).scalar_one())
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({INGEST_LOCK_KEY})")
        yield conn, last_id


def model_totals(hourly: dict[RollupKey, Totals]) -> dict[str, Totals]:
    """Return hourly sums folded into one Totals per model."""
    per_model: dict[str, Totals] = {}
    for (_, model_id, _, _), part in hourly.items():
        total = per_model.setdefault(model_id, Totals())
        total.requests += part.requests
        total.successes += part.successes
        total.failures += part.failures
        for name in TOKEN_COUNTERS:
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.cost_nanos += part.cost_nanos
        total.quality_sum += part.quality_sum
        total.quality_count += part.quality_count
        assert part.first is not None and part.last is not None
        total.first = part.first if total.first is None else min(total.first, part.first)
        total.last = part.last if total.last is None else max(total.last, part.last)
    return per_model


def totals_from_frame(rows: pd.DataFrame, grain: str = "hour") -> dict[RollupKey, Totals]:
    """Return a frame of validated rows summed per (hour or day, model, request type, language), with histograms."""
    if rows.empty:
        return {}
    frame = rows.assign(
        hour=rows["timestamp"].dt.floor("h" if grain == "hour" else "D"),
        bucket=histogram.buckets_of(rows["response_time_ms"].to_numpy(dtype=float)),
        rated=rows["quality_rating"].notna(),
        quality=rows["quality_rating"].fillna(0.0),
        failed=~rows["success"],
        error=rows["error_type"].fillna("unknown"),
        usage_unknown=~rows["usage_known"].astype(bool),
        cost_unknown=~rows["cost_known"].astype(bool),
    )
    keys = ["hour", "model_id", "request_type", "language"]
    sums = frame.groupby(keys, sort=False).agg(
        requests=("model_id", "size"),
        successes=("success", "sum"),
        **{name: (name, "sum") for name in TOKEN_COUNTERS},
        cost_nanos=("cost_nanos", "sum"),
        latency_sum_ms=("response_time_ms", "sum"),
        quality_sum=("quality", "sum"),
        quality_count=("rated", "sum"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    hists: dict[tuple[Any, ...], dict[int, int]] = {}
    for (*key, bucket), count in frame.groupby([*keys, "bucket"], sort=False).size().items():
        hists.setdefault(tuple(key), {})[int(bucket)] = int(count)
    errors: dict[tuple[Any, ...], dict[str, int]] = {}
    failed = frame[frame["failed"]]
    for (*key, kind), count in failed.groupby([*keys, "error"], sort=False).size().items():
        errors.setdefault(tuple(key), {})[str(kind)] = int(count)
    totals: dict[RollupKey, Totals] = {}
    for key, row in zip(sums.index, sums.itertuples(index=False), strict=True):
        requests, successes = int(row.requests), int(row.successes)
        hour = key[0].to_pydatetime()
        totals[(hour, str(key[1]), str(key[2]), str(key[3]))] = Totals(
            requests=requests,
            successes=successes,
            failures=requests - successes,
            **{name: int(getattr(row, name)) for name in TOKEN_COUNTERS},
            cost_nanos=int(row.cost_nanos),
            latency_sum_ms=float(row.latency_sum_ms),
            quality_sum=float(row.quality_sum),
            quality_count=int(row.quality_count),
            hist=hists[key],
            errors=errors.get(key, {}),
            first=row.first.to_pydatetime(),
            last=row.last.to_pydatetime(),
        )
    return totals


def log_rows(engine: Engine) -> int:
    """Return how many requests the raw log holds (what a scan of it will go through)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(LOG)).scalar_one())
