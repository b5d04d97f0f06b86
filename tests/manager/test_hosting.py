"""Self-hosted models are not free: a host cost per hour, spread over their traffic in rankings and what-if."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine

from manager import api, performance, selection, whatif
from manager.errors import InvalidInput
from manager.window import read_window
from tests.utils.factories import record

DAY = date(2026, 3, 2)
AFTER = datetime(2026, 3, 5, tzinfo=UTC)


def serve(engine: Engine, model_id: str, n: int, *, prefix: str = "") -> None:
    api.ingest_records(
        engine,
        [
            record(
                request_id=f"{prefix}{model_id}-{i}",
                model_id=model_id,
                timestamp=f"2026-03-02T{i % 24:02d}:10:00+00:00",
                input_tokens=600,
                output_tokens=400,
                cost="",
            )
            for i in range(n)
        ],
    )


def test_host_cost_is_a_registry_field_with_a_range(engine: Engine) -> None:
    assert api.update_model(engine, "llama2:latest", {"host_cost_per_hour": 0.5})["host_cost_per_hour"] == 0.5
    with pytest.raises(InvalidInput, match="host_cost_per_hour"):
        api.update_model(engine, "llama2:latest", {"host_cost_per_hour": -1})


def test_ranking_spreads_the_host_over_the_requests_and_says_it_is_an_estimate(engine: Engine) -> None:
    api.update_model(engine, "llama2:latest", {"host_cost_per_hour": 0.5})
    serve(engine, "llama2:latest", 100)
    serve(engine, "deepseek-chat", 100)
    report = performance.performance_report(read_window(engine, DAY, DAY, at=AFTER)).set_index("model_id")
    llama = report.loc["llama2:latest"]
    assert llama["hosting_usd"] == pytest.approx(12.0)  # 24 hours at $0.50
    assert llama["cost_per_request_usd"] == pytest.approx(0.12)
    assert llama["cost_basis"] == "hosting estimate"
    assert report.loc["deepseek-chat", "cost_basis"] == "billed"
    assert pd.isna(report.loc["deepseek-chat", "hosting_usd"])


def test_selection_prices_a_hosted_model_by_its_host_per_1k_tokens(engine: Engine) -> None:
    serve(engine, "llama2:latest", 100)
    at = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)
    free = {r.model_id: r for r in selection.select_model(engine, at=at).ranking}["llama2:latest"]
    api.update_model(engine, "llama2:latest", {"host_cost_per_hour": 0.5})
    hosted = {r.model_id: r for r in selection.select_model(engine, at=at).ranking}["llama2:latest"]
    assert free.price_per_1k_usd == 0.0
    # Seven days and 23:59 of hosting at $0.50 over the 100,000 tokens it served.
    hours = 7 * 24 + 23 + 59 / 60
    assert hosted.price_per_1k_usd == pytest.approx(0.5 * hours / 100)
    assert hosted.scores["cost"] < free.scores["cost"] == 1.0


def test_what_if_counts_the_host_alike_as_served_and_as_projected(engine: Engine) -> None:
    api.update_model(engine, "llama2:latest", {"host_cost_per_hour": 0.5})
    for other in ("claude-3-haiku-20240307", "mistral-small-latest", "deepseek-chat", "mistral:latest"):
        api.update_model(engine, other, {"enabled": False})
    serve(engine, "llama2:latest", 100)
    result = whatif.replay(read_window(engine, DAY, DAY, whatif.reads(AFTER), at=AFTER))
    assert result.actual["cost_usd"] == pytest.approx(12.0)
    assert result.projected["cost_usd"] == pytest.approx(12.0)
