"""What every page shares: the cached engine, cached reads keyed on the data version, the sidebar."""

from __future__ import annotations

import gc
import html
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from manager import api
from manager.errors import DatabaseBusy, DatabaseUnavailable
from manager.settings import database_url

DEFAULT_DAYS = 30
SHELL_KEY = "app_shell_ran"


# Every page: (section, script, title, icon). The first is the default; Users is for account managers only.
PAGES = [
    ("Monitor", "pages/overview.py", "Overview", ":material/dashboard:"),
    ("Monitor", "pages/usage.py", "Usage", ":material/bar_chart:"),
    ("Monitor", "pages/performance.py", "Performance", ":material/speed:"),
    ("Monitor", "pages/budgets.py", "Budgets", ":material/savings:"),
    ("Monitor", "pages/health.py", "Health", ":material/monitor_heart:"),
    ("Decide", "pages/whatif.py", "What-if", ":material/alt_route:"),
    ("Configure", "pages/registry.py", "Registry", ":material/table_edit:"),
    ("Configure", "pages/audit.py", "Audit trail", ":material/history:"),
    ("Configure", "pages/users.py", "Users", ":material/group:"),
]
ACCOUNTS_PAGE = "pages/users.py"


def navigation(*, manage_accounts: bool = False) -> st.navigation:  # type: ignore[valid-type]
    """Register every page with st.navigation (Users only for those who manage accounts); return the one to run."""
    st.session_state[SHELL_KEY] = True
    sections: dict[str, list[st.Page]] = {}
    for position, (section, script, title, icon) in enumerate(PAGES):
        if script == ACCOUNTS_PAGE and not manage_accounts:
            continue
        sections.setdefault(section, []).append(st.Page(script, title=title, icon=icon, default=position == 0))
    return st.navigation(sections)


@contextmanager
def database_trouble_shown() -> Iterator[None]:
    """Show a busy or unreachable database as one short message (details to the server log), never a traceback."""
    try:
        yield
    except (OperationalError, DatabaseUnavailable, DatabaseBusy) as error:
        logging.getLogger("manager.dashboard").warning("database trouble: %s", error, exc_info=True)
        busy = "locked" in str(error).lower() or "busy" in str(error).lower()
        st.error(
            "The database is busy with a long write; try again in a minute."
            if busy
            else "The database cannot be reached right now; try again in a minute. The server log says why.",
            icon=":material/database:",
        )


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
def audit_trail(_engine: Engine, version: str, entity: str | None) -> pd.DataFrame:
    """Return the newest changes, of one kind of entity or all (cached per data version)."""
    trail = api.audit_trail(_engine, entity=entity)
    return trail.drop(columns=["entity"]) if entity else trail


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


def sidebar(*, show_database: bool) -> None:
    """Draw the shared sidebar: the UTC date range and, for those who manage the dashboard, the database in use."""
    if "date_range" not in st.session_state:
        st.session_state["date_range"] = default_range()
    with st.sidebar:
        st.date_input("Date range (UTC)", key="date_range", help="Every chart and table covers these days.")
        if show_database:
            st.caption(f"Database: `{api.describe_database(engine())}`")


def date_range() -> tuple[date, date]:
    """Return the sidebar's inclusive date range (a single picked day counts as both ends)."""
    picked = st.session_state.get("date_range") or default_range()
    if isinstance(picked, date):
        return picked, picked
    if len(picked) == 1:
        return picked[0], picked[0]
    return picked[0], picked[1]


@st.cache_data(show_spinner=False, max_entries=32)
def filter_options(_engine: Engine, version: str, start: date, end: date) -> dict[str, list[str]]:
    """Return the values each traffic filter can take in the window (cached per data version)."""
    return api.filter_options(_engine, start, end)


@st.cache_data(show_spinner=False, max_entries=64)
def usage_series(
    _engine: Engine,
    version: str,
    start: date,
    end: date,
    granularity: str,
    group_by: str,
    models: tuple[str, ...],
    providers: tuple[str, ...],
    languages: tuple[str, ...],
    request_types: tuple[str, ...],
) -> pd.DataFrame:
    """Return the usage series for the window and filters (cached per data version)."""
    filters = api.Filters(models, providers, languages, request_types)
    return api.usage_series(_engine, start, end, granularity=granularity, group_by=group_by, filters=filters)


@st.cache_data(show_spinner=False, max_entries=32)
def performance_report(_engine: Engine, version: str, start: date, end: date, rank_by: str) -> pd.DataFrame:
    """Return the ranked performance report (cached per data version)."""
    return api.performance_report(_engine, start, end, rank_by=rank_by)


