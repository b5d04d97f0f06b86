"""Spend by attribution: a window's top users, teams, keys, apps, environments or tags, with "other" and "none";
one value's days and models; the rows `export spend` and `report --by` write.

The top values of a window are found without reading every value, the way Fagin's threshold algorithm finds
them: each month's values are kept in spend order (an index), so the first k of every month the window touches
are read, the exact window totals of the values seen are summed from their days, and reading stops once the
N-th best total is at least the sum of the k-th monthly figures, which no unseen value can beat (its window
spend is at most its spend in those months). Spend is concentrated (a few users spend most), so a few dozen
rows settle it at any volume; spread-out spend reads deeper, and at worst everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from manager.db import sqlite_timestamps
from manager.ledger.attribution import DIMENSIONS
from manager.ledger.grains import MODEL_DAILY
from manager.ledger.rollup_read import read_rollups
from manager.ledger.spend_rollups import BY_DIMENSION, BY_MODEL, BY_MONTH, COUNTERS
from manager.money import NANOS_PER_USD, nanos_to_usd
from manager.timeutil import as_utc
from manager.window import day_window

SERIES_MEASURES = ["requests", "failures", "input_tokens", "output_tokens", "cost_usd", "requests_without_cost"]
OTHER = "(other)"
NONE = "(none)"
TOP = 10
LABELS = {
    "user": "User",
    "team": "Team",
    "api_key": "API key",
    "app": "App",
    "environment": "Environment",
    "tag": "Tag",
}


def noun(dimension: str) -> str:
    """Return a dimension as a sentence names it ("team", "API key")."""
    return "API key" if dimension == "api_key" else LABELS[dimension].lower()


class UnknownDimension(ValueError):
    """A dimension name that spend is not broken down by."""

    def __init__(self, name: str):
        super().__init__(f"unknown dimension {name!r}: use one of {', '.join(DIMENSIONS)}")


def check_dimension(name: str) -> str:
    """Return the dimension name, or raise UnknownDimension listing the known ones."""
    if name not in DIMENSIONS:
        raise UnknownDimension(name)
    return name


@dataclass(frozen=True)
class Spend:
    """Sums over a set of requests: what one value (or "other", or "none") spent."""

    requests: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    cost_unknown: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, n) + getattr(other, n) for n in COUNTERS))

    def __sub__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, n) - getattr(other, n) for n in COUNTERS))

    @property
    def rank(self) -> tuple[int, int]:
        """Return what values are ordered by: spend, then requests."""
        return (self.cost_nanos, self.requests)

    @property
    def empty(self) -> bool:
        """Return True when no request is counted."""
        return self.requests == 0


def _spend(row: Any) -> Spend:
    return Spend(*(int(row[n]) for n in COUNTERS))


def _total(frame: pd.DataFrame) -> Spend:
    """Return the exact sum of a frame's counters (stored totals may be Python ints past int64)."""
    return Spend(*(sum(int(v) for v in frame[n].tolist()) for n in COUNTERS)) if len(frame) else Spend()


@dataclass(frozen=True)
class Breakdown:
    """A window's spend by one dimension: its top values, then "other" and "none" when they hold requests."""

    dimension: str
    start: date
    end: date
    rows: tuple[tuple[str, Spend], ...]
    daily: pd.DataFrame  # day, value and the counters, for every label in rows
    top: int
    values_read: int  # (value, day) rows read to settle the top values

    def table(self) -> pd.DataFrame:
        """Return one row per label: value, requests, failures, error %, tokens, cost in USD, share of spend."""
        total = sum(s.cost_nanos for _, s in self.rows)
        return pd.DataFrame(
            [
                {
                    "value": label,
                    "requests": s.requests,
                    "failures": s.failures,
                    "error_pct": 100.0 * s.failures / s.requests if s.requests else 0.0,
                    "input_tokens": s.input_tokens,
                    "output_tokens": s.output_tokens,
                    "cost_usd": float(nanos_to_usd(s.cost_nanos)),
                    "share_pct": 100.0 * s.cost_nanos / total if total else 0.0,
                    "cost_unknown": s.cost_unknown,
                }
                for label, s in self.rows
            ],
            columns=[
                "value",
                "requests",
                "failures",
                "error_pct",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "share_pct",
                "cost_unknown",
            ],
        )

    def series(self, granularity: str = "day") -> pd.DataFrame:
        """Return the daily figures per label as a usage series: period (naive UTC day or Monday-started week),
        group, requests, failures, tokens, cost_usd and requests_without_cost, labels in the order of `rows`."""
        return _series(self.daily, "value", granularity, {label: i for i, (label, _) in enumerate(self.rows)})

    @property
    def values(self) -> list[str]:
        """Return the top values themselves (not "other" or "none")."""
        return [label for label, _ in self.rows if label not in (OTHER, NONE)]


