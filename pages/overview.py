"""Overview: headline figures for the chosen days and where the money went."""

import plotly.express as px
import streamlit as st

from manager import api
from pages import access, common

access.page_guard()
st.title("Overview")
engine = common.engine()
version = common.data_version()
start, end = common.date_range()
st.caption(f"{start:%d %b %Y} to {end:%d %b %Y}, UTC")

if not common.has_traffic():
    st.info(
        "No requests are stored yet. Load logs with `python -m manager ingest FILE`, "
        "let your application call `log_usage`, or load a month of demo traffic to look around."
    )
    if st.button("Load demo data", key="load_demo", type="primary"):
        bar = st.progress(0.0, text="Generating demo traffic...")
        total = 20_000

        def report(done: int) -> None:
            bar.progress(min(done / total, 1.0), text=f"Stored {done:,} of {total:,} requests")

        result = api.seed_demo(engine, requests=total, progress=report)
        st.session_state.pop("date_range", None)
        st.toast(f"Loaded {result.accepted:,} demo requests")
        st.rerun()
    st.stop()

minute = common.this_minute()
system, why = api.system_health(common.model_health(engine, version, minute, 1))
active = [s for s in common.budget_status(engine, version, minute) if s.state != "ok"]
status_line = f"System **{system}**: {common.plain(why)}."
if active:
    status_line += " Budgets: " + ", ".join(
        f"{s.state} {common.plain(s.name)} ({s.percent:.0%} of \\${s.amount_usd:,.2f})" for s in active
    )
troubled = system in ("degraded", "unhealthy") or bool(active)
(st.warning if troubled else st.success)(status_line, icon=common.STATE_ICONS["degraded" if troubled else "healthy"])

figures = common.kpis(engine, version, start, end)
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

daily = common.cost_by_day(engine, version, start, end)
chart = px.bar(
    daily,
    x="date",
    y="cost_usd",
    color="model_id",
    title="Cost per day by model",
    labels={"date": "Day (UTC)", "cost_usd": "Cost (USD)", "model_id": "Model"},
    hover_data={"requests": ":,", "cost_usd": ":$.4f"},
)
chart.update_layout(yaxis_tickprefix="$", legend_title_text="Model", bargap=0.15)
st.plotly_chart(chart, key="cost_chart")

st.subheader("By model")
common.table(
    common.usage_by_model(engine, version, start, end),
    key="model_summary",
    file_name=f"usage-by-model-{start}-{end}.csv",
    column_config=common.COLUMN_LABELS,
)

overview = common.system_overview(engine, version, start, end)
left, right = st.columns(2)
with left:
    st.subheader("By provider")
    by_provider = px.pie(
        overview.by_provider, names="provider", values="cost_usd", hole=0.5, title="Cost share by provider (USD)"
    )
    by_provider.update_traces(hovertemplate="%{label}: $%{value:,.2f} (%{percent})<extra></extra>")
    st.plotly_chart(by_provider, key="provider_chart")
    common.table(
        overview.by_provider,
        key="provider_table",
        file_name=f"by-provider-{start}-{end}.csv",
        column_config=common.COLUMN_LABELS,
    )
with right:
    st.subheader("By category")
    by_category = px.bar(
        overview.by_category,
        x="category",
        y="requests",
        title="Requests by model category",
        labels={"category": "Category", "requests": "Requests"},
    )
    st.plotly_chart(by_category, key="category_chart")
    common.table(
        overview.by_category,
        key="category_table",
        file_name=f"by-category-{start}-{end}.csv",
        column_config=common.COLUMN_LABELS,
    )

st.subheader("Top performers")
st.caption(api.describe_composite())
common.table(
    overview.top_performers,
    key="top_performers",
    file_name=f"top-performers-{start}-{end}.csv",
    column_config=common.COLUMN_LABELS,
)
