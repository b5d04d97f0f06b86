"""Spend by team, user, API key, app, environment or tag: who spent it, and one of them in detail."""

import plotly.express as px
import streamlit as st

from manager import budgets, spend
from manager.explorer import ATTRIBUTION_FILTERS, RequestFilters
from manager.window import day_window
from ui import access, data, view

# Each dimension's filter on the Requests page.
EXPLORER_FIELDS = {dimension: field for field, dimension, _ in ATTRIBUTION_FILTERS}
TOP_CHOICES = [10, 25, 50, 100]

access.page_guard()
st.title("Spend by team, user, key, app and tag")
start, end = data.date_range()
st.caption(
    f"{start:%d %b %Y} to {end:%d %b %Y}, UTC. Attribution comes with each request (CSV and JSON Lines columns, "
    "OTLP resource and span attributes, `log_usage` keywords); it is kept per day."
)

if not data.has_traffic():
    st.info(
        "No requests are stored yet. Load demo data from the Overview page, or ingest logs with "
        "`python -m manager ingest FILE`."
    )
    st.stop()

# A link from another page (Overview's top teams and users) names a dimension and a value: apply them once.
link = {k: st.query_params.get(k) for k in ("dimension", "value")}
if link["dimension"] in spend.LABELS and st.session_state.get("spend_link") != link:
    st.session_state["spend_link"] = link
    st.session_state["spend_dimension"] = link["dimension"]
    st.session_state["spend_value"] = link["value"] or None

st.session_state.setdefault("spend_dimension", "team")
controls = st.columns([4, 1])
dimension = controls[0].segmented_control(
    "Spend by", list(spend.LABELS), format_func=spend.LABELS.__getitem__, key="spend_dimension"
)
dimension = dimension or "team"
top = controls[1].selectbox("Show the top", TOP_CHOICES, key="spend_top")
label = spend.LABELS[dimension]
noun = spend.noun(dimension)
at = data.this_minute()
window = data.window(budgets.reads(at), at)
result = data.breakdown(window, dimension, top)

if not result.rows:
    st.info("No requests in these days. Widen the date range in the sidebar.")
    st.stop()
if not result.values:
    st.info(
        f"No request in these days names a {noun}. Add a `{dimension if dimension != 'user' else 'user'}` column "
        "to your logs (or the matching OTLP attribute) to see spend by it."
    )
shown = len(result.values)
notes = [f"The top {top} {noun}s by spend, then the rest as {spend.OTHER}" if shown == top else f"Every {noun}"]
if dimension == "tag":
    notes.append("a request with several tags counts under each, so tags add up to more than the total")
else:
    notes.append(f"requests without a {noun} as {spend.NONE}")
st.caption(", ".join(notes) + ".")

series = result.series("day")
chart = px.bar(
    series,
    x="period",
    y="cost_usd",
    color="group",
    title=f"Cost per day by {noun}",
    labels={"period": "Day (UTC)", "cost_usd": "Cost (USD)", "group": label},
    category_orders={"group": [name for name, _ in result.rows]},
    color_discrete_map={spend.OTHER: "#9AA5B1", spend.NONE: "#D5DBE1"},
)
chart.update_layout(yaxis_tickprefix="$", bargap=0.15)
chart.update_traces(hovertemplate="%{x|%d %b}<br>$%{y:,.4f}<extra>%{fullData.name}</extra>")
view.mark_partial(chart, series["period"], "day", at)
st.plotly_chart(chart, key="spend_chart")

table = result.table()
picked = st.dataframe(
    table,
    key="spend_table",
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    height=min(35 * (len(table) + 1) + 3, 600),
    column_config={
        **view.COLUMN_LABELS,
        "value": st.column_config.TextColumn(label, pinned=True),
    },
)
st.download_button(
    "Download CSV (as shown)",
    view.csv_bytes(table),
    file_name=f"spend-by-{dimension}-{start}-{end}.csv",
    mime="text/csv",
    key="download_spend_table",
    icon=":material/download:",
)
st.caption("Select a row to look at one. `python -m manager export spend --by " + dimension + "` writes every day.")

chosen_rows = picked.selection.rows if picked is not None else []
if chosen_rows:
    clicked = str(table.iloc[chosen_rows[0]]["value"])
    if clicked not in (spend.OTHER, spend.NONE):
        st.session_state["spend_value"] = clicked

st.divider()
choices = result.values
current = st.session_state.get("spend_value")
if current and current not in choices:
    choices = [current, *choices]
value = st.selectbox(
    f"One {noun}",
    choices,
    key="spend_value",
    index=None,
    placeholder=f"Pick or type a {noun}",
    accept_new_options=True,
)
if not value:
    st.stop()

st.subheader(f"{label}: {value}")
days = data.value_days(dimension, value)
if days.empty:
    st.info(f"No requests of {noun} {view.plain(value)} in these days. Widen the date range, or check the spelling.")
else:
    total = spend.value_series(days).sum(numeric_only=True)
    cards = st.columns(4)
    cards[0].metric("Requests", f"{int(total['requests']):,}", border=True)
    cards[1].metric("Cost", f"${total['cost_usd']:,.2f}", border=True)
    cards[2].metric(
        "Failures", f"{int(total['failures']):,} ({total['failures'] / total['requests']:.1%})", border=True
    )
    whole = sum(s.cost_nanos for _, s in result.rows)
    mine = int(days["cost_nanos"].sum())
    cards[3].metric("Share of spend", f"{mine / whole:.1%}" if whole else "n/a", border=True)

    by_model = spend.value_series(days)
    left, right = st.columns([3, 2])
    with left:
        per_day = px.bar(
            by_model,
            x="period",
            y="cost_usd",
            color="group",
            color_discrete_map=view.model_colours(window.registry),
            title=f"{view.plain(value)}: cost per day by model",
            labels={"period": "Day (UTC)", "cost_usd": "Cost (USD)", "group": "Model"},
        )
        per_day.update_layout(yaxis_tickprefix="$", bargap=0.15)
        st.plotly_chart(per_day, key="value_chart")
    with right:
        st.markdown("**Models**")
        view.table(
            spend.value_models(days),
            key="value_models",
            file_name=f"{dimension}-{value}-models-{start}-{end}.csv",
            column_config=view.COLUMN_LABELS,
        )
    low, high = day_window(start, end)
    view.explorer_link(
        RequestFilters(start=low, end=high, **{EXPLORER_FIELDS[dimension]: (value,)}),
        f"Its requests ({noun} {value})",
    )

scope = f"{dimension}:{value}"
statuses = [s for s in data.budget_status(window) if s.scope == scope]
st.markdown("**Budgets**")
if statuses:
    view.table(
        budgets.status_table(statuses),
        key="value_budgets",
        file_name=f"budgets-{dimension}-{value}.csv",
        column_config=view.BUDGET_COLUMNS,
    )
else:
    st.caption(f"No budget on `{scope}`. Add one on the Budgets page with that scope.")
st.page_link("pages/budgets.py", label="Budgets", icon=":material/savings:")
