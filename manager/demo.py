"""Realistic, reproducible demo traffic for the default models, written through the ingest path.

Every hour's traffic is drawn from its own random stream, keyed by the seed and the hour, and its request
ids name the hour: the same hour always holds the same requests, so topping the demo up to the present adds
only what is new. The traffic ends at the present minute and carries incidents placed relative to its end,
so that a first look shows every status: a provider outage yesterday (mistral-small-latest failing), a
model failing more than usual now (deepseek-chat) and a latency regression now (llama2:latest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from manager import budgets, spend
from manager.db import read_session, write_session
from manager.ledger.ingest import IngestResult, Progress, ingest_records
from manager.models import Budget, RequestLog
from manager.timeutil import as_utc
from manager.usage import kpis
from manager.window import Filters, read_window

LOG = RequestLog.__table__  # type: ignore[attr-defined]
BUDGETS = Budget.__table__  # type: ignore[attr-defined]

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
# Who the demo traffic is for: learners (a long tail), the teams and apps that send it.
DEMO_USERS = 600
TEAMS = {"tutoring": 0.55, "content": 0.25, "growth": 0.15, "support": 0.05}
APPS = {"tutor-web": 0.5, "tutor-ios": 0.3, "tutor-android": 0.2}
DEFAULT_DAYS = 30
DEFAULT_REQUESTS = 20_000
HOUR = timedelta(hours=1)
# Bad hours in which a third of a model's requests fail: about one a week per model.
BURST_CHANCE = 1 / (7 * 24)


@dataclass(frozen=True)
class Incident:
    """A stretch of hours, counted back from the traffic's end, in which one model misbehaves."""

    model_id: str
    from_hours_ago: float
    to_hours_ago: float
    error_rate: float | None = None
    error_type: str | None = None
    latency_factor: float = 1.0
    what: str = ""


INCIDENTS = (
    Incident("mistral-small-latest", 30, 25, 0.85, "server_error", 1.5, "provider outage yesterday"),
    Incident("deepseek-chat", 8, 0, 0.22, "rate_limit", what="rate limited for the last 8 hours"),
    Incident("llama2:latest", 10, 0, latency_factor=3.0, what="3x slower for the last 10 hours"),
)


