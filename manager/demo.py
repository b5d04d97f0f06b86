"""Realistic, reproducible demo traffic for the default models, written through the ingest path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from manager.ledger.ingest import IngestResult, Progress, ingest_records

# model_id: (share of traffic, median latency ms, latency spread (log sigma), base error rate, mean rating)
DEMO_MODELS: dict[str, tuple[float, float, float, float, float]] = {
    "claude-3-haiku-20240307": (0.34, 850.0, 0.45, 0.010, 4.3),
    "mistral-small-latest": (0.24, 1050.0, 0.50, 0.018, 4.0),
    "deepseek-chat": (0.20, 1500.0, 0.60, 0.030, 3.9),
    "llama2:latest": (0.10, 2600.0, 0.55, 0.040, 3.1),
    "mistral:latest": (0.12, 1900.0, 0.50, 0.025, 3.5),
}
REQUEST_TYPES = {
    "conversation": 0.34,
    "translation": 0.22,
    "vocabulary": 0.16,
    "grammar": 0.14,
    "general": 0.10,
    "specialized": 0.04,
}
LANGUAGES = {"en": 0.38, "es": 0.2, "fr": 0.16, "de": 0.1, "it": 0.06, "ja": 0.05, "zh": 0.05}
ERROR_TYPES = np.array(["timeout", "rate_limit", "server_error", "invalid_response"])
# As real telemetry shows them: streamed calls whose client did not ask for usage report none, and
# prompt-cached traffic reads part of its input from the cache.
NO_USAGE_SHARE = {"mistral-small-latest": 0.06}
CACHED_SHARE = {"claude-3-haiku-20240307": 0.4}


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    names = np.array(list(weights))
    p = np.array(list(weights.values()))
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def demo_records(
    *, days: int = 30, requests: int = 20_000, seed: int = 7, end: datetime | None = None
) -> list[dict[str, Any]]:
    """Return demo request records: daily and weekly seasonality, per-model latency, error bursts, ratings."""
    if days < 1 or requests < 0:
        raise ValueError("days must be at least 1 and requests not negative")
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    hours = np.arange(days * 24)
    moments = [start + timedelta(hours=int(h)) for h in hours]
    hour_of_day = np.array([m.hour for m in moments])
    weekend = np.array([m.weekday() >= 5 for m in moments])
    # Busy in the European afternoon, quiet at night, lighter at weekends, slowly growing.
    weight = (1.15 + np.sin(2 * np.pi * (hour_of_day - 9) / 24)) * np.where(weekend, 0.6, 1.0)
    weight *= 1 + 0.3 * hours / len(hours)
    chosen_hours = rng.choice(len(hours), size=requests, p=weight / weight.sum())
    offsets = rng.uniform(0, 3600, size=requests)
    models = _choice(rng, {m: v[0] for m, v in DEMO_MODELS.items()}, requests)
    types = _choice(rng, REQUEST_TYPES, requests)
    languages = _choice(rng, LANGUAGES, requests)
    input_tokens = np.maximum(1, rng.lognormal(np.log(350), 0.7, requests)).astype(int)
    output_tokens = np.maximum(1, rng.lognormal(np.log(220), 0.8, requests)).astype(int)
    # Each model has a few bad hours in which a third of its requests fail.
    bursts = {m: set(rng.choice(len(hours), size=max(1, days // 7), replace=False).tolist()) for m in DEMO_MODELS}
    records: list[dict[str, Any]] = []
    draws = rng.random(requests)
    noise = rng.normal(0, 0.6, requests)
    rated = rng.random(requests) < 0.3
    # A stream of its own, so the draws above (and every figure they make) stay what they were.
    extra = np.random.default_rng([seed, 1])
    usage_draws, cache_draws, cached_part = extra.random(requests), extra.random(requests), extra.random(requests)
    for i in range(requests):
        model = str(models[i])
        _, median, sigma, error_rate, rating = DEMO_MODELS[model]
        hour = int(chosen_hours[i])
        failed = draws[i] < (0.33 if hour in bursts[model] else error_rate)
        latency = float(rng.lognormal(np.log(median), sigma)) * (3.0 if failed and draws[i] < 0.1 else 1.0)
        reported = not failed and usage_draws[i] >= NO_USAGE_SHARE.get(model, 0.0)
        cached = reported and cache_draws[i] < CACHED_SHARE.get(model, 0.0)
        records.append(
            {
                "request_id": f"demo-{seed}-{i}",
                "timestamp": moments[hour] + timedelta(seconds=float(offsets[i])),
                "model_id": model,
                "request_type": str(types[i]),
                "language": str(languages[i]),
                # No instrumentation reports usage on a failure: it billed nothing.
                "input_tokens": int(input_tokens[i]) if reported else None,
                "output_tokens": int(output_tokens[i]) if reported else None,
                "cache_read_tokens": int(input_tokens[i] * (0.5 + 0.4 * cached_part[i])) if cached else None,
                "response_time_ms": round(latency, 1),
                "quality_rating": None
                if failed or not rated[i]
                else float(np.clip(round((rating + noise[i]) * 2) / 2, 1, 5)),
                "success": not failed,
                "error_type": str(ERROR_TYPES[i % len(ERROR_TYPES)]) if failed else None,
            }
        )
    records.sort(key=lambda r: r["timestamp"])
    return records


def seed_demo(
    engine: Engine,
    *,
    days: int = 30,
    requests: int = 20_000,
    seed: int = 7,
    end: datetime | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Generate demo traffic and store it through the ingest path; reruns with the same seed add nothing."""
    return ingest_records(engine, demo_records(days=days, requests=requests, seed=seed, end=end), progress=progress)