@st.cache_data(show_spinner=False, max_entries=32)
def latency_over_time(_engine: Engine, version: str, start: date, end: date, granularity: str) -> pd.DataFrame:
    """Return latency percentiles per period and model (cached per data version)."""
    return api.latency_over_time(_engine, start, end, granularity=granularity)


@st.cache_data(show_spinner=False, max_entries=32)
def latency_distribution(_engine: Engine, version: str, start: date, end: date, model_id: str) -> pd.DataFrame:
    """Return one model's latency histogram (cached per data version)."""
    return api.latency_distribution(_engine, start, end, model_id)


@st.cache_data(show_spinner=False, max_entries=32)
def errors_by_type(_engine: Engine, version: str, start: date, end: date, model_id: str) -> pd.DataFrame:
    """Return one model's failures per error type (cached per data version)."""
    return api.errors_by_type(_engine, start, end, model_id)


@st.cache_data(show_spinner=False, max_entries=16)
def system_overview(_engine: Engine, version: str, start: date, end: date) -> api.SystemOverview:
    """Return totals, breakdowns and top performers (cached per data version)."""
    return api.system_overview(_engine, start, end, with_recommendations=False)


@st.cache_data(show_spinner=False, max_entries=16)
def recommendations(_engine: Engine, version: str, start: date, end: date) -> pd.DataFrame:
    """Return the recommendations as a table (cached per data version)."""
    rows = [r.as_dict() for r in api.recommendations(_engine, start, end)]
    return pd.DataFrame(rows, columns=["kind", "model_id", "action", "evidence", "usd_at_stake"])


# Characters Streamlit's Markdown gives a meaning to (links, emphasis, code, icons, colours, maths, HTML-like).
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>$|~:])")
# Characters that mean something only where a line starts: headings, lists, quotes, numbered lists.
_LINE_START = re.compile(r"^(\s*)([#+\->=]|\d+[.)])")
_AUTOLINK = re.compile(r"(?i)(\\:/|www\.|@)")


def plain(text: object) -> str:
    """Return user-controlled text (model ids, budget and account names, error types) to show as itself inside
    Markdown: st.warning, st.caption, st.toast, expander and button labels all render Markdown."""
    escaped = _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")
    escaped = _LINE_START.sub(lambda found: found.group(1) + found.group(2)[:-1] + "\\" + found.group(2)[-1], escaped)
    # GitHub-flavoured Markdown links bare addresses after escapes are undone: a zero-width space breaks them.
    return _AUTOLINK.sub(lambda found: found.group(0)[:-1] + "\u200b" + found.group(0)[-1], escaped)


def plain_html(text: object) -> str:
    """Return user-controlled text for a Plotly title, which renders a subset of HTML (links among it)."""
    return html.escape(str(text))


def table(frame: pd.DataFrame, *, key: str, file_name: str, column_config: dict | None = None) -> None:
    """Draw a table and a CSV download of exactly what it shows."""
    st.dataframe(frame, key=key, hide_index=True, column_config=column_config, width="stretch")
    st.download_button(
        "Download CSV",
        csv_bytes(frame),
        file_name=file_name,
        mime="text/csv",
        key=f"download_{key}",
        icon=":material/download:",
    )


