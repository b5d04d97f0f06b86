"""Health rules as pure functions over plain figures: widening a quiet window, judging an error rate by its
confidence bound, and holding a status until it repeats.

- A window with too few requests is widened an hour at a time (up to a day) until it holds enough, so a
  model serving six requests an hour is still judged, on the hours that make a sample.
- An error rate is judged by the lower end of its Wilson score interval: the rate the model is at least at,
  with 95% confidence. One failure in 15 (6.7%) has a lower bound of 1.2% and is no incident; 10 in 100 has
  5.5% and is.
- A judged status (healthy, degraded, unhealthy) changes only once the new one has held for `hold`
  consecutive hourly evaluations, so one noisy hour does not flap it. Facts change it at once: the registry,
  an exhausted hard budget, a failed live probe, no traffic at all.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from manager.ledger import histogram

# Worse statuses rank higher; a provider or the system takes the worst of its parts. Models that are
# off (disabled, inactive or deprecated) rank below everything and count in neither.
SEVERITY = {
    "disabled": -1,
    "inactive": -1,
    "deprecated": -1,
    "idle": 0,
    "healthy": 1,
    "maintenance": 2,
    "degraded": 3,
    "unhealthy": 4,
}
OFF = frozenset({"disabled", "inactive", "deprecated"})
JUDGED = frozenset({"healthy", "degraded", "unhealthy"})


@dataclass(frozen=True)
class HealthThresholds:
    """When a model stops being healthy (error rates as fractions of requests)."""

    window: timedelta = timedelta(hours=1)
    widen_to: timedelta = timedelta(hours=24)
    min_requests: int = 20  # a quiet window is widened until it holds this many
    min_judged: int = 10  # fewer requests than this (even widened) are too few to judge errors
    degraded_error_rate: float = 0.05
    unhealthy_error_rate: float = 0.25
    confidence_z: float = 1.96  # 95% two-sided
    latency_factor: float = 2.0
    baseline: timedelta = timedelta(days=7)
    hold: int = 2


DEFAULT_THRESHOLDS = HealthThresholds()


def describe_thresholds(thresholds: HealthThresholds) -> str:
    """Return when a model stops being healthy, in words, from the thresholds themselves."""
    return (
        f"Judged every hour over the last {span_text(thresholds.window)}, widened up to "
        f"{span_text(thresholds.widen_to)} until it holds {thresholds.min_requests} requests. Degraded when the "
        f"error rate is, with 95% confidence, at least {thresholds.degraded_error_rate:.0%} (unhealthy from "
        f"{thresholds.unhealthy_error_rate:.0%}), or p95 latency is over {thresholds.latency_factor:g}x the "
        f"model's {span_text(thresholds.baseline)} baseline, or a hard budget covering it is exhausted. A new "
        f"status shows once it has held for {thresholds.hold} hourly checks."
    )


def span_text(delta: timedelta) -> str:
    """Return a span as '1 h', '90 min', '24 h' or '7 days'."""
    minutes = delta.total_seconds() / 60
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        days = minutes / (24 * 60)
        return f"{days:g} day" + ("" if days == 1 else "s")
    if minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


@dataclass(frozen=True)
class Tally:
    """Requests, failures and latency histogram of one model over some hours."""

    requests: int = 0
    failures: int = 0
    hist: Mapping[int, int] | None = None


def widen(hours: Sequence[Tally], nominal: int, min_requests: int) -> tuple[Tally, int]:
    """Return the sum of the newest `nominal` hours (newest first), with older ones added one at a time until it
    holds `min_requests` requests or the hours run out, and how many hours it took."""
    taken = min(nominal, len(hours))
    requests = sum(h.requests for h in hours[:taken])
    while requests < min_requests and taken < len(hours):
        requests += hours[taken].requests
        taken += 1
    used = hours[:taken]
    merged: Counter[int] = Counter()
    for hour in used:
        merged.update(hour.hist or {})
    return Tally(requests, sum(h.failures for h in used), dict(merged)), taken


def wilson_interval(failures: int, requests: int, z: float = 1.96) -> tuple[float, float]:
    """Return the Wilson score interval of a failure rate: where the true rate lies with the given confidence."""
    if requests <= 0:
        return 0.0, 1.0
    p = failures / requests
    z2 = z * z
    denominator = 1 + z2 / requests
    centre = (p + z2 / (2 * requests)) / denominator
    half = z * math.sqrt(p * (1 - p) / requests + z2 / (4 * requests * requests)) / denominator
    # Rounding can put a bound a hair past the observed rate (0 of n, n of n); the interval always holds it.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True)
class Verdict:
    """A status with a short reason for the table and the full detail behind it.

    `firm` verdicts rest on facts (registry, budgets, probes, no traffic) and take effect at once; the
    others are judgements on a sample and must hold before they show.
    """

    status: str
    reason: str
    detail: str
    firm: bool = False


def judge(
    registry_status: str,
    enabled: bool,
    tally: Tally,
    span: timedelta,
    widened: bool,
    baseline_p95: float | None,
    thresholds: HealthThresholds,
    blocked_reason: str | None = None,
    probe_error: str | None = None,
) -> Verdict:
    """Return one model's verdict from its registry state and its figures over `span` (widened or not)."""
    if not enabled:
        return Verdict("disabled", "disabled in the registry", "Disabled in the registry: never selected.", True)
    if registry_status in ("inactive", "deprecated", "maintenance"):
        text = f"status is {registry_status} in the registry"
        return Verdict(registry_status, text, text[0].upper() + text[1:] + ".", True)
    facts: list[tuple[str, str, str]] = []
    if probe_error:
        facts.append(("unhealthy", "live probe failed", f"live probe failed: {probe_error}"))
    if blocked_reason:
        facts.append(("degraded", blocked_reason, blocked_reason))
    where = span_text(span) + (", widened" if widened else "")
    if tally.requests == 0:
        if facts:
            return _worst(facts, "", firm=True)
        text = f"no requests in the last {span_text(span)}"
        return Verdict("idle", text, text[0].upper() + text[1:] + ".", True)
    rate = tally.failures / tally.requests
    low, high = wilson_interval(tally.failures, tally.requests, thresholds.confidence_z)
    p95 = histogram.quantile(tally.hist or {}, 0.95)
    figures = f"{tally.failures:,} of {tally.requests:,} requests failed ({rate:.1%}) in the last {span_text(span)}"
    if widened:
        figures += f", widened from {span_text(thresholds.window)} to reach {thresholds.min_requests} requests"
    figures += f"; 95% interval {low:.1%} to {high:.1%}"
    if p95 is not None:
        figures += f"; p95 {p95:,.0f} ms" + (f" against a baseline of {baseline_p95:,.0f} ms" if baseline_p95 else "")
    judged: list[tuple[str, str, str]] = []
    if tally.requests >= thresholds.min_judged:
        for level, limit in (
            ("unhealthy", thresholds.unhealthy_error_rate),
            ("degraded", thresholds.degraded_error_rate),
        ):
            if low >= limit:
                judged.append(
                    (
                        level,
                        f"{rate:.1%} errors of {tally.requests:,} in {where}",
                        f"the error rate is at least {low:.1%} with 95% confidence, at or above {limit:.0%}",
                    )
                )
                break
    if p95 is not None and baseline_p95 and p95 > thresholds.latency_factor * baseline_p95:
        judged.append(
            (
                "degraded",
                f"p95 {p95 / baseline_p95:.1f}x its baseline",
                f"p95 {p95:,.0f} ms is over {thresholds.latency_factor:g}x its {span_text(thresholds.baseline)} "
                f"baseline of {baseline_p95:,.0f} ms",
            )
        )
    if facts or judged:
        return _worst(facts + judged, figures, firm=bool(facts) and _rank(facts) >= _rank(judged))
    if tally.requests < thresholds.min_judged:
        return Verdict(
            "healthy",
            f"too few to judge errors: {tally.requests:,} in {where}",
            f"Only {tally.requests:,} requests in the last {span_text(span)} (fewer than {thresholds.min_judged}): "
            f"too few to judge errors. {figures[0].upper() + figures[1:]}.",
        )
    short = f"{rate:.1%} errors of {tally.requests:,} in {where}" + (f"; p95 {_seconds(p95)}" if p95 else "")
    return Verdict("healthy", short, figures[0].upper() + figures[1:] + ".")


