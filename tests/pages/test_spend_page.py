"""The Spend page, Usage stacked and filtered by attribution, and the Overview's top teams and users."""

import json
from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, spend
from manager.money import NANOS_PER_USD

WHOLE = (date(2026, 2, 1), date(2026, 3, 31))


def page(app: Callable[[], AppTest], script: str) -> AppTest:
    """Return the app on a page, its sidebar's days set to the whole of the demo traffic."""
    at = app().run()
    at.date_input(key="date_range").set_value(WHOLE).run()
    at.switch_page(script).run()
    return at


def test_the_spend_page_lists_teams_by_spend_with_their_exact_totals(
    app: Callable[[], AppTest], seeded: Engine
) -> None:
    at = page(app, "pages/spend.py")
    assert not at.exception
    table = at.dataframe[0].value
    expected = spend.totals_by_value(seeded, "team", *WHOLE)
    assert table["value"].tolist() == [team for team, _ in expected]
    assert table["requests"].tolist() == [s.requests for _, s in expected]
    assert table["cost_usd"].tolist() == [s.cost_nanos / NANOS_PER_USD for _, s in expected]


def test_one_team_shows_its_models_and_its_budget(app: Callable[[], AppTest], seeded: Engine) -> None:
    api.add_budget(seeded, {"name": "growth-cap", "scope": "team:growth", "period": "monthly", "amount_usd": 50})
    at = page(app, "pages/spend.py")
    at.selectbox(key="spend_value").set_value("growth").run()
    assert not at.exception
    assert at.subheader[0].value == "Team: growth"
    models = at.dataframe[1].value
    days = spend.value_days(seeded, "team", "growth", *WHOLE)
    assert models["requests"].sum() == days["requests"].sum()
    assert at.dataframe[2].value["name"].tolist() == ["growth-cap"]


def test_users_show_the_top_ten_then_other(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = page(app, "pages/spend.py")
    at.segmented_control(key="spend_dimension").set_value("user").run()
    values = at.dataframe[0].value["value"].tolist()
    assert len(values) == 11 and values[-1] == spend.OTHER


def test_usage_stacks_by_team_and_filters_to_one(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = page(app, "pages/usage.py")
    at.selectbox(key="usage_group_by").set_value("team").run()
    assert not at.exception
    teams = {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert teams == {team for team, _ in spend.totals_by_value(seeded, "team", *WHOLE)}
    at.selectbox(key="usage_attribution").set_value("team").run()
    at.selectbox(key="usage_value_team").set_value("growth").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["requests"].sum() == spend.value_total(seeded, "team", "growth", *WHOLE).requests
    assert set(table["group"]) <= {m["model_id"] for m in api.list_models(seeded)}


def test_the_overview_shows_the_top_teams_and_users(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = page(app, "pages/overview.py")
    assert not at.exception
    linked = [d.value for d in at.dataframe if "value_link" in d.value.columns]
    teams, users = linked
    assert teams["value"].tolist()[0] == spend.totals_by_value(seeded, "team", *WHOLE)[0][0]
    assert teams["value_link"].iloc[0].startswith("spend?dimension=team&value=")
    assert users["value"].tolist()[-1] == spend.OTHER and len(users) == 6
