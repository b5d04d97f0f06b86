"""Users: admins add accounts, change roles and passwords, lift lockouts and remove accounts."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from manager import api
from manager.accounts import lockout_rule
from manager.errors import ManagerError
from manager.models import Role
from ui import access, data, view

ROLES = [r.value for r in Role]
ROLE_HELP = "Viewers see every page; editors also change the registry and budgets; admins also manage accounts."

access.page_guard()
st.title("Users")
st.caption(f"{ROLE_HELP} {lockout_rule()} Every change here is audited.")
engine = data.engine()
accounts = api.list_accounts(engine)


def _attempt(action: str, call: Callable[[], object]) -> bool:
    """Run a manager call; show its refusal at the form and return False when refused."""
    try:
        call()
    except ManagerError as error:
        for problem in getattr(error, "problems", None) or [str(error)]:
            st.error(problem)
        return False
    st.session_state["users_done"] = action
    return True


if accounts:
    table = pd.DataFrame(accounts)
    for column in ("created_at", "password_changed_at", "last_sign_in_at", "locked_until"):
        table[column] = table[column].map(lambda t: t.replace(tzinfo=None) if t else None)
    view.table(
        table,
        key="users_table",
        file_name="accounts.csv",
        column_config={
            "name": "Name",
            "role": "Role",
            "created_at": st.column_config.DatetimeColumn("Created (UTC)", format="YYYY-MM-DD HH:mm"),
            "password_changed_at": st.column_config.DatetimeColumn("Password set (UTC)", format="YYYY-MM-DD HH:mm"),
            "last_sign_in_at": st.column_config.DatetimeColumn("Last sign-in (UTC)", format="YYYY-MM-DD HH:mm"),
            "failed_attempts": st.column_config.NumberColumn("Failed sign-ins"),
            "locked_until": st.column_config.DatetimeColumn("Locked until (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )
else:
    st.info(
        "No accounts yet: the dashboard runs in local single-user mode. The first account must be an admin; "
        "once it exists, everyone signs in."
    )

if done := st.session_state.pop("users_done", None):
    st.success(done)

st.subheader("Add an account")
with st.form("add_account", clear_on_submit=True):
    columns = st.columns(4)
    name = columns[0].text_input("Name", key="new_account_name", help="Letters, digits, '.', '_', '@', '-'.")
    role = columns[1].selectbox(
        "Role", ROLES, index=ROLES.index("admin" if not accounts else "viewer"), key="new_account_role", help=ROLE_HELP
    )
    password = columns[2].text_input(
        "Password",
        type="password",
        key="new_account_password",
        help="8 to 1024 characters.",
        autocomplete="new-password",
    )
    repeated = columns[3].text_input(
        "Repeat password", type="password", key="new_account_repeat", autocomplete="new-password"
    )
    added = st.form_submit_button("Add account", type="primary")
if added:
    if password != repeated:
        st.error("password: the two passwords differ")
    elif _attempt(
        f"Added {name.strip().lower()} ({role}).",
        lambda: api.add_account(engine, name, role, password, actor=access.actor()),
    ):
        if not accounts:
            # The local user who creates the first admin is that admin from now on.
            st.session_state[access.ACCOUNT_KEY] = name.strip().lower()
        st.rerun()

if accounts:
    st.subheader("Change an account")
    names = [a["name"] for a in accounts]
    chosen = st.selectbox("Account", names, key="users_pick")
    current = next(a for a in accounts if a["name"] == chosen)
    left, middle, right = st.columns(3)
    with left.form("change_role"):
        new_role = st.selectbox("Role", ROLES, index=ROLES.index(current["role"]), key="users_role", help=ROLE_HELP)
        if st.form_submit_button("Change role") and _attempt(
            f"{chosen} is now {new_role}.", lambda: api.set_account_role(engine, chosen, new_role, actor=access.actor())
        ):
            st.rerun()
    with middle.form("reset_password", clear_on_submit=True):
        new_password = st.text_input("New password", type="password", key="users_password", autocomplete="new-password")
        if st.form_submit_button("Set password") and _attempt(
            f"Set a new password for {chosen}.",
            lambda: api.set_account_password(engine, chosen, new_password, actor=access.actor()),
        ):
            st.rerun()
    with right:
        locked = current["locked_until"] is not None
        if st.button(
            "Unlock",
            key="users_unlock",
            disabled=not locked,
            help="Lift the lockout after failed sign-ins." if locked else "Not locked.",
        ) and _attempt(f"Unlocked {chosen}.", lambda: api.unlock_account(engine, chosen, actor=access.actor())):
            st.rerun()
        if st.button(f"Remove {view.plain(chosen)}", key="users_remove", icon=":material/person_remove:"):
            st.session_state["users_confirm_remove"] = chosen
        if st.session_state.get("users_confirm_remove") == chosen:
            st.warning(f"Remove {view.plain(chosen)}? Their past changes stay in the audit trail.")
            if st.button("Yes, remove", key="users_remove_confirm", type="primary"):
                st.session_state.pop("users_confirm_remove")
                if _attempt(f"Removed {chosen}.", lambda: api.remove_account(engine, chosen, actor=access.actor())):
                    st.rerun()
