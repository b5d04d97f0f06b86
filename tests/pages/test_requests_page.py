from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import explorer
from manager.explorer import RequestFilters
from manager.window import data_span, day_window, default_days
from tests.pages.conftest import DEMO_END


def requests_page(app: Callable[[], AppTest], **params: str | list[str]) -> AppTest:
    at = app()
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    at.switch_page("pages/requests.py").run()
    return at


def test_empty_database_says_what_to_do(app: Callable[[], AppTest], engine: Engine) -> None:
    at = requests_page(app)
    assert not at.exception
    assert "No requests are stored yet" in at.info[0].value


def test_newest_hundred_first_then_older_pages(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = requests_page(app)
    assert not at.exception
    first = at.dataframe[0].value
    start, end = day_window(*default_days(data_span(seeded), DEMO_END.date()))
    expected = explorer.find_requests(seeded, RequestFilters(start=start, end=end)).rows
    assert len(first) == 100
    assert first["request_id"].tolist() == [r["request_id"] for r in expected]
    at.button(key="rq_older").click().run()
    second = at.dataframe[0].value
    assert set(second["request_id"]).isdisjoint(first["request_id"])
    assert second["timestamp"].max() <= first["timestamp"].min()
    at.button(key="rq_newer").click().run()
    assert at.dataframe[0].value["request_id"].tolist() == first["request_id"].tolist()


def test_failed_filter_shows_only_failures_with_their_error_type(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = requests_page(app)
    at.selectbox(key="rq_outcome").set_value("Failed").run()
    outcomes = set(at.dataframe[0].value["outcome"])
    assert outcomes and "ok" not in outcomes


def test_a_link_carries_its_filters(app: Callable[[], AppTest], seeded: Engine) -> None:
    link = RequestFilters(start=DEMO_END - timedelta(days=3), end=DEMO_END, models=("deepseek-chat",), success=False)
    at = requests_page(app, **link.query_string())
    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["model_id"]) == {"deepseek-chat"}
    assert "ok" not in set(table["outcome"])
    assert at.multiselect(key="rq_models").value == ["deepseek-chat"]


def test_a_bad_link_is_named_not_a_traceback(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = requests_page(app, outcome="sometimes")
    assert not at.exception
    assert "outcome: 'sometimes' is not success or failure" in at.error[0].value
