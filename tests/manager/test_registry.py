import pytest
from sqlalchemy import Engine

from manager import api, schema
from manager.errors import InvalidInput, NotFound

NEW = {"model_id": "gpt-4o-mini", "provider": "openai", "name": "GPT-4o mini"}


def test_init_loads_the_five_default_models_once(engine: Engine) -> None:
    assert schema.initialize(engine) == 0
    ids = [m["model_id"] for m in api.list_models(engine)]
    assert ids == [
        "claude-3-haiku-20240307",
        "deepseek-chat",
        "llama2:latest",
        "mistral-small-latest",
        "mistral:latest",
    ]


def test_a_removed_default_model_stays_removed_after_init(engine: Engine) -> None:
    api.remove_model(engine, "llama2:latest")
    assert schema.initialize(engine) == 0
    assert "llama2:latest" not in [m["model_id"] for m in api.list_models(engine)]


def test_cloud_defaults_carry_catalog_prices_and_local_ones_are_free(engine: Engine) -> None:
    haiku = api.get_model(engine, "claude-3-haiku-20240307")
    llama = api.get_model(engine, "llama2:latest")
    assert (haiku["cost_per_1k_input"], haiku["cost_per_1k_output"]) == (0.00025, 0.00125)
    assert llama["price"] == "free"


def test_added_model_gets_catalog_prices(engine: Engine) -> None:
    added = api.add_models(engine, [NEW])[0]
    assert added["cost_per_1k_input"] == pytest.approx(0.00015)


def test_model_missing_from_the_catalog_is_unpriced_not_free(engine: Engine) -> None:
    added = api.add_models(engine, [{**NEW, "model_id": "acme-1", "provider": "acme"}])[0]
    assert added["cost_per_1k_input"] is None
    assert added["price"] == "unpriced"


def test_out_of_range_value_is_refused_naming_field_and_range(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match=r"temperature: 3 is out of range \(allowed 0 to 2\)"):
        api.update_model(engine, "deepseek-chat", {"temperature": 3})


def test_unknown_field_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="colour: unknown field"):
        api.update_model(engine, "deepseek-chat", {"colour": "blue"})


def test_update_is_stored_and_audited_with_old_and_new_values(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"priority": 9}, actor="ana")
    assert api.get_model(engine, "deepseek-chat")["priority"] == 9
    entry = api.audit_trail(engine).iloc[0]
    assert (entry["actor"], entry["field"], entry["old_value"], entry["new_value"]) == ("ana", "priority", "6", "9")


def test_lists_can_be_given_as_comma_separated_text(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"supported_languages": "en, zh, ja"})
    assert api.get_model(engine, "deepseek-chat")["supported_languages"] == ["en", "zh", "ja"]


def test_removed_model_is_gone(engine: Engine) -> None:
    api.remove_model(engine, "llama2:latest")
    with pytest.raises(NotFound):
        api.get_model(engine, "llama2:latest")


def test_table_edits_are_all_or_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as caught:
        api.apply_registry_edits(
            engine,
            updates={"deepseek-chat": {"priority": 2}, "mistral:latest": {"top_p": 5}},
            additions=[NEW],
        )
    assert caught.value.problems == ["row mistral:latest: top_p: 5 is out of range (allowed 0 to 1)"]
    assert api.get_model(engine, "deepseek-chat")["priority"] == 6
    assert len(api.list_models(engine)) == 5


def test_duplicate_model_id_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="already in the registry"):
        api.add_models(engine, [{**NEW, "model_id": "deepseek-chat"}])
