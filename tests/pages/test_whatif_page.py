import json
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, selection, usage, window
from manager.window import read_window
from tests.pages.conftest import shown

WEIGHTS = ["quality", "reliability", "language", "cost", "speed", "category", "priority"]


def whatif_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/whatif.py").run()
    return at


def only(at: AppTest, name: str) -> AppTest:
    for weight in WEIGHTS:
        at.slider(key=f"weight_{weight}").set_value(1.0 if weight == name else 0.0)
    return at.run()


def chart(at: AppTest, title: str) -> dict:
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in figures if f["layout"]["title"]["text"].startswith(title))


def test_without_traffic_the_ranking_shows_and_the_replay_explains(app: Callable[[], AppTest], engine: Engine) -> None:
    at = whatif_page(app)
    assert not at.exception
    assert "No traffic to replay yet" in at.info[0].value
    assert chart(at, "Score by factor")


def test_all_weight_on_cost_puts_a_model_scoring_full_marks_on_cost_on_top(
    app: Callable[[], AppTest], live: Engine
) -> None:
    at = only(whatif_page(app), "cost")
    top = shown(at.caption[1].value).split("**")[1]
    ranking = api.select_model(live, selection.Policy(weights={w: float(w == "cost") for w in WEIGHTS})).ranking
    assert top == ranking[0].model_id
    assert ranking[0].scores["cost"] == 1.0  # free, or the cheapest paid model: a free one no longer zeroes it


def test_all_weight_on_quality_puts_the_best_rated_on_top(app: Callable[[], AppTest], live: Engine) -> None:
    at = only(whatif_page(app), "quality")
    best = api.select_model(live, selection.Policy(weights={w: float(w == "quality") for w in WEIGHTS})).ranking[0]
    assert f"Top choice: **{best.model_id}**" in shown(at.caption[1].value)


def test_a_language_limit_lists_the_models_it_excludes(app: Callable[[], AppTest], live: Engine) -> None:
    at = whatif_page(app)
    at.text_input(key="whatif_language").input("ja").run()
    excluded = at.dataframe[0].value
    assert set(excluded["reason"]) == {"does not support language ja"}


def test_replay_follows_the_policy(app: Callable[[], AppTest], live: Engine) -> None:
    at = only(whatif_page(app), "cost")
    cheap = at.metric[0].value
    at = only(at, "quality")
    assert at.metric[0].value != cheap
    replay = [d.value for d in at.dataframe if "chosen_model" in d.value.columns][0]
    assert replay["requests"].sum() == usage.kpis(read_window(live, *_window(live))).requests


def test_saved_scenarios_are_compared_side_by_side(app: Callable[[], AppTest], live: Engine) -> None:
    at = only(whatif_page(app), "cost")
    at.text_input(key="scenario_name").input("cheapest").run()
    at.button(key="save_scenario").click().run()
    at = only(at, "quality")
    at.text_input(key="scenario_name").input("best").run()
    at.button(key="save_scenario").click().run()
    table = at.dataframe[-1].value
    assert list(table.columns) == ["measure", "cheapest", "best"]
    assert (
        table.set_index("measure").loc["projected cost", "cheapest"]
        != table.set_index("measure").loc["projected cost", "best"]
    )


def _window(engine: Engine) -> tuple[date, date]:
    last = window.data_span(engine)[1]
    return last - timedelta(days=29), last


def test_the_replay_shows_its_interval_and_its_backtest(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = whatif_page(app)
    assert not at.exception
    note = next(shown(c.value) for c in at.caption if "90% interval" in shown(c.value))
    assert "Backtest: calibrated on the first" in note
    assert any({"output_ratio", "calibrated"} <= set(table.value.columns) for table in at.dataframe)
