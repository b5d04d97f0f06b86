"""Performance: who is best at what, latency over time, quality against cost, drill-down, recommendations."""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from manager import performance, recommendations, scoring, usage
from manager.explorer import RequestFilters
from manager.window import Reads, day_window
from ui import access, data, view

METRIC_LABELS = {
    "score": "Composite score",
    "requests": "Requests",
    "success_rate": "Success rate",
    "avg_quality_rating": "Average rating",
    "avg_response_time_ms": "Average latency",
    "p50_response_time_ms": "p50 latency",
    "p90_response_time_ms": "p90 latency",
    "p95_response_time_ms": "p95 latency",
    "p99_response_time_ms": "p99 latency",
    "cost_usd": "Total cost",
    "cost_per_request_usd": "Cost per request",
    "cost_per_1k_tokens_usd": "Cost per 1k tokens",
}

access.page_guard()
st.title("Performance")
start, end = data.date_range()
st.caption(f"{start:%d %b %Y} to {end:%d %b %Y}, UTC")

if not data.has_traffic():
    st.info(
        "No requests are stored yet. Load demo data from the Overview page, or ingest logs with "
        "`python -m manager ingest FILE`."
    )
    st.stop()

rank_by = st.selectbox("Rank by", list(scoring.HIGHER_IS_BETTER), format_func=METRIC_LABELS.get, key="perf_rank_by")
granularity = st.session_state.get("perf_granularity", "day")
window = data.window(Reads(chosen_hours=granularity == "hour"))
report = performance.performance_report(window, rank_by=rank_by)
if report.empty:
    st.info("No requests in these days. Widen the date range in the sidebar.")
    st.stop()

st.subheader("Ranking")
st.caption(scoring.describe_composite() + " Rank 1 is best by the chosen metric; click a header to sort.")
shown = performance.ranking_view(report)
view.table(
    shown,
    key="ranking_table",
    file_name=f"performance-{start}-{end}.csv",
    column_config={
        **view.COLUMN_LABELS,
        "rank": st.column_config.NumberColumn("Rank", pinned=True, width="small"),
        "model_id": st.column_config.TextColumn("Model", pinned=True),
        "score": st.column_config.ProgressColumn(
            "Score", min_value=0.0, max_value=1.0, format="%.3f", pinned=True, width="small"
        ),
        "hosting_usd": st.column_config.NumberColumn(
            "Hosting (USD)", format="dollar", help="A self-hosted model's host cost per hour over these days"
        ),
        "cost_basis": st.column_config.TextColumn(
            "Cost basis", help="billed (API prices), hosting estimate (self-hosted: its host's cost only), or both"
        ),
    },
)
if "cost_basis" in shown:
    estimated = shown.loc[shown["cost_basis"] == "hosting estimate", "model_id"].tolist()
    if estimated:
        st.caption(
            "Cost of "
            + ", ".join(view.plain(m) for m in estimated)
            + " is only its hosting estimate (host cost per hour from the registry, spread over its requests)."
        )

st.subheader("Latency and value")
controls = st.columns(4)
granularity = controls[0].selectbox("Granularity", list(usage.GRANULARITIES), index=1, key="perf_granularity")
percentile = controls[1].selectbox("Percentile", ["p50", "p90", "p95", "p99"], index=2, key="perf_percentile")
left, right = st.columns(2)
with left:
    latency = performance.latency_over_time(window, granularity=granularity)
    over_time = px.line(
        latency,
        x="period",
        y=percentile,
        color="model_id",
        color_discrete_map=view.model_colours(window.registry),
        markers=granularity != "hour",
        title=f"{percentile} latency per {granularity}",
        labels={"period": f"{granularity.capitalize()} (UTC)", percentile: "Latency (ms)", "model_id": "Model"},
    )
    over_time.update_traces(hovertemplate="%{x}<br>%{y:,.0f} ms<extra>%{fullData.name}</extra>")
    st.plotly_chart(over_time, key="latency_chart")
