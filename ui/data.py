"""Cached reads for the pages: the engine, the data version, and one Window per render keyed on the version.

Every figure on a page is a pure function of the Window it reads here (see manager.window); this is the one
cache, keyed on the data version (every write bumps it) and, for what depends on the clock, the minute.
"""

from __future__ import annotations

import gc
from dataclasses import astuple
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from manager import api, budgets, spend, whatif
from manager import db as database
from manager.integrations import litellm_config
from manager.selection import Policy, Selection
from manager.settings import database_url
from manager.whatif import ReplayResult
from manager.window import Reads, Window, data_span, default_days, read_window

DAYS_ONLY = Reads()  # the per-model daily rows of the sidebar's days, and the registry


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    engine = api.open_engine(url)
    # Once per process: move everything alive now (the imported Streamlit, pandas, Plotly and SQLAlchemy,
    # about a million objects that never become garbage) out of the collector's sight, so the full
    # collections that reading rollup rows triggers do not walk them again on every page run.
    gc.freeze()
    return engine


def engine() -> Engine:
    """Return the process's one engine for DATABASE_URL, with the schema upgraded and default models loaded."""
    return _engine(database_url())


def data_version() -> str:
    """Return the database's identity and data version; every write bumps it, which retires cached reads."""
    current = engine()
    return f"{current.url.render_as_string(hide_password=True)}@{database.data_version(current)}"


def this_minute() -> datetime:
    """Return the current UTC minute: what depends on the clock is recomputed once a minute."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


@st.cache_data(show_spinner=False, max_entries=8)
def _data_span(_engine: Engine, version: str) -> tuple[date, date] | None:
    return data_span(_engine)


@st.cache_data(show_spinner=False, max_entries=16)
def _window(_engine: Engine, version: str, start: date, end: date, at: datetime, reads: tuple[Any, ...]) -> Window:
    return read_window(_engine, start, end, Reads(*reads), at=at)


def window(reads: Reads = DAYS_ONLY, at: datetime | None = None) -> Window:
    """Return the Window of the sidebar's days at a minute (default this one): the registry, budgets and each
    rollup grain the reads need."""
    start, end = date_range()
    return _window(engine(), data_version(), start, end, at or this_minute(), astuple(reads))


@st.cache_data(show_spinner=False, max_entries=8)
def _budget_status(_engine: Engine, _window: Window, version: str, at: datetime) -> list[budgets.BudgetStatus]:
    return budgets.budget_status(_engine, at, window=_window)


def budget_status(current: Window) -> list[budgets.BudgetStatus]:
    """Return every budget's status at the window's moment, recording crossings not yet recorded (cached per data
    version and minute: what a budget reads is the same in every window read with `budgets.reads` at a moment)."""
    return _budget_status(engine(), current, data_version(), current.at)


@st.cache_data(show_spinner=False, max_entries=8)
def _budget_alerts(_engine: Engine, _window: Window, version: str) -> pd.DataFrame:
    return budgets.alerts_table(_engine, window=_window)


def budget_alerts(current: Window) -> pd.DataFrame:
    """Return the recorded budget alerts, newest first (cached per data version)."""
    return _budget_alerts(engine(), current, data_version())


@st.cache_data(show_spinner=False, max_entries=8)
def models(_engine: Engine, version: str) -> pd.DataFrame:
    """Return the registry as a table (cached per data version)."""
    return pd.DataFrame(api.list_models(_engine))


@st.cache_data(show_spinner=False, max_entries=8)
def audit_trail(_engine: Engine, version: str, entity: str | None) -> pd.DataFrame:
    """Return the newest changes, of one kind of entity or all (cached per data version)."""
    trail = api.audit_trail(_engine, entity=entity)
    return trail.drop(columns=["entity"]) if entity else trail


def has_traffic() -> bool:
    """Return True when any request is stored."""
    return _data_span(engine(), data_version()) is not None


def default_range() -> tuple[date, date]:
    """Return the sidebar's first window: the last 30 days that end on the newest day with traffic."""
    return default_days(_data_span(engine(), data_version()), datetime.now(UTC).date())


def date_range() -> tuple[date, date]:
    """Return the sidebar's inclusive date range (a single picked day counts as both ends)."""
    picked = st.session_state.get("date_range") or default_range()
    if isinstance(picked, date):
        return picked, picked
    if len(picked) == 1:
        return picked[0], picked[0]
    return picked[0], picked[1]


@st.cache_data(show_spinner="Replaying traffic...", max_entries=32, hash_funcs={Policy: repr})
def _replay(_window: Window, version: str, start: date, end: date, at: datetime, policy: Policy) -> ReplayResult:
    return whatif.replay(_window, policy)


def replay(current: Window, policy: Policy) -> ReplayResult:
    """Return the what-if replay of the window under a policy (cached per data version, days, minute and policy)."""
    return _replay(current, data_version(), current.start, current.end, current.at, policy)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs={Policy: repr})
def _litellm_yaml(
    _window: Window,
    _chosen: Selection,
    _result: ReplayResult,
    version: str,
    start: date,
    end: date,
    at: datetime,
    policy: Policy,
) -> str:
    return litellm_config.config_text(_chosen, _result, _window.registry, at=at)


def litellm_yaml(current: Window, chosen: Selection, result: ReplayResult) -> str:
    """Return the policy's live ranking and replayed routes as a LiteLLM config, from the window's registry
    (cached as the replay is: per data version, days, minute and policy)."""
    return _litellm_yaml(current, chosen, result, data_version(), current.start, current.end, current.at, result.policy)


@st.cache_data(show_spinner=False, max_entries=32)
def _breakdown(
    _engine: Engine, _window: Window, version: str, dimension: str, start: date, end: date, top: int
) -> spend.Breakdown:
    return spend.breakdown(_engine, dimension, start, end, top=top, models=_window.daily())


def breakdown(current: Window, dimension: str, top: int = spend.TOP) -> spend.Breakdown:
    """Return the window's days' spend by a dimension: top values, other, none (cached per data version; every
    request, for "none", comes from the window's per-model rows)."""
    return _breakdown(engine(), current, data_version(), dimension, current.start, current.end, top)


@st.cache_data(show_spinner=False, max_entries=32)
def _value_days(_engine: Engine, version: str, dimension: str, value: str, start: date, end: date) -> pd.DataFrame:
    return spend.value_days(_engine, dimension, value, start, end)


def value_days(dimension: str, value: str) -> pd.DataFrame:
    """Return one attribution value's spend per day and model over the sidebar's days (cached per data version)."""
    start, end = date_range()
    return _value_days(engine(), data_version(), dimension, value, start, end)
