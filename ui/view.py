"""Drawing helpers every page shares: user text shown as itself, tables with their CSV download, labels, icons."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pandas as pd
import streamlit as st

from manager.explorer import RequestFilters
from manager.export import frame_csv


@st.cache_data(show_spinner=False, max_entries=16)
def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a table as safe CSV bytes for a download button."""
    return frame_csv(frame).encode("utf-8")


# Characters Streamlit's Markdown gives a meaning to (links, emphasis, code, icons, colours, maths, HTML-like).
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>$|~:])")
# Characters that mean something only where a line starts: headings, lists, quotes, numbered lists.
_LINE_START = re.compile(r"^(\s*)([#+\->=]|\d+[.)])")
_AUTOLINK = re.compile(r"(?i)(\\:/|www\.|@)")


def plain(text: object) -> str:
    """Return user-controlled text (model ids, budget and account names, error types) to show as itself inside
    Markdown: st.warning, st.caption, st.toast, expander and button labels all render Markdown."""
    escaped = _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")
    escaped = _LINE_START.sub(lambda found: found.group(1) + found.group(2)[:-1] + "\\" + found.group(2)[-1], escaped)
    # GitHub-flavoured Markdown links bare addresses after escapes are undone: a zero-width space breaks them.
    return _AUTOLINK.sub(lambda found: found.group(0)[:-1] + "\u200b" + found.group(0)[-1], escaped)


def plain_html(text: object) -> str:
    """Return user-controlled text for a Plotly title, which renders a subset of HTML (links among it)."""
    return html.escape(str(text))


# Distinct colours, assigned to models in model_id order so that a model keeps its colour in every chart.
PALETTE = [
    "#4f46e5", "#f97316", "#10b981", "#e11d48", "#0ea5e9", "#a855f7", "#eab308", "#14b8a6",
    "#f43f5e", "#6366f1", "#84cc16", "#ec4899", "#06b6d4", "#d97706", "#8b5cf6", "#22c55e",
]  # fmt: skip


