import csv
import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from io import StringIO

import numpy as np
import pytest
from sqlalchemy import Engine

from manager import api, export, overview, performance, recommendations, usage, window
from manager.cli import main
from manager.window import read_window
from tests.utils.factories import generated_records, record

DAYS = (date(2026, 3, 1), date(2026, 3, 3))


@pytest.fixture
def traffic(engine: Engine) -> list[dict]:
    rows = generated_records(9000, seed=4)
    api.ingest_records(engine, rows)
    return rows


def test_performance_export_is_exact_and_percentiles_within_3_percent(engine: Engine, traffic: list[dict]) -> None:
    exported = {r["model_id"]: r for r in csv.DictReader(StringIO(export.export_csv(engine, "performance")))}
    for model_id in {r["model_id"] for r in traffic}:
        mine = [r for r in traffic if r["model_id"] == model_id]
        row = exported[model_id]
        ratings = [r["quality_rating"] for r in mine if r["quality_rating"] != ""]
        latencies = np.array([r["response_time_ms"] for r in mine])
        assert int(row["requests"]) == len(mine)
        assert float(row["success_rate"]) == sum(r["success"] == "true" for r in mine) / len(mine)
        assert Decimal(row["cost_usd"]) == sum(Decimal(r["cost"]) for r in mine)
        assert float(row["avg_quality_rating"]) == pytest.approx(sum(ratings) / len(ratings), rel=1e-12)
        for q in (50, 90, 95, 99):
            assert float(row[f"p{q}_response_time_ms"]) == pytest.approx(np.percentile(latencies, q), rel=0.03)


def test_performance_export_has_the_contracted_columns_and_ranks(engine: Engine, traffic: list[dict]) -> None:
    rows = list(csv.DictReader(StringIO(export.export_csv(engine, "performance"))))
    assert list(rows[0]) == [
        "model_id",
        "provider",
        "requests",
        "success_rate",
        "avg_response_time_ms",
        "p50_response_time_ms",
        "p90_response_time_ms",
        "p95_response_time_ms",
        "p99_response_time_ms",
        "avg_quality_rating",
        "cost_usd",
        "cost_per_request_usd",
        "rank",
        "hosting_usd",
        "cost_basis",
    ]
    assert [r["rank"] for r in rows] == ["1", "2", "3"]


def test_ranking_by_p95_puts_the_fastest_first(engine: Engine, traffic: list[dict]) -> None:
    report = performance.performance_report(read_window(engine, *DAYS), rank_by="p95_response_time_ms")
    assert report["p95_response_time_ms"].is_monotonic_increasing
    assert report["rank"].tolist() == [1, 2, 3]


def test_usage_series_by_language_sums_to_an_independent_count(engine: Engine, traffic: list[dict]) -> None:
    series = usage.usage_series(
        read_window(engine, *DAYS, usage.reads_for("day")), granularity="day", group_by="language"
    )
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for r in traffic:
        expected[(r["timestamp"][:10], r["language"])] += 1
    found = {
        (p.strftime("%Y-%m-%d"), g): n
        for p, g, n in zip(series["period"], series["group"], series["requests"], strict=True)
    }
    assert found == dict(expected)


def test_usage_series_filters_hold(engine: Engine, traffic: list[dict]) -> None:
    filters = window.Filters(providers=("deepseek",), request_types=("grammar",))
    series = usage.usage_series(read_window(engine, *DAYS, usage.reads_for("day")), group_by="model", filters=filters)
    wanted = [r for r in traffic if r["model_id"] == "deepseek-chat" and r["request_type"] == "grammar"]
    assert set(series["group"]) == {"deepseek-chat"}
    assert series["requests"].sum() == len(wanted)


def test_weekly_periods_start_on_monday(engine: Engine, traffic: list[dict]) -> None:
    series = usage.usage_series(read_window(engine, *DAYS, usage.reads_for("week")), granularity="week")
    assert {p.weekday() for p in series["period"]} == {0}


def test_errors_by_type_count_failed_requests(engine: Engine, traffic: list[dict]) -> None:
    errors = performance.errors_by_type(read_window(engine, *DAYS), "deepseek-chat")
    failed = sum(r["model_id"] == "deepseek-chat" and r["success"] == "false" for r in traffic)
    assert errors.to_dict("records") == [{"error_type": "timeout", "requests": failed}]


def test_latency_distribution_counts_every_request(engine: Engine, traffic: list[dict]) -> None:
    distribution = performance.latency_distribution(read_window(engine, *DAYS), "mistral:latest")
    assert distribution["requests"].sum() == sum(r["model_id"] == "mistral:latest" for r in traffic)
    assert (distribution["from_ms"] < distribution["to_ms"]).all()


def _rated(engine: Engine, model_id: str, rating: float, n: int, *, failed: int = 0, prefix: str = "") -> None:
    api.ingest_records(
        engine,
        [
            record(
                request_id=f"{prefix}{model_id}-{i}",
                model_id=model_id,
                quality_rating=rating,
                cost="",
                success="false" if i < failed else "true",
                error_type="timeout" if i < failed else "",
            )
            for i in range(n)
        ],
    )


def test_recommendations_name_each_problem_with_evidence(engine: Engine) -> None:
    api.update_model(engine, "mistral:latest", {"category": "conversation"})
    _rated(engine, "deepseek-chat", 3.0, 60, failed=12)
    _rated(engine, "mistral:latest", 4.0, 30)
    api.update_model(engine, "claude-3-haiku-20240307", {"cost_per_1k_input": 0.001})
    found = {
        (r.kind, r.model_id): r
        for r in recommendations.recommendations(read_window(engine, date(2026, 3, 1), date(2026, 3, 1)))
    }
    assert "3.00 of 5 over 60 ratings" in found[("low_rating", "deepseek-chat")].evidence
    assert "20.0% of 60 requests failed" in found[("high_error_rate", "deepseek-chat")].evidence
    cheaper = found[("cheaper_equivalent", "deepseek-chat")]
    assert cheaper.action == "move its traffic to mistral:latest"
    assert cheaper.usd_at_stake == pytest.approx(60 * (1000 * 0.00027 + 500 * 0.0011) / 1000)
    assert ("no_traffic", "llama2:latest") in found
    assert ("price_drift", "claude-3-haiku-20240307") in found


def test_system_overview_totals_and_breakdowns(engine: Engine, traffic: list[dict]) -> None:
    summary = overview.system_overview(read_window(engine, *DAYS))
    assert summary.total_requests == len(traffic)
    assert summary.by_provider["requests"].sum() == len(traffic)
    assert set(summary.by_category["category"]) == {"general", "conversation"}
    assert summary.top_performers["rank"].tolist() == [1, 2, 3]


def test_report_cli_prints_totals_and_recommendations(
    db_url: str, engine: Engine, traffic: list[dict], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--db", db_url, "report", "--from", "2026-03-01", "--to", "2026-03-03", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["total_requests"] == len(traffic)
    assert Decimal(str(data["total_cost_usd"])) == sum(Decimal(r["cost"]) for r in traffic)
    assert isinstance(data["recommendations"], list)
    assert (data["from"], data["to"]) == ("2026-03-01", "2026-03-03")


def test_report_covers_the_overview_pages_30_days_and_says_so(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    api.log_usage(engine, **record(request_id="old", timestamp="2026-01-01T10:00:00Z"))
    api.log_usage(engine, **record(request_id="new", timestamp="2026-03-10T10:00:00Z"))
    assert main(["--db", db_url, "report"]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line.startswith("2026-02-09 to 2026-03-10 (UTC): 1 request")
