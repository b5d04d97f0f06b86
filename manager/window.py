"""One read of the rollups, the registry and the budgets: the value every figure on a page is a pure function of.

A page reads one `Window` per render (cached on the data version) and hands it to usage, performance,
recommendations, overview, health, budgets and selection, none of which touches the database. The window
holds per-model daily rows over every day any of them needs, per-model hourly rows over every hour they
need, and per-segment (request type, language) rows of the chosen days only when asked: each grain is read
once, whichever features share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import select as select_rows

from manager.db import read_session
from manager.ledger.attribution import DIMENSIONS
from manager.ledger.grains import HOURLY, rollup_table
from manager.ledger.rollup_read import read_rollups
from manager.ledger.spend_rollups import BY_MODEL
from manager.models import Budget
from manager.registry import ModelInfo, registry_info
from manager.timeutil import as_utc

UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class Filters:
    """Which traffic to count; an empty tuple means all."""

    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    request_types: tuple[str, ...] = ()

    @property
    def by_segment(self) -> bool:
        """Return True when the filters need rows per request type and language."""
        return bool(self.languages or self.request_types)


ALL_TRAFFIC = Filters()


@dataclass(frozen=True)
class Reads:
    """What a page needs beyond the per-model daily rows of its days: earlier days, hours, segments, budgets."""

    days_from: date | None = None  # per-model daily rows from this day (besides the chosen days)
    hours_from: datetime | None = None  # per-model hourly rows from this hour up to `at`
    chosen_hours: bool = False  # per-model hourly rows of the chosen days
    segments: str | None = None  # 'day' or 'hour': per-segment rows of the chosen days
    budgets: bool = False

    def __or__(self, other: Reads) -> Reads:
        """Return what both need."""
        return Reads(
            _earliest(self.days_from, other.days_from),
            _earliest(self.hours_from, other.hours_from),
            self.chosen_hours or other.chosen_hours,
            "hour" if "hour" in (self.segments, other.segments) else self.segments or other.segments,
            self.budgets or other.budgets,
        )


def _earliest(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class Window:
    """The rollup rows, registry and budgets read for the chosen UTC days (inclusive) at a moment."""

    start: date
    end: date
    at: datetime
    registry: Mapping[str, ModelInfo]
    days: pd.DataFrame  # per-model daily rows (column `start` the UTC day), with provider and category
    hours: pd.DataFrame  # per-model hourly rows (column `start` the UTC hour), with provider and category
    segments: pd.DataFrame | None = None  # per-(model, request type, language) rows of the chosen days
    segment_grain: str | None = None
    budgets: tuple[Budget, ...] = field(default_factory=tuple)
    # Daily spend of each attribution value a budget is on (team:growth): its days, like `days`.
    attributed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["start", "dimension", "value"]))

    def daily(self, filters: Filters = Filters(), *, by_segment: bool = False) -> pd.DataFrame:
        """Return the chosen days' daily rows, per model (or per segment when asked or filtered), filtered."""
        if by_segment or filters.by_segment:
            return _filtered(self._segments("day"), filters)
        return _filtered(_between(self.days, *day_window(self.start, self.end)), filters)

    def hourly(self, filters: Filters = Filters(), *, by_segment: bool = False) -> pd.DataFrame:
        """Return the chosen days' hourly rows, per model (or per segment when asked or filtered), filtered."""
        if by_segment or filters.by_segment:
            return _filtered(self._segments("hour"), filters)
        return _filtered(_between(self.hours, *day_window(self.start, self.end)), filters)

    def hours_covered(self) -> float:
        """Return the hours the chosen days cover, up to the window's moment when they reach it."""
        low, high = day_window(self.start, self.end)
        return max(0.0, (min(high, max(self.at, low)) - low) / timedelta(hours=1))

    def days_between(self, low: datetime, high: datetime) -> pd.DataFrame:
        """Return the per-model daily rows whose day starts in [low, high)."""
        return _between(self.days, low, high)

    def hours_between(self, low: datetime, high: datetime) -> pd.DataFrame:
        """Return the per-model hourly rows whose hour starts in [low, high)."""
        return _between(self.hours, low, high)

    def _segments(self, grain: str) -> pd.DataFrame:
        if self.segments is None or self.segment_grain != grain:
            raise ValueError(f"this window holds no {grain}ly rows per request type and language")
        return self.segments


def _between(frame: pd.DataFrame, low: datetime, high: datetime) -> pd.DataFrame:
    return frame[(frame["start"] >= low) & (frame["start"] < high)]


