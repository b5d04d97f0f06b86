"""What-if: choose weights and limits, see who would be picked, and replay past traffic under that policy."""

from __future__ import annotations

import json

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from manager import selection, whatif
from manager.errors import InvalidInput
from manager.models import ModelCategory
from ui import access, data, view

ANY = "any"
LABELS = {
    "quality": "Quality",
    "reliability": "Reliability",
    "language": "Language",
    "cost": "Cost",
    "speed": "Speed",
    "category": "Category",
    "priority": "Priority",
}

access.page_guard()
st.title("What-if")
st.caption(
    "Pick the weights and limits a router would use. The ranking shows who would serve a request now; the "
    "replay shows what the sidebar's days would have cost, how fast and how good they would have been, and "
    "whether each budget would have held. Nothing is changed."
)
start, end = data.date_range()

if "scenarios" not in st.session_state:
    st.session_state["scenarios"] = {}

# The controls on the left, the ranking they change on the right: both on the first screen.
controls, ranking_side = st.columns([2, 3], gap="large")
with controls:
    st.subheader("Policy")
    st.markdown("**Weights** (relative; unset ones keep their defaults)")
    weights = {
        name: st.slider(LABELS[name], 0.0, 1.0, float(selection.DEFAULT_WEIGHTS[name]), 0.05, key=f"weight_{name}")
        for name in selection.WEIGHT_NAMES
    }
    with st.expander("Limits (0 means none)"):
        category = st.selectbox(
            "Request category",
            [ANY] + [c.value for c in ModelCategory],
            key="whatif_category",
            help="Used by the live ranking; the replay takes each segment's own category.",
        )
        language = st.text_input(
            "Language",
            key="whatif_language",
            placeholder="any, e.g. fr",
            help="Used by the live ranking; the replay takes each segment's own language.",
        )
        max_cost = st.number_input(
            "Max cost per 1k tokens (USD)", min_value=0.0, value=0.0, step=0.0005, format="%.4f", key="whatif_max_cost"
        )
        max_p95 = st.number_input("Max p95 latency (ms)", min_value=0.0, value=0.0, step=100.0, key="whatif_max_p95")
        min_quality = st.slider("Min quality (0-1)", 0.0, 1.0, 0.0, 0.05, key="whatif_min_quality")
        experimental = st.checkbox("Consider experimental models", key="whatif_experimental")

try:
    policy = selection.Policy(
        category=None if category == ANY else category,
        language=language.strip().lower() or None,
        max_cost_per_1k=max_cost or None,
        max_p95_ms=max_p95 or None,
        min_quality=min_quality or None,
        include_experimental=experimental,
        weights=weights,
    )
except InvalidInput as error:
    for problem in error.problems:
        st.error(view.plain(problem))
    st.stop()

at = data.this_minute()
window = data.window(whatif.reads(at), at)
chosen = selection.select_in(window, policy)
with ranking_side:
    st.subheader("Live ranking")
    if not chosen.ranking:
        st.warning("No model passes these limits. Relax a limit to see a ranking.")
    else:
        contributions = pd.DataFrame(
            [
                {"model_id": r.model_id, "factor": LABELS[f], "weighted_score": v}
                for r in chosen.ranking
                for f, v in r.weighted.items()
            ]
        )
        bars = px.bar(
            contributions,
            y="model_id",
            x="weighted_score",
            color="factor",
            orientation="h",
            title="Score by factor (weighted; longest bar wins)",
            labels={"model_id": "Model", "weighted_score": "Weighted score (0-1)", "factor": "Factor"},
            category_orders={"model_id": [r.model_id for r in chosen.ranking]},
        )
        bars.update_layout(legend={"orientation": "h", "y": -0.25}, height=420)
        st.plotly_chart(bars, key="ranking_chart")
        st.caption(
            f"Top choice: **{view.plain(chosen.ranking[0].model_id)}** (routing score {chosen.ranking[0].score:.3f})."
        )
    if chosen.excluded:
        view.table(
            pd.DataFrame(chosen.excluded, columns=["model_id", "reason"]),
            key="excluded_table",
            file_name="excluded-models.csv",
            column_config={"model_id": "Excluded model", "reason": "Why"},
        )

