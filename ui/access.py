"""Who is using the dashboard: the sign-in wall, session expiry, the local-mode banner and what a role may touch."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from manager import api
from manager.accounts import LOCAL_ACTOR, role_allows
from manager.errors import SignInRefused
from manager.models import Role
from manager.settings import session_timeout
from ui import data, shell, view

ACCOUNT_KEY = "signed_in_as"
LAST_SEEN_KEY = "last_activity_at"
NOTICE_KEY = "sign_in_notice"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@st.cache_data(show_spinner=False, max_entries=8)
def _account_count(_engine: Engine, version: str) -> int:
    return api.account_count(_engine)


@st.cache_data(show_spinner=False, max_entries=64)
def _account(_engine: Engine, version: str, name: str) -> dict[str, Any] | None:
    return next((a for a in api.list_accounts(_engine) if a["name"] == name), None)


def _client_address() -> str:
    """Return the address the browser connects from ('' when unknown): failed sign-ins are counted per address."""
    address = st.context.ip_address
    return address if isinstance(address, str) else ""


def local_mode() -> bool:
    """Return True when no account exists: one local user, no sign-in."""
    return _account_count(data.engine(), data.data_version()) == 0


def account() -> dict[str, Any] | None:
    """Return the signed-in account as stored now (its role may have changed), or None."""
    name = st.session_state.get(ACCOUNT_KEY)
    if name is None:
        return None
    return _account(data.engine(), data.data_version(), name)


def actor() -> str:
    """Return the name the manager checks and the audit trail records for this session's changes."""
    current = account()
    return current["name"] if current else LOCAL_ACTOR


def can_edit() -> bool:
    """Return True when this session may change the registry and budgets."""
    current = account()
    return local_mode() or (current is not None and role_allows(current["role"], Role.EDITOR))


def can_manage_accounts() -> bool:
    """Return True when this session may manage accounts (an admin, or the local user with no accounts yet)."""
    current = account()
    return local_mode() or (current is not None and role_allows(current["role"], Role.ADMIN))


def read_only_notice() -> None:
    """Tell a viewer why the editing widgets on this page are disabled."""
    if not can_edit():
        st.info(
            "You are signed in as a viewer: you can see everything here but not change it. "
            "An admin can give you the editor role.",
            icon=":material/visibility:",
        )


def sign_out(notice: str | None = None) -> None:
    """End this session's sign-in, with an optional notice for the sign-in form."""
    st.session_state.pop(ACCOUNT_KEY, None)
    st.session_state.pop(LAST_SEEN_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice


def _check_session() -> None:
    if ACCOUNT_KEY not in st.session_state:
        return
    now = datetime.now(UTC)
    idle = now - st.session_state.get(LAST_SEEN_KEY, now)
    timeout = session_timeout()
    if idle > timeout:
        sign_out(
            f"Your session expired after {int(timeout.total_seconds() // 60)} minutes without activity. Sign in again."
        )
    elif account() is None:
        sign_out("Your account was removed. Ask an admin.")
    else:
        st.session_state[LAST_SEEN_KEY] = now


def sign_in_page() -> None:
    """Draw the sign-in form, and nothing else."""
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("AI Model Manager")
        st.caption("Sign in to see the dashboard.")
        if notice := st.session_state.pop(NOTICE_KEY, None):
            st.warning(notice)
        with st.form("sign_in", border=True):
            name = st.text_input("Name", key="sign_in_name", autocomplete="username")
            password = st.text_input(
                "Password", type="password", key="sign_in_password", autocomplete="current-password"
            )
            submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
        if not submitted:
            return
        try:
            signed_in = api.sign_in(data.engine(), name, password, client=_client_address())
        except SignInRefused as error:
            st.error(f"Not signed in: {view.plain(error)}.")
            return
        st.session_state[ACCOUNT_KEY] = signed_in["name"]
        st.session_state[LAST_SEEN_KEY] = datetime.now(UTC)
        st.rerun()


def _refuse_exposed_local_mode() -> None:
    address = st.get_option("server.address") or "0.0.0.0"
    if address in LOOPBACK:
        return
    st.error(
        f"No accounts exist, and this dashboard listens on {address}, beyond this machine. "
        "Anyone who reaches it could change prices and budgets, so it shows nothing. "
        "Add an admin account (`python -m manager users add NAME --role admin --password-stdin`), "
        "or bind to 127.0.0.1 (`--server.address 127.0.0.1`).",
        icon=":material/lock:",
    )
    st.stop()


def _admitted() -> bool:
    _check_session()
    if local_mode():
        _refuse_exposed_local_mode()
        return True
    return account() is not None


def gate() -> None:
    """Let app.py's run continue only for a signed-in account, or in local mode on a loopback address.

    Otherwise draw the sign-in form alone and stop the run, so no page and no data is drawn.
    """
    if _admitted():
        return
    st.session_state[shell.SHELL_KEY] = True
    # Every page's address leads to the form, so a deep link opens there after signing in.
    pages = [st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True)]
    pages += [st.Page(sign_in_page, title=title, url_path=Path(script).stem) for _, script, title, _ in shell.PAGES[1:]]
    st.navigation(pages, position="hidden").run()
    st.stop()


def page_guard() -> None:
    """Run first on every page: send a page opened outside the app shell through it, and admit only a session
    that may see the dashboard.

    Until some session in the process has called st.navigation, Streamlit treats a folder named pages/ as its
    legacy multipage app and serves a deep link such as /budgets by running that file alone: no page config,
    a sidebar listing every file. Registering the pages turns that mode off for the process, and the rerun
    goes through app.py. A page run alone for any other reason still checks the session itself.
    """
    if not st.session_state.get(shell.SHELL_KEY):
        shell.navigation()
        st.rerun()
    if not _admitted():
        sign_in_page()
        st.stop()
    local_mode_banner()


def sidebar() -> None:
    """Show who is signed in with a sign-out button, or the local-mode banner."""
    current = account()
    with st.sidebar:
        if current is None:
            return
        st.caption(f":material/person: Signed in as **{view.plain(current['name'])}** ({current['role']})")
        st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=sign_out, args=("Signed out.",))


def local_mode_banner() -> None:
    """Say plainly, on every page, that nobody is signed in because no accounts exist."""
    if local_mode():
        st.warning(
            "Local single-user mode: no accounts, no sign-in, served on 127.0.0.1 only. "
            "Add an admin on the Users page to require sign-in.",
            icon=":material/person_off:",
        )
