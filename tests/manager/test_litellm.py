"""The LiteLLM integration against the real `litellm` package: its SDK calling through the logger, its Router
loading the exported config, and a spend log in its own table's column layout.

What the ledger must hold is taken from a second real callback registered beside the manager's (the
witness): what LiteLLM itself reported for each call, never from the manager's code.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from manager import api, export
from manager.cli import main
from manager.ledger.ingest import ingest_records
from manager.selection import Policy, select_model
from tests.conftest import IN_CI, free_port
from tests.utils.llm_stub import Call, StubLLM, stub_llm_server

if importlib.util.find_spec("litellm") is None:
    if IN_CI:
        pytest.fail("litellm is not installed (CI=true: required)", pytrace=False)
    pytest.skip("litellm is not installed: pip install -r requirements-integrations.txt", allow_module_level=True)

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from manager.integrations.litellm import ManagerLogger  # noqa: E402

PROMPT_MARKER = "zebra-marmalade-7731"  # in every prompt: it must never reach the database
MESSAGES = [{"role": "user", "content": f"{PROMPT_MARKER}: say hello"}]
NANOS = Decimal(10**9)


class Witness(CustomLogger):
    """A second real callback: the payload LiteLLM reported for each call, by id."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, dict[str, Any]] = {}

    def _keep(self, kwargs: dict[str, Any]) -> None:
        payload = kwargs["standard_logging_object"]
        self.calls[payload["id"]] = dict(payload)

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._keep(kwargs)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._keep(kwargs)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._keep(kwargs)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._keep(kwargs)


def _nanos(usd: Decimal) -> int:
    return int((usd * NANOS).to_integral_value(rounding=ROUND_HALF_EVEN))


def _ledger(engine: Engine) -> dict[str, dict[str, str]]:
    """Return every stored request, by request id, as the raw-log export writes it."""
    return {row["request_id"]: row for row in csv.DictReader(StringIO(export.export_csv(engine, "logs")))}


def _registry_price(engine: Engine, model_id: str, call: dict[str, Any]) -> int:
    """The call's tokens at the registry's prices: cached input at the cache prices where the model has them."""
    model = api.get_model(engine, model_id)
    usage = call["metadata"].get("usage_object") or {}
    read = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0

    def price(field: str) -> Decimal:
        return Decimal(str(model[field] if model[field] is not None else model["cost_per_1k_input"]))

    usd = (
        (call["prompt_tokens"] - read - write) * price("cost_per_1k_input")
        + read * price("cost_per_1k_cache_read")
        + write * price("cost_per_1k_cache_write")
        + call["completion_tokens"] * price("cost_per_1k_output")
    ) / 1000
    return _nanos(usd)


def _expected_cost(engine: Engine, model_id: str, call: dict[str, Any]) -> int:
    """LiteLLM's own cost when it priced the call; the registry's prices when it said it could not."""
    if call["status"] == "failure":
        return 0
    if call["response_cost_failure_debug_info"]:
        return _registry_price(engine, model_id, call)
    return _nanos(Decimal(str(call["response_cost"])))


