"""The weekly or monthly digest: spend by team and model against the period before, the biggest movers, budgets at
risk and health incidents; `python -m manager digest`, and sent to a channel on request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from manager import budgets, spend
from manager.alerts import channels, delivery, events
from manager.alerts.messages import Event
from manager.db import write_session
from manager.money import NANOS_PER_USD
from manager.usage import kpis
from manager.window import read_window

PERIODS = ("weekly", "monthly")
MOVERS = 5


def last_whole_period(period: str, today: date) -> tuple[date, date, date, date]:
    """Return (start, end, previous start, previous end) of the last whole UTC week (Monday to Sunday) or month
    before `today`, and of the one before it; ends are inclusive."""
    if period == "weekly":
        end = today - timedelta(days=today.weekday() + 1)
        start = end - timedelta(days=6)
        return start, end, start - timedelta(days=7), start - timedelta(days=1)
    if period != "monthly":
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    end = today.replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)
    previous_end = start - timedelta(days=1)
    return start, end, previous_end.replace(day=1), previous_end


@dataclass(frozen=True)
class Line:
    """One team's or model's spend this period and the one before."""

    name: str
    cost_usd: float
    previous_usd: float

    @property
    def change_usd(self) -> float:
        """Return how much more (or less) it spent."""
        return self.cost_usd - self.previous_usd

    def as_dict(self) -> dict[str, Any]:
        """Return the line as plain data."""
        change = 100 * self.change_usd / self.previous_usd if self.previous_usd else None
        return {
            "name": self.name,
            "cost_usd": round(self.cost_usd, 6),
            "previous_usd": round(self.previous_usd, 6),
            "change_pct": None if change is None else round(change, 1),
        }


@dataclass(frozen=True)
class Digest:
    """What a period's digest says."""

    period: str
    start: date
    end: date
    previous_start: date
    previous_end: date
    total: Line
    teams: list[Line]
    models: list[Line]
    budgets_at_risk: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def movers(self) -> list[Line]:
        """Return the teams and models whose spend moved most, either way, largest first."""
        every = [Line(f"team {t.name}", t.cost_usd, t.previous_usd) for t in self.teams]
        every += [Line(f"model {m.name}", m.cost_usd, m.previous_usd) for m in self.models]
        moved = [line for line in every if line.change_usd]
        return sorted(moved, key=lambda line: -abs(line.change_usd))[:MOVERS]

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        return {
            "period": self.period,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "previous_from": self.previous_start.isoformat(),
            "previous_to": self.previous_end.isoformat(),
            "total": self.total.as_dict(),
            "teams": [t.as_dict() for t in self.teams],
            "models": [m.as_dict() for m in self.models],
            "movers": [m.as_dict() for m in self.movers()],
            "budgets_at_risk": self.budgets_at_risk,
            "incidents": self.incidents,
        }

    def subject(self) -> str:
        """Return the digest in one line."""
        change = self.total.as_dict()["change_pct"]
        versus = f" ({change:+.1f}% on the period before)" if change is not None else ""
        noun = "Weekly" if self.period == "weekly" else "Monthly"
        return f"{noun} digest {self.start} to {self.end}: ${self.total.cost_usd:,.2f} spent{versus}"

    def lines(self) -> dict[str, str]:
        """Return each section as one readable line, as a message shows it."""

        def money(line: Line) -> str:
            change = line.as_dict()["change_pct"]
            after = f" ({change:+.0f}%)" if change is not None else " (new)" if line.cost_usd else ""
            return f"{line.name} {_usd(line.cost_usd)}{after}"

        def moved(line: Line) -> str:
            return f"{line.name} {'+' if line.change_usd >= 0 else '-'}{_usd(abs(line.change_usd))}"

        risky = [
            f"{b['name']} {b['state']}, {b['percent']:.0%} of {_usd(b['amount_usd'])}"
            + (f", forecast {_usd(b['forecast_usd'])}" if b["forecast_usd"] > b["amount_usd"] else "")
            for b in self.budgets_at_risk
        ]
        return {
            "teams": ", ".join(money(t) for t in self.teams[:5]) or "no team named",
            "models": ", ".join(money(m) for m in self.models[:5]) or "no traffic",
            "biggest movers": ", ".join(moved(m) for m in self.movers()) or "none",
            "budgets at risk": ", ".join(risky) or "none",
            "health incidents": "; ".join(i["subject"] for i in self.incidents[:5]) or "none",
        }

    def event(self, channel: str) -> Event:
        """Return the digest as an alert event for a channel (recorded once per period and channel)."""
        return Event(
            key=f"digest:{self.period}:{self.start}:{channel}",
            kind=f"digest_{self.period}",
            subject=self.subject(),
            occurred_at=datetime.combine(self.end + timedelta(days=1), datetime.min.time(), UTC),
            data=self.lines(),
        )