def _read(conn: Connection, table: Any, dimension: str, low: datetime, high: datetime, *more: Any) -> pd.DataFrame:
    """Return a table's rows of one dimension whose day is in [low, high), matching any further conditions."""
    return read_rollups(
        conn, table, "day", table.c.dimension == dimension, table.c.day >= low, table.c.day < high, *more
    )


def _days(start: date, end: date) -> list[datetime]:
    low, high = day_window(start, end)
    return [low + timedelta(days=i) for i in range((high - low).days)]


def breakdown(
    engine: Engine, dimension: str, start: date, end: date, *, top: int = TOP, models: pd.DataFrame | None = None
) -> Breakdown:
    """Return the spend of the UTC days start..end by a dimension: the `top` values by spend (then requests), the
    rest as "other", and requests without a value as "none" (not for tags: a request may have several).

    "None" is every request less the attributed ones: `models` may hand over the days' per-model daily rollup
    rows a page has read already (its Window's), else they are read here.
    """
    check_dimension(dimension)
    with engine.connect() as conn:
        return _breakdown(conn, dimension, start, end, top, models)


def _breakdown(
    conn: Connection, dimension: str, start: date, end: date, top: int, models: pd.DataFrame | None
) -> Breakdown:
    days = _days(start, end)
    low, high = day_window(start, end)
    winners, rows_read, per_day = _top_values(conn, dimension, days, top)
    totals = read_rollups(
        conn,
        BY_DIMENSION,
        "day",
        BY_DIMENSION.c.dimension == dimension,
        BY_DIMENSION.c.day >= low,
        BY_DIMENSION.c.day < high,
    )
    shown = [(value, spend) for value, spend in winners]
    daily_parts = [per_day[per_day["value"].isin([v for v, _ in winners])]] if winners else []
    other = _total(totals) - sum((s for _, s in winners), Spend())
    if not other.empty:
        shown.append((OTHER, other))
        daily_parts.append(_remainder(totals, per_day[per_day["value"].isin([v for v, _ in winners])], OTHER))
    if dimension != "tag":
        models = _model_days(conn, low, high) if models is None else models
        none = _total(models) - _total(totals)
        if not none.empty:
            shown.append((NONE, none))
            daily_parts.append(_remainder(models, totals, NONE))
    daily = pd.concat(daily_parts, ignore_index=True) if daily_parts else _empty_daily()
    daily = daily.rename(columns={"start": "day"})
    return Breakdown(dimension, start, end, tuple(shown), daily, top, rows_read)


def _model_days(conn: Connection, low: datetime, high: datetime) -> pd.DataFrame:
    """Return the per-model daily rollup rows of [low, high): every request, attributed or not."""
    return read_rollups(conn, MODEL_DAILY, "day", MODEL_DAILY.c.day >= low, MODEL_DAILY.c.day < high)


def _empty_daily() -> pd.DataFrame:
    days = pd.Series(dtype="datetime64[ns, UTC]")
    return pd.DataFrame(
        {"start": days, "value": pd.Series(dtype=object), **{n: pd.Series(dtype="int64") for n in COUNTERS}}
    )


def _remainder(whole: pd.DataFrame, part: pd.DataFrame, label: str) -> pd.DataFrame:
    """Return, per day, what `whole` holds beyond `part` (every counter), labelled."""
    names = list(COUNTERS)
    outer = whole.groupby("start")[names].sum()
    inner = part.groupby("start")[names].sum() if len(part) else outer.iloc[0:0]
    rest = outer.sub(inner, fill_value=0).astype("int64").reset_index()
    return rest[rest["requests"] > 0].assign(value=label)[["start", "value", *names]]


