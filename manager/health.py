"""Health per model, provider and system from rollups over a trailing window, always with the reason."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from manager import budgets
from manager.ledger import histogram
from manager.registry import ModelInfo
from manager.window import Reads, Window, read_window

# Worse statuses rank higher; a provider or the system takes the worst of its parts.
SEVERITY = {"disabled": -1, "idle": 0, "healthy": 1, "maintenance": 2, "degraded": 3, "unhealthy": 4}
PROBE_TIMEOUT_S = 2.0
TIMELINE_HOURS = 48


@dataclass(frozen=True)
class HealthThresholds:
    """When a model stops being healthy (error rates as fractions, judged only with enough requests)."""

    window: timedelta = timedelta(hours=1)
    degraded_error_rate: float = 0.05
    unhealthy_error_rate: float = 0.25
    min_requests: int = 20
    latency_factor: float = 2.0
    baseline: timedelta = timedelta(days=7)


def describe_thresholds(thresholds: HealthThresholds) -> str:
    """Return when a model stops being healthy, in words, from the thresholds themselves."""
    baseline_days = thresholds.baseline / timedelta(days=1)
    return (
        f"Degraded from {thresholds.degraded_error_rate:.0%} errors, unhealthy from "
        f"{thresholds.unhealthy_error_rate:.0%} (with at least {thresholds.min_requests} requests); degraded when "
        f"p95 latency is over {thresholds.latency_factor:g}x the model's {baseline_days:g}-day baseline or a hard "
        "budget covering it is exhausted."
    )


@dataclass(frozen=True)
class ModelHealth:
    """One model's health over the window, with the figures behind it and the reason."""

    model_id: str
    provider: str
    status: str
    requests: int
    error_rate: float | None
    p95_response_time_ms: float | None
    baseline_p95_ms: float | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        data = asdict(self)
        data.pop("baseline_p95_ms")
        return data


@dataclass(frozen=True)
class Tally:
    """Requests, failures and latency histogram of one model over a span of hours."""

    requests: int = 0
    failures: int = 0
    hist: Mapping[int, int] | None = None


def judge(
    model: ModelInfo,
    current: Tally,
    baseline_p95: float | None,
    thresholds: HealthThresholds,
    blocked_reason: str | None = None,
    probe_error: str | None = None,
) -> tuple[str, str]:
    """Return (status, reason) for one model from plain figures."""
    if not model.enabled:
        return "disabled", "disabled in the registry"
    if model.status == "maintenance":
        return "maintenance", "status is maintenance in the registry"
    problems: list[tuple[str, str]] = []
    if probe_error:
        problems.append(("unhealthy", f"live probe failed: {probe_error}"))
    if blocked_reason:
        problems.append(("degraded", blocked_reason))
    if current.requests == 0:
        if problems:
            worst = max(problems, key=lambda p: SEVERITY[p[0]])[0]
            return worst, "; ".join(p[1] for p in problems)
        return "idle", f"no requests in the last {_span(thresholds.window)}"
    rate = current.failures / current.requests
    p95 = histogram.quantile(current.hist or {}, 0.95)
    figures = f"{rate:.1%} errors over {current.requests:,} requests, p95 {p95:,.0f} ms" if p95 else ""
    if current.requests >= thresholds.min_requests:
        for level, limit in (
            ("unhealthy", thresholds.unhealthy_error_rate),
            ("degraded", thresholds.degraded_error_rate),
        ):
            if rate >= limit:
                problems.append((level, f"error rate {rate:.1%} is at or above {limit:.0%}"))
                break
    if p95 is not None and baseline_p95 and p95 > thresholds.latency_factor * baseline_p95:
        problems.append(
            (
                "degraded",
                f"p95 {p95:,.0f} ms is over {thresholds.latency_factor:g}x its "
                f"{_span(thresholds.baseline)} baseline of {baseline_p95:,.0f} ms",
            )
        )
    if problems:
        worst = max(problems, key=lambda p: SEVERITY[p[0]])[0]
        return worst, "; ".join(p[1] for p in problems) + (f" ({figures})" if figures else "")
    if current.requests < thresholds.min_requests:
        figures += f" (fewer than {thresholds.min_requests} requests: too few to judge errors)"
    return "healthy", figures


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours % 24 == 0 and hours >= 24:
        return f"{hours / 24:g} day(s)"
    return f"{hours:g} hour(s)"


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


def _tallies(frame: pd.DataFrame) -> dict[str, Tally]:
    return {str(model_id): tally for model_id, tally in _grouped_tallies(frame, ["model_id"]).items()}


def _baseline_first_day(before: datetime, thresholds: HealthThresholds) -> datetime:
    """Return the first whole day of the baseline that ends on the day before `before`."""
    day = before.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=max(1, thresholds.baseline.days))


def _baseline_rows(window: Window, before: datetime, thresholds: HealthThresholds) -> pd.DataFrame:
    """Return the daily rollups of the whole days of the baseline that end on the day before `before`."""
    day = before.replace(hour=0, minute=0, second=0, microsecond=0)
    return window.days_between(_baseline_first_day(before, thresholds), day)


def reads(at: datetime, thresholds: HealthThresholds = HealthThresholds(), hours: int = TIMELINE_HOURS) -> Reads:
    """Return what judging health at `at` (and its timeline of `hours` hours) reads: baseline days, recent hours,
    and the budgets whose exhaustion degrades a model."""
    end = at.replace(minute=0, second=0, microsecond=0)
    first = end - timedelta(hours=hours - 1) - thresholds.window
    first = min(first, window_bounds(at, thresholds.window)[0])
    return Reads(days_from=_baseline_first_day(first, thresholds).date(), hours_from=first) | budgets.reads(at)


