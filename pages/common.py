"""What every page shares: the cached engine, cached reads keyed on the data version, the sidebar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from manager import api
from manager.settings import database_url

DEFAULT_DAYS = 30


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return api.open_engine(url)


def engine() -> Engine:
    """Return the process's one engine for DATABASE_URL, with the schema upgraded and default models loaded."""
    return _engine(database_url())


def data_version() -> str:
    """Return the database's identity and data version; every write bumps it, which retires cached reads."""
    current = engine()
    return f"{current.url.render_as_string(hide_password=True)}@{api.data_version(current)}"


@st.cache_data(show_spinner=False, max_entries=8)
def _data_span(_engine: Engine, version: str) -> tuple[date, date] | None:
    return api.data_span(_engine)


@st.cache_data(show_spinner=False, max_entries=32)
def kpis(_engine: Engine, version: str, start: date, end: date) -> api.Kpis:
    """Return the window's KPIs (cached per data version)."""
    return api.kpis(_engine, start, end)


@st.cache_data(show_spinner=False, max_entries=32)
def cost_by_day(_engine: Engine, version: str, start: date, end: date) -> pd.DataFrame:
    """Return cost per day and model (cached per data version)."""
    return api.cost_by_day(_engine, start, end)


@st.cache_data(show_spinner=False, max_entries=32)
def usage_by_model(_engine: Engine, version: str, start: date, end: date) -> pd.DataFrame:
    """Return the per-model summary of the window (cached per data version)."""
    return api.usage_by_model(_engine, start, end)


@st.cache_data(show_spinner=False, max_entries=8)
def models(_engine: Engine, version: str) -> pd.DataFrame:
    """Return the registry as a table (cached per data version)."""
    return pd.DataFrame(api.list_models(_engine))


@st.cache_data(show_spinner=False, max_entries=8)
def audit_trail(_engine: Engine, version: str) -> pd.DataFrame:
    """Return the newest registry changes (cached per data version)."""
    return api.audit_trail(_engine)


@st.cache_data(show_spinner=False, max_entries=16)
def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a table as safe CSV bytes for a download button."""
    return api.frame_csv(frame).encode("utf-8")


def has_traffic() -> bool:
    """Return True when any request is stored."""
    return _data_span(engine(), data_version()) is not None


def default_range() -> tuple[date, date]:
    """Return the last DEFAULT_DAYS days that end on the newest day with traffic (today when none)."""
    span = _data_span(engine(), data_version())
    end = span[1] if span else datetime.now(UTC).date()
    return end - timedelta(days=DEFAULT_DAYS - 1), end


def sidebar() -> None:
    """Draw the shared sidebar: the UTC date range and the database in use."""
    if "date_range" not in st.session_state:
        st.session_state["date_range"] = default_range()
    with st.sidebar:
        st.date_input("Date range (UTC)", key="date_range", help="Every chart and table covers these days.")
        url = engine().url
        shown = url.render_as_string(hide_password=True)
        st.caption(f"Database: `{shown}`")


def date_range() -> tuple[date, date]:
    """Return the sidebar's inclusive date range (a single picked day counts as both ends)."""
    picked = st.session_state.get("date_range") or default_range()
    if isinstance(picked, date):
        return picked, picked
    if len(picked) == 1:
        return picked[0], picked[0]
    return picked[0], picked[1]
