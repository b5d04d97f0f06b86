"""Reports read from the hourly rollups (never the raw request log): KPIs, cost over time, usage per day."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from manager import histogram
from manager.db import data_version
from manager.models import ModelConfig, UsageDaily, UsageHourly
from manager.money import NANOS_PER_USD, format_usd
from manager.rollups import as_utc, read_rollups, rollup_table

HOURLY = UsageHourly.__table__  # type: ignore[attr-defined]
DAILY = UsageDaily.__table__  # type: ignore[attr-defined]
REGISTRY = ModelConfig.__table__  # type: ignore[attr-defined]

USAGE_COLUMNS = [
    "date",
    "model_id",
    "provider",
    "requests",
    "successes",
    "failures",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "requests_without_usage",
    "cost_usd",
    "requests_without_cost",
    "avg_response_time_ms",
    "p50_response_time_ms",
    "p95_response_time_ms",
    "avg_quality_rating",
]


def day_window(start: date, end: date) -> tuple[datetime, datetime]:
    """Return the UTC instants bounding the inclusive dates start..end."""
    if end < start:
        raise ValueError(f"the end date {end} is before the start date {start}")
    return (datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC))


def data_span(engine: Engine) -> tuple[date, date] | None:
    """Return the first and last UTC dates that have traffic, or None when there is none."""
    with engine.connect() as conn:
        # Two queries: each of MIN and MAX alone is one seek on the primary key, together they scan.
        first = conn.execute(select(func.min(HOURLY.c.hour))).scalar()
        last = conn.execute(select(func.max(HOURLY.c.hour))).scalar()
    if first is None or last is None:
        return None
    return as_utc(_as_datetime(first)).date(), as_utc(_as_datetime(last)).date()


def _as_datetime(value: datetime | str) -> datetime:
    # SQLite's MIN/MAX hand back the stored text rather than a datetime.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def providers(engine: Engine) -> dict[str, str]:
    """Return each registered model's provider."""
    with engine.connect() as conn:
        return {str(m): str(p) for m, p in conn.execute(select(REGISTRY.c.model_id, REGISTRY.c.provider))}


def daily_rows(engine: Engine, start: date, end: date, *, per_model: bool = False) -> pd.DataFrame:
    """Return the daily rollup rows of the inclusive UTC dates; column `start` is each row's UTC day.

    per_model reads the rows summed over request types and languages (no such columns): a few per day.
    """
    return _rows(engine, rollup_table("day", per_model), "day", *day_window(start, end))


def hourly_rows(engine: Engine, start: date, end: date, *, per_model: bool = False) -> pd.DataFrame:
    """Return the hourly rollup rows of the inclusive UTC dates; column `start` is each row's UTC hour."""
    return rollup_rows(engine, *day_window(start, end), per_model=per_model)


def rollup_rows(engine: Engine, low: datetime, high: datetime, *, per_model: bool = False) -> pd.DataFrame:
    """Return the hourly rollup rows whose hour starts in [low, high); column `start` is the hour."""
    return _rows(engine, rollup_table("hour", per_model), "hour", low, high)


# Recent rollup reads, keyed on the database, its data version and the range: a page that asks several
# reports about the same days reads the rows once, and any write (which bumps the version) retires them.
_CACHE: OrderedDict[tuple[str, int, str, datetime, datetime], pd.DataFrame] = OrderedDict()
_CACHE_SIZE = 16


def _rows(engine: Engine, table: Any, grain: str, low: datetime, high: datetime) -> pd.DataFrame:
    key = (engine.url.render_as_string(), data_version(engine), table.name, low, high)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key].copy()
    frame = _read_rows(engine, table, grain, low, high)
    _CACHE[key] = frame
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return frame.copy()


def clear_cache() -> None:
    """Forget every cached rollup read (benchmarks use it to time cold reads)."""
    _CACHE.clear()


def _read_rows(engine: Engine, table: Any, grain: str, low: datetime, high: datetime) -> pd.DataFrame:
    with engine.connect() as conn:
        return read_rollups(conn, table, grain, table.c[grain] >= low, table.c[grain] < high)


@dataclass(frozen=True)
class Kpis:
    """Headline figures over a window."""

    requests: int
    successes: int
    cost_nanos: int
    success_rate: float | None
    avg_response_time_ms: float | None
    p95_response_time_ms: float | None
    input_tokens: int
    output_tokens: int
    # Requests that reported no token usage, and those of them whose cost is unknown (not in cost_nanos).
    usage_unknown: int = 0
    cost_unknown: int = 0

    @property
    def cost_usd(self) -> float:
        """Return the cost in dollars."""
        return self.cost_nanos / NANOS_PER_USD

    def usage_note(self) -> str | None:
        """Return what the figures leave out because requests reported no token usage; None when nothing is."""
        return usage_note(self.requests, self.usage_unknown, self.cost_unknown)


