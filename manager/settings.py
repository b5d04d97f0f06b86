"""Where the manager's database lives, from the environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from manager.errors import ManagerError

DEFAULT_SQLITE_PATH = Path("data") / "manager.db"


def database_url(explicit: str | None = None) -> str:
    """Return the database URL: the explicit one, else DATABASE_URL, else the SQLite default."""
    if explicit:
        return explicit
    from_env = os.environ.get("DATABASE_URL", "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


BUSY_TIMEOUT_VARIABLE = "MANAGER_BUSY_TIMEOUT_SECONDS"
DEFAULT_BUSY_TIMEOUT_SECONDS = 30


def busy_timeout() -> float:
    """Return how long a SQLite writer waits for another's write lock before it gives up with a clear error."""
    text = os.environ.get(BUSY_TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = float(text) if text else DEFAULT_BUSY_TIMEOUT_SECONDS
    except ValueError:
        seconds = 0
    if not 0.1 <= seconds <= 3600:
        raise ManagerError(f"{BUSY_TIMEOUT_VARIABLE}: {text!r} is not a number of seconds from 0.1 to 3600")
    return seconds


SESSION_TIMEOUT_VARIABLE = "MANAGER_SESSION_TIMEOUT_MINUTES"
DEFAULT_SESSION_TIMEOUT_MINUTES = 30


def session_timeout() -> timedelta:
    """Return how long a dashboard session may sit idle before it must sign in again."""
    text = os.environ.get(SESSION_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return timedelta(minutes=DEFAULT_SESSION_TIMEOUT_MINUTES)
    try:
        minutes = float(text)
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= 7 * 24 * 60:
        raise ManagerError(f"{SESSION_TIMEOUT_VARIABLE}: {text!r} is not a number of minutes from 1 to 10080")
    return timedelta(minutes=minutes)


# Span attributes that carry a request's team, API key alias and tags; user, app and environment come from
# the conventions' own names (user.id or enduser.id, and the resource's service.name and
# deployment.environment.name).
OTLP_ATTRIBUTE_VARIABLES = {
    "team": "MANAGER_OTLP_TEAM_ATTRIBUTE",
    "api_key": "MANAGER_OTLP_API_KEY_ATTRIBUTE",
    "tags": "MANAGER_OTLP_TAGS_ATTRIBUTE",
}
DEFAULT_OTLP_ATTRIBUTES = {"team": "app.team", "api_key": "app.api_key", "tags": "app.tags"}


def otlp_attributes() -> dict[str, str]:
    """Return the span attribute that carries each of team, api_key and tags, as configured."""
    return {
        dimension: os.environ.get(variable, "").strip() or DEFAULT_OTLP_ATTRIBUTES[dimension]
        for dimension, variable in OTLP_ATTRIBUTE_VARIABLES.items()
    }
