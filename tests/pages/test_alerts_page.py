"""The Alerts page: channels added with their errors named, secrets never shown, the delivery log."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api, budgets
from tests.pages.conftest import shown
from tests.utils.factories import record
from tests.utils.receivers import http_receiver


def alerts_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/alerts.py").run()
    return at


def submit(at: AppTest, label: str) -> AppTest:
    return next(b for b in at.button if b.label == label).click().run()


def test_without_channels_the_page_says_nobody_is_told_and_offers_the_form(
    app: Callable[[], AppTest], engine: Engine
) -> None:
    at = alerts_page(app)
    assert not at.exception
    assert "No alert channels yet" in at.info[0].value
    assert "Nothing to tell yet" in at.info[1].value


def test_a_bad_channel_names_its_field_and_a_good_one_hides_its_secret(
    app: Callable[[], AppTest], engine: Engine
) -> None:
    at = alerts_page(app)
    at.text_input(key="channel_name").input("ops")
    at.text_input(key="channel_target").input("not a url")
    submit(at, "Add channel")
    assert [shown(e.value) for e in at.error] == ["target: 'not a url' is not an http:// or https:// URL"]
    assert api.list_channels(engine) == []
    at.text_input(key="channel_target").input("https://hooks.example.com/ops")
    at.text_input(key="channel_secret").input("whsec-very-secret")
    submit(at, "Add channel")
    assert not at.exception
    table = at.dataframe[0].value
    assert table["name"].tolist() == ["ops"] and table["secret"].tolist() == ["set"]
    assert all("whsec-very-secret" not in str(v) for v in table.to_numpy().ravel())


def test_the_log_shows_each_delivery_and_sends_what_is_due(app: Callable[[], AppTest], engine: Engine) -> None:
    at_moment = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    with http_receiver() as hook:
        api.add_channel(engine, {"name": "hook", "kind": "webhook", "target": hook.url("/h")})
        api.ingest_records(
            engine, [record(request_id="p", timestamp=(at_moment - timedelta(minutes=20)).isoformat(), cost="3")]
        )
        api.add_budget(engine, {"name": "day", "scope": "global", "period": "daily", "amount_usd": 2.0})
        budgets.budget_status(engine, at_moment)
        at = alerts_page(app)
        log = at.dataframe[1].value
        assert set(log["status"]) == {"pending"} and set(log["channel"]) == {"hook"}
        submit(at, "Send what is due now (2 pending)")
        assert not at.exception
        assert set(at.dataframe[1].value["status"]) == {"delivered"}
        assert len(hook.requests) == 2
