"""Budgets: limits per scope and UTC period, spend from rollups, forecasts, states and recorded alerts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from sqlmodel import select as select_rows

from manager.accounts import authorize
from manager.alerts import events, rules
from manager.alerts.messages import Event
from manager.audit import SYSTEM_ACTOR, record_change
from manager.db import read_session, write_session
from manager.errors import InvalidInput, NotFound
from manager.forecasting import (
    FORECAST_METHOD,
    PROFILE_DAYS,
    TRACK_PERIODS,
    forecast_band,
    forecast_errors,
    forecast_period_end,
)
from manager.ledger.attribution import DIMENSIONS, TAG_SEPARATOR, AttributionError, clean_tags, clean_value
from manager.ledger.grains import rollup_table
from manager.ledger.rollup_read import read_rollups
from manager.models import Budget, BudgetAlert, BudgetFields, ModelCategory, ModelConfig, Role
from manager.money import NANOS_PER_USD, usd_to_nanos
from manager.periods import budget_state, first_crossing, period_bounds
from manager.registry import ModelInfo, describe_validation_error
from manager.timeutil import as_utc
from manager.window import Reads, Window, read_window

MODEL_SCOPES = ("provider", "model", "category")
# A budget on an attribution value (team:growth, tag:beta) counts that value's requests on every model.
SCOPE_KINDS = ("global", *MODEL_SCOPES, *DIMENSIONS)
ALERTS = BudgetAlert.__table__  # type: ignore[attr-defined]
# A request's attribution as selection is told it: dimension -> its values (several only for tags).
Attribution = Mapping[str, Sequence[str]]


def parse_scope(scope: str) -> tuple[str, str | None]:
    """Return (kind, value) of 'global', 'provider:X', 'model:X', 'category:X' or a dimension's 'team:X',
    'user:X', 'api_key:X', 'app:X', 'environment:X', 'tag:X'; raise InvalidInput otherwise.

    A dimension's value is cleaned as ingest cleans it, so a secret-looking API key becomes its fingerprint.
    """
    text = scope.strip()
    if text == "global":
        return "global", None
    kind, _, value = text.partition(":")
    if kind not in SCOPE_KINDS[1:] or not value.strip():
        raise InvalidInput(
            [
                f"scope: {scope!r} is not global, provider:NAME, model:ID, category:NAME or one of "
                + ", ".join(f"{d}:VALUE" for d in DIMENSIONS)
            ]
        )
    if kind in DIMENSIONS:
        try:
            cleaned = clean_tags(value) if kind == "tag" else clean_value(kind, value)
        except AttributionError as error:
            raise InvalidInput([f"scope: {kind} {error.reason}"]) from None
        if cleaned is None or TAG_SEPARATOR in cleaned:
            raise InvalidInput([f"scope: {scope!r} names more than one tag; a budget covers one"])
        return kind, cleaned
    return kind, value.strip()


def scope_dimension(scope: str) -> tuple[str, str] | None:
    """Return (dimension, value) when a scope is on an attribution value, else None."""
    kind, value = parse_scope(scope)
    return (kind, value) if kind in DIMENSIONS and value is not None else None


def normal_scope(scope: str) -> str:
    """Return a scope as stored: trimmed, a dimension's value cleaned (a secret key as its fingerprint)."""
    kind, value = parse_scope(scope)
    return "global" if value is None else f"{kind}:{value}"


def scope_models(scope: str, info: Mapping[str, ModelInfo]) -> set[str] | None:
    """Return the models a scope covers, or None for every model (global, and every attribution value)."""
    kind, value = parse_scope(scope)
    if kind == "global" or kind in DIMENSIONS:
        return None
    if kind == "model":
        return {value} if value else set()
    attribute = "provider" if kind == "provider" else "category"
    return {m for m, i in info.items() if getattr(i, attribute) == value}


def check_scope_exists(*, session: Session, scope: str) -> None:
    """Raise InvalidInput, listing the valid names, when a scope names a model, provider or category that does
    not exist (a typo would make a budget that can never fire)."""
    kind, value = parse_scope(scope)
    if kind == "global" or kind in DIMENSIONS:  # a team may have a budget before its first request
        return
    models = list(session.exec(select_rows(ModelConfig)))
    known = {
        "model": sorted(m.model_id for m in models),
        "provider": sorted({m.provider for m in models}),
        "category": [c.value for c in ModelCategory],
    }[kind]
    if value not in known:
        plural = {"model": "models", "provider": "providers", "category": "categories"}[kind]
        raise InvalidInput([f"scope: {kind} {value!r} does not exist; {plural}: {', '.join(known)}"])


