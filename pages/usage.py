"""Usage: requests, tokens and cost over time, stacked by a chosen dimension, with filters."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from manager import spend, usage
from manager.window import Filters
from ui import access, data, view

MEASURES = {
    "Requests": ("requests", "Requests"),
    "Cost": ("cost_usd", "Cost (USD)"),
    "Input tokens": ("input_tokens", "Input tokens"),
    "Output tokens": ("output_tokens", "Output tokens"),
    "Cache-read tokens": ("cache_read_tokens", "Cache-read tokens"),
    "Cache-write tokens": ("cache_write_tokens", "Cache-write tokens"),
    "Reasoning tokens": ("reasoning_tokens", "Reasoning tokens"),
    "Requests without usage": ("requests_without_usage", "Requests without usage"),
}

TOKEN_NAMES = {"input_tokens": "Input", "cache_read_tokens": "Input read from cache", "output_tokens": "Output"}

access.page_guard()
st.title("Usage")
start, end = data.date_range()
st.caption(f"{start:%d %b %Y} to {end:%d %b %Y}, UTC")

if not data.has_traffic():
    st.info(
        "No requests are stored yet. Load demo data from the Overview page, or ingest logs with "
        "`python -m manager ingest FILE`."
    )
    st.stop()

# Attribution (team, user, ...) is kept per day, with requests, failures, tokens and cost only.
ATTRIBUTED = {spend.noun(d): d for d in spend.LABELS}
ATTRIBUTED_MEASURES = ("Requests", "Cost", "Input tokens", "Output tokens")

controls = st.columns(3)
granularity = controls[0].selectbox("Granularity", list(usage.GRANULARITIES), index=1, key="usage_granularity")
group_by = controls[1].selectbox("Stack by", [*usage.DIMENSIONS, *ATTRIBUTED], key="usage_group_by")
window = data.window(usage.reads_for(granularity))
options = usage.filter_options(window)
with st.expander("Filters", icon=":material/filter_list:"):
    whose = st.columns([1, 3])
    attribution = whose[0].selectbox(
        "Only the requests of one", list(ATTRIBUTED), index=None, key="usage_attribution", placeholder="Anyone"
    )
    picked = None
    if attribution is not None:
        known = data.breakdown(window, ATTRIBUTED[attribution], 50).values
        picked = whose[1].selectbox(
            attribution.capitalize() if attribution != "API key" else attribution,
            known,
            index=None,
            key=f"usage_value_{ATTRIBUTED[attribution]}",
            placeholder=f"Pick or type a {attribution}",
            accept_new_options=True,
        )
    columns = st.columns(4)
    models = columns[0].multiselect("Models", options["models"], key="usage_models", placeholder="All models")
    providers = columns[1].multiselect(
        "Providers", options["providers"], key="usage_providers", placeholder="All providers"
    )
    languages = columns[2].multiselect(
        "Languages", options["languages"], key="usage_languages", placeholder="All languages"
    )
    request_types = columns[3].multiselect(
        "Request types", options["request_types"], key="usage_request_types", placeholder="All types"
    )

filters = Filters(tuple(models), tuple(providers), tuple(languages), tuple(request_types))
attributed = group_by in ATTRIBUTED or picked is not None
measures = [m for m in MEASURES if m in ATTRIBUTED_MEASURES] if attributed else list(MEASURES)
measure = controls[2].selectbox("Measure", measures, key="usage_measure")
if picked is not None:
    dimension = ATTRIBUTED[attribution]
    series = spend.value_series(data.value_days(dimension, picked), granularity)
    series = usage.only_models(series, window, filters)
    st.caption(
        f":material/filter_alt: Only {attribution} {view.plain(picked)}'s requests, stacked by model, per "
        f"{'week' if granularity == 'week' else 'day'}: attribution is kept per day, without language or request "
        "type (those filters do not apply)."
    )
    group_by = "model"
elif attributed:
    series = data.breakdown(window, ATTRIBUTED[group_by], spend.TOP).series(granularity)
    st.caption(
        f":material/info: The top {spend.TOP} by spend, the rest as {spend.OTHER}"
        + (f", requests without a {group_by} as {spend.NONE}" if group_by != "tag" else "")
        + f", per {'week' if granularity == 'week' else 'day'} (attribution is kept per day); the filters do not "
        "apply to this stacking."
    )
else:
    series = usage.usage_series(window, granularity=granularity, group_by=group_by, filters=filters)
if series.empty:
    st.info("No requests match these filters in these days. Clear a filter or widen the date range.")
    st.stop()
if not attributed and (note := usage.series_usage_note(series)):
    st.caption(f":material/info: {note}")

column, label = MEASURES[measure]
shown_granularity = "day" if attributed and granularity == "hour" else granularity
stacked = px.bar(
    series,
    x="period",
    y=column,
    color="group",
    color_discrete_map=view.model_colours(window.registry)
    if group_by == "model"
    else {spend.OTHER: "#9AA5B1", spend.NONE: "#D5DBE1"},
    title=f"{measure} per {shown_granularity} by {group_by}",
    labels={"period": f"{shown_granularity.capitalize()} (UTC)", column: label, "group": group_by.capitalize()},
)
view.mark_partial(stacked, series["period"], shown_granularity, window.at)
if column == "cost_usd":
    stacked.update_layout(yaxis_tickprefix="$")
    stacked.update_traces(hovertemplate="%{x}<br>$%{y:,.4f}<extra>%{fullData.name}</extra>")
st.plotly_chart(stacked, key="usage_chart")

totals = usage.period_totals(series)
token_columns = [c for c in ("input_tokens", "cache_read_tokens", "output_tokens") if c in totals.columns]
left, right = st.columns(2)
with left:
    cumulative = go.Figure(
        go.Scatter(
            x=totals["period"],
            y=totals["cumulative_cost_usd"],
            mode="lines",
            name="Cumulative cost",
            hovertemplate="%{x}<br>$%{y:,.2f}<extra></extra>",
        )
    )
    cumulative.update_layout(
        title="Cumulative cost",
        xaxis_title=f"{shown_granularity.capitalize()} (UTC)",
        yaxis_title="Cost (USD)",
        yaxis_tickprefix="$",
    )
    st.plotly_chart(cumulative, key="cumulative_chart")
with right:
    tokens = px.bar(
        totals,
        x="period",
        y=token_columns,
        barmode="group",
        title="Input tokens (and the part read from cache) versus output tokens"
        if "cache_read_tokens" in token_columns
        else "Input versus output tokens",
        labels={"period": f"{shown_granularity.capitalize()} (UTC)", "value": "Tokens", "variable": "Tokens"},
    )
    tokens.for_each_trace(lambda trace: trace.update(name=TOKEN_NAMES[trace.name]))
    st.plotly_chart(tokens, key="tokens_chart")

st.subheader("Table")
view.table(
    series,
    key="usage_table",
    file_name=f"usage-{shown_granularity}-by-{group_by}-{start}-{end}.csv",
    column_config={
        **view.COLUMN_LABELS,
        "period": st.column_config.DatetimeColumn(
            f"{shown_granularity.capitalize()} (UTC)",
            format="YYYY-MM-DD HH:mm" if shown_granularity == "hour" else "YYYY-MM-DD",
        ),
        "requests_without_cost": st.column_config.NumberColumn("Cost unknown", format="localized"),
        "group": group_by.capitalize(),
    },
)