def window_bounds(at: datetime, span: timedelta) -> tuple[datetime, datetime]:
    """Return the hours a trailing window reads: every hour that overlaps [at - span, at)."""
    low = (at - span).replace(minute=0, second=0, microsecond=0)
    return low, at


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
    thresholds: HealthThresholds = HealthThresholds(),
    live_probe: bool = False,
    window: Window | None = None,
) -> list[ModelHealth]:
    """Return each registered model's health over the trailing window ending at `at` (default now).

    A page passes the Window it read (with `reads(at)`); without one, this reads its own.
    """
    at = (at or datetime.now(UTC)).astimezone(UTC)
    window = window or read_window(engine, at.date(), at.date(), reads(at, thresholds, hours=1), at=at)
    probes = {}
    if live_probe:
        probes = {m: probe(info.base_url) for m, info in window.registry.items() if info.base_url and info.enabled}
    blocked = budgets.blocked_models(engine, at, window=window)
    return judge_models(window, at, thresholds, blocked, {m: e for m, e in probes.items() if e})


def judge_models(
    window: Window,
    at: datetime,
    thresholds: HealthThresholds,
    blocked: Mapping[str, str],
    probe_errors: Mapping[str, str],
) -> list[ModelHealth]:
    """Return each registered model's health at `at` from the window's rows, budgets and probe results."""
    low, high = window_bounds(at, thresholds.window)
    current = _tallies(window.hours_between(low, high))
    baseline = _tallies(_baseline_rows(window, low, thresholds))
    result = []
    for model_id, model in sorted(window.registry.items()):
        base = baseline.get(model_id)
        base_p95 = histogram.quantile(base.hist or {}, 0.95) if base else None
        tally = current.get(model_id, Tally())
        status, reason = judge(model, tally, base_p95, thresholds, blocked.get(model_id), probe_errors.get(model_id))
        result.append(
            ModelHealth(
                model_id,
                model.provider,
                status,
                tally.requests,
                tally.failures / tally.requests if tally.requests else None,
                histogram.quantile(tally.hist or {}, 0.95),
                base_p95,
                reason,
            )
        )
    return result


def worst(statuses: list[str]) -> str:
    """Return the worst status of several (idle when there are none)."""
    return max(statuses, key=SEVERITY.__getitem__, default="idle")


def provider_health(models: list[ModelHealth]) -> pd.DataFrame:
    """Return each provider's status (the worst of its enabled models) and why."""
    rows = []
    for provider in sorted({m.provider for m in models}):
        mine = [m for m in models if m.provider == provider and m.status != "disabled"]
        status = worst([m.status for m in mine]) if mine else "disabled"
        culprits = [f"{m.model_id}: {m.reason}" for m in mine if m.status == status]
        rows.append(
            {
                "provider": provider,
                "status": status,
                "models": len(mine),
                "reason": "; ".join(culprits) if culprits else "every model is disabled",
            }
        )
    return pd.DataFrame(rows, columns=["provider", "status", "models", "reason"])


def system_health(models: list[ModelHealth]) -> tuple[str, str]:
    """Return the overall status and a one-line reason naming the models behind it."""
    enabled = [m for m in models if m.status != "disabled"]
    status = worst([m.status for m in enabled])
    if status in ("healthy", "idle"):
        counts = {s: sum(m.status == s for m in enabled) for s in ("healthy", "idle")}
        return status, f"{counts['healthy']} healthy, {counts['idle']} idle"
    names = ", ".join(m.model_id for m in enabled if m.status == status)
    return status, f"{status}: {names}"


def health_timeline(
    engine: Engine,
    end: datetime | None = None,
    *,
    hours: int = TIMELINE_HOURS,
    thresholds: HealthThresholds = HealthThresholds(),
    window: Window | None = None,
) -> pd.DataFrame:
    """Return each model's status at the end of each of the last `hours` hours (columns hour, model_id, status)."""
    at = (end or datetime.now(UTC)).astimezone(UTC)
    window = window or read_window(engine, at.date(), at.date(), reads(at, thresholds, hours), at=at)
    return timeline(window, at, hours=hours, thresholds=thresholds)


def timeline(
    window: Window, at: datetime, *, hours: int = TIMELINE_HOURS, thresholds: HealthThresholds = HealthThresholds()
) -> pd.DataFrame:
    """Return each model's status at the end of each of the `hours` hours up to `at`, from the window's rows."""
    end = at.replace(minute=0, second=0, microsecond=0)
    first = end - timedelta(hours=hours - 1)
    frame = window.hours_between(first - thresholds.window, end + timedelta(hours=1))
    info = window.registry
    rows = []
    window_hours = max(1, round(thresholds.window.total_seconds() / 3600))
    baseline = _tallies(_baseline_rows(window, first - thresholds.window, thresholds))
    # A row of hour h counts in the windows that end at hours h .. h + window_hours - 1.
    own_step = ((frame["start"] - first) // timedelta(hours=1)).to_numpy(dtype=np.int64)
    parts = []
    for lag in range(window_hours):
        step = own_step + lag
        keep = (step >= 0) & (step < hours)
        parts.append(frame[keep].assign(step=step[keep]))
    tallies = _grouped_tallies(pd.concat(parts, ignore_index=True), ["step", "model_id"]) if parts else {}
    for step in range(hours):
        hour = first + timedelta(hours=step)
        for model_id, model in sorted(info.items()):
            base = baseline.get(model_id)
            base_p95 = histogram.quantile(base.hist or {}, 0.95) if base else None
            status, reason = judge(model, tallies.get((step, model_id), Tally()), base_p95, thresholds)
            rows.append({"hour": hour.replace(tzinfo=None), "model_id": model_id, "status": status, "reason": reason})
    return pd.DataFrame(rows, columns=["hour", "model_id", "status", "reason"])
