"""Registry: edit the models in a table; every change is validated whole and audited."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from manager import api
from manager.errors import InvalidInput
from manager.export import json_text
from manager.models import ModelCategory, ModelSize, ModelStatus
from ui import access, data, view

EDITOR_KEY = "registry_editor"

access.page_guard()
st.title("Registry")
st.caption(
    "Edit cells, add rows at the bottom, or select rows and delete them; then save. "
    "Nothing is written while any row is invalid. Empty prices are filled from the public catalog."
)
access.read_only_notice()
editable = access.can_edit()
engine = data.engine()
version = data.data_version()
table = data.models(engine, version).copy()
if not table.empty:
    table["supported_languages"] = table["supported_languages"].map(", ".join)
    table["tags"] = table["tags"].map(", ".join)
    table["metadata"] = table["metadata"].map(json_text)

# No bounds on the number columns: the editor would clamp an out-of-range value without a word, while
# saving reports it ("row 3: priority: 11 is outside 1 to 10", from the ranges the table itself declares).
column_config: dict[str, Any] = {
    "model_id": st.column_config.TextColumn("Model ID", required=True, max_chars=128),
    "provider": st.column_config.TextColumn("Provider", required=True),
    "name": st.column_config.TextColumn("Name", required=True),
    "version": st.column_config.TextColumn("Version"),
    "status": st.column_config.SelectboxColumn("Status", options=[s.value for s in ModelStatus], required=True),
    "category": st.column_config.SelectboxColumn("Category", options=[c.value for c in ModelCategory], required=True),
    "size": st.column_config.SelectboxColumn("Size", options=[s.value for s in ModelSize], required=True),
    "enabled": st.column_config.CheckboxColumn("Enabled"),
    "priority": st.column_config.NumberColumn("Priority", step=1),
    "cost_per_1k_input": st.column_config.NumberColumn("$ / 1k input", format="%.6f"),
    "cost_per_1k_output": st.column_config.NumberColumn("$ / 1k output", format="%.6f"),
    "cost_per_1k_cache_read": st.column_config.NumberColumn(
        "$ / 1k cache read", format="%.6f", help="Empty: cached input costs what input does"
    ),
    "cost_per_1k_cache_write": st.column_config.NumberColumn(
        "$ / 1k cache write", format="%.6f", help="Empty: cache writes cost what input does"
    ),
    "host_cost_per_hour": st.column_config.NumberColumn(
        "Host $ / hour",
        format="%.2f",
        help="Self-hosted models: what the host costs an hour; rankings and what-if spread it over the traffic",
    ),
    "max_tokens": st.column_config.NumberColumn("Max tokens", step=1),
    "supports_streaming": st.column_config.CheckboxColumn("Streaming"),
    "primary_language": st.column_config.TextColumn("Primary language"),
    "supported_languages": st.column_config.TextColumn("Languages", help="Comma-separated codes, e.g. en, fr"),
    "quality_score": st.column_config.NumberColumn("Quality (0-1)", format="%.2f"),
    "avg_response_time": st.column_config.NumberColumn("Avg response (ms)", format="%.0f"),
    "tags": st.column_config.TextColumn("Tags", help="Comma-separated"),
    "metadata": st.column_config.TextColumn("Metadata (JSON)"),
    "temperature": st.column_config.NumberColumn("Temperature", format="%.2f"),
    "top_p": st.column_config.NumberColumn("Top p", format="%.2f"),
    "frequency_penalty": st.column_config.NumberColumn("Freq. penalty"),
    "presence_penalty": st.column_config.NumberColumn("Pres. penalty"),
    "price": st.column_config.TextColumn("Price", help="'unpriced' means no price is known: costs cannot be computed"),
    "created_at": st.column_config.DatetimeColumn("Created (UTC)"),
    "updated_at": st.column_config.DatetimeColumn("Updated (UTC)"),
}
# Groups of columns that fit 1440 px, the model's id pinned on the left of each; "All columns" shows every one.
GROUPS = {
    "Essentials": ["model_id", "provider", "status", "enabled", "price", "category", "priority", "quality_score"],
    "Prices": [
        "model_id",
        "price",
        "cost_per_1k_input",
        "cost_per_1k_output",
        "cost_per_1k_cache_read",
        "cost_per_1k_cache_write",
        "host_cost_per_hour",
    ],
    "Identity and limits": [
        "model_id",
        "name",
        "version",
        "size",
        "max_tokens",
        "supports_streaming",
        "avg_response_time",
        "primary_language",
        "supported_languages",
    ],
    "Sampling": ["model_id", "temperature", "top_p", "frequency_penalty", "presence_penalty"],
    "Tags and metadata": ["model_id", "tags", "metadata", "created_at", "updated_at"],
}
GROUPS["All columns"] = [*GROUPS["Essentials"], *(c for c in column_config if c not in GROUPS["Essentials"])]
# Switching groups redraws the editor and would drop its pending edits: it waits until they are saved.
pending_edits = any(
    (st.session_state.get(EDITOR_KEY) or {}).get(part) for part in ("edited_rows", "added_rows", "deleted_rows")
)
group = st.radio(
    "Columns",
    list(GROUPS),
    horizontal=True,
    key="registry_columns",
    label_visibility="collapsed",
    disabled=pending_edits,
    help="Save or undo your edits to switch columns" if pending_edits else None,
)
column_config["model_id"] = st.column_config.TextColumn("Model ID", required=True, max_chars=128, pinned=True)
st.data_editor(
    table,
    key=EDITOR_KEY,
    num_rows="dynamic" if editable else "fixed",
    hide_index=True,
    column_config=column_config,
    column_order=GROUPS[group],
    disabled=["price", "created_at", "updated_at"] if editable else list(column_config),
    width="stretch",
)
if pending_edits:
    st.caption("Unsaved edits: save them (or reload the page to drop them) before switching to other columns.")

unpriced = table[table["price"] == "unpriced"]["model_id"].tolist() if not table.empty else []
if unpriced:
    st.warning(f"Unpriced (no cost can be computed for their requests): {view.plain(', '.join(unpriced))}")


def _pending() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[str]]:
    state = st.session_state.get(EDITOR_KEY) or {}
    ids = table["model_id"].tolist()
    updates = {ids[int(i)]: _clean(changes) for i, changes in state.get("edited_rows", {}).items()}
    additions = [_clean(row) for row in state.get("added_rows", [])]
    additions = [row for row in additions if row]
    deletions = [ids[int(i)] for i in state.get("deleted_rows", [])]
    return updates, additions, deletions


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    # Cells left empty in the editor arrive as None/NaN: leave those fields to their defaults.
    read_only = {"price", "created_at", "updated_at"}
    return {
        k: v for k, v in row.items() if k not in read_only and not (v is None or (isinstance(v, float) and pd.isna(v)))
    }


def _save() -> None:
    updates, additions, deletions = _pending()
    try:
        api.apply_registry_edits(
            engine, updates=updates, additions=additions, deletions=deletions, actor=access.actor()
        )
    except InvalidInput as error:
        st.session_state["registry_errors"] = error.problems
        return
    st.session_state.pop("registry_errors", None)
    st.session_state.pop(EDITOR_KEY, None)
    st.session_state["registry_saved"] = len(updates) + len(additions) + len(deletions)


@st.dialog("Delete models?")
def _confirm_delete(model_ids: list[str]) -> None:
    st.write(f"Remove {view.plain(', '.join(model_ids))} from the registry? Their request history stays.")
    if st.button("Delete and save", key="confirm_delete", type="primary"):
        _save()
        st.rerun()


updates, additions, deletions = _pending()
pending = len(updates) + len(additions) + len(deletions)
if st.button(
    f"Save {pending} change(s)" if pending else "Save changes",
    key="save_registry",
    type="primary",
    disabled=not pending or not editable,
):
    if deletions:
        _confirm_delete(deletions)
    else:
        _save()
        if "registry_errors" not in st.session_state:
            st.rerun()

for problem in st.session_state.get("registry_errors", []):
    st.error(view.plain(problem))
if st.session_state.get("registry_errors"):
    st.caption("Nothing was saved. Fix the rows above and save again.")
if saved := st.session_state.pop("registry_saved", None):
    st.toast(f"Saved {saved} change(s)")
    st.success(f"Saved {saved} change(s).")

st.subheader("Audit trail")
trail = data.audit_trail(engine, version, "model")
if trail.empty:
    st.info("No changes recorded yet. Every edit made here or with `python -m manager models` appears here.")
else:
    view.table(
        trail,
        key="audit_table",
        file_name="registry-audit.csv",
        column_config={**view.COLUMN_LABELS, "entity_id": "Model"},
    )
