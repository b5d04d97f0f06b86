"""Shared page code: the app shell (navigation, sidebar, sign-in gate), cached reads, and drawing helpers."""
