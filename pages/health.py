"""Health: status per model and provider with reasons, and a 48-hour timeline."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from manager import api
from pages import access, common

WINDOWS = {"1 hour": 1, "3 hours": 3, "6 hours": 6, "24 hours": 24}
COLOURS = {
    "disabled": "#1f2937",
    "idle": "#e5e7eb",
    "healthy": "#22c55e",
    "maintenance": "#60a5fa",
    "degraded": "#facc15",
    "unhealthy": "#ef4444",
}

access.page_guard()
st.title("Health")
engine = common.engine()
version = common.data_version()
minute = common.this_minute()

window = st.selectbox(
    "Trailing window",
    list(WINDOWS),
    key="health_window",
    help="Error rate and p95 latency are judged over this window, at hourly resolution.",
)
models = common.model_health(engine, version, minute, WINDOWS[window])
status, reason = api.system_health(models)
show = {
    "healthy": st.success,
    "idle": st.info,
    "maintenance": st.info,
    "degraded": st.warning,
    "unhealthy": st.error,
}.get(status, st.info)
show(f"System: **{status}** ({common.plain(reason)})", icon=common.STATE_ICONS.get(status))
st.caption(
    "Degraded from 5% errors, unhealthy from 25% (with at least 20 requests); degraded when p95 latency is "
    "over twice the model's 7-day baseline or a hard budget covering it is exhausted."
)

st.subheader("Models")
model_table = pd.DataFrame([m.as_dict() for m in models])
common.table(
    model_table,
    key="health_models",
    file_name="health-models.csv",
    column_config={
        **common.COLUMN_LABELS,
        "status": "Status",
        "reason": st.column_config.TextColumn("Reason", width="large"),
        "error_rate": st.column_config.NumberColumn("Error rate", format="percent"),
    },
)

st.subheader("Providers")
providers = api.provider_health(models)
common.table(
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
timeline = common.health_timeline(engine, version, minute)
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
        title="Status per hour (each hour judged on its trailing hour)", xaxis_title="Hour (UTC)", yaxis_title="Model"
    )
    st.plotly_chart(heatmap, key="health_timeline_chart")
    common.table(
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
