"""Hourly rollups and per-model totals: summing a batch of rows (pure) and folding it into the tables."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert, select, update

from manager.db import sqlite_timestamps
from manager.errors import ManagerError
from manager.ledger import histogram
from manager.ledger.grains import (
    COUNTERS,
    KEYS,
    LARGEST_TOTAL,
    MODEL_KEYS,
    STATS,
    TOKEN_COUNTERS,
    Totals,
    decode_counts,
    encode_counts,
    merge_counts,
    rollup_table,
)
from manager.ledger.rollup_read import read_rollups
from manager.timeutil import as_utc


class TotalTooLarge(ManagerError):
    """A batch would push a stored total past what the database can hold; nothing of it was stored."""


def refuse_past_largest(keys: pd.DataFrame, totals: dict[str, np.ndarray], what: str) -> None:
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


_PERIOD_NANOS = {"hour": 3600 * 10**9, "day": 86400 * 10**9}


def _utc(nanos: np.ndarray) -> pd.DatetimeIndex:
    """Return nanoseconds since the epoch as UTC datetimes."""
    return pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize(UTC)


class _Rows:
    """A batch's per-row figures as numpy arrays, computed once for every rollup made from it."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows
        self.stamps = rows["timestamp"]
        success = rows["success"].to_numpy(dtype=bool)
        quality = rows["quality_rating"].to_numpy(dtype=float, na_value=np.nan)
        rated = ~np.isnan(quality)
        self.counters: dict[str, np.ndarray] = {
            "successes": success.astype(np.int64),
            **{name: rows[name].to_numpy(dtype=np.int64) for name in TOKEN_COUNTERS[:5]},
            "usage_unknown": (~rows["usage_known"].to_numpy(dtype=bool)).astype(np.int64),
            "cost_unknown": (~rows["cost_known"].to_numpy(dtype=bool)).astype(np.int64),
            "cost_nanos": rows["cost_nanos"].to_numpy(dtype=np.int64),
            "latency_sum_ms": rows["response_time_ms"].to_numpy(dtype=float),
            "quality_sum": np.where(rated, quality, 0.0),
            "quality_count": rated.astype(np.int64),
        }
        self.buckets = histogram.buckets_of(self.counters["latency_sum_ms"])
        self.failed = np.flatnonzero(~success)
        self.errors = rows["error_type"].to_numpy(dtype=object)[self.failed]
        self.nanos = self.stamps.to_numpy(dtype="datetime64[ns]").view(np.int64)

    def starts(self, grain: str) -> np.ndarray:
        """Return the start of each row's hour or day, in nanoseconds since the epoch (UTC)."""
        period = _PERIOD_NANOS[grain]
        starts: np.ndarray = self.nanos // period * period
        return starts


def rollup_frame(rows: pd.DataFrame, grain: str, keys: list[str] = KEYS) -> pd.DataFrame:
    """Return validated rows summed per (hour or day, model, request type, language), or per other `keys`
    (MODEL_KEYS: per hour or day and model), one table row per key, in key order.

    Columns: the keys, the counters, `latency_hist` (stored bytes), `error_types` (JSON text), `first` and `last`.
    The rows are sorted by key once and every counter summed with np.add.reduceat: integer sums stay exact
    integers (only cost is also summed as floats, to refuse a total that would wrap), and nothing runs per key
    in Python but slicing the packed histograms apart and encoding the few keys that saw failures.
    """
    return _sum_rows(_Rows(rows), grain, keys)


def _sum_rows(batch: _Rows, grain: str, keys: list[str]) -> pd.DataFrame:
    n = len(batch.rows)
    if n == 0:
        return pd.DataFrame(columns=[*keys, *COUNTERS, "latency_hist", "error_types", "first", "last"])
    columns: list[Any] = [batch.starts(grain), *(batch.rows[name] for name in keys[1:])]
    combined = np.zeros(n, dtype=np.int64)
    for column in columns:  # codes in sorted order of each key, so the combined code sorts as the keys do
        codes, uniques = pd.factorize(column, sort=True)
        combined = combined * len(uniques) + codes
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    first_of_group = np.empty(n, dtype=bool)
    first_of_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first_of_group[1:])
    bounds = np.flatnonzero(first_of_group)
    group_of_row = np.empty(n, dtype=np.int64)
    group_of_row[order] = np.cumsum(first_of_group) - 1
    leaders = order[bounds]
    data: dict[str, Any] = {"start": _utc(columns[0][leaders])}
    for name in keys[1:]:
        data[name] = batch.rows[name].iloc[leaders].to_numpy(dtype=object)
    data["requests"] = np.diff(np.append(bounds, n))
    for name, values in batch.counters.items():
        data[name] = np.add.reduceat(values[order], bounds)
    data["failures"] = data["requests"] - data["successes"]
    sums = pd.DataFrame({name: data[name] for name in [*keys, *COUNTERS]})
    costs = np.add.reduceat(batch.counters["cost_nanos"][order].astype(float), bounds)
    refuse_past_largest(sums, {"cost_nanos": costs}, grain)
    nanos = batch.nanos[order]
    return sums.assign(
        latency_hist=histogram.pack_groups(group_of_row, batch.buckets, np.ones(n, dtype=np.int64), len(sums)),
        error_types=_error_counts(group_of_row[batch.failed], batch.errors, len(sums)),
        first=_utc(np.minimum.reduceat(nanos, bounds)),
        last=_utc(np.maximum.reduceat(nanos, bounds)),
    )