def _top_values(
    conn: Connection, dimension: str, days: list[datetime], top: int
) -> tuple[list[tuple[str, Spend]], int, pd.DataFrame]:
    """Return the `top` values of the days by spend with their exact totals, the rows read, and the per-day sums
    of the values seen (start, value and the counters)."""
    table = BY_MODEL
    months = sorted({datetime(d.year, d.month, 1, tzinfo=UTC) for d in days})
    depth = max(4 * top, 32)
    seen: dict[str, Spend] = {}
    seen_days: list[pd.DataFrame] = []
    rows_read = 0
    low, high = days[0], days[-1] + timedelta(days=1)
    while True:
        threshold = Spend()
        fresh: set[str] = set()
        exhausted = True
        for found in _heads(conn, dimension, months, depth):
            rows_read += len(found)
            if len(found) == depth:  # an unseen value spent at most the last figure read that month
                exhausted = False
                threshold = threshold + Spend(requests=found[-1][2], cost_nanos=found[-1][1])
            fresh.update(value for value, _, _ in found if value not in seen)
        if fresh:
            rows = _read(conn, table, dimension, low, high, table.c.value.in_(sorted(fresh)))
            rows_read += len(rows)
            for value, part in rows.groupby("value"):
                seen[str(value)] = _total(part)
            seen_days.append(rows.groupby(["start", "value"], as_index=False)[list(COUNTERS)].sum())
        ranked = sorted(seen.items(), key=lambda item: (-item[1].cost_nanos, -item[1].requests, item[0]))
        if exhausted or (len(ranked) >= top and ranked[top - 1][1].rank >= threshold.rank):
            winners = ranked[:top]
            break
        depth *= 4
    per_day = pd.concat(seen_days, ignore_index=True) if seen_days else _empty_daily()
    return winners, rows_read, per_day


def _heads(conn: Connection, dimension: str, months: list[datetime], depth: int) -> list[list[tuple[str, int, int]]]:
    """Return the first `depth` (value, cost_nanos, requests) of each month, most spent first, read backwards
    along the rank index (one statement for every month)."""
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    parts, params = [], []
    for i, month in enumerate(months):
        parts.append(
            f"SELECT {i} AS list, value, cost_nanos, requests FROM (SELECT value, cost_nanos, requests FROM "
            f"{BY_MONTH.name} WHERE dimension = {mark} AND month = {mark} "
            f"ORDER BY cost_nanos DESC, requests DESC LIMIT {int(depth)}) AS l{i}"
        )
        params += [dimension, _day_value(conn, month)]
    heads: list[list[tuple[str, int, int]]] = [[] for _ in months]
    for position, value, cost, requests in conn.exec_driver_sql(" UNION ALL ".join(parts), tuple(params)):
        heads[int(position)].append((str(value), int(cost), int(requests)))
    return heads


def _day_value(conn: Connection, day: datetime) -> Any:
    """Return a day as the driver compares it with stored days (SQLite keeps them as text)."""
    return sqlite_timestamps(pd.Series([pd.Timestamp(day)]))[0] if conn.dialect.name == "sqlite" else day


def value_days(engine: Engine, dimension: str, value: str, start: date, end: date) -> pd.DataFrame:
    """Return one value's spend per UTC day and model over start..end (day, model_id and the counters)."""
    check_dimension(dimension)
    low, high = day_window(start, end)
    table = BY_MODEL
    with engine.connect() as conn:
        rows = read_rollups(
            conn,
            table,
            "day",
            table.c.dimension == dimension,
            table.c.value == value,
            table.c.day >= low,
            table.c.day < high,
        )
    return rows.rename(columns={"start": "day"})[["day", "model_id", *COUNTERS]]


def value_total(engine: Engine, dimension: str, value: str, start: date, end: date) -> Spend:
    """Return one value's spend over the UTC days start..end."""
    return _total(value_days(engine, dimension, value, start, end))


EXPORT_COLUMNS = [
    "date",
    "dimension",
    "value",
    "model_id",
    "requests",
    "failures",
    "input_tokens",
    "output_tokens",
    "cost_usd",
]


def export_rows(engine: Engine, dimension: str, start: date | None, end: date | None) -> Iterator[dict[str, Any]]:
    """Yield one row per UTC day, value and model of a dimension (oldest day first), as `export spend` writes."""
    check_dimension(dimension)
    table = BY_MODEL
    conditions = [table.c.dimension == dimension]
    if start is not None:
        conditions.append(table.c.day >= day_window(start, start)[0])
    if end is not None:
        conditions.append(table.c.day < day_window(end, end)[1])
    query = (
        select(table)
        .where(*conditions)
        .order_by(table.c.day, table.c.value, table.c.model_id)
        .execution_options(stream_results=True, yield_per=20_000)
    )
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            yield {
                "date": as_utc(row["day"]).date().isoformat(),
                "dimension": dimension,
                "value": row["value"],
                "model_id": row["model_id"],
                "requests": int(row["requests"]),
                "failures": int(row["failures"]),
                "input_tokens": int(row["input_tokens"]),
                "output_tokens": int(row["output_tokens"]),
                "cost_usd": str(nanos_to_usd(int(row["cost_nanos"]))),
            }


