"""Where the manager's database lives, from the environment."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("data") / "manager.db"


def database_url(explicit: str | None = None) -> str:
    """Return the database URL: the explicit one, else DATABASE_URL, else the SQLite default."""
    if explicit:
        return explicit
    from_env = os.environ.get("DATABASE_URL", "").strip()
    if from_env:
        return from_env
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"
