"""Overview: headline figures for the chosen days and where the money went."""

import plotly.express as px
import streamlit as st

from manager import budgets, health, overview, scoring, spend, usage
from manager.demo import seed_demo
from ui import access, data, view

access.page_guard()
st.title("Overview")
engine = data.engine()
start, end = data.date_range()
st.caption(f"{start:%d %b %Y} to {end:%d %b %Y}, UTC")

if not data.has_traffic():
    st.info(
        "No requests are stored yet. Load logs with `python -m manager ingest FILE`, "
        "let your application call `log_usage`, or load a month of demo traffic to look around."
    )
    if st.button("Load demo data", key="load_demo", type="primary"):
        bar = st.progress(0.0, text="Generating demo traffic...")
        total = 20_000

        def report(done: int) -> None:
            bar.progress(min(done / total, 1.0), text=f"Stored {done:,} of {total:,} requests")

        result = seed_demo(engine, requests=total, progress=report, with_budgets=True)
        st.session_state.pop("date_range", None)
        st.toast(f"Loaded {result.accepted:,} demo requests")
        st.rerun()
    st.stop()

at = data.this_minute()
window = data.window(health.reads(at) | budgets.reads(at), at)
system, why = health.system_health(health.model_health(engine, window.at, window=window))
active = [s for s in data.budget_status(window) if s.state != "ok"]
status_line = f"System **{system}**: {view.plain(why)}."
if active:
    status_line += " Budgets: " + ", ".join(
        f"{s.state} {view.plain(s.name)} ({s.percent:.0%} of \\${s.amount_usd:,.2f})" for s in active
    )
troubled = system in ("degraded", "unhealthy") or bool(active)
(st.warning if troubled else st.success)(status_line, icon=view.STATE_ICONS["degraded" if troubled else "healthy"])

figures = usage.kpis(window)
cards = st.columns(4)
cards[0].metric("Requests", f"{figures.requests:,}", border=True)
cards[1].metric("Cost", f"${figures.cost_usd:,.2f}", border=True)
cards[2].metric(
    "Success rate",
    "n/a" if figures.success_rate is None else f"{figures.success_rate:.2%}",
    border=True,
)
cards[3].metric(
    "p95 latency",
    "n/a" if figures.p95_response_time_ms is None else f"{figures.p95_response_time_ms:,.0f} ms",
    border=True,
)

if figures.requests == 0:
    st.info("No requests in these days. Widen the date range in the sidebar.")
    st.stop()
if note := figures.usage_note():
    st.caption(f":material/info: {note}")

daily = usage.cost_by_day(window)
chart = px.bar(
    daily,
    x="date",
    y="cost_usd",
    color="model_id",
    color_discrete_map=view.model_colours(window.registry),
    title="Cost per day by model",
    labels={"date": "Day (UTC)", "cost_usd": "Cost (USD)", "model_id": "Model"},
    hover_data={"requests": ":,", "cost_usd": ":$.4f"},
)
chart.update_layout(yaxis_tickprefix="$", legend_title_text="Model", bargap=0.15)
view.mark_partial(chart, daily["date"], "day", window.at)
st.plotly_chart(chart, key="cost_chart")

st.subheader("By model")
view.table(
    usage.usage_by_model(window),
    key="model_summary",
    file_name=f"usage-by-model-{start}-{end}.csv",
    column_config=view.COLUMN_LABELS,
)

st.subheader("Who spent it")
for column, dimension in zip(st.columns(2), ("team", "user"), strict=True):
    with column:
        spent = data.breakdown(window, dimension, 5)
        noun = spend.noun(dimension)
        if not spent.values:
            st.caption(f"No request in these days names a {noun}.")
            continue
        top = spent.table()[["value", "cost_usd", "share_pct", "requests"]]
        top.insert(0, "value_link", [view.spend_url(dimension, v) for v in top["value"]])
        view.table(
            top,
            key=f"top_{dimension}s",
            file_name=f"top-{dimension}s-{start}-{end}.csv",
            column_config={
                **view.COLUMN_LABELS,
                "value": None,
                "value_link": st.column_config.LinkColumn(
                    f"Top {noun}s", display_text=r"^.*#(.*)$", help=f"Click for the {noun}'s spend, models and budgets"
                ),
            },
        )
st.page_link(view.SPEND_PAGE, label="Spend by team, user, key, app and tag", icon=":material/groups:")

summary = overview.system_overview(window, with_recommendations=False)
left, right = st.columns(2)
with left:
    st.subheader("By provider")
    spent = summary.by_provider[summary.by_provider["cost_usd"] > 0]  # a $0 provider is no slice, not a "0%"
    by_provider = px.pie(spent, names="provider", values="cost_usd", hole=0.5, title="Cost share by provider (USD)")
    by_provider.update_traces(hovertemplate="%{label}: $%{value:,.2f} (%{percent})<extra></extra>")
    st.plotly_chart(by_provider, key="provider_chart")
    view.table(
        summary.by_provider,
        key="provider_table",
        file_name=f"by-provider-{start}-{end}.csv",
        column_config=view.COLUMN_LABELS,
    )
with right:
    st.subheader("By category")
    by_category = px.bar(
        summary.by_category,
        x="category",
        y="requests",
        title="Requests by model category",
        labels={"category": "Category", "requests": "Requests"},
    )
    st.plotly_chart(by_category, key="category_chart")
    view.table(
        summary.by_category,
        key="category_table",
        file_name=f"by-category-{start}-{end}.csv",
        column_config=view.COLUMN_LABELS,
    )

st.subheader("Top performers")
st.caption(scoring.describe_composite())
view.table(
    summary.top_performers,
    key="top_performers",
    file_name=f"top-performers-{start}-{end}.csv",
    column_config=view.COLUMN_LABELS,
)