def validate_budget(data: Mapping[str, Any]) -> BudgetFields:
    """Return a validated budget, or raise InvalidInput naming each bad field."""
    try:
        budget = BudgetFields.model_validate(data)
    except ValidationError as error:
        raise InvalidInput(describe_validation_error(error)) from None
    parse_scope(budget.scope)
    if budget.warn_threshold > budget.alert_threshold:
        raise InvalidInput(
            [f"warn_threshold: {budget.warn_threshold:g} is above alert_threshold {budget.alert_threshold:g}"]
        )
    return budget


def to_public(budget: Budget) -> dict[str, Any]:
    """Return a budget as plain data in dollars."""
    return {
        "name": budget.name,
        "scope": budget.scope,
        "period": budget.period,
        "amount_usd": budget.amount_nanos / NANOS_PER_USD,
        "warn_threshold": budget.warn_threshold,
        "alert_threshold": budget.alert_threshold,
        "hard": budget.hard,
    }


def list_budgets(*, session: Session) -> list[Budget]:
    """Return every budget, by name."""
    return list(session.exec(select_rows(Budget).order_by(Budget.name)))


def get_budget(*, session: Session, name: str) -> Budget:
    """Return one budget, or raise NotFound."""
    budget = session.get(Budget, name)
    if budget is None:
        raise NotFound(f"budget {name!r} does not exist")
    return budget


def add_budget(*, session: Session, data: Mapping[str, Any], actor: str = SYSTEM_ACTOR) -> Budget:
    """Add a validated budget; refuse a duplicate name."""
    authorize(session, actor, Role.EDITOR, "change budgets")
    fields = validate_budget(data)
    if session.get(Budget, fields.name) is not None:
        raise InvalidInput([f"name: a budget named {fields.name!r} already exists"])
    check_scope_exists(session=session, scope=fields.scope)
    now = datetime.now(UTC)
    budget = Budget(
        name=fields.name,
        scope=normal_scope(fields.scope),
        period=str(fields.period),
        amount_nanos=usd_to_nanos(fields.amount_usd),
        warn_threshold=fields.warn_threshold,
        alert_threshold=fields.alert_threshold,
        hard=fields.hard,
        created_at=now,
        updated_at=now,
    )
    session.add(budget)
    record_change(
        session,
        actor=actor,
        entity="budget",
        entity_id=budget.name,
        action="create",
        field="*",
        old=None,
        new=to_public(budget),
    )
    session.flush()
    return budget


def update_budget(*, session: Session, name: str, changes: Mapping[str, Any], actor: str = SYSTEM_ACTOR) -> Budget:
    """Change a budget's fields (validated as a whole, audited per field)."""
    authorize(session, actor, Role.EDITOR, "change budgets")
    budget = get_budget(session=session, name=name)
    old = to_public(budget)
    if "name" in changes and changes["name"] != name:
        raise InvalidInput(["name: cannot be changed; add a new budget and remove this one"])
    fields = validate_budget({**old, **changes})
    if normal_scope(fields.scope) != budget.scope:
        check_scope_exists(session=session, scope=fields.scope)
    new = {
        "scope": normal_scope(fields.scope),
        "period": str(fields.period),
        "amount_nanos": usd_to_nanos(fields.amount_usd),
        "warn_threshold": fields.warn_threshold,
        "alert_threshold": fields.alert_threshold,
        "hard": fields.hard,
    }
    for attr, value in new.items():
        if getattr(budget, attr) != value:
            setattr(budget, attr, value)
    updated = to_public(budget)
    for key in updated:
        if updated[key] != old[key]:
            record_change(
                session,
                actor=actor,
                entity="budget",
                entity_id=name,
                action="update",
                field=key,
                old=old[key],
                new=updated[key],
            )
    budget.updated_at = datetime.now(UTC)
    session.add(budget)
    session.flush()
    return budget