def _rank(problems: Sequence[tuple[str, str, str]]) -> int:
    return max((SEVERITY[p[0]] for p in problems), default=-9)


def _worst(problems: Sequence[tuple[str, str, str]], figures: str, *, firm: bool) -> Verdict:
    status = max(problems, key=lambda p: SEVERITY[p[0]])[0]
    reason = "; ".join(p[1] for p in problems)
    detail = "; ".join(p[2] for p in problems)
    detail = detail[0].upper() + detail[1:] + (f". {figures[0].upper() + figures[1:]}." if figures else ".")
    return Verdict(status, reason, detail, firm)


def _seconds(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def settle(verdicts: Sequence[Verdict], hold: int) -> list[Verdict]:
    """Return the statuses shown at consecutive evaluations: a judged status replaces another judged status only
    once it has been the verdict `hold` times in a row; until then the old one shows, saying what is pending."""
    shown: list[Verdict] = []
    for i, verdict in enumerate(verdicts):
        if not shown:
            shown.append(verdict)
            continue
        before = shown[-1]
        recent = verdicts[max(0, i - hold + 1) : i + 1]
        held = len(recent) == hold and all(v.status == verdict.status for v in recent)
        if (
            verdict.firm
            or before.firm
            or verdict.status == before.status
            or verdict.status not in JUDGED
            or before.status not in JUDGED
            or held
        ):
            shown.append(verdict)
            continue
        shown.append(
            replace(
                verdict,
                status=before.status,
                reason=f"{verdict.status} if it holds: {verdict.reason}",
                detail=f"Still shown as {before.status} until it holds for {hold} hourly checks. {verdict.detail}",
            )
        )
    return shown
