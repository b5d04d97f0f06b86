import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from manager import api, selection, usage, whatif
from manager.cli import main
from manager.window import read_window
from tests.utils.factories import record

QUALITY_ONLY = {"quality": 1.0, "reliability": 0, "language": 0, "cost": 0, "speed": 0, "category": 0, "priority": 0}
COST_ONLY = {**dict.fromkeys(QUALITY_ONLY, 0.0), "cost": 1.0}
SEGMENTS = [
    ("translation", "fr"),
    ("conversation", "en"),
    ("grammar", "es"),
    ("vocabulary", "zh"),
    ("general", "de"),
    ("conversation", "zh"),
]
VERBOSITY = {
    "claude-3-haiku-20240307": 1.02,
    "mistral-small-latest": 0.98,
    "deepseek-chat": 1.03,
    "llama2:latest": 0.97,
    "mistral:latest": 1.0,
}


def demand(n: int, seed: int = 3) -> list[tuple[str, str, int, int]]:
    rng = np.random.default_rng(seed)
    return [(*SEGMENTS[i % len(SEGMENTS)], int(rng.integers(50, 2000)), int(rng.integers(20, 900))) for i in range(n)]


def routed(
    engine: Engine, weights: dict[str, float], start: datetime, prefix: str, wanted: list[tuple[str, str, int, int]]
) -> list[dict]:
    """Return the demand as served by the policy's top model per segment (output length varies by model)."""
    picks = {
        seg: api.select_model(
            engine, selection.Policy(category=seg[0], language=seg[1], weights=weights, require_price=True)
        )
        .ranking[0]
        .model_id
        for seg in SEGMENTS
    }
    rows = []
    for i, (kind, language, tokens_in, tokens_out) in enumerate(wanted):
        model = picks[(kind, language)]
        rows.append(
            record(
                request_id=f"{prefix}-{i}",
                timestamp=(start + timedelta(minutes=7 * i)).isoformat(),
                model_id=model,
                request_type=kind,
                language=language,
                input_tokens=tokens_in,
                output_tokens=round(tokens_out * VERBOSITY[model]),
                cost="",
                quality_rating="",
            )
        )
    return rows


def test_replay_predicts_another_policys_actual_cost_within_5_percent(engine: Engine) -> None:
    wanted = demand(1200)
    march, april = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    api.ingest_records(engine, routed(engine, QUALITY_ONLY, march, "a", wanted))
    api.ingest_records(engine, routed(engine, COST_ONLY, april, "b", wanted))
    predicted = whatif.replay_between(engine, date(2026, 3, 1), date(2026, 3, 31), selection.Policy(weights=COST_ONLY))
    truth = usage.kpis(read_window(engine, date(2026, 4, 1), date(2026, 4, 30))).cost_usd
    assert predicted.projected["cost_usd"] == pytest.approx(truth, rel=0.05)
    assert predicted.actual["cost_usd"] != pytest.approx(truth, rel=0.05)


def test_projected_cost_is_the_tokens_at_the_chosen_prices_exactly(engine: Engine) -> None:
    rows = routed(engine, QUALITY_ONLY, datetime(2026, 3, 1, tzinfo=UTC), "a", demand(300))
    api.ingest_records(engine, rows)
    result = whatif.replay_between(engine, date(2026, 3, 1), date(2026, 3, 31), selection.Policy(weights=COST_ONLY))
    prices = {
        m["model_id"]: (Decimal(str(m["cost_per_1k_input"])), Decimal(str(m["cost_per_1k_output"])))
        for m in api.list_models(engine)
    }
    for seg in result.segments.to_dict("records"):
        mine = [r for r in rows if (r["request_type"], r["language"]) == (seg["request_type"], seg["language"])]
        price_in, price_out = prices[seg["chosen_model"]]
        expected = (
            sum(Decimal(r["input_tokens"]) * price_in + Decimal(r["output_tokens"]) * price_out for r in mine) / 1000
        )
        assert Decimal(str(seg["projected_cost_usd"])) == expected


def test_replay_says_whether_each_budget_would_have_held(engine: Engine) -> None:
    api.ingest_records(engine, routed(engine, QUALITY_ONLY, datetime(2026, 3, 1, tzinfo=UTC), "a", demand(600)))
    actual = usage.kpis(read_window(engine, date(2026, 3, 1), date(2026, 3, 31))).cost_usd
    api.add_budget(engine, {"name": "month", "scope": "global", "period": "monthly", "amount_usd": actual * 0.8})
    budgets = whatif.replay_between(
        engine, date(2026, 3, 1), date(2026, 3, 31), selection.Policy(weights=COST_ONLY)
    ).budgets
    row = budgets.set_index("name").loc["month"]
    assert (bool(row["held_actual"]), bool(row["held_projected"])) == (False, True)


def test_routing_table_lists_each_segment_with_fallbacks(engine: Engine) -> None:
    api.ingest_records(engine, routed(engine, QUALITY_ONLY, datetime(2026, 3, 1, tzinfo=UTC), "a", demand(60)))
    table = whatif.routing_table(whatif.replay_between(engine, date(2026, 3, 1), date(2026, 3, 31)))
    segments = {(s["request_type"], s["language"]): s["models"] for s in table["segments"]}
    assert set(segments) == set(SEGMENTS)
    assert all(1 <= len(models) <= 3 for models in segments.values())
    assert table["weights"] == selection.DEFAULT_WEIGHTS


def test_select_model_skips_a_model_under_an_exhausted_hard_budget(engine: Engine) -> None:
    now = datetime.now(UTC)
    api.ingest_records(
        engine,
        [
            record(request_id=f"x{i}", model_id="claude-3-haiku-20240307", timestamp=now.isoformat(), cost="1")
            for i in range(3)
        ],
    )
    api.add_budget(
        engine, {"name": "cap", "scope": "provider:anthropic", "period": "daily", "amount_usd": 2.0, "hard": True}
    )
    chosen = api.select_model(engine, selection.Policy(weights=QUALITY_ONLY))
    assert "claude-3-haiku-20240307" not in [r.model_id for r in chosen.ranking]
    reason = dict(chosen.excluded)["claude-3-haiku-20240307"]
    assert reason.startswith("hard budget 'cap' (provider:anthropic, daily) is exhausted")


def test_select_cli_prints_ranking_and_exclusions(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--db",
            db_url,
            "select",
            "--category",
            "translation",
            "--language",
            "fr",
            "--weight",
            "cost=1",
            "--top",
            "2",
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(data["ranking"]) == 2
    assert set(data["ranking"][0]["scores"]) == {
        "quality",
        "reliability",
        "language",
        "cost",
        "speed",
        "category",
        "priority",
    }
    assert {"model_id": "llama2:latest", "reason": "does not support language fr"} in data["excluded"]


def test_select_cli_refuses_an_unknown_weight(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "select", "--weight", "colour=1"]) == 2
    assert "weight 'colour': unknown" in capsys.readouterr().err


def test_whatif_cli_prints_totals_and_writes_routes(
    db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.ingest_records(engine, routed(engine, QUALITY_ONLY, datetime(2026, 3, 1, tzinfo=UTC), "a", demand(60)))
    routes = tmp_path / "routes.json"
    code = main(
        [
            "--db",
            db_url,
            "whatif",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--weight",
            "cost=1",
            "--routes",
            str(routes),
            "--json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"cost_usd", "avg_response_time_ms", "success_rate", "avg_quality_rating"} <= set(data["projected"])
    assert data["actual"]["requests"] == 60
    assert json.loads(routes.read_text())["segments"]