def remove_budget(*, session: Session, name: str, actor: str = SYSTEM_ACTOR) -> None:
    """Remove a budget (its recorded alerts stay)."""
    authorize(session, actor, Role.EDITOR, "change budgets")
    budget = get_budget(session=session, name=name)
    record_change(
        session,
        actor=actor,
        entity="budget",
        entity_id=name,
        action="delete",
        field="*",
        old=to_public(budget),
        new=None,
    )
    session.delete(budget)
    session.flush()


@dataclass(frozen=True)
class BudgetStatus:
    """Where a budget stands at a moment: spend, forecast, state and the alerts of this period."""

    name: str
    scope: str
    period: str
    period_start: datetime
    period_end: datetime
    amount_usd: float
    spent_usd: float
    percent: float
    forecast_usd: float
    state: str
    hard: bool
    warn_threshold: float
    alert_threshold: float
    alerts: list[dict[str, Any]] = field(default_factory=list)
    forecast_method: str = FORECAST_METHOD
    # Requests in scope this period that reported no usage and no cost: their spend is not in spent_usd.
    requests_without_cost: int = 0
    # The forecast's 90% prediction band, and its mean absolute miss over past periods (forecast at mid-period).
    forecast_low_usd: float = 0.0
    forecast_high_usd: float = 0.0
    forecast_error_pct: float | None = None
    forecast_periods_checked: int = 0

    def forecast_note(self) -> str:
        """Return the forecast with its band and its track record, in one sentence."""
        text = (
            f"Forecast ${self.forecast_usd:,.2f} by the period's end "
            f"(90% band ${self.forecast_low_usd:,.2f} to ${self.forecast_high_usd:,.2f})."
        )
        if self.forecast_error_pct is None:
            return text + " No past period to check the forecast against yet."
        return text + (
            f" Made at mid-period, it missed the last {self.forecast_periods_checked} periods' spend by "
            f"{self.forecast_error_pct:.1f}% on average."
        )

    def spend_note(self) -> str | None:
        """Return a warning that the spend leaves out requests of unknown cost; None when none are left out."""
        if not self.requests_without_cost:
            return None
        return (
            f"Spend excludes {self.requests_without_cost:,} requests that reported no token usage "
            "(their cost is unknown), so the real spend is higher."
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        return {
            "name": self.name,
            "scope": self.scope,
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "amount_usd": self.amount_usd,
            "spent_usd": self.spent_usd,
            "percent": self.percent,
            "forecast_usd": self.forecast_usd,
            "forecast_low_usd": self.forecast_low_usd,
            "forecast_high_usd": self.forecast_high_usd,
            "forecast_error_pct": self.forecast_error_pct,
            "state": self.state,
            "hard": self.hard,
            "alerts": [{**a, "crossed_at": a["crossed_at"].isoformat()} for a in self.alerts],
            "requests_without_cost": self.requests_without_cost,
        }


STATUS_TABLE_COLUMNS = [
    "name",
    "scope",
    "period",
    "state",
    "spent_usd",
    "amount_usd",
    "percent",
    "forecast_usd",
    "period_end",
    "hard",
    "requests_without_cost",
]


def status_table(statuses: list[BudgetStatus]) -> pd.DataFrame:
    """Return the statuses as the dashboard's table: one row per budget, the period's end as naive UTC."""
    rows = [
        {name: getattr(s, name) for name in STATUS_TABLE_COLUMNS} | {"period_end": s.period_end.replace(tzinfo=None)}
        for s in statuses
    ]
    return pd.DataFrame(rows, columns=STATUS_TABLE_COLUMNS)


def _in_scope(frame: pd.DataFrame, models: set[str] | None) -> pd.DataFrame:
    return frame if models is None else frame[frame["model_id"].isin(models)]


def _costs(window: Window, low: datetime, high: datetime, today: datetime) -> pd.DataFrame:
    """Return cost per (slot, model): whole days from the daily rollups before `today`, hours after it."""
    days = window.days_between(low, today)
    hours = window.hours_between(max(low, today), high)
    frame = pd.concat([days, hours], ignore_index=True)
    return (
        frame.rename(columns={"start": "slot"})
        .groupby(["slot", "model_id"], as_index=False)[["cost_nanos", "cost_unknown"]]
        .sum()
    )


@dataclass(frozen=True)
class _Crossing:
    """A threshold's first crossing this period: in a whole day before today (its hour found only when it is
    recorded) or in an hour of today."""

    level: str
    threshold: float
    slot: datetime
    spent_nanos: int
    models: set[str] | None
    before_nanos: int  # the running total before the slot's day, to find the hour within it
    level_nanos: float  # the threshold in nano-dollars
    whole_day: bool


@dataclass(frozen=True)
class _Evaluation:
    status: BudgetStatus
    crossings: list[_Crossing]
    cumulative: pd.Series  # running spend (nanos) per day of the period, then per hour of today
    at: datetime


def _crossing_hour(engine: Engine, crossing: _Crossing) -> tuple[datetime, int]:
    """Return the hour within a crossing's day at which the running total reached its level, and the total."""
    day, before, level = crossing.slot, crossing.before_nanos, crossing.level_nanos
    table = rollup_table("hour", per_model=True)
    with engine.connect() as conn:
        rows = read_rollups(conn, table, "hour", table.c.hour >= day, table.c.hour < day + timedelta(days=1))
    hours = _in_scope(rows, crossing.models)
    running = before + hours.groupby("start")["cost_nanos"].sum().sort_index().cumsum()
    reached = running[running >= level]
    return as_utc(reached.index[0].to_pydatetime()), int(reached.iloc[0])


def _evaluate(
    window: Window, budget: Budget, at: datetime, costs: pd.DataFrame, today: datetime, info: Mapping[str, ModelInfo]
) -> _Evaluation:
    start, end = period_bounds(budget.period, at)
    models = scope_models(budget.scope, info)
    dimension = scope_dimension(budget.scope)
    if dimension is None:
        slots = _in_scope(costs, models).groupby("slot")[["cost_nanos", "cost_unknown"]].sum().sort_index()
    else:  # an attribution value's spend is kept per day: today is one slot, so far
        rows = window.attributed
        rows = rows[(rows["dimension"] == dimension[0]) & (rows["value"] == dimension[1])]
        slots = rows.rename(columns={"start": "slot"}).groupby("slot")[["cost_nanos", "cost_unknown"]].sum()
        slots = slots.sort_index()
    per_slot = slots["cost_nanos"]
    in_period = per_slot[(per_slot.index >= start) & (per_slot.index < min(at, end))]
    unknown_cost = slots["cost_unknown"][(slots.index >= start) & (slots.index < min(at, end))]
    cumulative = in_period.cumsum()
    spent = int(cumulative.iloc[-1]) if len(cumulative) else 0
    amount = budget.amount_nanos
    before_today = per_slot[per_slot.index < today]
    history = {d.date(): v / NANOS_PER_USD for d, v in before_today.items()}
    forecast = forecast_period_end(history, spent / NANOS_PER_USD, at, start, end)
    low, high = forecast_band(history, spent / NANOS_PER_USD, at, start, end)
    errors = forecast_errors(history, budget.period, at)
    points = [(as_utc(h.to_pydatetime()), float(v)) for h, v in cumulative.items()]
    crossings = []
    levels = [("warning", budget.warn_threshold), ("alert", budget.alert_threshold)]
    if budget.hard:
        levels.append(("exhausted", 1.0))
    for level, threshold in levels:
        slot = first_crossing(points, threshold * amount)
        if slot is None:
            continue
        total = int(cumulative[cumulative.index >= slot].iloc[0])
        previous = cumulative[cumulative.index < slot]
        before = int(previous.iloc[-1]) if len(previous) else 0
        if dimension is not None:  # no hours to find it in: dated by the end of its day, or now for today
            crossings.append(_Crossing(level, threshold, min(at, slot + timedelta(days=1)), total, None, 0, 0, False))
            continue
        crossings.append(_Crossing(level, threshold, slot, total, models, before, threshold * amount, slot < today))
    status = BudgetStatus(
        name=budget.name,
        scope=budget.scope,
        period=budget.period,
        period_start=start,
        period_end=end,
        amount_usd=amount / NANOS_PER_USD,
        spent_usd=spent / NANOS_PER_USD,
        percent=spent / amount,
        forecast_usd=forecast,
        state=budget_state(spent, amount, budget.warn_threshold, budget.alert_threshold, budget.hard),
        hard=budget.hard,
        warn_threshold=budget.warn_threshold,
        alert_threshold=budget.alert_threshold,
        requests_without_cost=int(unknown_cost.sum()),
        forecast_low_usd=low,
        forecast_high_usd=high,
        forecast_error_pct=100 * sum(abs(e) for e in errors) / len(errors) if errors else None,
        forecast_periods_checked=len(errors),
    )
    return _Evaluation(status, crossings, cumulative, at)


# Enough days for the forecast's history, and for the track record of past whole periods (at most months).
HISTORY_DAYS = PROFILE_DAYS + 1 + 31 * (TRACK_PERIODS + 1)


def reads(at: datetime) -> Reads:
    """Return what evaluating the budgets at `at` reads: the history's days and today's hours (a crossing on an
    earlier day has its hour read only when it is recorded)."""
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return Reads(days_from=(at - timedelta(days=HISTORY_DAYS)).date(), hours_from=today, budgets=True)


def evaluations(window: Window) -> list[_Evaluation]:
    """Return every budget of the window evaluated at its moment: spend, forecast, state and crossings."""
    at = window.at
    if not window.budgets:
        return []
    low = (at - timedelta(days=HISTORY_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    costs = _costs(window, low, at, today)
    return [_evaluate(window, b, at, costs, today, window.registry) for b in window.budgets]


def _window(engine: Engine, at: datetime) -> Window:
    return read_window(engine, at.date(), at.date(), reads(at), at=at)


def _record(engine: Engine, evaluations: list[_Evaluation]) -> None:
    """Record each threshold's first crossing of a period not yet recorded, and tell the alert channels of it
    (and of a forecast to pass the amount, once a period) in the same transaction."""
    wanted = [(e, c) for e in evaluations for c in e.crossings]
    forecasts = [f for f in (_forecast_event(e) for e in evaluations) if f is not None]
    told = events.known_keys(engine, [f.key for f in forecasts])
    new_forecasts = [f for f in forecasts if f.key not in told]
    stored = set()
    if wanted:
        names = [e.status.name for e, _ in wanted]
        stored = {(a["budget"], a["period_start"], a["level"]) for a in _stored_alerts(engine, names)}
    new = [(e, c) for e, c in wanted if (e.status.name, e.status.period_start, c.level) not in stored]
    if not new and not new_forecasts:
        return  # nothing to write, so the data version (and every cached read) stays as it is
    alerts = []
    for e, c in new:
        crossed_at, spent = _crossing_hour(engine, c) if c.whole_day else (c.slot, c.spent_nanos)
        alerts.append((e.status, c.level, c.threshold, crossed_at, spent))
    try:
        with write_session(engine) as session:
            now = datetime.now(UTC)
            for status, level, threshold, crossed_at, spent in alerts:
                session.add(
                    BudgetAlert(
                        budget_name=status.name,
                        period_start=status.period_start,
                        level=level,
                        threshold=threshold,
                        crossed_at=crossed_at,
                        spent_nanos=spent,
                        recorded_at=now,
                    )
                )
                events.record(
                    session,
                    rules.budget_crossing(
                        name=status.name,
                        scope=status.scope,
                        period=status.period,
                        period_start=status.period_start,
                        level=level,
                        threshold=threshold,
                        crossed_at=crossed_at,
                        spent_usd=spent / NANOS_PER_USD,
                        amount_usd=status.amount_usd,
                    ),
                )
            for forecast in new_forecasts:
                events.record(session, forecast)
    except IntegrityError:
        pass  # another writer recorded the same crossing first; the unique key keeps it single


def _forecast_event(evaluation: _Evaluation) -> Event | None:
    """Return the event of a budget forecast to pass its amount this period (None when it is not)."""
    s = evaluation.status
    return rules.budget_forecast(
        name=s.name,
        scope=s.scope,
        period=s.period,
        period_start=s.period_start,
        period_end=s.period_end,
        spent_usd=s.spent_usd,
        amount_usd=s.amount_usd,
        forecast_usd=s.forecast_usd,
        at=evaluation.at,
    )


def _stored_alerts(engine: Engine, names: list[str]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(ALERTS).where(ALERTS.c.budget_name.in_(names)).order_by(ALERTS.c.crossed_at, ALERTS.c.id)
            )
            .mappings()
            .all()
        )
    return [
        {
            "budget": r["budget_name"],
            "period_start": as_utc(r["period_start"]),
            "level": r["level"],
            "threshold": r["threshold"],
            "crossed_at": as_utc(r["crossed_at"]),
            "spent_usd": r["spent_nanos"] / NANOS_PER_USD,
        }
        for r in rows
    ]


def budget_status(
    engine: Engine, at: datetime | None = None, *, record: bool = True, window: Window | None = None
) -> list[BudgetStatus]:
    """Return every budget's status at a moment (default now), recording threshold crossings not yet recorded.

    A page passes the Window it read (with `reads(at)`, at its moment); without one, this reads its own.
    """
    window = window or _window(engine, (at or datetime.now(UTC)).astimezone(UTC))
    found = evaluations(window)
    if record:
        _record(engine, found)
    return with_alerts(found, _stored_alerts(engine, [e.status.name for e in found]))


def with_alerts(found: list[_Evaluation], stored: list[dict[str, Any]]) -> list[BudgetStatus]:
    """Return each evaluated budget's status with the alerts recorded in its current period."""
    result = []
    for e in found:
        mine = [
            {k: a[k] for k in ("level", "threshold", "crossed_at", "spent_usd")}
            for a in stored
            if a["budget"] == e.status.name and a["period_start"] == e.status.period_start
        ]
        result.append(BudgetStatus(**{**e.status.__dict__, "alerts": mine}))
    return result


def spend_path(engine: Engine, name: str, at: datetime | None = None, *, window: Window | None = None) -> pd.DataFrame:
    """Return a budget's cumulative spend (USD) per hour of its current period up to the moment."""
    window = window or _window(engine, (at or datetime.now(UTC)).astimezone(UTC))
    for e in evaluations(window):
        if e.status.name == name:
            return pd.DataFrame(
                {
                    "hour": e.cumulative.index.tz_localize(None) if e.cumulative.index.tz else e.cumulative.index,
                    "spent_usd": e.cumulative.to_numpy() / NANOS_PER_USD,
                }
            )
    raise NotFound(f"budget {name!r} does not exist")


def alerts_table(engine: Engine, limit: int = 500, *, window: Window | None = None) -> pd.DataFrame:
    """Return every recorded alert, newest first, marking those whose budget still exists (as of the window)."""
    if window is not None:
        names = [b.name for b in window.budgets]
    else:
        with read_session(engine) as session:
            names = [b.name for b in list_budgets(session=session)]
    with engine.connect() as conn:
        rows = (
            conn.execute(select(ALERTS).order_by(ALERTS.c.crossed_at.desc(), ALERTS.c.id.desc()).limit(limit))
            .mappings()
            .all()
        )
    frame = pd.DataFrame(
        [
            (
                r["budget_name"],
                r["level"],
                r["threshold"],
                as_utc(r["crossed_at"]),
                r["spent_nanos"] / NANOS_PER_USD,
                as_utc(r["period_start"]),
                r["budget_name"] in names,
            )
            for r in rows
        ],
        columns=["budget", "level", "threshold", "crossed_at", "spent_usd", "period_start", "budget_exists"],
    )
    return frame


def blocked_models(
    engine: Engine, at: datetime | None = None, *, window: Window | None = None, attribution: Attribution | None = None
) -> dict[str, str]:
    """Return the models that exhausted hard budgets exclude from selection, each with the reason."""
    window = window or _window(engine, (at or datetime.now(UTC)).astimezone(UTC))
    return blocked_by(window, attribution)


def blocked_by(window: Window, attribution: Attribution | None = None) -> dict[str, str]:
    """Return the models the window's exhausted hard budgets exclude from selection, each with the reason.

    A budget on an attribution value (team:growth) excludes every model, but only for a request of that value:
    `attribution` says whose request it is (dimension -> values); without it, such budgets exclude nothing.
    """
    statuses = [e.status for e in evaluations(window) if e.status.state == "exhausted"]
    info = window.registry
    blocked: dict[str, str] = {}
    for status in statuses:
        dimension = scope_dimension(status.scope)
        if dimension is not None and dimension[1] not in (attribution or {}).get(dimension[0], ()):
            continue
        models = scope_models(status.scope, info)
        for model_id in sorted(info if models is None else models):
            blocked.setdefault(
                model_id,
                f"hard budget '{status.name}' ({status.scope}, {status.period}) is exhausted:"
                f" ${status.spent_usd:,.2f} of ${status.amount_usd:,.2f}",
            )
    return blocked
