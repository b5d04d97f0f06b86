"""Daily spend per attribution value: summing a batch per (day, dimension, value, model) (pure) and folding it in.

Three tables hold the sums:
- per (dimension, value, day, model): a value's days by the primary key (its page, its budgets, exports);
- per (dimension, value, month), over models: each month's values in spend order by the rank index, from which
  a window's top values are found without reading every value (manager.spend);
- per (dimension, day), over values and models: the total beside the top values, so "other" is exact.

A request without a value for a dimension is in none of its rows; a request with two tags is in both tags' rows.
A batch is added with one upsert per table that adds to what is stored, without reading it first. No row can
overflow where the per-model daily rollup does not: a row of the first table is part of its (day, model) row,
and before the fold the days' totals over every model (times the most tags a request has, for tags) are checked
against what a row holds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, select

from manager.db import sqlite_timestamps
from manager.ledger.attribution import DIMENSIONS, MAX_TAGS, TAG_SEPARATOR
from manager.ledger.grains import LARGEST_TOTAL, MODEL_DAILY
from manager.ledger.rollup_read import read_rollups
from manager.ledger.rollups import TotalTooLarge, period_nanos, refuse_past_largest, write_rows
from manager.models import AttributionDaily, AttributionDimensionDaily, AttributionMonthly

COUNTERS = ("requests", "failures", "input_tokens", "output_tokens", "cost_nanos", "cost_unknown")
BY_MODEL = AttributionDaily.__table__  # type: ignore[attr-defined]
BY_MONTH = AttributionMonthly.__table__  # type: ignore[attr-defined]
BY_DIMENSION = AttributionDimensionDaily.__table__  # type: ignore[attr-defined]
MODEL_KEYS = ["start", "dimension", "value", "model_id"]
MONTH_KEYS = ["start", "dimension", "value"]
DIMENSION_KEYS = ["start", "dimension"]
# Each table, the name of its period column, and its keys (`start` is the period).
TABLES = ((BY_MODEL, "day", MODEL_KEYS), (BY_MONTH, "month", MONTH_KEYS), (BY_DIMENSION, "day", DIMENSION_KEYS))
_DAY = 86400 * 10**9


def empty_sums(keys: list[str] = MODEL_KEYS) -> pd.DataFrame:
    """Return a sums frame with no rows."""
    return pd.DataFrame(columns=[*keys, *COUNTERS])


def spend_sums(rows: pd.DataFrame) -> pd.DataFrame:
    """Return validated request rows summed per (UTC day, dimension, value, model).

    Columns: start (the day), dimension, value, model_id and COUNTERS. Only the dimensions a row has a value
    for count it; its tags are split, each counting it once. Each dimension's entries are coded as one integer
    per (day, model, value), sorted once and summed with np.add.reduceat, so integer sums stay exact and nothing
    runs per row in Python (tags are split once per distinct stored text).
    """
    if rows.empty:
        return empty_sums()
    nanos = rows["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    day_codes, days = pd.factorize(nanos // _DAY * _DAY)
    model_codes, models = pd.factorize(rows["model_id"])
    counters = {
        "requests": np.ones(len(rows), dtype=np.int64),
        "failures": (~rows["success"].to_numpy(dtype=bool)).astype(np.int64),
        "input_tokens": rows["input_tokens"].to_numpy(dtype=np.int64),
        "output_tokens": rows["output_tokens"].to_numpy(dtype=np.int64),
        "cost_nanos": rows["cost_nanos"].to_numpy(dtype=np.int64),
        "cost_unknown": (~rows["cost_known"].to_numpy(dtype=bool)).astype(np.int64),
    }
    row_keys = day_codes.astype(np.int64) * len(models) + model_codes
    parts = []
    for dimension, column in DIMENSIONS.items():
        if column not in rows.columns:
            continue
        codes, values = pd.factorize(rows[column])  # a missing value is code -1
        if dimension == "tag":
            entries, codes, values = _split_tags(codes, values)
        else:
            entries = np.flatnonzero(codes >= 0)
            codes = codes[entries]
        if len(entries):
            combined = row_keys[entries] * len(values) + codes
            parts.append(_summed(dimension, combined, entries, counters, days, models, values))
    if not parts:
        return empty_sums()
    return pd.concat(parts, ignore_index=True)


def _split_tags(codes: np.ndarray, texts: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """Return one entry per (row, tag): the row, the tag's code, and the distinct tags (from stored `a;b` texts)."""
    split = [str(text).split(TAG_SEPARATOR) for text in texts]
    tag_codes, tags = pd.factorize(pd.Series([t for parts in split for t in parts], dtype=object))
    counts = np.array([len(parts) for parts in split], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    tagged = np.flatnonzero(codes >= 0)
    per_row = counts[codes[tagged]]
    entries = np.repeat(tagged, per_row)
    # The place of each entry's tag in the flat list: its text's offset plus its place within the text.
    starts = np.repeat(offsets[codes[tagged]], per_row)
    within = np.arange(len(entries)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return entries, tag_codes[starts + within], tags


def _summed(
    dimension: str,
    combined: np.ndarray,
    entries: np.ndarray,
    counters: dict[str, np.ndarray],
    days: Any,
    models: Any,
    values: Any,
) -> pd.DataFrame:
    """Return one dimension's entries summed per combined (day, model, value) code."""
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    bounds = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    row_key, value_code = np.divmod(ordered[bounds], len(values))
    day_code, model_code = np.divmod(row_key, len(models))
    rows = entries[order]
    sums = {name: np.add.reduceat(counter[rows], bounds) for name, counter in counters.items()}
    starts = np.asarray(days, dtype=np.int64)[day_code].view("datetime64[ns]")
    frame = pd.DataFrame(
        {
            "start": pd.DatetimeIndex(starts).tz_localize("UTC"),
            "dimension": dimension,
            "value": np.asarray(values, dtype=object)[value_code],
            "model_id": np.asarray(models, dtype=object)[model_code],
            **sums,
        }
    )
    group_size = float(np.diff(np.append(bounds, len(rows))).max())
    if any(float(np.abs(counter[rows]).max()) * group_size >= LARGEST_TOTAL for counter in counters.values()):
        floats = {name: np.add.reduceat(counter[rows].astype(float), bounds) for name, counter in counters.items()}
        refuse_past_largest(frame.assign(model_id=_labels(frame, MODEL_KEYS)), floats, "day")
    return frame


def sum_by(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Return the counters of `frame` summed per distinct `keys`, in key order; TotalTooLarge names a sum that
    would pass what a row holds (checked as floats only when the largest value times the rows could)."""
    grouped = frame.groupby(keys, sort=True)[list(COUNTERS)]
    sums = grouped.sum()
    widest = frame[list(COUNTERS)].abs().max().to_numpy(dtype=float) * float(grouped.size().max())
    if (widest >= LARGEST_TOTAL).any():
        floats = frame.assign(**{n: frame[n].astype(float) for n in COUNTERS}).groupby(keys, sort=True)
        totals = floats[list(COUNTERS)].sum()
        labels = sums.reset_index()[keys].assign(model_id=_labels(sums.reset_index(), keys))
        refuse_past_largest(labels, {n: totals[n].to_numpy() for n in COUNTERS}, "day")
    return sums.reset_index()


def _labels(sums: pd.DataFrame, keys: list[str]) -> list[str]:
    """Return each row's key as a refusal names it ("team growth gpt-4o")."""
    return [" ".join(map(str, key)) for key in zip(*(sums[k] for k in keys[1:]), strict=True)]


def fold_spend(conn: Connection, sums: pd.DataFrame) -> None:
    """Add a batch's spend_sums to the attribution tables, after its rollups were folded in (their per-model
    daily rows bound every attribution row). The caller holds the write lock."""
    if sums.empty:
        return
    _check_room(conn, sums)
    for (table, grain, keys), part in zip(TABLES, levels(sums).values(), strict=True):
        # In primary-key order: each row then lands beside the last one in the table's b-tree.
        _add(conn, table, grain, keys, part.sort_values([*keys[1:3], "start", *keys[3:]], ignore_index=True))


def _check_room(conn: Connection, sums: pd.DataFrame) -> None:
    """Raise TotalTooLarge when a touched day's total over every model, times the most tags a request can have
    (for tags), could pass what a row holds: then a sum over models or tags might too."""
    days = sorted(sums["start"].unique().tolist())
    factor = MAX_TAGS if (sums["dimension"] == "tag").any() else 1
    table = MODEL_DAILY
    names = ("requests", "input_tokens", "output_tokens", "cost_nanos")
    # Summed as floats: exact enough for a bound, and never an integer overflow in the database.
    query = (
        select(table.c.day, *(func.sum(func.abs(table.c[n]) * 1.0) for n in names))
        .where(table.c.day.in_([d.to_pydatetime() for d in days]))
        .group_by(table.c.day)
    )
    for day, *totals in conn.execute(query):
        for name, total in zip(names, totals, strict=True):
            if float(total or 0) * factor >= LARGEST_TOTAL:
                raise TotalTooLarge(
                    f"the day {str(day)[:10]}: {name} over every model would let a sum by team, user, key, app, "
                    "environment or tag pass what a row holds; this batch was not stored"
                )


def _add(conn: Connection, table: Any, grain: str, keys: list[str], rows: pd.DataFrame) -> None:
    """Upsert rows whose counters are added to a stored row with the same key (inserted when there is none)."""
    names = [grain, *keys[1:], *COUNTERS]
    conflict = ", ".join([grain, *keys[1:]])
    updates = ", ".join(f"{n} = {table.name}.{n} + excluded.{n}" for n in COUNTERS)
    upsert = f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "sqlite":
        columns = [sqlite_timestamps(rows["start"]), *(rows[n].tolist() for n in names[1:])]
        placeholders = ", ".join("?" * len(names))
        statement = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders}) {upsert}"
        driver.executemany(statement, zip(*columns, strict=True))
        return
    columns = [rows["start"].dt.to_pydatetime().tolist(), *(rows[n].tolist() for n in names[1:])]
    staged = f"add_{table.name}"
    with driver.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staged} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {staged} ({', '.join(names)}) FROM STDIN") as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(names)} FROM {staged} {upsert}"
        )
        cursor.execute(f"DELETE FROM {staged}")


