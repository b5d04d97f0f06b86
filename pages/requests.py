"""Requests: the individual requests behind every aggregate, newest first, filtered, 100 a page."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from manager import explorer
from manager.errors import InvalidInput
from manager.models import ModelCategory
from manager.window import day_window
from ui import access, data, view

OUTCOMES = {"Any": None, "Failed": False, "Succeeded": True}

access.page_guard()
st.title("Requests")

if not data.has_traffic():
    st.info(
        "No requests are stored yet. Load demo data from the Overview page, or ingest logs with "
        "`python -m manager ingest FILE`."
    )
    st.stop()

# A link from another page (Health, Performance) carries its filters in the URL: apply them once.
link = {k: st.query_params.get_all(k) for k in st.query_params}
linked: explorer.RequestFilters | None = None
if link:
    try:
        linked = explorer.filters_from_query(link)
    except InvalidInput as error:
        st.error(f"The link's filters are not usable: {error}")
    if linked is not None and st.session_state.get("rq_link") != link:
        st.session_state["rq_link"] = link
        st.session_state.update(
            rq_models=list(linked.models),
            rq_providers=list(linked.providers),
            rq_outcome={None: "Any", False: "Failed", True: "Succeeded"}[linked.success],
            rq_errors=list(linked.error_types),
            rq_types=list(linked.request_types),
            rq_languages=list(linked.languages),
            rq_latency=linked.min_latency_ms or 0.0,
            **{f"rq_{name}": ", ".join(getattr(linked, name)) for name, _, _ in explorer.ATTRIBUTION_FILTERS},
        )

window = data.window()
registry = data.models(data.engine(), data.data_version())
top = st.columns([3, 2, 1.2, 2.5])
models = top[0].multiselect("Model", sorted(registry["model_id"]), key="rq_models", placeholder="Any model")
providers = top[1].multiselect("Provider", sorted(set(registry["provider"])), key="rq_providers", placeholder="Any")
outcome = top[2].selectbox("Outcome", list(OUTCOMES), key="rq_outcome")
errors = top[3].multiselect(
    "Error type",
    explorer.seen_error_types(window.days),
    key="rq_errors",
    placeholder="Any",
    accept_new_options=True,
)
more = st.columns([3, 2, 1.2, 2.5])
types = more[0].multiselect("Request type", [c.value for c in ModelCategory], key="rq_types", placeholder="Any")
languages = more[1].multiselect(
    "Language",
    ["en", "es", "fr", "de", "it", "ja", "zh"],
    key="rq_languages",
    placeholder="Any",
    accept_new_options=True,
)
latency = more[2].number_input("Min latency (ms)", min_value=0.0, step=500.0, format="%.0f", key="rq_latency")
ATTRIBUTION_LABELS = {
    "users": "User",
    "teams": "Team",
    "api_keys": "API key",
    "apps": "App",
    "environments": "Environment",
    "tags": "Tag",
}
with st.expander("Who: user, team, API key, app, environment, tag", icon=":material/group:"):
    who = st.columns(len(ATTRIBUTION_LABELS))
    attribution = {
        name: tuple(
            part.strip()
            for part in who[i].text_input(label, key=f"rq_{name}", placeholder="any; a, b").split(",")
            if part.strip()
        )
        for i, (name, label) in enumerate(ATTRIBUTION_LABELS.items())
    }

if linked is not None and (linked.start or linked.end):
    start, end = linked.start, linked.end
    if more[3].button("Use the sidebar's dates", key="rq_unlink", help="Drop the time range the link carried"):
        st.query_params.clear()
        st.session_state.pop("rq_link", None)
        st.rerun()
else:
    start, end = day_window(*data.date_range())
filters = explorer.RequestFilters(
    start=start,
    end=end,
    models=tuple(models),
    providers=tuple(providers),
    success=OUTCOMES[outcome],
    error_types=tuple(errors),
    request_types=tuple(types),
    languages=tuple(languages),
    min_latency_ms=latency or None,
    **attribution,
)
span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" if start and end else "all time"
st.caption(f"Newest first, {explorer.PAGE_SIZE} a page, {span}.")

# Pages are a stack of cursors; any change of filters starts again at the newest.
if st.session_state.get("rq_filters") != filters:
    st.session_state["rq_filters"] = filters
    st.session_state["rq_cursors"] = []
cursors: list[str] = st.session_state["rq_cursors"]
try:
    page = explorer.find_requests(data.engine(), filters, after=cursors[-1] if cursors else None)
except InvalidInput as error:
    st.error(str(error))
    st.stop()

if not page.rows:
    st.info("No request matches these filters in this time range. Widen the dates in the sidebar or drop a filter.")
else:
    frame = pd.DataFrame(page.rows, columns=explorer.COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    frame["outcome"] = frame["error_type"].where(~frame["success"], "ok").fillna("failed")
    frame["response_time_ms"] = frame["response_time_ms"].round()
    shown = frame[
        [
            "timestamp",
            "model_id",
            "outcome",
            "response_time_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "quality_rating",
            "request_type",
            "language",
            "user",
            "team",
            "app",
            "api_key",
            "environment",
            "tags",
            "provider",
            "request_id",
        ]
    ]
    st.dataframe(
        shown,
        key="rq_table",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(shown), 600),
        column_config={
            **view.COLUMN_LABELS,
            "timestamp": st.column_config.DatetimeColumn("Time (UTC)", format="YYYY-MM-DD HH:mm:ss", pinned=True),
            "model_id": st.column_config.TextColumn("Model", pinned=True),
            "outcome": st.column_config.TextColumn("Outcome", help="ok, or the error type of a failed request"),
            "response_time_ms": st.column_config.NumberColumn("Latency (ms)", format="localized"),
            "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.6f", help="Empty: no usage reported"),
            "quality_rating": st.column_config.NumberColumn("Rating (0-5)", format="%.1f"),
            "request_type": "Type",
            "language": "Language",
            "request_id": "Request id",
            "user": "User",
            "team": "Team",
            "app": "App",
            "api_key": st.column_config.TextColumn("API key", help="Its alias, or a fingerprint of a secret key"),
            "environment": "Environment",
            "tags": "Tags",
        },
    )
nav = st.columns([1, 1, 4, 2])
if nav[0].button("‹ Newer", key="rq_newer", disabled=not cursors, width="stretch"):
    cursors.pop()
    st.rerun()
if nav[1].button("Older ›", key="rq_older", disabled=page.next is None, width="stretch"):
    cursors.append(page.next or "")
    st.rerun()
nav[2].caption(f"Page {len(cursors) + 1}" + ("" if page.next else " (the last)"))
nav[3].download_button(
    "Download CSV (raw rows)",
    lambda: "".join(explorer.requests_csv(data.engine(), filters)).encode("utf-8"),
    file_name=f"requests-{datetime.now(UTC):%Y%m%d-%H%M}.csv",
    mime="text/csv",
    key="rq_download",
    icon=":material/download:",
    help=f"Every request matching the filters (up to {explorer.CSV_LIMIT:,}), newest first, with all its columns: "
    "the raw data, not only this page.",
)
