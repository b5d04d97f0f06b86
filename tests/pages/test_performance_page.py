import base64
import json
from collections.abc import Callable
from datetime import date

import numpy as np
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import performance
from manager.window import read_window

WINDOW = (date(2026, 2, 8), date(2026, 3, 9))


def performance_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/performance.py").run()
    return at


def charts(at: AppTest) -> dict[str, dict]:
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figures}


def values(array: list | dict) -> list:
    """Return a trace's data, which Plotly may send as base64-encoded binary."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_empty_database_says_how_to_get_data(app: Callable[[], AppTest], engine: Engine) -> None:
    at = performance_page(app)
    assert not at.exception
    assert "No requests are stored yet" in at.info[0].value


def test_ranking_table_matches_the_manager(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    expected = performance.performance_report(read_window(seeded, *WINDOW))
    assert not at.exception
    assert at.dataframe[0].value["model_id"].tolist() == expected["model_id"].tolist()


def test_ranking_by_cost_per_request_puts_the_cheapest_first(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    at.selectbox(key="perf_rank_by").set_value("cost_per_request_usd").run()
    ranking = at.dataframe[0].value
    assert ranking["cost_per_request_usd"].is_monotonic_increasing
    assert ranking["rank"].tolist() == [1, 2, 3, 4, 5]


def test_percentile_choice_changes_the_latency_chart(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    at.selectbox(key="perf_percentile").set_value("p99").run()
    assert "p99 latency per day" in charts(at)


def test_pareto_chart_draws_the_frontier(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    figure = charts(at)["Quality versus cost (bubble = requests)"]
    frontier = next(t for t in figure["data"] if t["name"] == "Pareto frontier")
    report = performance.performance_report(read_window(seeded, *WINDOW)).set_index("model_id")
    expected = report.loc[performance.frontier(report.reset_index()), "cost_per_request_usd"].tolist()
    assert values(frontier["x"]) == expected


def test_drill_down_follows_the_chosen_model(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    at.selectbox(key="perf_model").set_value("llama2:latest").run()
    assert "Latency distribution of llama2:latest" in charts(at)
    expected = performance.performance_report(read_window(seeded, *WINDOW)).set_index("model_id").loc["llama2:latest"]
    assert at.metric[0].value == f"{int(expected['requests']):,}"


def test_the_ranking_puts_rank_model_and_score_first_and_pins_them(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = performance_page(app)
    ranking = at.dataframe[0]
    assert list(ranking.value.columns[:3]) == ["rank", "model_id", "score"]
    config = json.loads(ranking.proto.columns)
    assert all(config[column].get("pinned") for column in ("rank", "model_id", "score"))
