"""Overview: headline figures for the chosen days and where the money went."""

import plotly.express as px
import streamlit as st

from manager import api
from pages import common

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
summary = common.usage_by_model(engine, version, start, end)
st.dataframe(
    summary,
    key="model_summary",
    hide_index=True,
    column_config={
        "model_id": "Model",
        "provider": "Provider",
        "requests": st.column_config.NumberColumn("Requests", format="localized"),
        "success_rate": st.column_config.NumberColumn("Success rate", format="percent"),
        "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="dollar"),
        "avg_response_time_ms": st.column_config.NumberColumn("Avg latency (ms)", format="%.0f"),
        "p95_response_time_ms": st.column_config.NumberColumn("p95 latency (ms)", format="%.0f"),
        "avg_quality_rating": st.column_config.NumberColumn("Avg rating (0-5)", format="%.2f"),
    },
)
st.download_button(
    "Download CSV",
    common.csv_bytes(summary),
    file_name=f"usage-by-model-{start}-{end}.csv",
    mime="text/csv",
    key="download_model_summary",
)