def totals_by_value(engine: Engine, dimension: str, start: date, end: date) -> list[tuple[str, Spend]]:
    """Return every value's spend over the UTC days start..end, most spent first (what `report --by` lists)."""
    check_dimension(dimension)
    low, high = day_window(start, end)
    with engine.connect() as conn:
        rows = _read(conn, BY_MODEL, dimension, low, high)
    if rows.empty:
        return []
    exact = rows.assign(**{n: rows[n].astype(object) for n in COUNTERS})
    grouped = exact.groupby("value")[list(COUNTERS)].sum()
    found = [(str(value), _spend(row)) for value, row in grouped.iterrows()]
    return sorted(found, key=lambda item: (-item[1].cost_nanos, -item[1].requests, item[0]))


def unattributed(engine: Engine, dimension: str, start: date, end: date) -> Spend | None:
    """Return the spend of requests without a value for the dimension over start..end (None for tags, where a
    request may count several times)."""
    if check_dimension(dimension) == "tag":
        return None
    low, high = day_window(start, end)
    with engine.connect() as conn:
        return _total(_model_days(conn, low, high)) - _total(_read(conn, BY_DIMENSION, dimension, low, high))


def report_by(engine: Engine, dimension: str, start: date, end: date) -> dict[str, Any]:
    """Return what `report --by` adds: {"by", "rows": [{"value", "requests", "cost_usd", ...}], "unattributed"}."""

    def row(spent: Spend) -> dict[str, Any]:
        return {
            "requests": spent.requests,
            "failures": spent.failures,
            "input_tokens": spent.input_tokens,
            "output_tokens": spent.output_tokens,
            "cost_usd": float(nanos_to_usd(spent.cost_nanos)),
            "requests_without_cost": spent.cost_unknown,
        }

    none = unattributed(engine, dimension, start, end)
    return {
        "by": dimension,
        "rows": [{"value": value, **row(spent)} for value, spent in totals_by_value(engine, dimension, start, end)],
        "unattributed": row(none) if none is not None else None,
    }


def _periods(days: pd.Series, granularity: str) -> pd.Series:
    """Return UTC days as the naive start of their day or Monday-started week (spend is kept per day)."""
    naive = days.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.dt.to_period("W-SUN").dt.start_time if granularity == "week" else naive.dt.floor("D")


def value_series(days: pd.DataFrame, granularity: str = "day") -> pd.DataFrame:
    """Return one value's value_days as a usage series per period and model (group)."""
    return _series(days, "model_id", granularity)


def _series(daily: pd.DataFrame, group: str, granularity: str, order: dict[str, int] | None = None) -> pd.DataFrame:
    """Return daily counters (column `day`) summed per period and `group` column as a usage series, the groups of
    each period in `order` (else by name)."""
    columns = ["period", "group", *SERIES_MEASURES]
    if daily.empty:
        return pd.DataFrame(columns=columns)
    frame = daily.assign(
        period=_periods(daily["day"], granularity), group=daily[group], requests_without_cost=daily["cost_unknown"]
    )
    names = ["requests", "failures", "input_tokens", "output_tokens", "cost_nanos", "requests_without_cost"]
    sums = frame.groupby(["period", "group"], as_index=False)[names].sum()
    sums["cost_usd"] = sums["cost_nanos"].astype(float) / NANOS_PER_USD
    rank = sums["group"].map(order) if order is not None else sums["group"]
    return sums.assign(rank=rank).sort_values(["period", "rank"], ignore_index=True)[columns]


MODEL_COLUMNS = [
    "model_id",
    "cost_usd",
    "share_pct",
    "requests",
    "failures",
    "error_pct",
    "input_tokens",
    "output_tokens",
]


def value_models(days: pd.DataFrame) -> pd.DataFrame:
    """Return one value's value_days summed per model, most spent first, with each model's share of its spend."""
    if days.empty:
        return pd.DataFrame(columns=MODEL_COLUMNS)
    names = ["requests", "failures", "input_tokens", "output_tokens", "cost_nanos"]
    sums = days.groupby("model_id", as_index=False)[names].sum()
    total = float(sums["cost_nanos"].sum())
    sums["error_pct"] = 100.0 * sums["failures"] / sums["requests"]
    sums["cost_usd"] = sums["cost_nanos"].astype(float) / NANOS_PER_USD
    sums["share_pct"] = 100.0 * sums["cost_nanos"].astype(float) / total if total else 0.0
    ordered = sums.sort_values(["cost_nanos", "requests"], ascending=False, ignore_index=True)
    return ordered[MODEL_COLUMNS]
