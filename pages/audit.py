"""Audit: every registry, budget and account change, who made it and when, with filters."""

import streamlit as st

from ui import access, data, view

access.page_guard()
st.title("Audit trail")
st.caption(
    "Every change to the registry, budgets and accounts, from this dashboard, the CLI or the Python API. Times in UTC."
)
engine = data.engine()
version = data.data_version()
trail = data.audit_trail(engine, version, None)
if trail.empty:
    st.info(
        "No changes recorded yet. Edits on the Registry and Budgets pages, and `python -m manager models set` "
        "or `budgets add`, appear here."
    )
    st.stop()

columns = st.columns(3)
kinds = columns[0].multiselect("Kind", sorted(trail["entity"].unique()), key="audit_kinds", placeholder="All kinds")
actors = columns[1].multiselect("Who", sorted(trail["actor"].unique()), key="audit_actors", placeholder="Everyone")
search = columns[2].text_input("Model, budget or account contains", key="audit_search")
shown = trail
if kinds:
    shown = shown[shown["entity"].isin(kinds)]
if actors:
    shown = shown[shown["actor"].isin(actors)]
if search.strip():
    shown = shown[shown["entity_id"].str.contains(search.strip(), case=False, regex=False)]
st.caption(f"{len(shown):,} of {len(trail):,} changes")
view.table(
    shown,
    key="audit_log_table",
    file_name="audit-trail.csv",
    column_config={**view.COLUMN_LABELS, "entity": "Kind", "entity_id": "Model, budget or account"},
)