def _names(weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.array(list(weights.values()))
    return np.array(list(weights)), p / p.sum()


def _weight(moment: datetime, growth: float) -> float:
    """Return an hour's share of traffic: busy in the European afternoon, quiet at night, lighter at weekends."""
    daily = 1.15 + np.sin(2 * np.pi * (moment.hour - 9) / 24)
    return float(daily * (0.6 if moment.weekday() >= 5 else 1.0) * growth)


def _counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Return `total` split over the hours in proportion to their weights, whole numbers summing to it."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: total - int(counts.sum())]] += 1
    return np.asarray(counts, dtype=np.int64)


def demo_records(
    *,
    days: int = DEFAULT_DAYS,
    requests: int = DEFAULT_REQUESTS,
    seed: int = 7,
    end: datetime | None = None,
    start: datetime | None = None,
) -> list[dict[str, Any]]:
    """Return `requests` demo request records from `start` (default `days` before `end`) to `end` (default
    now): daily and weekly seasonality, slow growth, per-model latency, error bursts, ratings, incidents."""
    if days < 1 or requests < 0:
        raise ValueError("days must be at least 1 and requests not negative")
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    start = (start or end - timedelta(days=days)).astimezone(UTC)
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = [first + HOUR * k for k in range(int((end - first) / HOUR) + (0 if (end - first) % HOUR == 0 else 1))]
    if not hours:
        return []
    # Each hour counts for the part of it inside [start, end).
    parts = [(min(h + HOUR, end) - max(h, start)) / HOUR for h in hours]
    weights = np.array(
        [_weight(h, 1 + 0.3 * k / len(hours)) * part for k, (h, part) in enumerate(zip(hours, parts, strict=True))]
    )
    records: list[dict[str, Any]] = []
    for hour, part, count in zip(hours, parts, _counts(weights, requests).tolist(), strict=True):
        if count:
            records.extend(_hour_records(seed, hour, max(start, hour), part, count, (end - hour) / HOUR))
    records.sort(key=lambda r: r["timestamp"])
    return records


def _incident(model: str, hours_ago: float) -> Incident | None:
    for incident in INCIDENTS:
        if incident.model_id == model and incident.to_hours_ago < hours_ago <= incident.from_hours_ago:
            return incident
    return None


def _hour_records(
    seed: int, hour: datetime, begin: datetime, part: float, count: int, hours_ago: float
) -> list[dict[str, Any]]:
    """Return one hour's `count` requests from `begin`, spread over `part` of the hour, drawn from a stream of
    their own keyed by the seed and the minute they begin at, which also names them."""
    rng = np.random.default_rng([seed, int(begin.timestamp()) // 60])
    stamp = begin.strftime("%Y%m%d%H%M")
    model_names, model_p = _names({m: v[0] for m, v in DEMO_MODELS.items()})
    type_names, type_p = _names(REQUEST_TYPES)
    language_names, language_p = _names(LANGUAGES)
    bursting = {m for m in DEMO_MODELS if rng.random() < BURST_CHANCE}
    offsets = rng.uniform(0, 3600 * part, count)
    models = model_names[rng.choice(len(model_names), size=count, p=model_p)]
    types = type_names[rng.choice(len(type_names), size=count, p=type_p)]
    languages = language_names[rng.choice(len(language_names), size=count, p=language_p)]
    input_tokens = np.maximum(1, rng.lognormal(np.log(350), 0.7, count)).astype(int)
    output_tokens = np.maximum(1, rng.lognormal(np.log(220), 0.8, count)).astype(int)
    draws, noise, rated = rng.random(count), rng.normal(0, 0.6, count), rng.random(count) < 0.3
    usage_draws, cache_draws, cached_part = rng.random(count), rng.random(count), rng.random(count)
    spreads = rng.standard_normal(count)
    # Who the requests were for, from a stream of its own so that the draws above stay what they were.
    who = np.random.default_rng([seed, int(begin.timestamp()) // 60, 2])
    learners = who.zipf(1.6, count) % DEMO_USERS
    teams = who.choice(len(TEAMS), size=count, p=list(TEAMS.values()))
    apps = who.choice(len(APPS), size=count, p=list(APPS.values()))
    beta = who.random(count) < 0.15
    records = []
    for i in range(count):
        model = str(models[i])
        _, median, sigma, error_rate, rating = DEMO_MODELS[model]
        incident = _incident(model, hours_ago - offsets[i] / 3600)
        error_type = str(ERROR_TYPES[i % len(ERROR_TYPES)])
        if model in bursting:
            error_rate = 0.33
        if incident and incident.error_rate is not None:
            error_rate = incident.error_rate
            error_type = incident.error_type or error_type
        failed = bool(draws[i] < error_rate)
        latency = float(np.exp(np.log(median) + sigma * spreads[i]))
        latency *= (3.0 if failed and draws[i] < error_rate * 0.3 else 1.0) * (
            incident.latency_factor if incident else 1
        )
        reported = not failed and usage_draws[i] >= NO_USAGE_SHARE.get(model, 0.0)
        cached = reported and cache_draws[i] < CACHED_SHARE.get(model, 0.0)
        records.append(
            {
                "request_id": f"demo-{seed}-{stamp}-{i}",
                "timestamp": begin + timedelta(seconds=float(offsets[i])),
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
                "error_type": error_type if failed else None,
                "user": f"learner-{int(learners[i]):04d}",
                "team": list(TEAMS)[int(teams[i])],
                "app": list(APPS)[int(apps[i])],
                "environment": "production",
                "api_key": f"{list(APPS)[int(apps[i])]}-key",
                "tags": "beta" if beta[i] else None,
            }
        )
    return records


def seed_demo(
    engine: Engine,
    *,
    days: int = DEFAULT_DAYS,
    requests: int = DEFAULT_REQUESTS,
    seed: int = 7,
    end: datetime | None = None,
    progress: Progress | None = None,
    with_budgets: bool = False,
) -> IngestResult:
    """Generate demo traffic and store it through the ingest path; reruns with the same seed and end add nothing.
    With `with_budgets`, also add demo budgets (when there are none) that the traffic has crossed."""
    end = (end or datetime.now(UTC)).astimezone(UTC)
    result = ingest_records(engine, demo_records(days=days, requests=requests, seed=seed, end=end), progress=progress)
    if with_budgets:
        add_demo_budgets(engine, end)
    return result


def newest_request(engine: Engine) -> tuple[str | None, datetime] | None:
    """Return the request id and time of the newest stored request, or None when there is none."""
    with read_session(engine) as session:
        row = session.execute(
            select(LOG.c.request_id, LOG.c.timestamp).order_by(LOG.c.timestamp.desc()).limit(1)
        ).first()
    return None if row is None else (row[0], as_utc(row[1]))


def top_up(
    engine: Engine, *, seed: int = 7, end: datetime | None = None, progress: Progress | None = None
) -> IngestResult | None:
    """Add demo traffic, at the default rate, from the newest stored request up to `end` (default now) when that
    request is demo traffic; return None (adding nothing) when the newest request is real traffic or there is
    none. At most the default number of days is added."""
    newest = newest_request(engine)
    if newest is None or not (newest[0] or "").startswith("demo-"):
        return None
    end = (end or datetime.now(UTC)).astimezone(UTC)
    start = max(newest[1], end - timedelta(days=DEFAULT_DAYS))
    span_hours = max(0.0, (end - start) / HOUR)
    rate = DEFAULT_REQUESTS / (DEFAULT_DAYS * 24)
    records = demo_records(requests=round(rate * span_hours), seed=seed, start=start, end=end)
    # The newest stored request itself is drawn again at its own instant: keep only what is after it.
    records = [r for r in records if r["timestamp"] > newest[1]]
    return ingest_records(engine, records, progress=progress)


def add_demo_budgets(engine: Engine, at: datetime) -> list[str]:
    """Add three demo budgets when no budget exists: a daily one on DeepSeek that today's traffic has crossed,
    a monthly total past its warning or forecast to pass its amount, and a monthly one on the growth team past
    its warning. Return the names added."""
    with read_session(engine) as session:
        if session.execute(select(BUDGETS.c.name).limit(1)).first() is not None:
            return []
    today = at.date()
    month = read_window(engine, date(today.year, today.month, 1), today, at=at)
    deepseek = month.daily(Filters(providers=("deepseek",)))
    spent_today = int(deepseek[deepseek["start"].dt.date == today]["cost_nanos"].sum()) / 1e9
    spent_month = kpis(month).cost_nanos / 1e9
    month_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    forecast = spent_month * (next_month - month_start) / max(at - month_start, HOUR)
    growth = spend.value_total(engine, "team", "growth", month_start.date(), today).cost_nanos / 1e9
    added = [
        {
            "name": "demo-deepseek-daily",
            "scope": "provider:deepseek",
            "period": "daily",
            "amount_usd": max(0.01, round(spent_today * 0.85, 2)),
        },
        {
            "name": "demo-monthly-total",
            "scope": "global",
            "period": "monthly",
            # Past its warning threshold, or forecast to pass the amount, whichever day of the month it is.
            "amount_usd": max(0.01, round(max(spent_month / 0.9, (spent_month + forecast) / 2), 2)),
        },
        {
            "name": "demo-growth-monthly",
            "scope": "team:growth",
            "period": "monthly",
            "amount_usd": max(0.01, round(growth / 0.85, 2)),
        },
    ]
    with write_session(engine) as session:
        for data in added:
            budgets.add_budget(session=session, data=data, actor="demo")
    return [str(d["name"]) for d in added]
