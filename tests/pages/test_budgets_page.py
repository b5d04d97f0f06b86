import json
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, budgets
from tests.pages.conftest import shown
from tests.utils.factories import record


def budgets_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/budgets.py").run()
    return at


def submit(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_without_budgets_the_page_explains_and_offers_the_form(app: Callable[[], AppTest], engine: Engine) -> None:
    at = budgets_page(app)
    assert not at.exception
    assert "No budgets yet" in at.info[0].value
    assert at.text_input(key="add_budget_name")


def test_adding_a_budget_through_the_form_stores_it(app: Callable[[], AppTest], engine: Engine) -> None:
    at = budgets_page(app)
    at.text_input(key="add_budget_name").input("team")
    at.text_input(key="add_budget_scope").input("provider:anthropic")
    at.number_input(key="add_budget_amount").set_value(250.0)
    submit(at, "Add budget")
    assert not at.exception
    assert api.list_budgets(engine)[0] == {
        "name": "team",
        "scope": "provider:anthropic",
        "period": "monthly",
        "amount_usd": 250.0,
        "warn_threshold": 0.8,
        "alert_threshold": 1.0,
        "hard": False,
    }


def test_an_invalid_budget_shows_the_field_at_fault_and_saves_nothing(
    app: Callable[[], AppTest], engine: Engine
) -> None:
    at = budgets_page(app)
    at.text_input(key="add_budget_name").input("bad")
    at.text_input(key="add_budget_scope").input("org:ml")
    submit(at, "Add budget")
    assert [shown(e.value) for e in at.error] == [
        "scope: 'org:ml' is not global, provider:NAME, model:ID, category:NAME or one of user:VALUE, team:VALUE, "
        "api_key:VALUE, app:VALUE, environment:VALUE, tag:VALUE"
    ]
    assert api.list_budgets(engine) == []


def test_spend_chart_draws_budget_line_bands_and_forecast(app: Callable[[], AppTest], live: Engine) -> None:
    api.add_budget(live, {"name": "all", "scope": "global", "period": "monthly", "amount_usd": 1.0})
    at = budgets_page(app)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {t["name"] for t in figure["data"]} == {"Spent", "90% band", "Forecast", "Budget"}
    bands = [s for s in figure["layout"]["shapes"] if s["type"] == "rect"]
    assert [(b["y0"], b["y1"] > b["y0"]) for b in bands] == [(0.8, True), (1.0, True)]
    assert "Forecast method: linear trend" in at.caption[0].value


def spend_a_dollar_now(engine: Engine) -> None:
    """Store a $1 request this minute: today's spend passes a tiny budget whatever the time of day."""
    api.ingest_records(engine, [record(request_id="now", timestamp=datetime.now(UTC).isoformat(), cost="1.0")])


def test_crossed_budget_lists_its_alerts(app: Callable[[], AppTest], live: Engine) -> None:
    spend_a_dollar_now(live)
    api.add_budget(live, {"name": "tiny", "scope": "global", "period": "daily", "amount_usd": 0.01})
    at = budgets_page(app)
    alerts = at.dataframe[1].value
    assert set(alerts["level"]) == {"warning", "alert"}
    assert at.dataframe[0].value["state"].tolist() == ["alert"]


def test_overview_shows_active_budget_alerts(app: Callable[[], AppTest], live: Engine) -> None:
    spend_a_dollar_now(live)
    api.add_budget(live, {"name": "tiny", "scope": "global", "period": "daily", "amount_usd": 0.01})
    at = app().run()
    (status,) = [w.value for w in at.warning if w.value.startswith("System ")]
    assert "Budgets: alert tiny" in status


def test_a_budget_whose_period_holds_requests_of_unknown_cost_says_its_spend_excludes_them(
    app: Callable[[], AppTest], live: Engine
) -> None:
    api.add_budget(live, {"name": "all", "scope": "global", "period": "monthly", "amount_usd": 1000.0})
    status = next(s for s in budgets.budget_status(live) if s.name == "all")
    assert status.requests_without_cost > 0
    at = budgets_page(app)
    assert not at.exception
    assert any(f"Spend excludes {status.requests_without_cost:,} requests" in c.value for c in at.caption)


def test_the_forecast_shows_its_band_and_track_record(app: Callable[[], AppTest], live: Engine) -> None:
    api.add_budget(live, {"name": "all", "scope": "global", "period": "daily", "amount_usd": 1000.0})
    at = budgets_page(app)
    assert not at.exception
    assert any("(90% band $" in shown(c.value) for c in at.caption)
