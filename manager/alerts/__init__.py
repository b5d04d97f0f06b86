"""Alerts that reach people: channels, the events recorded for them, and the sender that delivers them."""
