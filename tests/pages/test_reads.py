"""A cold render of each page reads the registry once and each rollup grain it needs once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import streamlit as st
from sqlalchemy import Engine, event
from streamlit.testing.v1 import AppTest

from manager import api

PAGES = ["overview", "usage", "spend", "performance", "budgets", "health", "whatif", "registry", "audit"]
ROLLUPS = ("usage_hourly", "usage_daily", "usage_model_hourly", "usage_model_daily")


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Collect every SQL statement any engine of this process runs while the test does."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def row_reads(statements: list[str]) -> Counter[str]:
    """Return how many SELECTs read rows of each table (the data span's MIN and MAX seeks are not row reads)."""
    counts: Counter[str] = Counter()
    for statement in statements:
        text = statement.lstrip().upper()
        if text.startswith("SELECT") and "MIN(" not in text and "MAX(" not in text:
            counts.update(set(re.findall(r"FROM (\w+)", statement)))
    return counts


@pytest.mark.parametrize("page", PAGES)
def test_a_cold_render_reads_each_table_once(
    app: Callable[[], AppTest], live: Engine, statements: list[str], page: str
) -> None:
    api.add_budget(live, {"name": "month", "scope": "global", "period": "monthly", "amount_usd": 1.0, "hard": True})
    at = app().run()
    st.cache_data.clear()
    statements.clear()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception
    reads = row_reads(statements)
    assert reads["model_configurations"] == (0 if page == "audit" else 1), page
    assert reads["budgets"] <= 1, page
    for table in ROLLUPS:
        assert reads[table] <= 1, (page, table)
    assert (sum(reads[t] for t in ROLLUPS) > 0) == (page not in ("registry", "audit")), page
