from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, export, usage
from manager.window import read_window


def test_empty_database_offers_demo_data_and_loading_it_shows_kpis(app: Callable[[], AppTest], engine: Engine) -> None:
    at = app().run()
    assert "No requests are stored yet" in at.info[0].value
    at.button(key="load_demo").click().run()
    assert not at.exception
    assert at.metric[0].label == "Requests"
    assert int(at.metric[0].value.replace(",", "")) > 0


def test_kpis_match_the_manager_for_the_default_range(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    expected = usage.kpis(read_window(seeded, date(2026, 2, 8), date(2026, 3, 9)))
    assert not at.exception
    assert [m.value for m in at.metric[:2]] == [f"{expected.requests:,}", f"${expected.cost_usd:,.2f}"]
    assert at.get("plotly_chart")


def test_changing_the_date_range_changes_the_figures(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    at.date_input(key="date_range").set_value((date(2026, 3, 5), date(2026, 3, 5))).run()
    expected = usage.kpis(read_window(seeded, date(2026, 3, 5), date(2026, 3, 5)))
    assert at.metric[0].value == f"{expected.requests:,}"


def test_a_range_without_traffic_says_so(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    at.date_input(key="date_range").set_value((date(2025, 1, 1), date(2025, 1, 2))).run()
    assert "No requests in these days" in at.info[0].value


def test_model_table_lists_every_model_with_traffic(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    table = at.dataframe[0].value
    assert set(table["model_id"]) == {m["model_id"] for m in api.list_models(seeded)}
    assert export.frame_csv(table).splitlines()[0].startswith("model_id,provider,requests")


def test_requests_without_usage_are_counted_and_said_to_be_left_out(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    expected = usage.kpis(read_window(seeded, date(2026, 2, 8), date(2026, 3, 9)))
    assert expected.usage_unknown > 0  # the demo's streamed calls without usage reporting
    assert any(
        f"{expected.usage_unknown:,} of {expected.requests:,} requests reported no token usage" in c.value
        for c in at.caption
    )
    table = at.dataframe[0].value
    assert int(table["requests_without_usage"].sum()) == expected.usage_unknown
