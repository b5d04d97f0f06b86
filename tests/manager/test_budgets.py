import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import Engine

from manager import api, budgets, export
from manager.cli import main
from manager.errors import InvalidInput
from tests.utils.factories import record

AT = datetime(2026, 3, 18, 12, tzinfo=UTC)


def spend(engine: Engine, model_id: str, moments: list[datetime], cost: str, prefix: str) -> None:
    api.ingest_records(
        engine,
        [
            record(request_id=f"{prefix}-{i}", model_id=model_id, timestamp=m.isoformat(), cost=cost)
            for i, m in enumerate(moments)
        ],
    )


def budget(engine: Engine, **fields: object) -> dict:
    data = {"name": "b", "scope": "global", "period": "monthly", "amount_usd": 10.0, **fields}
    return api.add_budget(engine, data)


def status_of(engine: Engine, name: str = "b", at: datetime = AT) -> budgets.BudgetStatus:
    return next(s for s in budgets.budget_status(engine, at) if s.name == name)


def hours(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(count)]


def test_spend_counts_only_the_scope_and_the_period(engine: Engine) -> None:
    spend(engine, "deepseek-chat", hours(datetime(2026, 3, 2, tzinfo=UTC), 10), "0.25", "in")
    spend(engine, "deepseek-chat", hours(datetime(2026, 2, 27, tzinfo=UTC), 5), "1.0", "before")
    spend(engine, "claude-3-haiku-20240307", hours(datetime(2026, 3, 3, tzinfo=UTC), 4), "2.0", "other")
    budget(engine, scope="provider:deepseek")
    assert status_of(engine).spent_usd == 2.5


def test_category_scope_covers_the_models_in_it(engine: Engine) -> None:
    spend(engine, "deepseek-chat", hours(datetime(2026, 3, 2, tzinfo=UTC), 3), "1.0", "c")  # conversation
    spend(engine, "mistral:latest", hours(datetime(2026, 3, 2, tzinfo=UTC), 3), "1.0", "g")  # general
    budget(engine, scope="category:conversation")
    assert status_of(engine).spent_usd == 3.0


def test_crossings_are_recorded_once_with_the_hour(engine: Engine) -> None:
    spend(engine, "deepseek-chat", hours(datetime(2026, 3, 2, tzinfo=UTC), 10), "1.0", "x")
    budget(engine, amount_usd=10.0)
    first = status_of(engine)
    again = status_of(engine)
    assert first.state == "alert"
    assert [(a["level"], a["crossed_at"]) for a in again.alerts] == [
        ("warning", datetime(2026, 3, 2, 7, tzinfo=UTC)),
        ("alert", datetime(2026, 3, 2, 9, tzinfo=UTC)),
    ]
    assert len(budgets.alerts_table(engine)) == 2


def test_ingest_records_crossings_as_they_happen(engine: Engine) -> None:
    budget(engine, period="daily", amount_usd=1.0)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    spend(engine, "deepseek-chat", [now] * 9, "0.1", "live")
    assert budgets.alerts_table(engine)["level"].tolist() == ["warning"]


def test_hard_budget_is_exhausted_and_blocks_its_models(engine: Engine) -> None:
    spend(engine, "deepseek-chat", hours(datetime(2026, 3, 18, tzinfo=UTC), 5), "1.0", "h")
    budget(engine, scope="model:deepseek-chat", period="daily", amount_usd=5.0, hard=True)
    assert status_of(engine).state == "exhausted"
    reason = budgets.blocked_models(engine, AT)["deepseek-chat"]
    assert reason == "hard budget 'b' (model:deepseek-chat, daily) is exhausted: $5.00 of $5.00"


def attributed_spend(engine: Engine, team: str, moments: list[datetime], cost: str, prefix: str, **more: str) -> None:
    api.ingest_records(
        engine,
        [
            record(request_id=f"{prefix}-{i}", timestamp=m.isoformat(), cost=cost, team=team, **more)
            for i, m in enumerate(moments)
        ],
    )