def _assert_ledger_matches(engine: Engine, witness: Witness, model_of: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every call LiteLLM reported is in the ledger once, with its outcome, tokens and cost, exactly."""
    ledger = _ledger(engine)
    assert set(ledger) == set(witness.calls)
    for call_id, call in witness.calls.items():
        row = ledger[call_id]
        model_id = model_of[call["hidden_params"]["litellm_model_name"] or call["model"]]
        assert row["model_id"] == model_id
        assert row["success"] == str(call["status"] == "success")
        assert int(row["input_tokens"]) == call["prompt_tokens"]
        assert int(row["output_tokens"]) == call["completion_tokens"]
        assert _nanos(Decimal(row["cost"])) == _expected_cost(engine, model_id, call)
        usage = call["metadata"].get("usage_object") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        assert int(row["cache_read_tokens"]) == (usage.get("cache_read_input_tokens") or cached)
        assert int(row["cache_write_tokens"]) == (usage.get("cache_creation_input_tokens") or 0)
        if call["status"] == "failure":
            assert row["error_type"] == call["error_information"]["error_class"]
        start = datetime.fromtimestamp(call["startTime"], UTC)
        assert datetime.fromisoformat(row["timestamp"]) == start
        assert float(row["response_time_ms"]) == pytest.approx((call["endTime"] - call["startTime"]) * 1000)
    return ledger


def _no_callbacks() -> None:
    """Unregister every callback: LiteLLM copies `callbacks` into its per-event lists on first use."""
    litellm.callbacks = []
    litellm.success_callback = []
    litellm.failure_callback = []
    litellm._async_success_callback = []
    litellm._async_failure_callback = []


@pytest.fixture
def witness() -> Iterator[Witness]:
    _no_callbacks()
    yield Witness()
    _no_callbacks()


def _reported(witness: Witness, calls: int | None = None, *, successes: int | None = None) -> None:
    """Wait until LiteLLM has reported so many calls (or successes): it reports a sync call from a thread pool."""

    def done() -> bool:
        if calls is not None:
            return len(witness.calls) >= calls
        return sum(c["status"] == "success" for c in witness.calls.values()) >= (successes or 0)

    deadline = time.monotonic() + 10
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done()
    if calls is not None:
        assert len(witness.calls) == calls


def _logging(engine: Engine, witness: Witness, **options: Any) -> ManagerLogger:
    logger = ManagerLogger(engine=engine, flush_interval_s=0.05, **options)
    litellm.callbacks = [logger, witness]
    return logger


GPT = {"model_id": "gpt-4o-mini", "provider": "openai", "name": "GPT-4o mini", "category": "general"}


def test_sdk_calls_sync_async_streamed_and_failed_land_as_litellm_reported(engine: Engine, witness: Witness) -> None:
    house = {
        "model_id": "house-model",
        "provider": "openai",
        "name": "House model",
        "category": "general",
        "cost_per_1k_input": 0.0007,
        "cost_per_1k_output": 0.0021,
        "metadata": {"litellm_model": "openai/acme-house-7b"},
    }
    api.add_models(engine, [GPT, house])
    logger = _logging(engine, witness, app="tutor-web", environment="production")
    proxy_keys = {
        "user_api_key_alias": "search-key",
        "user_api_key_team_alias": "search",
        "user_api_key_end_user_id": "customer-7",
        "tags": ["beta", "eu"],
    }
    litellm.completion(model="gpt-4o-mini", messages=MESSAGES, mock_response="hello", metadata=proxy_keys)
    litellm.completion(
        model="deepseek/deepseek-chat",
        messages=MESSAGES,
        mock_response="hola",
        user="learner-1",
        metadata={"team": "growth", "request_type": "translation", "language": "es"},
    )
    # LiteLLM cannot price this one (no price map knows it): the registry's prices do.
    litellm.completion(model="openai/acme-house-7b", messages=MESSAGES, mock_response="bonjour", api_key="sk-test")
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(model="mistral/mistral-small-latest", messages=MESSAGES, mock_response=Exception("down"))
    for _chunk in litellm.completion(
        model="gpt-4o-mini", messages=MESSAGES, mock_response="a streamed answer of some words", stream=True
    ):
        pass

    async def calls() -> None:
        await litellm.acompletion(model="deepseek/deepseek-chat", messages=MESSAGES, mock_response="async hello")
        stream = await litellm.acompletion(
            model="gpt-4o-mini", messages=MESSAGES, mock_response="an async stream", stream=True
        )
        async for _chunk in stream:
            pass
        with pytest.raises(litellm.RateLimitError):
            await litellm.acompletion(
                model="gpt-4o-mini",
                messages=MESSAGES,
                mock_response=litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini"),
            )
        await asyncio.sleep(0.2)  # LiteLLM reports async calls from tasks of their own

    # In a thread of its own: in the same process, Playwright's sync API may already run a loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, calls()).result()
    _reported(witness, 8)
    assert logger.flush()
    logger.close()

    assert sum(c["status"] == "failure" for c in witness.calls.values()) == 2
    model_of = {
        "gpt-4o-mini": "gpt-4o-mini",
        "openai/gpt-4o-mini": "gpt-4o-mini",
        "deepseek/deepseek-chat": "deepseek-chat",
        "openai/acme-house-7b": "house-model",
        "acme-house-7b": "house-model",
        "mistral/mistral-small-latest": "mistral-small-latest",
        "mistral-small-latest": "mistral-small-latest",
        "deepseek-chat": "deepseek-chat",
    }
    ledger = _assert_ledger_matches(engine, witness, model_of)
    assert any(c["response_cost_failure_debug_info"] for c in witness.calls.values())  # the registry-priced case
    proxied = next(r for r in ledger.values() if r["api_key"])
    assert (proxied["team"], proxied["api_key"], proxied["user"], proxied["tags"]) == (
        "search",
        "search-key",
        "customer-7",
        "beta;eu",
    )
    own = next(r for r in ledger.values() if r["team"] == "growth")
    assert (own["user"], own["request_type"], own["language"]) == ("learner-1", "translation", "es")
    assert {r["app"] for r in ledger.values()} == {"tutor-web"}
    assert {r["environment"] for r in ledger.values()} == {"production"}
    assert logger.stats.stored == 8 and logger.stats.unmapped == {}


def _stub_model(engine: Engine, stub: StubLLM, model_id: str, input_price: float) -> None:
    api.add_models(
        engine,
        [
            {
                "model_id": model_id,
                "provider": "openai",
                "name": model_id,
                "category": "general",
                "cost_per_1k_input": input_price,
                "cost_per_1k_output": input_price * 4,
                "supported_languages": ["en", "es"],
                "metadata": {"api_base": f"{stub.url}/v1"},
            }
        ],
    )


def test_streaming_and_http_failures_from_a_real_server_land_as_litellm_reported(
    engine: Engine, witness: Witness
) -> None:
    with stub_llm_server() as stub:
        _stub_model(engine, stub, "stub-gpt", 0.001)
        logger = _logging(engine, witness)
        plan = [
            (Call(1, [200], 120, 30), {}),
            (Call(2, [200], 90, 12), {"stream": True, "stream_options": {"include_usage": True}}),
            (Call(3, [200], 70, 9), {"stream": True}),  # no usage sent: LiteLLM counts the tokens itself
            (Call(4, [429], 50, 0), {}),
            (Call(5, [500], 50, 0), {"stream": True}),
            (Call(6, [429, 200], 64, 16), {}),  # retried into success
        ]
        for call, options in plan:
            prompt = stub.plan(call) + f" {PROMPT_MARKER}"
            try:
                answer = litellm.completion(
                    model="openai/stub-gpt",
                    api_base=f"{stub.url}/v1",
                    api_key="sk-test",
                    messages=[{"role": "user", "content": prompt}],
                    num_retries=1 if call.number == 6 else 0,
                    **options,
                )
                if options.get("stream"):
                    for _chunk in answer:
                        pass
            except (litellm.RateLimitError, litellm.InternalServerError):
                pass
        _reported(witness, len(plan))
        # Anthropic's Messages API with prompt caching: input counts the cached part too, split out as cache tokens.
        cached = Call(7, [200], 200, 40, cache_read=120, cache_write=30)
        litellm.completion(
            model="anthropic/claude-3-haiku-20240307",
            api_base=f"{stub.url}/v1/messages",
            api_key="sk-ant-test",
            messages=[{"role": "user", "content": stub.plan(cached)}],
        )
        _reported(witness, len(plan) + 1)
        assert logger.flush()
        logger.close()

    [anthropic] = [r for r in _ledger(engine).values() if r["model_id"] == "claude-3-haiku-20240307"]
    assert (int(anthropic["input_tokens"]), int(anthropic["output_tokens"])) == (200 + 120 + 30, 40)
    assert (int(anthropic["cache_read_tokens"]), int(anthropic["cache_write_tokens"])) == (120, 30)
    failures = [c for c in witness.calls.values() if c["status"] == "failure"]
    assert {c["error_information"]["error_class"] for c in failures} >= {"RateLimitError", "InternalServerError"}
    names = {"openai/stub-gpt": "stub-gpt", "stub-gpt": "stub-gpt"}
    names |= {"anthropic/claude-3-haiku-20240307": "claude-3-haiku-20240307"}
    ledger = _assert_ledger_matches(engine, witness, names)
    succeeded = [r for r in ledger.values() if r["success"] == "True"]
    assert sum(int(r["input_tokens"]) for r in succeeded) >= 120 + 90 + 64


def test_logger_never_breaks_the_caller_and_reports_what_it_could_not_store(
    engine: Engine, witness: Witness, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    down = ManagerLogger(unreachable, flush_interval_s=0.05, max_pending=2)
    litellm.callbacks = [down, witness]
    for _ in range(3):
        answer = litellm.completion(model="deepseek/deepseek-chat", messages=MESSAGES, mock_response="answered")
        assert answer.choices[0].message.content == "answered"
    _reported(witness, 3)
    assert not down.flush(timeout_s=1.5)  # kept for a retry, not lost, not raised
    # Two kept for the retry; past that bound the oldest is dropped, counted and logged.
    assert down.stats.write_errors >= 1 and down.stats.received == 3 and down.stats.dropped == 1
    down.close(timeout_s=0.1)

    caplog.set_level(logging.WARNING, logger="manager.integrations.litellm")
    _no_callbacks()
    witness.calls.clear()
    logger = _logging(engine, witness, aliases={"fast": "deepseek-chat", "gone": "no-such-model"})
    for _ in range(2):
        litellm.completion(model="openai/unregistered-model", messages=MESSAGES, mock_response="x", api_key="sk-test")
    _reported(witness, 2)
    assert logger.flush()
    assert logger.stats.unmapped == {"openai/unregistered-model": 2}
    assert "unregistered-model" in caplog.text and "not in the registry" in caplog.text
    assert "gone -> no-such-model" in caplog.text  # an alias to nothing is named, not silently used

    # Registered now: the next call lands without restarting anything.
    late = {**GPT, "model_id": "unregistered-model", "name": "Late"}
    api.add_models(engine, [{**late, "cost_per_1k_input": 0.001, "cost_per_1k_output": 0.002}])
    time.sleep(1.1)  # the logger reads the registry again a second after a miss
    litellm.completion(model="openai/unregistered-model", messages=MESSAGES, mock_response="x", api_key="sk-test")
    _reported(witness, 3)
    assert logger.flush()
    logger.close()
    assert [r["model_id"] for r in _ledger(engine).values()] == ["unregistered-model"]


def test_no_prompt_or_completion_text_reaches_the_database(tmp_path: Path, witness: Witness) -> None:
    engine = api.open_engine(f"sqlite:///{tmp_path / 'manager.db'}")
    logger = _logging(engine, witness)
    answer_marker = "quokka-sandwich-2209"
    litellm.completion(model="deepseek/deepseek-chat", messages=MESSAGES, mock_response=answer_marker)
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(model="deepseek/deepseek-chat", messages=MESSAGES, mock_response=Exception(answer_marker))
    _reported(witness, 2)
    assert logger.flush()
    logger.close()
    assert len(_ledger(engine)) == 2
    engine.dispose()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert PROMPT_MARKER.encode() not in stored and answer_marker.encode() not in stored


# --- The exported config in a real Router -------------------------------------------------------------------


def _config(db_url: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    target = tmp_path / "litellm.yaml"
    assert main(["--db", db_url, "export", "litellm-config", *args, "--out", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# LiteLLM configuration written by the AI Model Manager")
    return dict(yaml.safe_load(text))


def _requested_models(stub: StubLLM) -> list[str]:
    return list(dict.fromkeys(a.model for a in stub.answers))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the Router's behaviour is the same on both
def test_exported_config_routes_to_the_policy_top_model_and_falls_back_in_its_order(
    db_url: str, engine: Engine, tmp_path: Path, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    for model in api.list_models(engine):  # only the four stub models are routable
        api.update_model(engine, model["model_id"], {"enabled": False})
    with stub_llm_server() as stub:
        for model_id, price in (("alpha", 0.0004), ("bravo", 0.0008), ("charlie", 0.0016), ("delta", 0.0032)):
            _stub_model(engine, stub, model_id, price)
        now = datetime.now(UTC)
        ingest_records(
            engine,
            [
                {
                    "timestamp": now - timedelta(hours=i + 1),
                    "model_id": model,
                    "request_type": "translation",
                    "language": "es",
                    "input_tokens": 100,
                    "output_tokens": 40,
                    "response_time_ms": 800,
                }
                for i, model in enumerate(["alpha", "bravo", "charlie", "delta"] * 5)
            ],
        )
        policy = ["--weight", "cost=5", "--experimental"]
        config = _config(db_url, tmp_path, *policy)
        ranking = [
            r.model_id for r in select_model(engine, Policy(weights={"cost": 5}, include_experimental=True)).ranking
        ]
        assert ranking[:4] == ["alpha", "bravo", "charlie", "delta"]  # cheapest first under this policy

        groups = {entry["model_name"]: entry for entry in config["model_list"]}
        assert groups["route"]["litellm_params"]["model"] == "openai/alpha"
        assert groups["alpha"]["model_info"]["input_cost_per_token"] == pytest.approx(0.0004 / 1000)
        fallbacks = {name: order for item in config["router_settings"]["fallbacks"] for name, order in item.items()}
        assert fallbacks["route"] == ranking[1:]
        assert "route:translation:es" in groups

        logger = _logging(engine, witness)

        def ask(group: str, call: Call) -> str:
            router = litellm.Router(model_list=config["model_list"], **config["router_settings"])
            answer = router.completion(model=group, messages=[{"role": "user", "content": stub.plan(call)}])
            return str(answer.model)

        # Everything up: the top model answers.
        ask("route", Call(1, [200], 50, 10))
        assert _requested_models(stub) == ["alpha"]
        # The top model failing, then the second: the third answers, tried in the policy's order.
        stub.answers.clear()
        ask("route", Call(2, [200], 50, 10, by_model={"alpha": 500, "bravo": 429}))
        assert _requested_models(stub) == ["alpha", "bravo", "charlie"]
        # A segment's route: its calls land under its request type and language.
        stub.answers.clear()
        ask("route:translation:es", Call(3, [200], 50, 10))
        _reported(witness, successes=3)
        time.sleep(0.3)  # and any failure still on its way
        assert logger.flush()
        logger.close()

    ledger = _ledger(engine)
    routed = [r for r in ledger.values() if r["request_id"] in witness.calls]
    assert len(routed) == len(witness.calls)
    failed = {r["model_id"] for r in routed if r["success"] == "False"}
    assert failed == {"alpha", "bravo"}
    assert any(r["request_type"] == "translation" and r["language"] == "es" for r in routed)


def test_export_litellm_config_refuses_what_it_cannot_route(db_url: str, tmp_path: Path, capsys: Any) -> None:
    assert main(["--db", db_url, "export", "litellm-config", "--max-p95-ms", "0.001"]) == 2
    assert "no model passes the policy" in capsys.readouterr().err
    assert main(["--db", db_url, "export", "usage", "--weight", "cost=2"]) == 2
    assert "only with export litellm-config" in capsys.readouterr().err


# --- A spend log in LiteLLM's own column layout ----------------------------------------------------------------


def _spend_log_columns() -> list[str]:
    """Return the columns of LiteLLM's LiteLLM_SpendLogs table, read from the schema the installed package ships."""
    schema = (Path(litellm.__file__).parent / "proxy" / "schema.prisma").read_text(encoding="utf-8")
    body = re.search(r"model LiteLLM_SpendLogs \{(.*?)\n\}", schema, re.S)
    assert body is not None
    names = [line.split()[0] for line in body.group(1).splitlines() if line.strip() and line.strip()[0] not in "@/"]
    assert {"request_id", "startTime", "spend", "model", "metadata", "request_tags"} <= set(names)
    return names


def _spend_log_row(call: dict[str, Any]) -> dict[str, Any]:
    """Return a call as a row of LiteLLM's spend log, each column filled from what LiteLLM reported."""
    metadata = call["metadata"]
    moment = {k: datetime.fromtimestamp(call[k], UTC).replace(tzinfo=None) for k in ("startTime", "endTime")}
    return {
        "request_id": call["id"],
        "call_type": call["call_type"],
        "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "spend": call["response_cost"],
        "total_tokens": call["total_tokens"],
        "prompt_tokens": call["prompt_tokens"],
        "completion_tokens": call["completion_tokens"],
        "startTime": moment["startTime"],
        "endTime": moment["endTime"],
        "request_duration_ms": round((call["endTime"] - call["startTime"]) * 1000),
        "model": call["model"],
        "model_id": call["model_id"],
        "model_group": call["model_group"],
        "custom_llm_provider": call["custom_llm_provider"],
        "api_base": call["api_base"],
        "user": "",
        "metadata": {
            "user_api_key_alias": metadata.get("user_api_key_alias"),
            "user_api_key_team_alias": metadata.get("user_api_key_team_alias"),
            "status": call["status"],
            "error_information": call["error_information"],
            "usage_object": metadata.get("usage_object"),
        },
        "cache_hit": str(bool(call["cache_hit"])),
        "request_tags": call["request_tags"],
        "team_id": metadata.get("user_api_key_team_id"),
        "end_user": metadata.get("user_api_key_end_user_id"),
        "messages": MESSAGES,  # kept by some proxies; never read
        "response": {"text": PROMPT_MARKER},
        "status": call["status"],
    }


def test_spend_log_in_litellm_layout_ingests_with_exact_totals_and_attribution(
    db_url: str, engine: Engine, tmp_path: Path, witness: Witness
) -> None:
    litellm.callbacks = [witness]
    for team, user, tags, cost in (
        ("search", "cust-1", ["beta"], 0.000123456789),
        ("search", "cust-2", [], 0.5),
        ("growth", "cust-1", ["beta", "eu"], 0.0000131),
    ):
        metadata = {"user_api_key_team_alias": team, "user_api_key_end_user_id": user, "tags": tags}
        metadata["user_api_key_alias"] = f"{team}-key"
        litellm.completion(
            model="deepseek/deepseek-chat",
            messages=MESSAGES,
            mock_response="hi",
            metadata=metadata,
            input_cost_per_token=cost / 30,
            output_cost_per_token=cost / 30,
        )
    with pytest.raises(litellm.InternalServerError):
        litellm.completion(
            model="mistral/mistral-small-latest", messages=MESSAGES, mock_response=Exception("x"), metadata={}
        )
    _reported(witness, 4)
    columns = _spend_log_columns()
    rows = [_spend_log_row(call) for call in witness.calls.values()]
    unmapped = {**rows[0], "request_id": "unmapped-1", "model": "gpt-9-ultra", "custom_llm_provider": "openai"}

    # As psql's \copy writes the table: JSON columns as JSON text, times without a zone (UTC).
    csv_path = tmp_path / "spend_logs.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in [*rows, unmapped]:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v) for k, v in row.items()}
            )
    assert main(["--db", db_url, "ingest", "--format", "litellm", str(csv_path)]) == 3  # stored, one row refused
    rejects = (tmp_path / "spend_logs.csv.rejects.csv").read_text(encoding="utf-8")
    assert "gpt-9-ultra" in rejects and "not in the registry" in rejects
    assert PROMPT_MARKER not in rejects  # the refused row's prompt and response are not copied

    ledger = _ledger(engine)
    assert set(ledger) == set(witness.calls)
    total = sum(_nanos(Decimal(r["cost"])) for r in ledger.values())
    assert total == sum(_nanos(Decimal(str(c["response_cost"]))) for c in witness.calls.values())
    by_team: dict[str, int] = {}
    for row in ledger.values():
        by_team[row["team"]] = by_team.get(row["team"], 0) + _nanos(Decimal(row["cost"]))
    reported: dict[str, int] = {}
    for call in witness.calls.values():
        team = call["metadata"].get("user_api_key_team_alias") or ""
        reported[team] = reported.get(team, 0) + _nanos(Decimal(str(call["response_cost"])))
    assert by_team == reported and set(reported) == {"search", "growth", ""}
    beta = [r for r in ledger.values() if "beta" in r["tags"].split(";")]
    assert len(beta) == 2 and {r["user"] for r in beta} == {"cust-1"}
    assert {r["api_key"] for r in ledger.values()} == {"search-key", "growth-key", "88-...6b4b"}
    failed = [r for r in ledger.values() if r["success"] == "False"]
    assert [r["error_type"] for r in failed] == ["InternalServerError"]

    # The /spend/logs API's JSON: the same rows again are duplicates, by request id.
    json_path = tmp_path / "spend_logs.json"
    json_path.write_text(json.dumps(rows, default=str), encoding="utf-8")
    assert main(["--db", db_url, "ingest", "--format", "litellm", "--json", str(json_path)]) == 0
    assert len(_ledger(engine)) == 4