def _filtered(frame: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    for column, wanted in (
        ("model_id", filters.models),
        ("provider", filters.providers),
        ("language", filters.languages),
        ("request_type", filters.request_types),
    ):
        if wanted:
            frame = frame[frame[column].isin(wanted)]
    return frame


def day_window(start: date, end: date) -> tuple[datetime, datetime]:
    """Return the UTC instants bounding the inclusive dates start..end."""
    if end < start:
        raise ValueError(f"the end date {end} is before the start date {start}")
    return (datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC))


DEFAULT_DAYS = 30


def default_days(span: tuple[date, date] | None, today: date) -> tuple[date, date]:
    """Return the window a report shows unless told otherwise: the last DEFAULT_DAYS days ending on the newest
    day with traffic (on `today` when there is none). The dashboard's sidebar and `report` both use it."""
    end = span[1] if span else today
    return end - timedelta(days=DEFAULT_DAYS - 1), end


def data_span(engine: Engine) -> tuple[date, date] | None:
    """Return the first and last UTC dates that have traffic, or None when there is none."""
    with engine.connect() as conn:
        # Two queries: each of MIN and MAX alone is one seek on the primary key, together they scan.
        first = conn.execute(select(func.min(HOURLY.c.hour))).scalar()
        last = conn.execute(select(func.max(HOURLY.c.hour))).scalar()
    if first is None or last is None:
        return None
    return as_utc(_as_datetime(first)).date(), as_utc(_as_datetime(last)).date()


def _as_datetime(value: datetime | str) -> datetime:
    # SQLite's MIN/MAX hand back the stored text rather than a datetime.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def read_window(
    engine: Engine, start: date, end: date, reads: Reads = Reads(), *, at: datetime | None = None
) -> Window:
    """Read the registry, budgets and each rollup grain the reads need, once, into a Window."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    low, high = day_window(start, end)
    with read_session(engine) as session:
        info = registry_info(session=session)
        budgets: tuple[Budget, ...] = ()
        if reads.budgets:
            budgets = tuple(_detached(b) for b in session.exec(select_rows(Budget).order_by(Budget.name)))
    if reads.days_from is not None:
        low = min(low, day_window(reads.days_from, reads.days_from)[0])
        high = max(high, day_window(at.date(), at.date())[1])
    hours_low = day_window(start, end)[0] if reads.chosen_hours else None
    hours_high = day_window(start, end)[1] if reads.chosen_hours else at
    if reads.hours_from is not None:
        hours_low = _earliest(hours_low, reads.hours_from)
        hours_high = max(hours_high, at)
    with engine.connect() as conn:
        days = _rows(conn, "day", True, low, high, info)
        hours = _rows(conn, "hour", True, hours_low, hours_high, info) if hours_low is not None else _empty(days)
        segments = None
        if reads.segments is not None:
            segments = _rows(conn, reads.segments, False, *day_window(start, end), info)
        attributed = _attributed(conn, budgets, low, high)
    return Window(start, end, at, info, days, hours, segments, reads.segments, budgets, attributed)


def _attributed(conn: Any, budgets: tuple[Budget, ...], low: datetime, high: datetime) -> pd.DataFrame:
    """Return the daily spend rows of each attribution value a budget's scope names, over [low, high)."""
    pairs = sorted(
        {(kind, value) for kind, _, value in (b.scope.partition(":") for b in budgets) if kind in DIMENSIONS}
    )
    table = BY_MODEL
    if not pairs:
        return pd.DataFrame(columns=["start", "dimension", "value", "cost_nanos", "cost_unknown"])
    named = or_(*(and_(table.c.dimension == kind, table.c.value == value) for kind, value in pairs))
    return read_rollups(conn, table, "day", named, table.c.day >= low, table.c.day < high)


def _detached(budget: Budget) -> Budget:
    return Budget(**budget.model_dump())


def _rows(conn: Any, grain: str, per_model: bool, low: datetime, high: datetime, info: Mapping[str, ModelInfo]) -> Any:
    table = rollup_table(grain, per_model)
    frame = read_rollups(conn, table, grain, table.c[grain] >= low, table.c[grain] < high)
    return with_registry(frame, info)


def with_registry(frame: pd.DataFrame, info: Mapping[str, ModelInfo]) -> pd.DataFrame:
    """Return rollup rows with each model's provider and category ('unregistered' when it is not registered)."""
    frame["provider"] = frame["model_id"].map(lambda m: info[m].provider if m in info else UNREGISTERED)
    frame["category"] = frame["model_id"].map(lambda m: info[m].category if m in info else UNREGISTERED)
    return frame


def _empty(like: pd.DataFrame) -> pd.DataFrame:
    return like.iloc[0:0].copy()
