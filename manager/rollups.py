"""Hourly rollups and per-model totals: summing a batch of rows (pure) and folding it into the tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, bindparam, insert, select, update

from manager import histogram
from manager.models import ModelUsageStats, UsageDaily, UsageHourly

RollupKey = tuple[datetime, str, str, str]
HOURLY = UsageHourly.__table__  # type: ignore[attr-defined]
DAILY = UsageDaily.__table__  # type: ignore[attr-defined]
STATS = ModelUsageStats.__table__  # type: ignore[attr-defined]


@dataclass
class Totals:
    """Sums over a set of requests: what one rollup row or one model's usage stats hold."""

    requests: int = 0
    successes: int = 0
    failures: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0
    latency_sum_ms: float = 0.0
    quality_sum: float = 0.0
    quality_count: int = 0
    hist: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None


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


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour holding a moment."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


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
        total.input_tokens += part.input_tokens
        total.output_tokens += part.output_tokens
        total.cost_nanos += part.cost_nanos
        total.quality_sum += part.quality_sum
        total.quality_count += part.quality_count
        assert part.first is not None and part.last is not None
        total.first = part.first if total.first is None else min(total.first, part.first)
        total.last = part.last if total.last is None else max(total.last, part.last)
    return per_model


_COUNTERS = (
    "requests",
    "successes",
    "failures",
    "input_tokens",
    "output_tokens",
    "cost_nanos",
    "latency_sum_ms",
    "quality_sum",
    "quality_count",
)


def fold_into(conn: Connection, grain: str, sums: dict[RollupKey, Totals]) -> None:
    """Add batch sums to the hourly ('hour') or daily ('day') rollup rows (caller holds the write lock)."""
    if not sums:
        return
    table = HOURLY if grain == "hour" else DAILY
    when = table.c[grain]
    # One range scan on the primary key's leading column beats a long list of key tuples.
    starts = [key[0] for key in sums]
    models = sorted({key[1] for key in sums})
    query = select(table).where(when >= min(starts), when <= max(starts), table.c.model_id.in_(models))
    existing: dict[RollupKey, tuple[dict[str, float], bytes, str]] = {}
    for row in conn.execute(query).mappings():
        key = (as_utc(row[grain]), row["model_id"], row["request_type"], row["language"])
        if key in sums:
            existing[key] = ({c: row[c] for c in _COUNTERS}, row["latency_hist"], row["error_types"])
    inserts, updates = [], []
    for key, delta in sums.items():
        values = {c: getattr(delta, c) for c in _COUNTERS}
        if key in existing:
            old, old_hist, old_errors = existing[key]
            merged: dict[str, Any] = {c: old[c] + values[c] for c in _COUNTERS}
            merged["latency_hist"] = histogram.encode(histogram.merge([histogram.decode(old_hist), delta.hist]))
            merged["error_types"] = encode_counts(merge_counts([decode_counts(old_errors), delta.errors]))
            updates.append({"k_hour": key[0], "k_model": key[1], "k_type": key[2], "k_lang": key[3], **merged})
        else:
            inserts.append(
                {
                    grain: key[0],
                    "model_id": key[1],
                    "request_type": key[2],
                    "language": key[3],
                    **values,
                    "latency_hist": histogram.encode(delta.hist),
                    "error_types": encode_counts(delta.errors),
                }
            )
    if inserts:
        conn.execute(insert(table), inserts)
    if updates:
        statement = (
            update(table)
            .where(
                when == bindparam("k_hour"),
                table.c.model_id == bindparam("k_model"),
                table.c.request_type == bindparam("k_type"),
                table.c.language == bindparam("k_lang"),
            )
            .values({c: bindparam(c) for c in (*_COUNTERS, "latency_hist", "error_types")})
        )
        conn.execute(statement, updates)


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
            "total_cost_nanos": delta.cost_nanos,
            "quality_sum": delta.quality_sum,
            "quality_count": delta.quality_count,
        }
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
    )
    keys = ["hour", "model_id", "request_type", "language"]
    sums = frame.groupby(keys, sort=False).agg(
        requests=("model_id", "size"),
        successes=("success", "sum"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
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
            input_tokens=int(row.input_tokens),
            output_tokens=int(row.output_tokens),
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
