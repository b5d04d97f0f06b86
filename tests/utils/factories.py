"""Factories of request records and input files for tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

LOG_COLUMNS = [
    "request_id",
    "timestamp",
    "model_id",
    "request_type",
    "language",
    "input_tokens",
    "output_tokens",
    "response_time_ms",
    "cost",
    "quality_rating",
    "success",
    "error_type",
]
START = datetime(2026, 3, 1, tzinfo=UTC)


def record(**overrides: Any) -> dict[str, Any]:
    """Return one valid request record for a default model; fields can be overridden."""
    base: dict[str, Any] = {
        "request_id": "r-1",
        "timestamp": "2026-03-01T10:15:00+00:00",
        "model_id": "deepseek-chat",
        "request_type": "translation",
        "language": "es",
        "input_tokens": 1000,
        "output_tokens": 500,
        "response_time_ms": 820.5,
        "cost": "",
        "quality_rating": 4.5,
        "success": "true",
        "error_type": "",
    }
    base.update(overrides)
    return base


def generated_records(n: int, *, seed: int = 1, days: int = 3) -> list[dict[str, Any]]:
    """Return n valid records over a few days with skewed (log-normal) latencies and explicit costs."""
    rng = np.random.default_rng(seed)
    models = ["claude-3-haiku-20240307", "deepseek-chat", "mistral:latest"]
    rows = []
    for i in range(n):
        moment = START + timedelta(seconds=float(rng.uniform(0, days * 86400)))
        failed = bool(rng.random() < 0.05)
        rows.append(
            record(
                request_id=f"g-{seed}-{i}",
                timestamp=moment.isoformat(),
                model_id=models[i % len(models)],
                request_type=["translation", "grammar", "conversation"][i % 3],
                language=["en", "fr", "es", "de"][i % 4],
                input_tokens=int(rng.integers(1, 3000)),
                output_tokens=int(rng.integers(0, 1500)),
                response_time_ms=round(float(rng.lognormal(6.8, 0.9)), 3),
                cost=f"{rng.uniform(0, 0.02):.9f}",
                quality_rating="" if rng.random() < 0.5 else float(rng.integers(0, 11)) / 2,
                success="false" if failed else "true",
                error_type="timeout" if failed else "",
            )
        )
    return rows


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = LOG_COLUMNS) -> Path:
    """Write records as a CSV file with a header row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write records as JSON Lines."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