def usage_note(requests: int, usage_unknown: int, cost_unknown: int) -> str | None:
    """Return a sentence saying how many requests reported no token usage and what that leaves out of the sums."""
    if not usage_unknown and not cost_unknown:
        return None
    text = f"{usage_unknown:,} of {requests:,} requests reported no token usage: their tokens are not counted"
    if cost_unknown:
        text += f", and the cost of {cost_unknown:,} is unknown and not in the dollars shown"
    return text + " (streamed calls without usage reporting, for example)."


def kpis(engine: Engine, start: date, end: date) -> Kpis:
    """Return requests, cost, success rate and latency over the inclusive UTC dates."""
    frame = daily_rows(engine, start, end, per_model=True)
    if frame.empty:
        return Kpis(0, 0, 0, None, None, None, 0, 0)
    requests = int(frame["requests"].sum())
    merged = histogram.merge_stored(frame["latency_hist"])
    return Kpis(
        requests=requests,
        successes=int(frame["successes"].sum()),
        cost_nanos=int(frame["cost_nanos"].sum()),
        success_rate=float(frame["successes"].sum()) / requests,
        avg_response_time_ms=float(frame["latency_sum_ms"].sum()) / requests,
        p95_response_time_ms=histogram.quantile(merged, 0.95),
        input_tokens=int(frame["input_tokens"].sum()),
        output_tokens=int(frame["output_tokens"].sum()),
        usage_unknown=int(frame["usage_unknown"].sum()),
        cost_unknown=int(frame["cost_unknown"].sum()),
    )


def cost_by_day(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """Return cost in dollars and requests per UTC day and model (columns date, model_id, cost_usd, requests)."""
    frame = daily_rows(engine, start, end, per_model=True)
    if frame.empty:
        return pd.DataFrame(columns=["date", "model_id", "cost_usd", "requests"])
    frame["date"] = frame["start"].dt.tz_localize(None)
    daily = frame.groupby(["date", "model_id"], as_index=False)[["cost_nanos", "requests"]].sum()
    daily["cost_usd"] = daily["cost_nanos"] / NANOS_PER_USD
    return daily[["date", "model_id", "cost_usd", "requests"]]


def usage_by_day(engine: Engine, start: date, end: date) -> list[list[object]]:
    """Return one row per UTC day and model under USAGE_COLUMNS, cost as an exact decimal string."""
    frame = daily_rows(engine, start, end, per_model=True)
    if frame.empty:
        return []
    owner = providers(engine)
    frame["day"] = frame["start"].dt.strftime("%Y-%m-%d")
    rows: list[list[object]] = []
    for (day, model_id), part in frame.groupby(["day", "model_id"], sort=True):
        requests = int(part["requests"].sum())
        merged = histogram.merge_stored(part["latency_hist"])
        quality_count = int(part["quality_count"].sum())
        rows.append(
            [
                day,
                model_id,
                owner.get(str(model_id), ""),
                requests,
                int(part["successes"].sum()),
                int(part["failures"].sum()),
                int(part["input_tokens"].sum()),
                int(part["output_tokens"].sum()),
                int(part["cache_read_tokens"].sum()),
                int(part["cache_write_tokens"].sum()),
                int(part["reasoning_tokens"].sum()),
                int(part["usage_unknown"].sum()),
                format_usd(int(part["cost_nanos"].sum())),
                int(part["cost_unknown"].sum()),
                round(float(part["latency_sum_ms"].sum()) / requests, 3),
                _rounded(histogram.quantile(merged, 0.5)),
                _rounded(histogram.quantile(merged, 0.95)),
                round(float(part["quality_sum"].sum()) / quality_count, 4) if quality_count else None,
            ]
        )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


MODEL_SUMMARY_COLUMNS = [
    "model_id",
    "provider",
    "requests",
    "success_rate",
    "cost_usd",
    "requests_without_usage",
    "avg_response_time_ms",
    "p95_response_time_ms",
    "avg_quality_rating",
]


def usage_by_model(engine: Engine, start: date, end: date) -> pd.DataFrame:
    """Return one row per model over the inclusive UTC dates under MODEL_SUMMARY_COLUMNS, busiest first."""
    frame = daily_rows(engine, start, end, per_model=True)
    if frame.empty:
        return pd.DataFrame(columns=MODEL_SUMMARY_COLUMNS)
    owner = providers(engine)
    rows = []
    for model_id, part in frame.groupby("model_id"):
        requests = int(part["requests"].sum())
        merged = histogram.merge_stored(part["latency_hist"])
        quality_count = int(part["quality_count"].sum())
        rows.append(
            {
                "model_id": model_id,
                "provider": owner.get(str(model_id), ""),
                "requests": requests,
                "success_rate": float(part["successes"].sum()) / requests,
                "cost_usd": int(part["cost_nanos"].sum()) / NANOS_PER_USD,
                "requests_without_usage": int(part["usage_unknown"].sum()),
                "avg_response_time_ms": float(part["latency_sum_ms"].sum()) / requests,
                "p95_response_time_ms": histogram.quantile(merged, 0.95),
                "avg_quality_rating": float(part["quality_sum"].sum()) / quality_count if quality_count else None,
            }
        )
    return pd.DataFrame(rows, columns=MODEL_SUMMARY_COLUMNS).sort_values("requests", ascending=False, ignore_index=True)