def _error_counts(groups: np.ndarray, errors: np.ndarray, size: int) -> list[str]:
    """Return each group's failures counted per error type, as encode_counts writes them ("{}" for none)."""
    encoded = ["{}"] * size
    counted = Counter(zip(groups.tolist(), [e if isinstance(e, str) else "unknown" for e in errors], strict=True))
    labels = {kind: json.dumps(kind) for _, kind in counted}
    parts: dict[int, list[str]] = {}
    for group, kind in sorted(counted):  # each group's types in label order, as encode_counts writes them
        parts.setdefault(group, []).append(f"{labels[kind]}:{counted[group, kind]}")
    for group, found in parts.items():
        encoded[group] = "{" + ",".join(found) + "}"
    return encoded


_SUMS = [*COUNTERS, "latency_hist", "error_types"]


def by_model(sums: pd.DataFrame) -> pd.DataFrame:
    """Return a rollup_frame summed over request types and languages: one row per (period, model)."""
    return merge_sums(sums, MODEL_KEYS)


def merge_sums(sums: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return rollup_frame rows summed per distinct value of `keys` (counters added, histograms and error types
    merged, first and last kept): the same rows, whichever batches they were summed in."""
    grouped = sums.groupby(keys, sort=True)
    per_model = grouped.agg(**{name: (name, "sum") for name in COUNTERS}, first=("first", "min"), last=("last", "max"))
    owners = grouped.ngroup().to_numpy()
    per_model["latency_hist"] = histogram.merge_by_group(owners, sums["latency_hist"].tolist(), len(per_model))
    errors: dict[int, list[dict[str, int]]] = {}
    for owner, text in zip(owners.tolist(), sums["error_types"].tolist(), strict=True):
        if text != "{}":
            errors.setdefault(owner, []).append(decode_counts(text))
    encoded = {owner: encode_counts(merge_counts(parts)) for owner, parts in errors.items()}
    per_model["error_types"] = [encoded.get(i, "{}") for i in range(len(per_model))]
    return per_model.reset_index()


def _stored_rows(conn: Connection, table: Any, grain: str, sums: pd.DataFrame) -> pd.DataFrame:
    """Return the stored rollup rows that may share a key with `sums` (one range scan on the primary key)."""
    when = table.c[grain]
    low, high = sums["start"].min().to_pydatetime(), sums["start"].max().to_pydatetime()
    models = sorted(sums["model_id"].unique().tolist())
    return read_rollups(conn, table, grain, when >= low, when <= high, table.c.model_id.in_(models))


def fold_frame(conn: Connection, grain: str, sums: pd.DataFrame, *, per_model: bool = False) -> None:
    """Add a batch's rollup_frame (or its by_model sums) to the hourly ('hour') or daily ('day') rows.

    The caller holds the write lock, so nothing else writes rollups meanwhile: rows with no stored twin are
    plain inserts, the others replace their twin with the sum of both.
    """
    if sums.empty:
        return
    table = rollup_table(grain, per_model)
    keys = MODEL_KEYS if per_model else KEYS
    stored = _stored_rows(conn, table, grain, sums)
    twin = _twins(sums, stored, keys)
    new = twin < 0
    _write(conn, table, grain, sums[new], keys, replace=False)
    if not new.all():
        _write(conn, table, grain, _added(sums[~new], stored.iloc[twin[~new]], grain), keys, replace=True)


def period_nanos(starts: pd.Series) -> list[int]:
    """Return periods as integer nanoseconds since the epoch (UTC), whatever the unit they were read in."""
    nanos: list[int] = starts.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64).tolist()
    return nanos


def _twins(sums: pd.DataFrame, stored: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Return, for each batch row, the position of the stored row with its key, or -1 when there is none."""
    if stored.empty:
        return np.full(len(sums), -1, dtype=np.int64)

    def key_tuples(frame: pd.DataFrame) -> Any:
        return zip(period_nanos(frame["start"]), *(frame[name].tolist() for name in keys[1:]), strict=True)

    position = {key: i for i, key in enumerate(key_tuples(stored))}
    return np.fromiter((position.get(key, -1) for key in key_tuples(sums)), dtype=np.int64, count=len(sums))


def _added(mine: pd.DataFrame, theirs: pd.DataFrame, grain: str) -> pd.DataFrame:
    """Return batch rows with the sums of their stored twins added (row i of one to row i of the other)."""
    mine, theirs = mine.reset_index(drop=True), theirs.reset_index(drop=True)
    refuse_past_largest(
        mine,
        {
            name: mine[name].to_numpy(dtype=float) + theirs[name].to_numpy(dtype=float)
            for name in ("cost_nanos", *TOKEN_COUNTERS)
        },
        grain,
    )
    added = mine.copy()
    for name in COUNTERS:  # stored totals past int64 come as exact Python ints; adding keeps them exact
        added[name] = mine[name].to_numpy() + theirs[name].to_numpy()
    added["latency_hist"] = histogram.add_stored(mine["latency_hist"].tolist(), theirs["latency_hist"].tolist())
    errors = mine["error_types"].tolist()
    for i, stored in enumerate(theirs["error_types"].tolist()):
        if stored != "{}":
            errors[i] = (
                stored
                if errors[i] == "{}"
                else encode_counts(merge_counts([decode_counts(errors[i]), decode_counts(stored)]))
            )
    added["error_types"] = errors
    return added


def _write(conn: Connection, table: Any, grain: str, rows: pd.DataFrame, keys: list[str], *, replace: bool) -> None:
    """Write whole rollup rows (keys, counters, histograms, error types)."""
    write_rows(conn, table, grain, rows, keys, _SUMS, replace=replace)


def write_rows(
    conn: Connection, table: Any, grain: str, rows: pd.DataFrame, keys: list[str], values: list[str], *, replace: bool
) -> None:
    """Write whole rows through the driver in bulk: column `start` goes to the grain's column, then the other
    `keys` and the `values`; with replace, a stored row with the same key has its values replaced."""
    if rows.empty:
        return
    value_names = [*keys[1:], *values]
    names = [grain, *value_names]
    driver: Any = conn.connection.driver_connection
    conflict = ", ".join([grain, *keys[1:]])
    updates = ", ".join(f"{n} = excluded.{n}" for n in values)
    upsert = f" ON CONFLICT ({conflict}) DO UPDATE SET {updates}" if replace else ""
    if conn.dialect.name == "sqlite":
        columns = [sqlite_timestamps(rows["start"]), *(rows[name].tolist() for name in value_names)]
        placeholders = ", ".join("?" * len(names))
        driver.executemany(
            f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders}){upsert}", zip(*columns, strict=True)
        )
        return
    columns = [rows["start"].dt.to_pydatetime().tolist(), *(rows[name].tolist() for name in value_names)]
    target = f"fold_{table.name}" if replace else table.name
    with driver.cursor() as cursor:
        if replace:
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {target} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
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
    exact = daily.assign(**{name: daily[name].astype(object) for name in ("cost_nanos", *TOKEN_COUNTERS)})
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
        for name in TOKEN_COUNTERS:
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


def fold_rollups(conn: Connection, rows: pd.DataFrame) -> None:
    """Add validated rows to every rollup: hourly and daily, per segment and per model, and the usage stats."""
    batch = _Rows(rows)
    for grain in ("hour", "day"):
        fold_frame(conn, grain, _sum_rows(batch, grain, KEYS))
        per_model = _sum_rows(batch, grain, MODEL_KEYS)
        fold_frame(conn, grain, per_model, per_model=True)
    fold_into_stats(conn, stats_of(per_model))


def write_rollups(conn: Connection, sums: dict[str, pd.DataFrame]) -> None:
    """Insert whole rollups (rollup_frame rows per grain, keys unique) into tables known to be empty, with their
    per-model rows and the usage stats. The caller holds the write lock."""
    for grain, rows in sums.items():
        _write(conn, rollup_table(grain), grain, rows, KEYS, replace=False)
        _write(conn, rollup_table(grain, per_model=True), grain, by_model(rows), MODEL_KEYS, replace=False)
    fold_into_stats(conn, stats_of(by_model(sums["day"])))