COLUMN_LABELS: dict[str, object] = {
    "model_id": "Model",
    "provider": "Provider",
    "category": "Category",
    "requests": st.column_config.NumberColumn("Requests", format="localized"),
    "successes": st.column_config.NumberColumn("Successes", format="localized"),
    "failures": st.column_config.NumberColumn("Failures", format="localized"),
    "input_tokens": st.column_config.NumberColumn("Input tokens", format="localized"),
    "output_tokens": st.column_config.NumberColumn("Output tokens", format="localized"),
    "cache_read_tokens": st.column_config.NumberColumn("Cache-read tokens", format="localized"),
    "cache_write_tokens": st.column_config.NumberColumn("Cache-write tokens", format="localized"),
    "reasoning_tokens": st.column_config.NumberColumn("Reasoning tokens", format="localized"),
    "requests_without_usage": st.column_config.NumberColumn(
        "No usage", format="localized", help="Requests that reported no token usage: tokens and cost not counted"
    ),
    "success_rate": st.column_config.NumberColumn("Success rate", format="percent"),
    "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="dollar"),
    "cost_per_request_usd": st.column_config.NumberColumn("Cost / request (USD)", format="$%.6f"),
    "cost_per_1k_tokens_usd": st.column_config.NumberColumn("Cost / 1k tokens (USD)", format="$%.6f"),
    "avg_response_time_ms": st.column_config.NumberColumn("Avg latency (ms)", format="%.0f"),
    "p50_response_time_ms": st.column_config.NumberColumn("p50 (ms)", format="%.0f"),
    "p90_response_time_ms": st.column_config.NumberColumn("p90 (ms)", format="%.0f"),
    "p95_response_time_ms": st.column_config.NumberColumn("p95 (ms)", format="%.0f"),
    "p99_response_time_ms": st.column_config.NumberColumn("p99 (ms)", format="%.0f"),
    "avg_quality_rating": st.column_config.NumberColumn("Avg rating (0-5)", format="%.2f"),
    "ratings": st.column_config.NumberColumn("Ratings", format="localized"),
    "score": st.column_config.ProgressColumn("Score", min_value=0.0, max_value=1.0, format="%.3f"),
    "rank": st.column_config.NumberColumn("Rank"),
    "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "actor": "Who",
    "action": "Action",
    "field": "Field",
    "old_value": "Old value",
    "new_value": "New value",
    "usd_at_stake": st.column_config.NumberColumn("At stake (USD)", format="dollar"),
}


@st.cache_data(show_spinner=False, max_entries=8)
def budget_status(_engine: Engine, version: str, minute: str) -> list[api.BudgetStatus]:
    """Return every budget's status now (cached per data version and minute)."""
    return api.budget_status(_engine)


@st.cache_data(show_spinner=False, max_entries=8)
def budget_alerts(_engine: Engine, version: str, minute: str) -> pd.DataFrame:
    """Return the recorded budget alerts (cached per data version and minute)."""
    return api.budget_alerts(_engine)


@st.cache_data(show_spinner=False, max_entries=16)
def budget_spend_path(_engine: Engine, version: str, minute: str, name: str) -> pd.DataFrame:
    """Return a budget's cumulative spend this period (cached per data version and minute)."""
    return api.budget_spend_path(_engine, name)


@st.cache_data(show_spinner=False, max_entries=16)
def model_health(_engine: Engine, version: str, minute: str, window_hours: int) -> list[api.ModelHealth]:
    """Return each model's health over the trailing window (cached per data version and minute)."""
    return api.model_health(_engine, thresholds=api.HealthThresholds(window=timedelta(hours=window_hours)))


@st.cache_data(show_spinner=False, max_entries=8)
def health_timeline(_engine: Engine, version: str, minute: str) -> pd.DataFrame:
    """Return each model's status per hour over the last 48 hours (cached per data version and minute)."""
    return api.health_timeline(_engine)


def this_minute() -> str:
    """Return the current UTC minute: status that depends on the clock is recomputed once a minute."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")


STATE_ICONS = {
    "ok": ":material/check_circle:",
    "warning": ":material/warning:",
    "alert": ":material/error:",
    "exhausted": ":material/block:",
    "healthy": ":material/check_circle:",
    "idle": ":material/bedtime:",
    "degraded": ":material/warning:",
    "unhealthy": ":material/error:",
    "maintenance": ":material/build:",
    "disabled": ":material/block:",
}


def policy_key(policy: api.Policy) -> tuple:
    """Return a policy as a hashable cache key."""
    return (
        policy.category,
        policy.language,
        policy.max_cost_per_1k,
        policy.max_p95_ms,
        policy.min_quality,
        policy.include_experimental,
        tuple(sorted(policy.weights.items())),
    )


def _policy_of(key: tuple) -> api.Policy:
    category, language, max_cost, max_p95, min_quality, experimental, weights = key
    return api.Policy(
        category=category,
        language=language,
        max_cost_per_1k=max_cost,
        max_p95_ms=max_p95,
        min_quality=min_quality,
        include_experimental=experimental,
        weights=dict(weights),
    )


@st.cache_data(show_spinner=False, max_entries=32)
def selection(_engine: Engine, version: str, minute: str, key: tuple) -> api.Selection:
    """Return the live ranking under a policy (cached per data version, minute and policy)."""
    return api.select_model(_engine, _policy_of(key))


@st.cache_data(show_spinner="Replaying traffic...", max_entries=32)
def replay(_engine: Engine, version: str, start: date, end: date, key: tuple) -> api.ReplayResult:
    """Return the what-if replay of the window under a policy (cached per data version, window and policy)."""
    return api.replay(_engine, start, end, _policy_of(key))
