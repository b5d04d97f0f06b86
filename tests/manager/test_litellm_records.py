"""LiteLLM's names and spend-log rows as the ledger's models and records (pure; no LiteLLM needed).

The end-to-end behaviour with the real package is in test_litellm.py; these pin the name mapping and the
spend log's file shapes, including the rows a reader must refuse by name.
"""

from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import pytest
from sqlalchemy import Engine

from manager import export
from manager.cli import main
from manager.integrations.litellm_records import ModelNames, litellm_model, parse_route, route_group

REGISTRY: dict[str, tuple[str, str | None]] = {
    "claude-3-haiku-20240307": ("anthropic", None),
    "llama2:latest": ("ollama", None),
    "house-model": ("openai", "hosted_vllm/acme/house-7b"),  # the registry's own litellm_model
    "gpt-4o-mini": ("openai", None),
}


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("anthropic/claude-3-haiku-20240307", "claude-3-haiku-20240307"),  # provider/model
        ("claude-3-haiku-20240307", "claude-3-haiku-20240307"),  # the bare model
        ("ollama/llama2", "llama2:latest"),  # Ollama's default tag
        ("ollama_chat/llama2:latest", "llama2:latest"),  # another prefix for the same provider
        ("hosted_vllm/acme/house-7b", "house-model"),  # the registry's own litellm_model
        ("fast", "gpt-4o-mini"),  # the team's alias
        ("openai/gpt-9-ultra", None),
    ],
)
def test_litellm_names_map_to_registry_models(name: str, model_id: str | None) -> None:
    names = ModelNames.of(REGISTRY, {"fast": "gpt-4o-mini"})
    assert names.resolve(name) == model_id


def test_an_alias_to_an_unregistered_model_is_left_out_and_named() -> None:
    aliases = {"fast": "gpt-4o-mini", "gone": "no-such-model"}
    names = ModelNames.of(REGISTRY, aliases)
    assert names.resolve("gone") is None
    assert names.ignored(aliases) == ["gone -> no-such-model"]


def test_route_group_names_carry_the_segment_both_ways() -> None:
    assert route_group() == "route"
    assert parse_route(route_group("translation", "es")) == ("translation", "es")
    assert parse_route("route") is None and parse_route("gpt-4o-mini") is None and parse_route(None) is None
    assert litellm_model("claude-3-haiku-20240307", "anthropic") == "anthropic/claude-3-haiku-20240307"
    assert litellm_model("gemini-2.0-flash", "google") == "gemini/gemini-2.0-flash"


def _row(request_id: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "request_id": request_id,
        "startTime": "2026-11-20T10:00:00.000Z",
        "endTime": "2026-11-20T10:00:01.250Z",
        "model": "claude-3-haiku-20240307",
        "model_group": "route:grammar:de",
        "custom_llm_provider": "anthropic",
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "spend": 0.0004,
        "status": "success",
        "team_id": "team-uuid-1",
        "end_user": "learner-9",
        "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "metadata": {
            "user_api_key_alias": "tutor-key",
            "user_api_key_team_alias": "tutoring",
            "additional_usage_values": {"cache_read_input_tokens": 1000, "cache_creation_input_tokens": 100},
        },
        "request_tags": ["exam"],
        "messages": [{"role": "user", "content": "secret prompt"}],
    }
    row.update(changes)
    return row


def test_spend_api_answer_ingests_with_segment_cache_tokens_and_attribution(
    db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The /spend/logs API's answer: an object whose "data" holds the rows."""
    path = tmp_path / "spend.json"
    rows = [
        _row("r-1"),
        _row("r-2", status="failure", spend=0, prompt_tokens=0, completion_tokens=0, metadata={}),
        _row("r-3", model="no-such-model", custom_llm_provider="openai"),
        _row("r-7", model=None, model_group=None, custom_llm_provider=None),
        _row("r-4", startTime="yesterday-ish"),
        _row("r-5", endTime="2026-11-20T09:00:00Z"),
        _row("r-6", prompt_tokens="many"),
    ]
    path.write_text(json.dumps({"data": rows, "total": len(rows), "page": 1}), encoding="utf-8")
    assert main(["--db", db_url, "ingest", "--format", "litellm", "--json", str(path)]) == 3
    assert json.loads(capsys.readouterr().out)["accepted"] == 2

    rejects = (tmp_path / "spend.json.rejects.csv").read_text(encoding="utf-8")
    assert "no-such-model" in rejects and "startTime" in rejects and "endTime" in rejects
    assert "\n4,model,missing," in rejects  # the row naming no model at all
    assert "prompt_tokens" in rejects and "secret prompt" not in rejects

    stored = list(csv.DictReader(StringIO(export.export_csv(engine, "logs"))))
    assert sorted(r["request_id"] for r in stored) == ["r-1", "r-2"]
    first = next(r for r in stored if r["request_id"] == "r-1")
    assert (first["request_type"], first["language"]) == ("grammar", "de")
    assert (first["cache_read_tokens"], first["cache_write_tokens"]) == ("1000", "100")
    assert (first["team"], first["api_key"], first["user"], first["tags"]) == (
        "tutoring",
        "tutor-key",
        "learner-9",
        "exam",
    )
    assert (first["cost"], first["response_time_ms"]) == ("0.0004", "1250.0")
    failed = next(r for r in stored if r["request_id"] == "r-2")
    assert (failed["success"], failed["error_type"], failed["team"]) == ("False", "error", "team-uuid-1")
    assert failed["api_key"] == "88-...6b4b"  # LiteLLM's hash of the key, kept only as a fingerprint


def test_json_lines_and_unreadable_spend_logs(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = tmp_path / "spend.jsonl"
    lines.write_text(json.dumps(_row("j-1")) + "\n{not json\n" + json.dumps(_row("j-2")) + "\n", encoding="utf-8")
    assert main(["--db", db_url, "ingest", "--format", "litellm", str(lines)]) == 3
    assert "line 2" in capsys.readouterr().err

    empty = tmp_path / "empty.json"
    empty.write_text("\n", encoding="utf-8")
    assert main(["--db", db_url, "ingest", "--format", "litellm", str(empty)]) == 2
    assert "the file is empty" in capsys.readouterr().err

    not_a_log = tmp_path / "other.csv"
    not_a_log.write_text("timestamp,model_id,response_time_ms\n2026-11-20,x,1\n", encoding="utf-8")
    assert main(["--db", db_url, "ingest", "--format", "litellm", str(not_a_log)]) == 2
    assert "not a LiteLLM spend log" in capsys.readouterr().err


def test_a_spend_log_csv_with_large_prompt_columns_reads_past_the_csv_modules_limit(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    row = _row("big-1", messages=[{"role": "user", "content": "x" * 300_000}])
    path = tmp_path / "spend.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    assert main(["--db", db_url, "ingest", "--format", "litellm", str(path)]) == 0
    stored = list(csv.DictReader(StringIO(export.export_csv(engine, "logs"))))
    assert [r["request_id"] for r in stored] == ["big-1"]
    assert csv.field_size_limit() == 131072  # the module's limit is back as it was
