"""When something is worth telling people (pure): a budget's crossing or forecast, a health status change, a spike.

Each rule returns an Event whose key names it once: a budget level once per period, a forecast once per
period, a status change once per (subject, status, moment it changed), a spike once per hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import pandas as pd

from manager.alerts.messages import Event

SPIKE_FACTOR = 3.0
SPIKE_BASELINE_HOURS = 24
LEVEL_WORDS = {"warning": "its warning", "alert": "its alert level", "exhausted": "its amount (hard budget exhausted)"}


def budget_crossing(
    *,
    name: str,
    scope: str,
    period: str,
    period_start: datetime,
    level: str,
    threshold: float,
    crossed_at: datetime,
    spent_usd: float,
    amount_usd: float,
) -> Event:
    """Return the event of a budget threshold's first crossing in a period."""
    return Event(
        key=f"budget:{name}:{period_start.isoformat()}:{level}",
        kind=f"budget_{level}",
        subject=(
            f"Budget '{name}' crossed {LEVEL_WORDS.get(level, level)} ({threshold:.0%}): "
            f"${spent_usd:,.2f} of ${amount_usd:,.2f} ({period}, {scope})"
        ),
        occurred_at=crossed_at,
        data={
            "budget": name,
            "scope": scope,
            "period": period,
            "period_start": period_start.isoformat(),
            "level": level,
            "threshold": threshold,
            "spent_usd": round(spent_usd, 6),
            "amount_usd": round(amount_usd, 6),
        },
    )


def budget_forecast(
    *,
    name: str,
    scope: str,
    period: str,
    period_start: datetime,
    period_end: datetime,
    spent_usd: float,
    amount_usd: float,
    forecast_usd: float,
    at: datetime,
) -> Event | None:
    """Return the event of a budget forecast to pass its amount by the period's end (None when it is not, or
    when the amount is passed already: the crossing says so)."""
    if forecast_usd <= amount_usd or spent_usd >= amount_usd:
        return None
    return Event(
        key=f"budget:{name}:{period_start.isoformat()}:forecast",
        kind="budget_forecast",
        subject=(
            f"Budget '{name}' is forecast to reach ${forecast_usd:,.2f} of ${amount_usd:,.2f} by "
            f"{period_end:%Y-%m-%d %H:%M} UTC ({period}, {scope})"
        ),
        occurred_at=at,
        data={
            "budget": name,
            "scope": scope,
            "period": period,
            "period_start": period_start.isoformat(),
            "spent_usd": round(spent_usd, 6),
            "amount_usd": round(amount_usd, 6),
            "forecast_usd": round(forecast_usd, 6),
        },
    )


def health_changes(
    told: Mapping[str, str], now: Mapping[str, tuple[str, str]], at: datetime
) -> tuple[list[Event], dict[str, str]]:
    """Return the events of every subject whose status differs from the one last told, and the statuses to
    remember. A subject seen for the first time is remembered without an event (no burst at first start).
    `now` maps a subject ("model gpt-4o", "provider openai", "system") to its settled status and reason:
    health only changes a judged status after it held two consecutive hourly checks, so this never flaps."""
    events = []
    for subject, (status, reason) in sorted(now.items()):
        before = told.get(subject)
        if before is None or before == status:
            continue
        events.append(
            Event(
                key=f"health:{subject}:{status}:{at:%Y-%m-%dT%H:%M}",
                kind="health_change",
                subject=f"{subject[0].upper()}{subject[1:]} is {status} (was {before}): {reason}",
                occurred_at=at,
                data={"subject": subject, "status": status, "previous": before, "reason": reason},
            )
        )
    return events, {subject: status for subject, (status, _) in now.items()}


def spend_spike(hourly_nanos: pd.Series, at: datetime) -> Event | None:
    """Return the event of the last whole hour before `at` spending over SPIKE_FACTOR times the average hour of
    the SPIKE_BASELINE_HOURS before it (None without such a spike, or without a baseline to compare with).
    `hourly_nanos` is billed cost per UTC hour (index: the hour's start)."""
    hour = at.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    spent = int(hourly_nanos.get(pd.Timestamp(hour), 0))
    earlier = hourly_nanos[
        (hourly_nanos.index >= pd.Timestamp(hour - timedelta(hours=SPIKE_BASELINE_HOURS)))
        & (hourly_nanos.index < pd.Timestamp(hour))
    ]
    baseline = float(earlier.sum()) / SPIKE_BASELINE_HOURS
    if baseline <= 0 or spent <= SPIKE_FACTOR * baseline:
        return None
    return Event(
        key=f"spike:{hour:%Y-%m-%dT%H}",
        kind="spend_spike",
        subject=(
            f"Spend from {hour:%H:%M} to {hour + timedelta(hours=1):%H:%M} UTC was ${spent / 1e9:,.2f}, "
            f"{spent / baseline:.1f}x the average hour of the day before (${baseline / 1e9:,.4f})"
        ),
        occurred_at=hour + timedelta(hours=1),
        data={
            "hour": hour.isoformat(),
            "spent_usd": spent / 1e9,
            "baseline_usd": round(baseline / 1e9, 9),
            "factor": round(spent / baseline, 2),
        },
    )
