"""Rollup grains and keys, the counters a rollup row holds, the error-count codec: shared by write, read, verify."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from manager.models import ModelUsageDaily, ModelUsageHourly, ModelUsageStats, UsageDaily, UsageHourly

RollupKey = tuple[datetime, str, str, str]


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


TOKEN_COUNTERS = (
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
    *TOKEN_COUNTERS,
    "cost_nanos",
    "latency_sum_ms",
    "quality_sum",
    "quality_count",
)


KEYS = ["start", "model_id", "request_type", "language"]


MODEL_KEYS = ["start", "model_id"]


def rollup_table(grain: str, per_model: bool = False) -> Any:
    """Return the rollup table of a grain ('hour' or 'day'), per segment or per model."""
    if per_model:
        return MODEL_HOURLY if grain == "hour" else MODEL_DAILY
    return HOURLY if grain == "hour" else DAILY


# A BIGINT holds up to 2**63 - 1; refusing stored totals from 2**62 on leaves room for float64's rounding in
# the checks below, which read sums as floats precisely because int64 sums would wrap silently.
LARGEST_TOTAL = 2**62
