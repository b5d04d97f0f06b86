"""Hourly rollups and per-model totals: summing a batch of rows (pure) and folding it into the tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Float, Integer, insert, select, type_coerce, update
from sqlalchemy.types import NullType

from manager import histogram
from manager.db import sqlite_timestamps
from manager.errors import ManagerError
from manager.models import ModelUsageDaily, ModelUsageHourly, ModelUsageStats, UsageDaily, UsageHourly

RollupKey = tuple[datetime, str, str, str]
# A BIGINT holds up to 2**63 - 1; refusing stored totals from 2**62 on leaves room for float64's rounding in
# the checks below, which read sums as floats precisely because int64 sums would wrap silently.
LARGEST_TOTAL = 2**62
HOURLY = UsageHourly.__table__  # type: ignore[attr-defined]
DAILY = UsageDaily.__table__  # type: ignore[attr-defined]
MODEL_HOURLY = ModelUsageHourly.__table__  # type: ignore[attr-defined]
MODEL_DAILY = ModelUsageDaily.__table__  # type: ignore[attr-defined]
STATS = ModelUsageStats.__table__  # type: ignore[attr-defined]


@dataclass
class Totals:
    """Sums over a set of requests: what one rollup row or one model's usage stats hold."""

    requests: int = 0
    successes: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    usage_unknown: int = 0
    cost_unknown: int = 0
    cost_nanos: int = 0
    latency_sum_ms: float = 0.0
    quality_sum: float = 0.0
    quality_count: int = 0
    hist: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None


class TotalTooLarge(ManagerError):
    """A batch would push a stored total past what the database can hold; nothing of it was stored."""


def _refuse_past_largest(keys: pd.DataFrame, totals: dict[str, np.ndarray], what: str) -> None:
    """Raise TotalTooLarge naming the first (period, model) whose total, computed as floats, passes the limit."""
    for name, values in totals.items():
        over = np.flatnonzero(np.abs(values) >= LARGEST_TOTAL)
        if len(over):
            row = keys.iloc[int(over[0])]
            raise TotalTooLarge(
                f"{row['model_id']} in the {what} from {row['start']:%Y-%m-%d %H:%M} UTC: {name} would pass "
                f"{_largest(name)}, the most one rollup row holds; this batch was not stored"
            )


def _largest(name: str) -> str:
    """Return the largest storable total of a counter as people read it."""
    return f"${LARGEST_TOTAL / 10**9:,.0f}" if "cost" in name else f"{LARGEST_TOTAL:,}"


def encode_counts(counts: Mapping[str, int]) -> str:
    """Return counts per label as compact JSON text."""
    return json.dumps(dict(sorted(counts.items())), separators=(",", ":"))


def decode_counts(text: str | None) -> dict[str, int]:
    """Return counts per label stored as JSON text."""
    return {str(k): int(v) for k, v in json.loads(text).items()} if text else {}


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Return the sum of several counts per label."""
    total: dict[str, int] = {}
    for part in parts:
        for label, count in part.items():
            total[label] = total.get(label, 0) + count
    return total


def as_utc(moment: datetime) -> datetime:
    """Return a datetime read back from the database as timezone-aware UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def model_totals(hourly: dict[RollupKey, Totals]) -> dict[str, Totals]:
    """Return hourly sums folded into one Totals per model."""
    per_model: dict[str, Totals] = {}
    for (_, model_id, _, _), part in hourly.items():
        total = per_model.setdefault(model_id, Totals())
        total.requests += part.requests
        total.successes += part.successes
        total.failures += part.failures
        for name in _TOKEN_COUNTERS:
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.cost_nanos += part.cost_nanos
        total.quality_sum += part.quality_sum
        total.quality_count += part.quality_count
        assert part.first is not None and part.last is not None
        total.first = part.first if total.first is None else min(total.first, part.first)
        total.last = part.last if total.last is None else max(total.last, part.last)
    return per_model


_TOKEN_COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_unknown",
    "cost_unknown",
)
COUNTERS = (
    "requests",
    "successes",
    "failures",
    *_TOKEN_COUNTERS,
    "cost_nanos",
    "latency_sum_ms",
    "quality_sum",
    "quality_count",
)


KEYS = ["start", "model_id", "request_type", "language"]


