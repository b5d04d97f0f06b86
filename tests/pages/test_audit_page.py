from collections.abc import Callable

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api


def audit_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/audit.py").run()
    return at


def test_lists_registry_and_budget_changes(app: Callable[[], AppTest], engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"priority": 2}, actor="ana")
    api.add_budget(engine, {"name": "b", "scope": "global", "period": "daily", "amount_usd": 5}, actor="bo")
    at = audit_page(app)
    assert not at.exception
    assert {"model", "budget"} <= set(at.dataframe[0].value["entity"])


def test_filters_by_person(app: Callable[[], AppTest], engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"priority": 2}, actor="ana")
    api.add_budget(engine, {"name": "b", "scope": "global", "period": "daily", "amount_usd": 5}, actor="bo")
    at = audit_page(app)
    at.multiselect(key="audit_actors").set_value(["ana"]).run()
    table = at.dataframe[0].value
    assert list(table["actor"].unique()) == ["ana"]
    assert list(table["field"]) == ["priority"]