def model_colours(model_ids: Sequence[str]) -> dict[str, str]:
    """Return one colour per model: the registry's models (given in model_id order) first, the same everywhere."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted(model_ids))}


PERIOD_HALF = {"hour": timedelta(minutes=30), "day": timedelta(hours=12), "week": timedelta(days=3, hours=12)}


def period_start(moment: datetime, granularity: str) -> datetime:
    """Return the start of the period (hour, day or Monday-started week) holding a moment."""
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday()) if granularity == "week" else day


def mark_partial(figure: Any, periods: Sequence[Any], granularity: str, now: datetime) -> None:
    """Shade the period still under way when a chart reaches it, so that its lower figure is not read as a drop."""
    current = period_start(now.replace(tzinfo=None), granularity)
    shown = {pd.Timestamp(p).tz_localize(None) if pd.Timestamp(p).tzinfo else pd.Timestamp(p) for p in periods}
    if pd.Timestamp(current) not in shown:
        return
    half = PERIOD_HALF[granularity]
    figure.add_vrect(
        x0=current - half if granularity != "week" else current,
        x1=current + half if granularity != "week" else current + 2 * half,
        fillcolor="rgba(148, 163, 184, 0.18)",
        line_width=0,
        annotation_text={"hour": "this hour", "day": "today", "week": "this week"}[granularity] + ", so far",
        annotation_position="top left",
    )


LOG_TICKS = [v * 10**e for e in range(-1, 7) for v in (1, 2, 5)]


def latency_ticks(low_ms: float, high_ms: float) -> tuple[list[float], list[str]]:
    """Return 1-2-5 tick values and labels ('500 ms', '2 s') for a log latency axis spanning low..high."""
    values = [v for v in LOG_TICKS if low_ms / 2 <= v <= high_ms * 2] or LOG_TICKS[3:10]
    return values, [f"{v:g} ms" if v < 1000 else f"{v / 1000:g} s" for v in values]


EXPLORER = "pages/requests.py"


def explorer_url(filters: RequestFilters) -> str:
    """Return the relative URL of the Requests page showing these filters (for a link column in a table)."""
    return "requests?" + urlencode(filters.query_string(), doseq=True)


SPEND_PAGE = "pages/spend.py"


def spend_url(dimension: str, value: str) -> str:
    """Return the relative URL of the Spend page looking at one value (the value after '#', for a link column's
    display pattern `^.*#(.*)$`)."""
    wanted = {"dimension": dimension} if value.startswith("(") else {"dimension": dimension, "value": value}
    return "spend?" + urlencode(wanted) + "#" + quote(value)


def explorer_link(filters: RequestFilters, label: str) -> None:
    """Draw a link to the Requests page showing these filters, in the same tab."""
    st.page_link(EXPLORER, label=label, icon=":material/list_alt:", query_params=filters.query_string())


def table(frame: pd.DataFrame, *, key: str, file_name: str, column_config: dict[str, Any] | None = None) -> None:
    """Draw a table and a CSV download of exactly what it shows."""
    st.dataframe(frame, key=key, hide_index=True, column_config=column_config, width="stretch")
    st.download_button(
        "Download CSV (as shown)",
        csv_bytes(frame.drop(columns=[c for c in frame.columns if str(c).endswith("_link")])),
        file_name=file_name,
        mime="text/csv",
        key=f"download_{key}",
        icon=":material/download:",
    )


COLUMN_LABELS: dict[str, object] = {
    "model_id": "Model",
    "provider": "Provider",
    "category": "Category",
    "requests": st.column_config.NumberColumn("Requests", format="localized"),
    "successes": st.column_config.NumberColumn("Successes", format="localized"),
    "failures": st.column_config.NumberColumn("Failures", format="localized"),
    "input_tokens": st.column_config.NumberColumn("Input tokens", format="localized"),
    "output_tokens": st.column_config.NumberColumn("Output tokens", format="localized"),
    "cache_read_tokens": st.column_config.NumberColumn("Cache-read tokens", format="localized"),
    "cache_write_tokens": st.column_config.NumberColumn("Cache-write tokens", format="localized"),
    "reasoning_tokens": st.column_config.NumberColumn("Reasoning tokens", format="localized"),
    "requests_without_usage": st.column_config.NumberColumn(
        "No usage", format="localized", help="Requests that reported no token usage: tokens and cost not counted"
    ),
    "success_rate": st.column_config.NumberColumn("Success rate", format="percent"),
    "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="dollar"),
    "cost_per_request_usd": st.column_config.NumberColumn("Cost / request (USD)", format="$%.6f"),
    "cost_per_1k_tokens_usd": st.column_config.NumberColumn("Cost / 1k tokens (USD)", format="$%.6f"),
    "avg_response_time_ms": st.column_config.NumberColumn("Avg latency (ms)", format="%.0f"),
    "p50_response_time_ms": st.column_config.NumberColumn("p50 (ms)", format="%.0f"),
    "p90_response_time_ms": st.column_config.NumberColumn("p90 (ms)", format="%.0f"),
    "p95_response_time_ms": st.column_config.NumberColumn("p95 (ms)", format="%.0f"),
    "p99_response_time_ms": st.column_config.NumberColumn("p99 (ms)", format="%.0f"),
    "avg_quality_rating": st.column_config.NumberColumn("Avg rating (0-5)", format="%.2f"),
    "ratings": st.column_config.NumberColumn("Ratings", format="localized"),
    "score": st.column_config.ProgressColumn(
        "Performance score",
        min_value=0.0,
        max_value=1.0,
        format="%.3f",
        help="The composite of quality, success rate, p95 speed and cost",
    ),
    "rank": st.column_config.NumberColumn("Rank"),
    "at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "actor": "Who",
    "action": "Action",
    "field": "Field",
    "old_value": "Old value",
    "new_value": "New value",
    "usd_at_stake": st.column_config.NumberColumn("At stake (USD)", format="dollar"),
    "error_pct": st.column_config.NumberColumn("Errors", format="%.1f%%"),
    "share_pct": st.column_config.ProgressColumn("Share of spend", min_value=0.0, max_value=100.0, format="%.1f%%"),
    "cost_unknown": st.column_config.NumberColumn(
        "Cost unknown", format="localized", help="Requests that reported no token usage: their cost is not counted"
    ),
}


# The budget status table (budgets.status_table), wherever budgets are listed.
BUDGET_COLUMNS: dict[str, object] = {
    "name": "Budget",
    "scope": "Scope",
    "period": "Period",
    "state": "State",
    "spent_usd": st.column_config.NumberColumn("Spent (USD)", format="dollar"),
    "amount_usd": st.column_config.NumberColumn("Amount (USD)", format="dollar"),
    "percent": st.column_config.ProgressColumn("Used", min_value=0.0, max_value=1.0, format="percent"),
    "forecast_usd": st.column_config.NumberColumn("Forecast at period end (USD)", format="dollar"),
    "period_end": st.column_config.DatetimeColumn("Period ends (UTC)", format="YYYY-MM-DD HH:mm"),
    "hard": st.column_config.CheckboxColumn("Hard"),
    "requests_without_cost": st.column_config.NumberColumn(
        "Unknown cost", format="localized", help="Requests this period with no usage reported: not in Spent"
    ),
}


STATE_ICONS = {
    "ok": ":material/check_circle:",
    "warning": ":material/warning:",
    "alert": ":material/error:",
    "exhausted": ":material/block:",
    "healthy": ":material/check_circle:",
    "idle": ":material/bedtime:",
    "degraded": ":material/warning:",
    "unhealthy": ":material/error:",
    "maintenance": ":material/build:",
    "disabled": ":material/block:",
}