def rollup_frame(rows: pd.DataFrame, grain: str) -> pd.DataFrame:
    """Return validated rows summed per (hour or day, model, request type, language), one table row per key.

    Columns: KEYS, the counters, `latency_hist` (stored bytes), `error_types` (JSON text), `first` and `last`.
    Everything is vectorised; nothing runs per key in Python but slicing the packed histograms apart.
    """
    frame = rows.assign(
        start=rows["timestamp"].dt.floor("h" if grain == "hour" else "D"),
        bucket=histogram.buckets_of(rows["response_time_ms"].to_numpy(dtype=float)),
        rated=rows["quality_rating"].notna(),
        quality=rows["quality_rating"].fillna(0.0),
        error=rows["error_type"].fillna("unknown"),
        usage_unknown=~rows["usage_known"].astype(bool),
        cost_unknown=~rows["cost_known"].astype(bool),
        cost_float=rows["cost_nanos"].astype(float),  # a sum that cannot wrap, to check the exact one by
    )
    grouped = frame.groupby(KEYS, sort=True)
    sums = grouped.agg(
        requests=("model_id", "size"),
        successes=("success", "sum"),
        **{name: (name, "sum") for name in _TOKEN_COUNTERS},
        cost_nanos=("cost_nanos", "sum"),
        latency_sum_ms=("response_time_ms", "sum"),
        quality_sum=("quality", "sum"),
        quality_count=("rated", "sum"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    for name in ("successes", "quality_count", "usage_unknown", "cost_unknown"):
        sums[name] = sums[name].astype(np.int64)
    sums["failures"] = sums["requests"] - sums["successes"]
    key_of_row = grouped.ngroup().to_numpy()
    _refuse_past_largest(
        sums.reset_index(), {"cost_nanos": grouped["cost_float"].sum().to_numpy()}, grain
    )
    sums["latency_hist"] = histogram.pack_groups(
        key_of_row, frame["bucket"].to_numpy(), np.ones(len(frame), dtype=np.int64), len(sums)
    )
    errors: dict[int, dict[str, int]] = {}
    failed = ~frame["success"].to_numpy(dtype=bool)
    if failed.any():
        kinds = pd.DataFrame({"key": key_of_row[failed], "error": frame["error"].to_numpy()[failed]})
        for (key, kind), count in kinds.groupby(["key", "error"], sort=True).size().items():
            errors.setdefault(int(key), {})[str(kind)] = int(count)
    encoded = {key: encode_counts(counts) for key, counts in errors.items()}
    sums["error_types"] = [encoded.get(i, "{}") for i in range(len(sums))]
    return sums.reset_index()


MODEL_KEYS = ["start", "model_id"]
_SUMS = [*COUNTERS, "latency_hist", "error_types"]


def rollup_table(grain: str, per_model: bool = False) -> Any:
    """Return the rollup table of a grain ('hour' or 'day'), per segment or per model."""
    if per_model:
        return MODEL_HOURLY if grain == "hour" else MODEL_DAILY
    return HOURLY if grain == "hour" else DAILY


def by_model(sums: pd.DataFrame) -> pd.DataFrame:
    """Return a rollup_frame summed over request types and languages: one row per (period, model)."""
    return merge_sums(sums, MODEL_KEYS)


def merge_sums(sums: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return rollup_frame rows summed per distinct value of `keys` (counters added, histograms and error types
    merged, first and last kept): the same rows, whichever batches they were summed in."""
    grouped = sums.groupby(keys, sort=True)
    per_model = grouped.agg(
        **{name: (name, "sum") for name in COUNTERS}, first=("first", "min"), last=("last", "max")
    )
    owners = grouped.ngroup().to_numpy()
    per_model["latency_hist"] = histogram.merge_by_group(owners, sums["latency_hist"].tolist(), len(per_model))
    errors: dict[int, list[dict[str, int]]] = {}
    for owner, text in zip(owners.tolist(), sums["error_types"].tolist(), strict=True):
        if text != "{}":
            errors.setdefault(owner, []).append(decode_counts(text))
    encoded = {owner: encode_counts(merge_counts(parts)) for owner, parts in errors.items()}
    per_model["error_types"] = [encoded.get(i, "{}") for i in range(len(per_model))]
    return per_model.reset_index()


def read_rollups(conn: Connection, table: Any, grain: str, *conditions: Any) -> pd.DataFrame:
    """Return a rollup table's rows matching the conditions as a frame; column `start` is each row's period.

    The driver's own values (no per-value type processing, no SQLAlchemy Row objects, which cost as much
    as the read), turned into one typed column each.
    """
    query = select(*(type_coerce(c, NullType()) for c in table.c)).where(*conditions)
    rows = conn.execute(query).cursor.fetchall()
    values = list(zip(*rows, strict=True)) if rows else [()] * len(table.c)
    data: dict[str, Any] = {}
    for column, column_values in zip(table.c, values, strict=True):
        if column.name == grain:
            data["start"] = pd.to_datetime(pd.Series(column_values, dtype=object), utc=True, format="ISO8601")
        elif isinstance(column.type, Integer):
            data[column.name] = _exact_integers(column_values)
        elif isinstance(column.type, Float):
            data[column.name] = np.array(column_values, dtype=np.float64)
        else:
            data[column.name] = pd.Series(column_values, dtype=object)
    return pd.DataFrame(data)


def _exact_integers(values: Sequence[int]) -> np.ndarray:
    """Return stored integers as int64, or as exact Python ints when their sum would not fit int64 (so that
    a report summing them can never wrap)."""
    array = np.array(values, dtype=np.int64)
    if np.abs(array.astype(float)).sum() >= LARGEST_TOTAL:
        return np.array([int(v) for v in values], dtype=object)
    return array


def _stored_rows(conn: Connection, table: Any, grain: str, sums: pd.DataFrame) -> pd.DataFrame:
    """Return the stored rollup rows that may share a key with `sums` (one range scan on the primary key)."""
    when = table.c[grain]
    low, high = sums["start"].min().to_pydatetime(), sums["start"].max().to_pydatetime()
    models = sorted(sums["model_id"].unique().tolist())
    return read_rollups(conn, table, grain, when >= low, when <= high, table.c.model_id.in_(models))


def fold_frame(conn: Connection, grain: str, sums: pd.DataFrame, *, per_model: bool = False) -> None:
    """Add a batch's rollup_frame (or its by_model sums) to the hourly ('hour') or daily ('day') rows.

    The caller holds the write lock.
    """
    if sums.empty:
        return
    table = rollup_table(grain, per_model)
    keys = MODEL_KEYS if per_model else KEYS
    stored = _stored_rows(conn, table, grain, sums)
    # Only the batch's rows in periods that already have stored rows can meet one: merge just those.
    meets = sums["start"].isin(stored["start"].unique()).to_numpy()
    merged = sums[meets].merge(stored, on=keys, how="left", suffixes=("", "_old"), indicator=True)
    old = (merged.pop("_merge") == "both").to_numpy()
    if old.any():
        both = merged[old]
        _refuse_past_largest(
            both,
            {
                name: both[name].to_numpy(dtype=float) + both[f"{name}_old"].to_numpy(dtype=float)
                for name in ("cost_nanos", *_TOKEN_COUNTERS)
            },
            grain,
        )
        for name in COUNTERS:
            merged.loc[old, name] = merged.loc[old, name] + merged.loc[old, f"{name}_old"]
        summed = histogram.add_stored(
            merged.loc[old, "latency_hist"].tolist(), merged.loc[old, "latency_hist_old"].tolist()
        )
        merged.loc[old, "latency_hist"] = pd.Series(summed, index=merged.index[old], dtype=object)
        both = old & (merged["error_types"] != "{}").to_numpy() & (merged["error_types_old"] != "{}").to_numpy()
        for i in np.flatnonzero(both):
            parts = [decode_counts(merged.at[i, "error_types"]), decode_counts(merged.at[i, "error_types_old"])]
            merged.at[i, "error_types"] = encode_counts(merge_counts(parts))
        only_old = old & (merged["error_types"] == "{}").to_numpy()
        merged.loc[only_old, "error_types"] = merged.loc[only_old, "error_types_old"]
    # Under the ingest lock nothing else writes rollups, so rows with no stored twin are plain inserts.
    _write(conn, table, grain, sums[~meets], keys, replace=False)
    _write(conn, table, grain, merged, keys, replace=True)


def _write(conn: Connection, table: Any, grain: str, rows: pd.DataFrame, keys: list[str], *, replace: bool) -> None:
    """Write whole rollup rows through the driver in bulk; with replace, a stored row with the same key is replaced."""
    if rows.empty:
        return
    value_names = [*keys[1:], *_SUMS]
    names = [grain, *value_names]
    driver: Any = conn.connection.driver_connection
    conflict = ", ".join([grain, *keys[1:]])
    updates = ", ".join(f"{n} = excluded.{n}" for n in _SUMS)
    upsert = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}" if replace else ""
    if conn.dialect.name == "sqlite":
        columns = [sqlite_timestamps(rows["start"]), *(rows[name].tolist() for name in value_names)]
        placeholders = ", ".join("?" * len(names))
        driver.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders}){upsert}",
                           zip(*columns, strict=True))
        return
    columns = [rows["start"].dt.to_pydatetime().tolist(), *(rows[name].tolist() for name in value_names)]
    target = f"fold_{table.name}" if replace else table.name
    with driver.cursor() as cursor:
        if replace:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {target} (LIKE {table.name} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
        with cursor.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
        if replace:
            cursor.execute(
                f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM {target}{upsert}"
            )
            cursor.execute(f"DELETE FROM {target}")


def stats_of(daily: pd.DataFrame) -> dict[str, Totals]:
    """Return a batch's daily rollup_frame folded into one Totals per model, for the usage stats."""
    # Summed as Python ints: a model's days can add up past int64 within one batch.
    exact = daily.assign(**{name: daily[name].astype(object) for name in ("cost_nanos", *_TOKEN_COUNTERS)})
    per_model = exact.groupby("model_id").agg(
        **{name: (name, "sum") for name in COUNTERS}, first=("first", "min"), last=("last", "max")
    )
    stats = {}
    for model_id, row in zip(per_model.index, per_model.itertuples(index=False), strict=True):
        stats[str(model_id)] = totals = Totals(
            requests=int(row.requests),
            successes=int(row.successes),
            failures=int(row.failures),
            cost_nanos=int(row.cost_nanos),
            quality_sum=float(row.quality_sum),
            quality_count=int(row.quality_count),
            first=row.first.to_pydatetime(),
            last=row.last.to_pydatetime(),
        )
        for name in _TOKEN_COUNTERS:
            setattr(totals, name, int(getattr(row, name)))
    return stats


def fold_into_stats(conn: Connection, per_model: dict[str, Totals]) -> None:
    """Add batch sums to each model's all-time usage stats."""
    if not per_model:
        return
    found = {
        row["model_id"]: row
        for row in conn.execute(select(STATS).where(STATS.c.model_id.in_(list(per_model)))).mappings()
    }
    for model_id, delta in per_model.items():
        row = found.get(model_id)
        values = {
            "total_requests": delta.requests,
            "successful_requests": delta.successes,
            "failed_requests": delta.failures,
            "total_input_tokens": delta.input_tokens,
            "total_output_tokens": delta.output_tokens,
            "total_cache_read_tokens": delta.cache_read_tokens,
            "total_cache_write_tokens": delta.cache_write_tokens,
            "total_reasoning_tokens": delta.reasoning_tokens,
            "usage_unknown_requests": delta.usage_unknown,
            "cost_unknown_requests": delta.cost_unknown,
            "total_cost_nanos": delta.cost_nanos,
            "quality_sum": delta.quality_sum,
            "quality_count": delta.quality_count,
        }
        stored = {k: 0 if row is None else int(row[k]) for k in values}
        over = [k for k, v in values.items() if isinstance(v, int) and abs(stored[k] + v) >= LARGEST_TOTAL]
        if over:
            raise TotalTooLarge(
                f"{model_id}: its all-time {over[0]} would pass {_largest(over[0])}, the most the ledger holds "
                "for one model; this batch was not stored"
            )
        if row is None:
            conn.execute(
                insert(STATS).values(model_id=model_id, first_used=delta.first, last_used=delta.last, **values)
            )
            continue
        first, last = as_utc(row["first_used"]), as_utc(row["last_used"])
        conn.execute(
            update(STATS)
            .where(STATS.c.model_id == model_id)
            .values(
                {
                    **{k: STATS.c[k] + v for k, v in values.items()},
                    "first_used": min(first, delta.first) if delta.first else first,
                    "last_used": max(last, delta.last) if delta.last else last,
                }
            )
        )


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
        **{name: (name, "sum") for name in _TOKEN_COUNTERS},
        cost_nanos=("cost_nanos", "sum"),
        latency_sum_ms=("response_time_ms", "sum"),
        quality_sum=("quality", "sum"),
        quality_count=("rated", "sum"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    hists: dict[tuple, dict[int, int]] = {}
    for (*key, bucket), count in frame.groupby([*keys, "bucket"], sort=False).size().items():
        hists.setdefault(tuple(key), {})[int(bucket)] = int(count)
    errors: dict[tuple, dict[str, int]] = {}
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
            **{name: int(getattr(row, name)) for name in _TOKEN_COUNTERS},
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


def fold_rollups(conn: Connection, rows: pd.DataFrame) -> None:
    """Add validated rows to every rollup: hourly and daily, per segment and per model, and the usage stats."""
    for grain in ("hour", "day"):
        sums = rollup_frame(rows, grain)
        fold_frame(conn, grain, sums)
        per_model = by_model(sums)
        fold_frame(conn, grain, per_model, per_model=True)
    fold_into_stats(conn, stats_of(per_model))


def write_rollups(conn: Connection, sums: dict[str, pd.DataFrame]) -> None:
    """Insert whole rollups (rollup_frame rows per grain, keys unique) into tables known to be empty, with their
    per-model rows and the usage stats. The caller holds the write lock."""
    for grain, rows in sums.items():
        _write(conn, rollup_table(grain), grain, rows, KEYS, replace=False)
        _write(conn, rollup_table(grain, per_model=True), grain, by_model(rows), MODEL_KEYS, replace=False)
    fold_into_stats(conn, stats_of(by_model(sums["day"])))
