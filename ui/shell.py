"""The app shell: the pages and their navigation, the shared sidebar, and database trouble shown as one line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.exc import OperationalError

from manager.db import describe_database
from manager.errors import DatabaseBusy, DatabaseUnavailable
from ui import data

SHELL_KEY = "app_shell_ran"


# Every page: (section, script, title, icon). The first is the default; Users is for account managers only.
PAGES = [
    ("Monitor", "pages/overview.py", "Overview", ":material/dashboard:"),
    ("Monitor", "pages/usage.py", "Usage", ":material/bar_chart:"),
    ("Monitor", "pages/spend.py", "Spend by team", ":material/groups:"),
    ("Monitor", "pages/performance.py", "Performance", ":material/speed:"),
    ("Monitor", "pages/budgets.py", "Budgets", ":material/savings:"),
    ("Monitor", "pages/health.py", "Health", ":material/monitor_heart:"),
    ("Monitor", "pages/requests.py", "Requests", ":material/list_alt:"),
    ("Decide", "pages/whatif.py", "What-if", ":material/alt_route:"),
    ("Configure", "pages/registry.py", "Registry", ":material/table_edit:"),
    ("Configure", "pages/alerts.py", "Alerts", ":material/notifications:"),
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


def sidebar(*, show_database: bool) -> None:
    """Draw the shared sidebar: the UTC date range and, for those who manage the dashboard, the database in use."""
    if "date_range" not in st.session_state:
        st.session_state["date_range"] = data.default_range()
    with st.sidebar:
        st.date_input("Date range (UTC)", key="date_range", help="Every chart and table covers these days.")
        if show_database:
            st.caption(f"Database: `{describe_database(data.engine())}`")
