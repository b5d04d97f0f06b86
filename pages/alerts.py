"""Alerts: where they go (webhooks, Slack, email), what was told, and whether it arrived."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from manager import api
from manager.alerts import channels, events
from manager.errors import InvalidInput, ManagerError
from ui import access, data, view

access.page_guard()
st.title("Alerts")
st.caption(
    "Budget crossings (warning, alert, exhausted) and forecasts past a budget's amount, model and provider health "
    "changes that held for two hourly checks, and an hour's spend over three times the day before's average hour. "
    "Each is told once to every channel; a delivery that fails is retried, further apart each time, for 24 hours. "
    "The dashboard's start script runs the sender (`python -m manager alerts watch`); cron can run "
    "`python -m manager alerts send` instead."
)
access.read_only_notice()
read_only = not access.can_edit()
engine = data.engine()

st.subheader("Channels")
found = api.list_channels(engine)
if found:
    shown = ["name", "kind", "target", "secret"]
    if any(c["kind"] == "email" for c in found):
        shown += ["smtp_host", "smtp_port", "sender"]
    view.table(
        pd.DataFrame(found, columns=shown).fillna({"secret": "none"}),
        key="alert_channels",
        file_name="alert-channels.csv",
        column_config={
            "name": "Channel",
            "kind": "Kind",
            "target": "Sends to",
            "secret": st.column_config.TextColumn("Secret", help="A signing key or SMTP password; never shown"),
            "smtp_host": "SMTP server",
            "smtp_port": st.column_config.NumberColumn("Port", format="%d"),
            "sender": "From",
        },
    )
    chosen = st.selectbox("Channel", [c["name"] for c in found], key="alert_channel_pick")
    left, right, _ = st.columns([2, 2, 3])
    if left.button("Send a test message", key="test_channel", icon=":material/send:", disabled=read_only):
        try:
            api.test_channel(engine, chosen)
            st.success(f"Sent a test message to {view.plain(chosen)}.")
        except ManagerError as error:
            st.error(view.plain(str(error)))
    if right.button(f"Remove {view.plain(chosen)}", key="remove_channel", disabled=read_only):
        api.remove_channel(engine, chosen, actor=access.actor())
        st.toast(f"Removed channel {view.plain(chosen)}")
        st.rerun()
else:
    st.info("No alert channels yet: events are recorded below, but nobody is told. Add a webhook, Slack or email.")

with st.expander("Add a channel", icon=":material/add_alert:", expanded=not found):
    with st.form("add_channel", border=False):
        top = st.columns([1, 1, 2])
        name = top[0].text_input("Name", key="channel_name", placeholder="finance-slack")
        kind = top[1].selectbox("Kind", list(channels.KINDS), key="channel_kind")
        target = top[2].text_input(
            "Webhook URL or email address", key="channel_target", placeholder="https://hooks.slack.com/services/..."
        )
        secret = st.text_input(
            "Signing key (webhook) or SMTP password (email)",
            type="password",
            key="channel_secret",
            help="Stored for sending, never shown again. A webhook's body is signed with HMAC-SHA256.",
        )
        mail = st.columns(4)
        smtp_host = mail[0].text_input("SMTP server (email)", key="channel_smtp_host")
        smtp_port = mail[1].number_input("Port", min_value=1, max_value=65535, value=587, key="channel_smtp_port")
        smtp_user = mail[2].text_input("SMTP user", key="channel_smtp_user")
        sender = mail[3].text_input("From address", key="channel_sender")
        submitted = st.form_submit_button("Add channel", type="primary", disabled=read_only)
    if submitted:
        fields = {"name": name, "kind": kind, "target": target, "secret": secret or None}
        if kind == "email":
            fields |= {"smtp_host": smtp_host, "smtp_port": smtp_port, "smtp_user": smtp_user, "sender": sender}
        try:
            api.add_channel(engine, fields, actor=access.actor())
        except InvalidInput as error:
            for problem in error.problems:
                st.error(view.plain(problem))
        else:
            st.toast(f"Added channel {view.plain(name)}")
            st.rerun()

st.subheader("What was told")
log = events.log_table(events.recent(engine, 200))
if log.empty:
    st.info("Nothing to tell yet: no budget has crossed a threshold, and no health change or spend spike was seen.")
else:
    waiting = int((log["status"] == "pending").sum())
    if st.button(f"Send what is due now ({waiting} pending)", key="send_alerts", disabled=read_only or not waiting):
        result = api.send_alerts(engine)
        st.toast(f"{result['delivered']} delivered, {result['failed']} failed, {result['pending']} pending")
        st.rerun()
    view.table(
        log[["recorded_at", "status", "channel", "subject", "kind", "attempts", "last_error", "delivered_at"]],
        key="alert_log",
        file_name="alert-deliveries.csv",
        column_config={
            "recorded_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "kind": "Event",
            "subject": st.column_config.TextColumn("What", width="large"),
            "channel": "Channel",
            "status": "Delivery",
            "attempts": st.column_config.NumberColumn("Attempts", format="%d"),
            "last_error": "Last error",
            "delivered_at": st.column_config.DatetimeColumn("Delivered (UTC)", format="YYYY-MM-DD HH:mm"),
        },
    )