with right:
    rated = shown.dropna(subset=["avg_quality_rating"])
    on_frontier = performance.frontier(report)
    scatter = px.scatter(
        rated,
        x="cost_per_request_usd",
        y="avg_quality_rating",
        size="requests",
        color="model_id",
        color_discrete_map=view.model_colours(window.registry),
        hover_name="model_id",
        title="Quality versus cost (bubble = requests)",
        labels={
            "cost_per_request_usd": "Cost per request (USD)",
            "avg_quality_rating": "Average rating (0-5)",
            "model_id": "Model",
        },
    )
    line = rated.set_index("model_id").loc[on_frontier]
    scatter.add_trace(
        go.Scatter(
            x=line["cost_per_request_usd"],
            y=line["avg_quality_rating"],
            mode="lines",
            name="Pareto frontier",
            line={"dash": "dash", "color": "#555"},
        )
    )
    scatter.update_layout(xaxis_tickformat="$.2~g")
    st.plotly_chart(scatter, key="pareto_chart")
    st.caption(
        "On the frontier: "
        + (", ".join(on_frontier) or "no rated model")
        + ". No other model is both cheaper and better rated."
    )

st.subheader("Drill-down")
model_id = st.selectbox("Model", shown["model_id"].tolist(), key="perf_model")
detail = shown.set_index("model_id").loc[model_id]
cards = st.columns(4)
cards[0].metric("Requests", f"{int(detail['requests']):,}", border=True)
cards[1].metric("Success rate", f"{detail['success_rate']:.2%}", border=True)
cards[2].metric("p95 latency", f"{detail['p95_response_time_ms']:,.0f} ms", border=True)
cards[3].metric("Cost", f"${detail['cost_usd']:,.2f}", border=True)
days = day_window(start, end)
links = st.columns([1, 1, 3])
with links[0]:
    view.explorer_link(RequestFilters(*days, models=(model_id,)), f"All requests of {model_id}")
with links[1]:
    view.explorer_link(RequestFilters(*days, models=(model_id,), success=False), "Its failed requests")
left, right = st.columns(2)
with left:
    distribution = performance.latency_distribution(window, model_id)
    histogram = px.bar(
        distribution,
        x="from_ms",
        y="requests",
        log_x=True,
        title=view.plain_html(f"Latency distribution of {model_id}"),
        labels={"from_ms": "Latency (ms, log scale)", "requests": "Requests"},
        hover_data={"to_ms": ":,.0f", "from_ms": ":,.0f"},
    )
    ticks, tick_labels = view.latency_ticks(distribution["from_ms"].min(), distribution["to_ms"].max())
    histogram.update_layout(bargap=0)
    histogram.update_xaxes(tickvals=ticks, ticktext=tick_labels)
    st.plotly_chart(histogram, key="distribution_chart")
with right:
    errors = performance.errors_by_type(window, model_id)
    if errors.empty:
        st.success(f"No failed requests for {view.plain(model_id)} in these days.")
    else:
        chart = px.bar(
            errors,
            x="requests",
            y="error_type",
            orientation="h",
            title=view.plain_html(f"Errors by type of {model_id}"),
            labels={"requests": "Failed requests", "error_type": "Error type"},
        )
        chart.update_layout(clickmode="event+select")
        clicked = st.plotly_chart(chart, key="errors_chart", on_select="rerun", selection_mode="points")
        st.caption("Click a bar to see those failed requests.")
        if clicked and clicked.selection.points:
            error_type = str(clicked.selection.points[0]["y"])
            failed = RequestFilters(*days, models=(model_id,), success=False, error_types=(error_type,))
            st.switch_page(view.EXPLORER, query_params=failed.query_string())
        errors["requests_link"] = [
            view.explorer_url(RequestFilters(*days, models=(model_id,), success=False, error_types=(e,)))
            for e in errors["error_type"]
        ]
        view.table(
            errors,
            key="errors_table",
            file_name=f"errors-{model_id}-{start}-{end}.csv",
            column_config={
                "error_type": "Error type",
                **view.COLUMN_LABELS,
                "requests_link": st.column_config.LinkColumn("Requests", display_text="view ›"),
            },
        )

st.subheader("Recommendations")
advice = pd.DataFrame(
    [r.as_dict() for r in recommendations.recommendations(window)],
    columns=["kind", "model_id", "action", "evidence", "usd_at_stake"],
)
if advice.empty:
    st.success("Nothing to change: no model is under-rated, failing, overpriced, idle or mispriced.")
else:
    view.table(
        advice,
        key="recommendations_table",
        file_name=f"recommendations-{start}-{end}.csv",
        column_config={"kind": "Kind", "action": "Action", "evidence": "Evidence", **view.COLUMN_LABELS},
    )
