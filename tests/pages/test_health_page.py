import json
from collections.abc import Callable

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, health


def health_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/health.py").run()
    return at


def test_idle_system_without_traffic(app: Callable[[], AppTest], engine: Engine) -> None:
    at = health_page(app)
    assert not at.exception
    assert at.info[0].value.startswith("System: **idle**")
    assert set(at.dataframe[0].value["status"]) == {"idle"}


def test_models_table_matches_the_manager(app: Callable[[], AppTest], live: Engine) -> None:
    at = health_page(app)
    expected = {m.model_id: m.status for m in health.model_health(live)}
    table = at.dataframe[0].value
    assert dict(zip(table["model_id"], table["status"], strict=True)) == expected
    assert table["reason"].str.len().min() > 0


def test_a_wider_window_counts_more_requests(app: Callable[[], AppTest], live: Engine) -> None:
    at = health_page(app)
    narrow = at.dataframe[0].value["requests"].sum()
    at.selectbox(key="health_window").set_value("24 hours").run()
    assert at.dataframe[0].value["requests"].sum() > narrow


def test_timeline_heatmap_covers_48_hours_of_every_model(app: Callable[[], AppTest], live: Engine) -> None:
    at = health_page(app)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap"
    assert len(heatmap["y"]) == 5
    assert len(at.dataframe[2].value) == 48 * 5


def test_providers_table_names_the_worst_model(app: Callable[[], AppTest], live: Engine) -> None:
    api.update_model(live, "deepseek-chat", {"status": "maintenance"})
    at = health_page(app)
    providers = at.dataframe[1].value.set_index("provider")
    assert providers.loc["deepseek", "status"] == "maintenance"
