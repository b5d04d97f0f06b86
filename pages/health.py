"""Health: status per model and provider with reasons, and a 48-hour timeline."""

from datetime import timedelta
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from manager import health, health_rules
from manager.explorer import RequestFilters
from ui import access, data, view

WINDOWS = {"1 hour": 1, "3 hours": 3, "6 hours": 6, "24 hours": 24}
COLOURS = {
    "disabled": "#1f2937",
    "inactive": "#6b7280",
    "deprecated": "#9ca3af",
    "idle": "#e5e7eb",
    "healthy": "#22c55e",
    "maintenance": "#60a5fa",
    "degraded": "#facc15",
    "unhealthy": "#ef4444",
}

access.page_guard()
st.title("Health")

window = st.selectbox(
    "Trailing window",
    list(WINDOWS),
    key="health_window",
    help="Error rate and p95 latency are judged over this window, at hourly resolution.",
)
thresholds = health_rules.HealthThresholds(window=timedelta(hours=WINDOWS[window]))
at = data.this_minute()
judged = data.window(health.reads(at, thresholds), at)
models = health.model_health(data.engine(), at, thresholds=thresholds, window=judged)
status, reason = health.system_health(models)
show = {
    "healthy": st.success,
    "idle": st.info,
    "maintenance": st.info,
    "degraded": st.warning,
    "unhealthy": st.error,
}.get(status, st.info)
show(f"System: **{status}** ({view.plain(reason)})", icon=view.STATE_ICONS.get(status))
st.caption(health_rules.describe_thresholds(thresholds))

st.subheader("Models")
model_table = pd.DataFrame([m.as_dict() for m in models], columns=health.COLUMNS)
# Each reason is a link to the requests behind it (the failures when errors are the trouble, else all of them
# in the hours judged); the link carries the reason after its '#', which is what the cell shows.
model_table["reason_link"] = [
    view.explorer_url(
        RequestFilters(
            start=at - timedelta(hours=m.window_hours),
            end=at + timedelta(minutes=1),
            models=(m.model_id,),
            success=False if "errors" in m.reason and m.status in ("degraded", "unhealthy") else None,
        )
    )
    + "#"
    + quote(m.reason)  # the grid decodes what the display pattern captures
    for m in models
]
first = ["status", "model_id", "reason_link", "reason", "requests", "error_rate", "p95_response_time_ms"]
view.table(
    model_table[first + [c for c in model_table.columns if c not in first]],
    key="health_models",
    file_name="health-models.csv",
    column_config={
        **view.COLUMN_LABELS,
        "status": "Status",
        "reason": None,  # shown as the link's text; the CSV keeps it as text
        "reason_link": st.column_config.LinkColumn(
            "Reason",
            display_text=r"^.*#(.*)$",
            width="large",
            help="Why, in short (Detail has the figures); click for the requests behind it",
        ),
        "error_rate": st.column_config.NumberColumn("Error rate", format="percent"),
        "window_hours": st.column_config.NumberColumn(
            "Window (h)", format="%g", help="Hours judged: the trailing window, widened when it held too few requests"
        ),
        "detail": st.column_config.TextColumn("Detail", width="large"),
    },
)

st.subheader("Providers")
providers = health.provider_health(models)
view.table(
    providers,
    key="health_providers",
    file_name="health-providers.csv",
    column_config={
        "provider": "Provider",
        "status": "Status",
        "models": "Enabled models",
        "reason": st.column_config.TextColumn("Reason", width="large"),
    },
)

st.subheader("Last 48 hours")
timeline = health.timeline(judged, at, thresholds=thresholds)
if timeline.empty:
    st.info("No models in the registry.")
else:
    order = list(COLOURS)
    grid = timeline.pivot(index="model_id", columns="hour", values="status")
    reasons = timeline.pivot(index="model_id", columns="hour", values="reason")
    codes = grid.apply(lambda column: column.map(order.index))
    scale = []
    for i, name in enumerate(order):
        scale += [(i / len(order), COLOURS[name]), ((i + 1) / len(order), COLOURS[name])]
    heatmap = go.Figure(
        go.Heatmap(
            z=codes.to_numpy(),
            x=grid.columns,
            y=grid.index,
            zmin=0,
            zmax=len(order),
            colorscale=scale,
            customdata=(grid + ": " + reasons).to_numpy(),
            hovertemplate="%{y}<br>%{x}<br>%{customdata}<extra></extra>",
            colorbar={"tickvals": [i + 0.5 for i in range(len(order))], "ticktext": order, "title": "Status"},
            xgap=1,
            ygap=2,
        )
    )
    heatmap.update_layout(
        title=f"Status per hour (each hour judged on its trailing {window}, widened when quiet)",
        xaxis_title="Hour (UTC)",
        yaxis_title="Model",
    )
    st.plotly_chart(heatmap, key="health_timeline_chart")
    view.table(
        timeline,
        key="health_timeline_table",
        file_name="health-timeline.csv",
        column_config={
            "hour": st.column_config.DatetimeColumn("Hour (UTC)", format="YYYY-MM-DD HH:mm"),
            "model_id": "Model",
            "status": "Status",
            "reason": "Reason",
        },
    )