st.subheader(f"Replay {start:%d %b %Y} to {end:%d %b %Y} (UTC)")
if not data.has_traffic():
    st.info("No traffic to replay yet. Load demo data from the Overview page, or ingest logs.")
    st.stop()
result = data.replay(window, policy)
if result.segments.empty:
    st.info("No requests in these days. Widen the date range in the sidebar.")
    st.stop()

actual, projected, change = result.actual, result.projected, result.change_pct
cards = st.columns(4)
cards[0].metric(
    "Cost",
    f"${projected['cost_usd']:,.2f}",
    border=True,
    delta=None if change["cost_usd"] is None else f"{change['cost_usd']:+.1f}% vs ${actual['cost_usd']:,.2f}",
    delta_color="inverse",
)
cards[1].metric(
    "Avg latency",
    f"{projected['avg_response_time_ms']:,.0f} ms",
    border=True,
    delta=f"{change['avg_response_time_ms']:+.1f}%" if change["avg_response_time_ms"] is not None else None,
    delta_color="inverse",
)
cards[2].metric(
    "Success rate",
    f"{projected['success_rate']:.2%}",
    border=True,
    delta=f"{(projected['success_rate'] - actual['success_rate']) * 100:+.2f} pts",
)
cards[3].metric(
    "Avg rating",
    "n/a" if projected["avg_quality_rating"] is None else f"{projected['avg_quality_rating']:.2f}",
    border=True,
    delta=None
    if actual["avg_quality_rating"] is None or projected["avg_quality_rating"] is None
    else f"{projected['avg_quality_rating'] - actual['avg_quality_rating']:+.2f}",
)

st.caption(view.plain(result.confidence_note()))

segments = result.segments
shown = segments.head(15)
label = shown["request_type"] + " / " + shown["language"]
compare = go.Figure(
    [
        go.Bar(
            name="Actual",
            x=label,
            y=shown["actual_cost_usd"],
            hovertemplate="%{x}<br>$%{y:,.4f}<extra>Actual</extra>",
        ),
        go.Bar(
            name="Projected",
            x=label,
            y=shown["projected_cost_usd"],
            customdata=shown["chosen_model"],
            hovertemplate="%{x}<br>$%{y:,.4f} on %{customdata}<extra>Projected</extra>",
            # A segment projected at $0 (a free model) has no bar to see: say so where the bar would be.
            text=["$0" if cost == 0 else "" for cost in shown["projected_cost_usd"]],
            textposition="outside",
        ),
    ]
)
compare.update_layout(
    title="Cost per segment: actual versus projected",
    barmode="group",
    xaxis_title="Request type / language",
    yaxis_title="Cost (USD)",
    yaxis_tickprefix="$",
)
st.plotly_chart(compare, key="replay_chart")
view.table(
    segments,
    key="replay_table",
    file_name=f"whatif-replay-{start}-{end}.csv",
    column_config={
        "request_type": "Request type",
        "language": "Language",
        "requests": view.COLUMN_LABELS["requests"],
        "input_tokens": view.COLUMN_LABELS["input_tokens"],
        "output_tokens": view.COLUMN_LABELS["output_tokens"],
        "actual_cost_usd": st.column_config.NumberColumn("Actual cost (USD)", format="$%.4f"),
        "chosen_model": "Chosen model",
        "fallbacks": "Fallbacks",
        "projected_cost_usd": st.column_config.NumberColumn("Projected cost (USD)", format="$%.4f"),
        "change_pct": st.column_config.NumberColumn("Change (%)", format="%+.1f"),
        "output_ratio": st.column_config.NumberColumn(
            "Output ×", format="%.2f", help="Output tokens per request of the chosen model against the traffic served"
        ),
        "input_ratio": st.column_config.NumberColumn("Input ×", format="%.2f"),
        "calibrated": st.column_config.CheckboxColumn("Calibrated", help="Projected from the model's own traffic"),
        "calibration": "Calibration",
        "projected_input_tokens": st.column_config.NumberColumn("Projected input tokens", format="localized"),
        "projected_output_tokens": st.column_config.NumberColumn("Projected output tokens", format="localized"),
        "projected_latency_ms": st.column_config.NumberColumn("Projected latency (ms)", format="%.0f"),
        "projected_success_rate": st.column_config.NumberColumn("Projected success", format="percent"),
        "projected_quality": st.column_config.NumberColumn("Projected rating", format="%.2f"),
        "figures_from": "Figures from",
    },
)
routes_side, litellm_side = st.columns(2)
routes_side.download_button(
    "Download routing table (JSON)",
    json.dumps(whatif.routing_table(result), indent=2),
    file_name="routing-table.json",
    mime="application/json",
    key="download_routes",
    icon=":material/alt_route:",
    width="stretch",
)
litellm_side.download_button(
    "Download LiteLLM config (YAML)",
    data.litellm_yaml(window, chosen, result) if chosen.ranking else "",
    file_name="litellm-config.yaml",
    mime="application/yaml",
    key="download_litellm",
    icon=":material/settings_ethernet:",
    disabled=not chosen.ranking,
    width="stretch",
    help="The LiteLLM proxy's model_list and router_settings: `route` follows the live ranking, "
    "`route:<type>:<language>` each segment's route above, falling back in the policy's order.",
)

