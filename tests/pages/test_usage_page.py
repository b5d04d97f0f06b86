import json
from collections.abc import Callable

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, usage, window
from manager.window import read_window
from tests.pages.conftest import DEMO_END


def usage_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/usage.py").run()
    return at


def chart(at: AppTest, index: int = 0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def test_empty_database_says_how_to_get_data(app: Callable[[], AppTest], engine: Engine) -> None:
    at = usage_page(app)
    assert not at.exception
    assert "No requests are stored yet" in at.info[0].value


def test_stacks_by_model_by_default(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = usage_page(app)
    assert not at.exception
    assert chart(at)["layout"]["title"]["text"] == "Requests per day by model"
    assert {t["name"] for t in chart(at)["data"]} == {m["model_id"] for m in api.list_models(seeded)}


def test_grouping_by_provider_stacks_providers(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = usage_page(app)
    at.selectbox(key="usage_group_by").set_value("provider").run()
    assert {t["name"] for t in chart(at)["data"]} == {"anthropic", "deepseek", "mistral", "ollama"}


def test_filters_narrow_the_table_to_what_was_chosen(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = usage_page(app)
    at.multiselect(key="usage_languages").set_value(["fr"]).run()
    at.selectbox(key="usage_group_by").set_value("language").run()
    table = at.dataframe[0].value
    start, end = DEMO_END.date().replace(day=1), DEMO_END.date()
    expected = usage.usage_series(
        read_window(seeded, start.replace(month=2, day=8), end.replace(day=9), usage.reads_for("day")),
        group_by="language",
        filters=window.Filters(languages=("fr",)),
    )
    assert set(table["group"]) == {"fr"}
    assert table["requests"].sum() == expected["requests"].sum()


def test_measure_cost_draws_dollars(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = usage_page(app)
    at.selectbox(key="usage_measure").set_value("Cost").run()
    figure = chart(at)
    assert figure["layout"]["yaxis"]["title"]["text"] == "Cost (USD)"
    assert figure["layout"]["yaxis"]["tickprefix"] == "$"


def test_hourly_granularity_has_more_periods(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = usage_page(app)
    daily = at.dataframe[0].value["period"].nunique()
    at.selectbox(key="usage_granularity").set_value("hour").run()
    assert at.dataframe[0].value["period"].nunique() > daily
