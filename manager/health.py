"""Health per model, provider and system from hourly rollups, judged every hour, always with the reason.

The rules themselves (widening, confidence bound, holding) are pure functions in `health_rules`; this module
reads the hours they need and evaluates them on one hourly grid, so the status table and the timeline's last
column always agree.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from manager import budgets
from manager.health_rules import (
    DEFAULT_THRESHOLDS,
    OFF,
    SEVERITY,
    HealthThresholds,
    Tally,
    Verdict,
    judge,
    settle,
    widen,
)
from manager.ledger import histogram
from manager.window import Reads, Window, read_window

PROBE_TIMEOUT_S = 2.0
TIMELINE_HOURS = 48
HOUR = timedelta(hours=1)
# Evaluations before the first shown one, so that a status held back there is known.
WARM_UP = 6


@dataclass(frozen=True)
class ModelHealth:
    """One model's health at one evaluation, with the figures behind it, a short reason and the full detail."""

    model_id: str
    provider: str
    status: str
    requests: int
    error_rate: float | None
    p95_response_time_ms: float | None
    window_hours: float
    reason: str
    detail: str
    baseline_p95_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        data = asdict(self)
        data.pop("baseline_p95_ms")
        return data


COLUMNS = [name for name in ModelHealth.__dataclass_fields__ if name != "baseline_p95_ms"]


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _newest_hour(point: datetime) -> datetime:
    """Return the start of the newest hour an evaluation at `point` reads (the hour that ends at or holds it)."""
    top = _hour_floor(point)
    return top if top < point else top - HOUR


def grid(at: datetime, count: int) -> list[datetime]:
    """Return `count` hourly evaluation points ending at `at`: the ends of the whole hours before it, then `at`."""
    top = _hour_floor(at)
    if top == at:
        return [at - HOUR * k for k in range(count - 1, -1, -1)]
    return [*(top - HOUR * k for k in range(count - 2, -1, -1)), at]


def reads(at: datetime, thresholds: HealthThresholds = DEFAULT_THRESHOLDS, hours: int = TIMELINE_HOURS) -> Reads:
    """Return what judging health at `at` (and its timeline of `hours` hours) reads: baseline days, recent hours,
    and the budgets whose exhaustion degrades a model."""
    first = _earliest_hour(grid(at, hours + WARM_UP)[0], thresholds)
    return Reads(days_from=_baseline_days(first, thresholds)[0].date(), hours_from=first) | budgets.reads(at)


def _earliest_hour(point: datetime, thresholds: HealthThresholds) -> datetime:
    """Return the first hour the widest window of an evaluation at `point` reads."""
    return _hour_floor(point - max(thresholds.window, thresholds.widen_to))


def _baseline_days(first_hour: datetime, thresholds: HealthThresholds) -> tuple[datetime, datetime]:
    """Return the whole days of the latency baseline: those before the day of the first hour judged."""
    day = first_hour.replace(hour=0)
    return day - timedelta(days=max(1, thresholds.baseline.days)), day