def test_a_team_budget_counts_that_teams_requests_on_every_model(engine: Engine) -> None:
    attributed_spend(engine, "growth", hours(datetime(2026, 3, 2, tzinfo=UTC), 6), "0.5", "g")
    attributed_spend(engine, "search", hours(datetime(2026, 3, 2, tzinfo=UTC), 6), "2.0", "s")
    spend(engine, "claude-3-haiku-20240307", hours(datetime(2026, 3, 3, tzinfo=UTC), 4), "1.0", "none")
    budget(engine, scope="team:growth", amount_usd=3.6)
    status = status_of(engine)
    assert (status.spent_usd, status.state) == (3.0, "warning")
    # Kept per day: the crossing is dated by the end of the day it happened in.
    assert [(a["level"], a["crossed_at"]) for a in status.alerts] == [("warning", datetime(2026, 3, 3, tzinfo=UTC))]


def test_a_teams_hard_budget_excludes_models_for_that_teams_requests_only(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    attributed_spend(engine, "growth", hours(datetime(2026, 3, 18, tzinfo=UTC), 5), "1.0", "g", tags="beta")
    budget(engine, name="growth-daily", scope="team:growth", period="daily", amount_usd=5.0, hard=True)
    budget(engine, name="beta-daily", scope="tag:beta", period="daily", amount_usd=100.0, hard=True)
    anyone = [r.model_id for r in api.select_model(engine, at=AT).ranking]
    growth = api.select_model(engine, at=AT, team="growth")
    assert anyone and growth.ranking == []
    reason = "hard budget 'growth-daily' (team:growth, daily) is exhausted: $5.00 of $5.00"
    assert {why for model_id, why in growth.excluded if model_id in anyone} == {reason}
    assert [r.model_id for r in api.select_model(engine, at=AT, team="search").ranking] == anyone
    assert [r.model_id for r in api.select_model(engine, at=AT, tags=["beta"]).ranking] == anyone  # beta holds
    # The command line asks now, when the day's spend is past: the budget holds again, for growth too.
    capsys.readouterr()
    assert main(["--db", db_url, "select", "--team", "growth", "--tag", "beta", "--json"]) == 0
    assert [r["model_id"] for r in json.loads(capsys.readouterr().out)["ranking"]]
    assert main(["--db", db_url, "select", "--team", "growth\x07"]) == 2
    assert capsys.readouterr().err.strip() == "error: column team: holds a control character"


def test_a_budget_on_a_secret_looking_key_keeps_only_its_fingerprint(engine: Engine) -> None:
    added = budget(engine, scope="api_key:sk-proj-Q8h2kd93JfLz0aXv7Tq1b2c3")
    assert added["scope"] == "api_key:sk-...b2c3"
    api.ingest_records(
        engine, [record(api_key="sk-proj-Q8h2kd93JfLz0aXv7Tq1b2c3", cost="1.5", timestamp=AT.isoformat())]
    )
    assert status_of(engine).spent_usd == 1.5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"scope": "org:ml"},
            "scope: 'org:ml' is not global, provider:NAME, model:ID, category:NAME or one of user:VALUE, "
            "team:VALUE, api_key:VALUE, app:VALUE, environment:VALUE, tag:VALUE",
        ),
        ({"scope": "tag:a;b"}, "scope: 'tag:a;b' names more than one tag; a budget covers one"),
        ({"scope": "team:ml\x1b[31m"}, "scope: team holds a control character"),
        ({"amount_usd": -1}, "amount_usd: -1 must be greater than 0"),
        ({"period": "yearly"}, "period: 'yearly' is not one of 'daily', 'weekly' or 'monthly'"),
        ({"warn_threshold": 0.9, "alert_threshold": 0.5}, "warn_threshold: 0.9 is above alert_threshold 0.5"),
        ({"colour": "red"}, "colour: unknown field"),
    ],
)
def test_bad_budgets_are_refused_naming_the_field(engine: Engine, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        budget(engine, **fields)
    assert caught.value.problems == [message]
    assert api.list_budgets(engine) == []


def test_budget_changes_are_audited(engine: Engine) -> None:
    budget(engine)
    api.update_budget(engine, "b", {"amount_usd": 25.0}, actor="ana")
    entry = api.audit_trail(engine, entity="budget").iloc[0]
    assert (entry["actor"], entry["field"], entry["old_value"], entry["new_value"]) == (
        "ana",
        "amount_usd",
        "10.0",
        "25.0",
    )


def test_forecast_on_trending_traffic_lands_within_10_percent(engine: Engine) -> None:
    rng = np.random.default_rng(2)
    records, truth = [], Decimal(0)
    for day in range(60):
        moment = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=day)
        daily = (20 + 0.5 * day) * (0.6 if moment.weekday() >= 5 else 1.1)
        costs = rng.dirichlet(np.ones(24)) * daily
        for hour, cost in enumerate(costs):
            stamp = moment + timedelta(hours=hour, minutes=30)
            amount = Decimal(f"{cost:.6f}")
            if stamp.month == 3:
                truth += amount
            if stamp < AT:
                records.append(record(request_id=f"t-{day}-{hour}", timestamp=stamp.isoformat(), cost=str(amount)))
    api.ingest_records(engine, records)
    budget(engine, amount_usd=2000.0)
    assert status_of(engine).forecast_usd == pytest.approx(float(truth), rel=0.10)