def write_spend(conn: Connection, sums: pd.DataFrame) -> None:
    """Insert whole attribution sums (spend_sums rows, keys unique) into tables known to be empty."""
    for (table, grain, keys), part in zip(TABLES, levels(sums).values(), strict=True):
        write_rows(conn, table, grain, part, keys, list(COUNTERS), replace=False)


def stored_spend(conn: Connection) -> dict[str, pd.DataFrame]:
    """Return every row of the attribution tables, by table name."""
    return {table.name: read_rollups(conn, table, grain) for table, grain, _ in TABLES}


def merged(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Return several batches' spend_sums as one, each key's counters added."""
    found = [p for p in parts if not p.empty]
    return sum_by(pd.concat(found, ignore_index=True), MODEL_KEYS) if found else empty_sums()


def levels(sums: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return spend_sums at the depth of each attribution table, by table name."""
    if sums.empty:
        return {
            BY_MODEL.name: sums,
            BY_MONTH.name: empty_sums(MONTH_KEYS),
            BY_DIMENSION.name: empty_sums(DIMENSION_KEYS),
        }
    months = sums.assign(start=month_of(sums["start"]))
    return {
        BY_MODEL.name: sums,
        BY_MONTH.name: sum_by(months, MONTH_KEYS),
        BY_DIMENSION.name: sum_by(sums, DIMENSION_KEYS),
    }


def month_of(days: pd.Series) -> pd.Series:
    """Return UTC days as the first day of their month (UTC)."""
    return days.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")


def differences(stored: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> list[tuple[str, str, Any, Any]]:
    """Return (key, counter or '*', stored, expected) wherever two sums frames of the same depth disagree."""
    names = [k for k in keys if k != "start"]
    left = stored.assign(start=period_nanos(stored["start"]) if len(stored) else [])
    right = expected.assign(start=period_nanos(expected["start"]) if len(expected) else [])
    both = left.merge(right, on=["start", *names], how="outer", suffixes=("_stored", "_expected"), indicator=True)
    bad = both["_merge"] != "both"
    for name in COUNTERS:
        have, want = both[f"{name}_stored"], both[f"{name}_expected"]
        bad |= (have != want) | (have < 0)
    found: list[tuple[str, str, Any, Any]] = []
    for row in both[bad].to_dict("records"):
        day = pd.Timestamp(int(row["start"]), tz="UTC").strftime("%Y-%m-%d")
        label = " ".join([day, *(str(row[n]) for n in names)])
        if row["_merge"] != "both":
            stored_side = row["_merge"] == "left_only"
            found.append((label, "*", "row" if stored_side else "missing", "none" if stored_side else "row"))
            continue
        for name in COUNTERS:
            have, want = int(row[f"{name}_stored"]), int(row[f"{name}_expected"])
            if have != want or have < 0:
                found.append((label, name, have, want))
    return found