def probe(base_url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Return None when a local model server answers at base_url, else why it did not."""
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/api/tags", timeout=timeout) as response:  # noqa: S310
            return None if response.status < 400 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        return str(reason) or type(error).__name__


def model_health(
    engine: Engine,
    at: datetime | None = None,
    *,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
    live_probe: bool = False,
    window: Window | None = None,
) -> list[ModelHealth]:
    """Return each registered model's health at `at` (default now).

    A page passes the Window it read (with `reads(at)`); without one, this reads its own.
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    window = window or read_window(engine, at.date(), at.date(), reads(at, thresholds, hours=1), at=at)
    probes = {}
    if live_probe:
        probes = {m: probe(info.base_url) for m, info in window.registry.items() if info.base_url and info.enabled}
    blocked = budgets.blocked_models(engine, at, window=window)
    series = evaluate(window, grid(at, 1 + WARM_UP), thresholds, blocked, {m: e for m, e in probes.items() if e})
    return [shown[-1] for shown in series.values()]


def evaluate(
    window: Window,
    points: list[datetime],
    thresholds: HealthThresholds,
    blocked: Mapping[str, str] | None = None,
    probe_errors: Mapping[str, str] | None = None,
) -> dict[str, list[ModelHealth]]:
    """Return each registered model's status shown at each point (oldest first), from the window's hourly rows.

    Budgets and probes are what is known now, so they count at the last point only.
    """
    blocked, probe_errors = blocked or {}, probe_errors or {}
    first = _earliest_hour(points[0], thresholds)
    hourly = _hourly_tallies(window.hours_between(first, points[-1]))
    baseline = _grouped_tallies(window.days_between(*_baseline_days(first, thresholds)), ["model_id"])
    result: dict[str, list[ModelHealth]] = {}
    for model_id, model in sorted(window.registry.items()):
        base = baseline.get(model_id)
        base_p95 = histogram.quantile(base.hist or {}, 0.95) if base else None
        mine = hourly.get(model_id, {})
        verdicts: list[Verdict] = []
        figures: list[tuple[Tally, timedelta]] = []
        for index, point in enumerate(points):
            newest = _newest_hour(point)
            nominal = (newest - _hour_floor(point - thresholds.window)) // HOUR + 1
            widest = (newest - _earliest_hour(point, thresholds)) // HOUR + 1
            tally, taken = widen(
                [mine.get(newest - HOUR * k, Tally()) for k in range(widest)], nominal, thresholds.min_requests
            )
            widened = taken > nominal
            # A widened window reaches back to the start of its oldest hour: told in whole hours, at most the limit.
            reach = HOUR * -(-(point - (newest - HOUR * (taken - 1))) // HOUR)
            span = min(reach, max(thresholds.window, thresholds.widen_to)) if widened else thresholds.window
            last = index == len(points) - 1
            verdicts.append(
                judge(
                    model.status,
                    model.enabled,
                    tally,
                    span,
                    widened,
                    base_p95,
                    thresholds,
                    blocked.get(model_id) if last else None,
                    probe_errors.get(model_id) if last else None,
                )
            )
            figures.append((tally, span))
        result[model_id] = [
            ModelHealth(
                model_id,
                model.provider,
                verdict.status,
                tally.requests,
                tally.failures / tally.requests if tally.requests else None,
                histogram.quantile(tally.hist or {}, 0.95),
                span / HOUR,
                verdict.reason,
                verdict.detail,
                base_p95,
            )
            for verdict, (tally, span) in zip(settle(verdicts, thresholds.hold), figures, strict=True)
        ]
    return result


def _grouped_tallies(frame: pd.DataFrame, keys: list[str]) -> dict[Any, Tally]:
    """Return one Tally per distinct value of `keys` in rollup rows, histograms merged in one pass."""
    if frame.empty:
        return {}
    grouped = frame.groupby(keys, sort=True)
    sums = grouped[["requests", "failures"]].sum()
    hists = histogram.merge_by_group(grouped.ngroup().to_numpy(), frame["latency_hist"].tolist(), len(sums))
    return {
        key: Tally(int(requests), int(failures), histogram.decode(hist))
        for key, requests, failures, hist in zip(
            sums.index, sums["requests"].tolist(), sums["failures"].tolist(), hists, strict=True
        )
    }


def _hourly_tallies(frame: pd.DataFrame) -> dict[str, dict[datetime, Tally]]:
    """Return each model's Tally per hour start."""
    result: dict[str, dict[datetime, Tally]] = {}
    for (start, model_id), tally in _grouped_tallies(frame, ["start", "model_id"]).items():
        result.setdefault(str(model_id), {})[start.to_pydatetime()] = tally
    return result


def worst(statuses: list[str]) -> str:
    """Return the worst status of several (idle when there are none)."""
    return max(statuses, key=SEVERITY.__getitem__, default="idle")


def provider_health(models: list[ModelHealth]) -> pd.DataFrame:
    """Return each provider's status (the worst of its models in service) and why."""
    rows = []
    for provider in sorted({m.provider for m in models}):
        mine = [m for m in models if m.provider == provider and m.status not in OFF]
        status = worst([m.status for m in mine]) if mine else "disabled"
        culprits = [f"{m.model_id}: {m.reason}" for m in mine if m.status == status]
        rows.append(
            {
                "provider": provider,
                "status": status,
                "models": len(mine),
                "reason": "; ".join(culprits) if culprits else "no model in service (disabled, inactive or deprecated)",
            }
        )
    return pd.DataFrame(rows, columns=["provider", "status", "models", "reason"])


def system_health(models: list[ModelHealth]) -> tuple[str, str]:
    """Return the overall status and a one-line reason naming the models behind it."""
    serving = [m for m in models if m.status not in OFF]
    status = worst([m.status for m in serving])
    if status in ("healthy", "idle"):
        counts = {s: sum(m.status == s for m in serving) for s in ("healthy", "idle")}
        return status, f"{counts['healthy']} healthy, {counts['idle']} idle"
    names = ", ".join(m.model_id for m in serving if m.status == status)
    return status, f"{status}: {names}"


def health_timeline(
    engine: Engine,
    end: datetime | None = None,
    *,
    hours: int = TIMELINE_HOURS,
    thresholds: HealthThresholds = DEFAULT_THRESHOLDS,
    window: Window | None = None,
) -> pd.DataFrame:
    """Return each model's status at each of the last `hours` hourly evaluations (columns hour, model_id, status,
    reason)."""
    at = (end or datetime.now(UTC)).astimezone(UTC)
    window = window or read_window(engine, at.date(), at.date(), reads(at, thresholds, hours), at=at)
    return timeline(window, at, hours=hours, thresholds=thresholds)


def timeline(
    window: Window, at: datetime, *, hours: int = TIMELINE_HOURS, thresholds: HealthThresholds = DEFAULT_THRESHOLDS
) -> pd.DataFrame:
    """Return each model's status at the end of each of the `hours` hours up to `at` (the last one judged at `at`),
    labelled by the hour judged, from the window's rows."""
    points = grid(at, hours + WARM_UP)
    series = evaluate(window, points, thresholds)
    rows = []
    for index, point in enumerate(points[WARM_UP:], start=WARM_UP):
        label = _newest_hour(point).replace(tzinfo=None)
        for model_id, shown in series.items():
            health = shown[index]
            rows.append({"hour": label, "model_id": model_id, "status": health.status, "reason": health.reason})
    return pd.DataFrame(rows, columns=["hour", "model_id", "status", "reason"])