def _usd(amount: float) -> str:
    """Return dollars as people read them: cents, or four places below a cent."""
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.4f}"


def _lines(now: dict[str, int], before: dict[str, int]) -> list[Line]:
    names = sorted(set(now) | set(before), key=lambda n: (-now.get(n, 0), n))
    return [Line(n, now.get(n, 0) / NANOS_PER_USD, before.get(n, 0) / NANOS_PER_USD) for n in names]


def _spend(engine: Engine, start: date, end: date) -> tuple[int, dict[str, int]]:
    """Return the days' total spend and each model's (nano-dollars), from one read of their rollups."""
    window = read_window(engine, start, end)
    costs = window.daily().groupby("model_id")["cost_nanos"].sum()
    return kpis(window).cost_nanos, {str(model_id): int(cost) for model_id, cost in costs.items()}


def build(engine: Engine, period: str, *, at: datetime | None = None) -> Digest:
    """Return the digest of the last whole week or month before the moment (default now), with the budgets as
    they stand at it."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    today = at.date()
    start, end, previous_start, previous_end = last_whole_period(period, today)
    now_total, models_now = _spend(engine, start, end)
    before_total, models_before = _spend(engine, previous_start, previous_end)
    teams_now = {v: s.cost_nanos for v, s in spend.totals_by_value(engine, "team", start, end)}
    teams_before = {v: s.cost_nanos for v, s in spend.totals_by_value(engine, "team", previous_start, previous_end)}
    risky = [
        {
            "name": s.name,
            "scope": s.scope,
            "state": s.state,
            "percent": s.percent,
            "amount_usd": s.amount_usd,
            "forecast_usd": s.forecast_usd,
        }
        for s in budgets.budget_status(engine, at, record=False)
        if s.state != "ok" or s.forecast_usd > s.amount_usd
    ]
    low, high = (datetime.combine(d, datetime.min.time(), UTC) for d in (start, end + timedelta(days=1)))
    incidents = [
        {"occurred_at": e["occurred_at"], "subject": e["subject"]}
        for e in events.recent(engine, 1000)
        if e["kind"] == "health_change"
        and e["data"].get("status") in ("degraded", "unhealthy")
        and low <= datetime.fromisoformat(e["occurred_at"]) < high
    ]
    return Digest(
        period,
        start,
        end,
        previous_start,
        previous_end,
        Line("total", now_total / NANOS_PER_USD, before_total / NANOS_PER_USD),
        _lines(teams_now, teams_before),
        _lines(models_now, models_before),
        risky,
        sorted(incidents, key=lambda i: i["occurred_at"]),
    )


def send(engine: Engine, found: Digest, channel: str) -> dict[str, int]:
    """Tell a channel the digest (recorded once per period and channel, through the outbox and its log) and
    deliver what is due; return what the sender did."""
    with write_session(engine) as session:
        channels.get_channel(session=session, name=channel)
        events.record(session, found.event(channel), only=channel)
    return delivery.send_pending(engine).as_dict()
