"""Page tests run the real app with AppTest against a fresh database of each backend."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import demo

DEMO_END = datetime(2026, 3, 10, tzinfo=UTC)
APP = str(Path(__file__).resolve().parents[2] / "app.py")


def shown(markdown: str) -> str:
    """Return Markdown source as a reader sees it: escapes undone, invisible link breakers dropped."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u200b", "")


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], AppTest]:
    """Return a factory of AppTests of app.py on the test's database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    return lambda: AppTest.from_file(APP, default_timeout=60)


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """Return the test's engine with ten days of demo traffic ending 2026-03-10."""
    demo.seed_demo(engine, days=10, requests=3000, seed=3, end=DEMO_END)
    return engine


@pytest.fixture
def live(engine: Engine) -> Engine:
    """Return the test's engine with two days of demo traffic ending now."""
    demo.seed_demo(engine, days=2, requests=2000, seed=8, end=datetime.now(UTC))
    return engine
