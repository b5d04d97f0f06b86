"""Budgets: spend against each budget with its bands and forecast, burn-down, alerts; add, edit, remove."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from manager import api, budgets
from manager.errors import InvalidInput
from manager.models import BudgetPeriod
from ui import access, data, view

PERIODS = [period.value for period in BudgetPeriod]
PERIOD_NOUNS = {"daily": "day", "weekly": "week", "monthly": "month"}

access.page_guard()
st.title("Budgets")
access.read_only_notice()
read_only = not access.can_edit()
engine = data.engine()
at = data.this_minute()
window = data.window(budgets.reads(at), at)
statuses = data.budget_status(window)


def budget_form(key: str, current: dict | None) -> None:
    """Draw the add or edit form; save through the manager and show errors at the fields at fault."""
    with st.form(key, clear_on_submit=False, border=True):
        columns = st.columns(3)
        name = columns[0].text_input(
            "Name",
            value=current["name"] if current else "",
            key=f"{key}_name",
            disabled=current is not None or read_only,
        )
        scope = columns[1].text_input(
            "Scope",
            value=current["scope"] if current else "global",
            key=f"{key}_scope",
            disabled=read_only,
            help="global, provider:NAME, model:ID, category:NAME, or one team, user, API key, app, environment "
            "or tag: team:NAME, user:ID, api_key:ALIAS, app:NAME, environment:NAME, tag:NAME",
        )
        period = columns[2].selectbox(
            "Period (UTC)",
            PERIODS,
            key=f"{key}_period",
            disabled=read_only,
            index=PERIODS.index(current["period"]) if current else 2,
            help="Weeks start on Monday.",
        )
        columns = st.columns(4)
        amount = columns[0].number_input(
            "Amount (USD)",
            min_value=0.0,
            step=10.0,
            format="%.2f",
            value=float(current["amount_usd"]) if current else 100.0,
            key=f"{key}_amount",
            disabled=read_only,
        )
        warn = columns[1].number_input(
            "Warn at (fraction)",
            min_value=0.0,
            step=0.05,
            value=float(current["warn_threshold"]) if current else 0.8,
            key=f"{key}_warn",
            disabled=read_only,
        )
        alert = columns[2].number_input(
            "Alert at (fraction)",
            min_value=0.0,
            step=0.05,
            value=float(current["alert_threshold"]) if current else 1.0,
            key=f"{key}_alert",
            disabled=read_only,
        )
        hard = columns[3].checkbox(
            "Hard limit",
            value=bool(current["hard"]) if current else False,
            key=f"{key}_hard",
            disabled=read_only,
            help="Once spent, its models are excluded from selection.",
        )
        submitted = st.form_submit_button(
            "Save budget" if current else "Add budget", type="primary", disabled=read_only
        )
    if not submitted:
        return
    data = {
        "name": name,
        "scope": scope,
        "period": period,
        "amount_usd": amount,
        "warn_threshold": warn,
        "alert_threshold": alert,
        "hard": hard,
    }
    try:
        if current:
            api.update_budget(engine, current["name"], data, actor=access.actor())
        else:
            api.add_budget(engine, data, actor=access.actor())
    except InvalidInput as error:
        for problem in error.problems:
            st.error(view.plain(problem))
        return
    st.toast(f"Saved budget {view.plain(name or current['name'])}")
    st.rerun()


@st.dialog("Remove budget?")
def confirm_removal(name: str) -> None:
    """Ask before removing a budget."""
    st.write(f"Remove the budget {view.plain(name)}? Its recorded alerts stay in the alerts table.")
    if st.button("Remove", key="confirm_remove_budget", type="primary"):
        api.remove_budget(engine, name, actor=access.actor())
        st.toast(f"Removed budget {view.plain(name)}")
        st.rerun()


if not statuses:
    st.info(
        "No budgets yet. Add one below: a limit in USD for everything (global), a provider, a model, a "
        "category, or one team, user, API key, app, environment or tag, per day, week or month."
    )
else:
    table = budgets.status_table(statuses)
    view.table(
        table,
        key="budgets_table",
        file_name="budgets.csv",
        column_config=view.BUDGET_COLUMNS,
    )

    names = [s.name for s in statuses]
    chosen = st.selectbox("Budget", names, key="budget_pick")
    status = next(s for s in statuses if s.name == chosen)
    path = budgets.spend_path(engine, chosen, window=window)
    start, end = status.period_start.replace(tzinfo=None), status.period_end.replace(tzinfo=None)
    amount = status.amount_usd
    spend = go.Figure()
    spend.add_hrect(
        y0=status.warn_threshold * amount,
        y1=status.alert_threshold * amount,
        fillcolor="#facc15",
        opacity=0.18,
        line_width=0,
        annotation_text="warning band",
        annotation_position="top left",
    )
    spend.add_hrect(
        y0=status.alert_threshold * amount,
        y1=max(status.forecast_usd, status.spent_usd, amount) * 1.15,
        fillcolor="#ef4444",
        opacity=0.12,
        line_width=0,
        annotation_text="alert band",
        annotation_position="top left",
    )
    spend.add_trace(
        go.Scatter(
            x=path["hour"],
            y=path["spent_usd"],
            mode="lines",
            name="Spent",
            line={"color": "#4f46e5", "width": 3},
            hovertemplate="%{x}<br>$%{y:,.2f} spent<extra></extra>",
        )
    )
    last_x = path["hour"].iloc[-1] if len(path) else start
    spend.add_trace(
        go.Scatter(
            x=[last_x, end, end, last_x],
            y=[status.spent_usd, status.forecast_high_usd, status.forecast_low_usd, status.spent_usd],
            fill="toself",
            mode="lines",
            name="90% band",
            line={"width": 0},
            fillcolor="rgba(107, 114, 128, 0.18)",
            hoverinfo="skip",
        )
    )
    spend.add_trace(
        go.Scatter(
            x=[last_x, end],
            y=[status.spent_usd, status.forecast_usd],
            mode="lines+markers",
            name="Forecast",
            line={"dash": "dot", "color": "#6b7280"},
            hovertemplate="%{x}<br>$%{y:,.2f} forecast<extra></extra>",
        )
    )
    spend.add_trace(
        go.Scatter(
            x=[start, end],
            y=[amount, amount],
            mode="lines",
            name="Budget",
            line={"color": "#dc2626", "width": 2},
            hovertemplate="Budget $%{y:,.2f}<extra></extra>",
        )
    )
    spend.update_layout(
        title=view.plain_html(f"{chosen}: spend this {PERIOD_NOUNS[status.period]} ({status.scope})"),
        xaxis_title="Time (UTC)",
        yaxis_title="Cumulative spend (USD)",
        yaxis_tickprefix="$",
        xaxis_range=[start, end],
    )
    st.plotly_chart(spend, key="budget_chart")
    st.caption(
        f"{status.state}: ${status.spent_usd:,.2f} of ${amount:,.2f} "
        f"({status.percent:.0%}); forecast ${status.forecast_usd:,.2f} by {end:%Y-%m-%d %H:%M} UTC. "
        f"Forecast method: {status.forecast_method}."
    )
    st.caption(view.plain(status.forecast_note()))
    if note := status.spend_note():
        if status.state == "ok":
            st.caption(f":material/warning: {note}")
        else:
            st.warning(note, icon=":material/warning:")

    remaining = amount - path["spent_usd"] if len(path) else path["spent_usd"]
    burn = go.Figure()
    burn.add_trace(
        go.Scatter(
            x=path["hour"],
            y=remaining,
            mode="lines",
            name="Remaining",
            fill="tozeroy",
            hovertemplate="%{x}<br>$%{y:,.2f} left<extra></extra>",
        )
    )
    burn.add_trace(
        go.Scatter(
            x=[last_x, end],
            y=[amount - status.spent_usd, amount - status.forecast_usd],
            mode="lines",
            name="Forecast",
            line={"dash": "dot", "color": "#6b7280"},
        )
    )
    burn.update_layout(
        title="Burn-down: budget remaining",
        xaxis_title="Time (UTC)",
        yaxis_title="Remaining (USD)",
        yaxis_tickprefix="$",
        xaxis_range=[start, end],
    )
    st.plotly_chart(burn, key="burndown_chart")

    st.subheader("Alerts")
    alerts = data.budget_alerts(window)
    if alerts.empty:
        st.success("No threshold has been crossed yet.")
    else:
        view.table(
            alerts,
            key="alerts_table",
            file_name="budget-alerts.csv",
            column_config={
                "budget": "Budget",
                "level": "Level",
                "threshold": st.column_config.NumberColumn("Threshold"),
                "crossed_at": st.column_config.DatetimeColumn("Crossed in hour (UTC)", format="YYYY-MM-DD HH:mm"),
                "spent_usd": st.column_config.NumberColumn("Spent then (USD)", format="dollar"),
                "period_start": st.column_config.DatetimeColumn("Period start (UTC)", format="YYYY-MM-DD"),
                "budget_exists": st.column_config.CheckboxColumn("Budget still exists"),
            },
        )

    with st.expander(f"Edit or remove {view.plain(chosen)}", icon=":material/edit:"):
        budget_form("edit_budget", budgets.to_public(next(b for b in window.budgets if b.name == chosen)))
        if st.button(f"Remove {view.plain(chosen)}", key="remove_budget", disabled=read_only):
            confirm_removal(chosen)

st.subheader("Add a budget")
budget_form("add_budget", None)
