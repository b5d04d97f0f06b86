from collections.abc import Callable

from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from manager import api
from tests.pages.conftest import shown

EDITOR = "registry_editor"


def registry_page(app: Callable[[], AppTest]) -> AppTest:
    at = app().run()
    at.switch_page("pages/registry.py").run()
    return at


def row_of(engine: Engine, model_id: str) -> int:
    return [m["model_id"] for m in api.list_models(engine)].index(model_id)


def test_registry_lists_every_model(app: Callable[[], AppTest], engine: Engine) -> None:
    at = registry_page(app)
    assert not at.exception
    assert list(at.dataframe[0].value["model_id"]) == [m["model_id"] for m in api.list_models(engine)]


def test_an_edit_in_the_table_reaches_the_database_and_the_audit(app: Callable[[], AppTest], engine: Engine) -> None:
    at = registry_page(app)
    at.session_state[EDITOR] = {
        "edited_rows": {row_of(engine, "deepseek-chat"): {"priority": 9}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="save_registry").click().run()
    assert not at.exception and not at.error
    assert api.get_model(engine, "deepseek-chat")["priority"] == 9
    assert api.audit_trail(engine).iloc[0]["field"] == "priority"


def test_an_invalid_edit_shows_an_error_and_saves_nothing(app: Callable[[], AppTest], engine: Engine) -> None:
    at = registry_page(app)
    at.session_state[EDITOR] = {
        "edited_rows": {
            row_of(engine, "deepseek-chat"): {"priority": 2},
            row_of(engine, "mistral:latest"): {"temperature": 7},
        },
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    at.button(key="save_registry").click().run()
    assert [shown(e.value) for e in at.error] == ["row mistral:latest: temperature: 7 is out of range (allowed 0 to 2)"]
    assert api.get_model(engine, "deepseek-chat")["priority"] == 6


def test_a_new_row_is_added_with_catalog_prices(app: Callable[[], AppTest], engine: Engine) -> None:
    at = registry_page(app)
    at.session_state[EDITOR] = {
        "edited_rows": {},
        "deleted_rows": [],
        "added_rows": [{"model_id": "gpt-4o-mini", "provider": "openai", "name": "Mini"}],
    }
    at.run()
    at.button(key="save_registry").click().run()
    assert not at.error
    assert api.get_model(engine, "gpt-4o-mini")["price"] != "unpriced"


def test_registry_page_on_a_database_with_traffic(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = registry_page(app)
    assert not at.exception
    assert len(at.dataframe[0].value) == 5


def test_column_groups_show_prices_and_wait_for_pending_edits(app: Callable[[], AppTest], engine: Engine) -> None:
    at = registry_page(app)
    at.radio(key="registry_columns").set_value("Prices").run()
    assert not at.exception
    assert "host_cost_per_hour" in at.dataframe[0].value.columns
    at.session_state[EDITOR] = {
        "edited_rows": {row_of(engine, "deepseek-chat"): {"cost_per_1k_input": 0.0003}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert at.radio(key="registry_columns").disabled
    at.button(key="save_registry").click().run()
    assert not at.error
    assert api.get_model(engine, "deepseek-chat")["cost_per_1k_input"] == 0.0003