# --- The README's snippets, run as written ---------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _readme_blocks() -> list[tuple[str, str]]:
    """Return the (language, code) blocks of the README's LiteLLM section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## LiteLLM\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, re.S)


def _run(tmp_path: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)  # the snippets use the default database, data/manager.db where they run
    done = subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_readme_snippets_run_as_written(tmp_path: Path) -> None:
    blocks = _readme_blocks()
    assert [language for language, _ in blocks] == ["python", "yaml", "bash", "python", "bash"]
    (log_call, _), (proxy, _), (export_command, _), (router, _), (history, _) = (
        (code, language) for language, code in blocks
    )
    _run(tmp_path, "-", stdin=log_call)
    engine = api.open_engine(f"sqlite:///{tmp_path / 'data' / 'manager.db'}")
    [stored] = _ledger(engine).values()
    assert (stored["model_id"], stored["team"], stored["request_type"], stored["app"]) == (
        "deepseek-chat",
        "growth",
        "translation",
        "tutor-web",
    )

    # The proxy's config names an instance LiteLLM's own loader finds.
    from litellm.proxy.types_utils.utils import get_instance_fn

    handler = get_instance_fn(yaml.safe_load(proxy)["litellm_settings"]["callbacks"])
    assert isinstance(handler, ManagerLogger)
    handler.close()

    [command] = export_command.strip().splitlines()
    _run(tmp_path, *command.split()[1:])
    printed = _run(tmp_path, "-", stdin=router).strip()
    top = select_model(engine, Policy(weights={"cost": 2})).ranking[0].model_id
    assert printed == top, (printed, top)

    # The history: the psql line needs LiteLLM's database; the ingest line reads what it would write.
    copy, ingest_line = history.strip().splitlines()
    assert "LiteLLM_SpendLogs" in copy
    columns = _spend_log_columns()
    row = {
        "request_id": "history-1",
        "startTime": "2026-11-02 09:00:00.000",
        "endTime": "2026-11-02 09:00:00.640",
        "model": "claude-3-haiku-20240307",
        "custom_llm_provider": "anthropic",
        "prompt_tokens": 900,
        "completion_tokens": 60,
        "spend": 0.0003,
        "status": "success",
        "metadata": json.dumps({"user_api_key_team_alias": "support"}),
        "request_tags": "[]",
    }
    with (tmp_path / "spend_logs.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerow({c: row.get(c, "") for c in columns})
    _run(tmp_path, *ingest_line.split()[1:])
    assert _ledger(engine)["history-1"]["team"] == "support"
    engine.dispose()