st.subheader("Budgets under this policy")
if result.budgets.empty:
    st.info("No budgets to check. Add some on the Budgets page.")
else:
    view.table(
        result.budgets,
        key="replay_budgets",
        file_name=f"whatif-budgets-{start}-{end}.csv",
        column_config={
            "name": "Budget",
            "scope": "Scope",
            "period": "Period",
            "periods": "Periods in window",
            "amount_usd": st.column_config.NumberColumn("Amount (USD)", format="dollar"),
            "actual_worst_usd": st.column_config.NumberColumn("Worst period, actual (USD)", format="dollar"),
            "projected_worst_usd": st.column_config.NumberColumn("Worst period, projected (USD)", format="dollar"),
            "held_actual": st.column_config.CheckboxColumn("Held"),
            "held_projected": st.column_config.CheckboxColumn("Would hold"),
        },
    )

st.subheader("Quality versus price")
board = whatif.selection_board(chosen, policy)
if not board.empty:
    pareto = px.scatter(
        board,
        x="price_per_1k_usd",
        y="quality",
        color="chosen",
        symbol="chosen",
        text="model_id",
        hover_name="model_id",
        title="Quality versus blended price per 1k tokens (eligible models)",
        labels={"price_per_1k_usd": "Price per 1k tokens (USD)", "quality": "Quality (0-1)", "chosen": "Top choice"},
        size_max=14,
    )
    pareto.update_traces(marker={"size": 14}, textposition="top center")
    line = board.iloc[whatif.frontier_points(board)]
    pareto.add_trace(
        go.Scatter(
            x=line["price_per_1k_usd"],
            y=line["quality"],
            mode="lines",
            name="Pareto frontier",
            line={"dash": "dash", "color": "#555"},
        )
    )
    pareto.update_layout(xaxis_tickformat="$.2~g")
    st.plotly_chart(pareto, key="whatif_pareto")

st.subheader("Scenarios")


def save_scenario() -> None:
    name = st.session_state.get("scenario_name", "").strip() or f"Scenario {len(st.session_state['scenarios']) + 1}"
    st.session_state["scenarios"][name] = whatif.scenario_summary(result, policy)


columns = st.columns([3, 1, 1])
columns[0].text_input("Scenario name", key="scenario_name", placeholder="e.g. cheapest that speaks the language")
columns[1].button("Save scenario", key="save_scenario", on_click=save_scenario, type="primary")
columns[2].button("Clear all", key="clear_scenarios", on_click=lambda: st.session_state["scenarios"].clear())
if st.session_state["scenarios"]:
    comparison = pd.DataFrame(st.session_state["scenarios"])
    comparison.insert(0, "measure", comparison.index)
    view.table(comparison, key="scenario_table", file_name="whatif-scenarios.csv", column_config={"measure": "Measure"})
else:
    st.caption("Save the current policy to compare it side by side with others.")