def test_budgets_cli_add_list_status_remove(db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    spend(engine, "deepseek-chat", hours(datetime(2026, 3, 18, tzinfo=UTC), 4), "1.0", "cli")
    assert (
        main(
            [
                "--db",
                db_url,
                "budgets",
                "add",
                "--name",
                "day",
                "--scope",
                "global",
                "--period",
                "daily",
                "--amount",
                "5",
                "--hard",
            ]
        )
        == 0
    )
    main(["--db", db_url, "budgets", "status", "--at", "2026-03-18T12:00:00Z", "--json"])
    capsys.readouterr()
    main(["--db", db_url, "budgets", "status", "--at", "2026-03-18T12:00:00Z", "--json"])
    status = json.loads(capsys.readouterr().out)[0]
    assert {k: status[k] for k in ("name", "period_start", "amount_usd", "spent_usd", "percent", "state")} == {
        "name": "day",
        "period_start": "2026-03-18T00:00:00+00:00",
        "amount_usd": 5.0,
        "spent_usd": 4.0,
        "percent": 0.8,
        "state": "warning",
    }
    assert [a["level"] for a in status["alerts"]] == ["warning"]
    assert set(status) >= {
        "period_end",
        "forecast_usd",
        "forecast_low_usd",
        "forecast_high_usd",
        "alerts",
        "scope",
        "period",
    }
    main(["--db", db_url, "budgets", "list", "--json"])
    assert [b["name"] for b in json.loads(capsys.readouterr().out)] == ["day"]
    assert main(["--db", db_url, "budgets", "remove", "day"]) == 0
    assert api.list_budgets(engine) == []


def test_export_budgets_writes_the_status_columns(engine: Engine) -> None:
    budget(engine)
    header = export.export_csv(engine, "budgets").splitlines()[0]
    assert header == (
        "name,scope,period,period_start,period_end,amount_usd,spent_usd,percent,forecast_usd,state,alerts,"
        "requests_without_cost"
    )


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        ("model:deepseek-chta", "model 'deepseek-chta' does not exist; models: claude-3-haiku-20240307, deepseek-chat"),
        ("provider:antropic", "provider 'antropic' does not exist; providers: anthropic, deepseek"),
        ("category:poetry", "category 'poetry' does not exist; categories: general"),
    ],
)
def test_a_scope_naming_nothing_that_exists_is_refused_with_the_valid_names(
    engine: Engine, scope: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        budget(engine, scope=scope)
    assert api.list_budgets(engine) == []
