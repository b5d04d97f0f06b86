"""The request explorer: newest first, every filter, keyset pages that visit each match once, bounded CSV."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from manager import api
from manager.cli import main
from manager.errors import InvalidInput
from manager.explorer import RequestFilters, find_requests, requests_csv

START = datetime(2026, 3, 1, tzinfo=UTC)
MODELS = ["claude-3-haiku-20240307", "deepseek-chat", "mistral:latest", "llama2:latest", "mistral-small-latest"]
PROVIDERS = {
    "claude-3-haiku-20240307": "anthropic",
    "deepseek-chat": "deepseek",
    "mistral:latest": "ollama",
    "llama2:latest": "ollama",
    "mistral-small-latest": "mistral",
}


def traffic(n: int = 1500, seed: int = 4) -> list[dict[str, Any]]:
    """Return requests over five days with every attribute varied; some share a timestamp."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        failed = rng.random() < 0.15 if i % 7 else rng.random() < 0.6
        moment = START + timedelta(seconds=rng.randrange(0, 5 * 86400) // 60 * 60)
        records.append(
            {
                "request_id": f"q-{i}",
                "timestamp": moment.isoformat(),
                "model_id": rng.choices(MODELS, weights=[50, 30, 10, 9, 1])[0],
                "request_type": rng.choice(["translation", "grammar", "conversation"]),
                "language": rng.choice(["en", "es", "ja"]),
                "input_tokens": rng.randrange(1, 900),
                "output_tokens": rng.randrange(1, 400),
                "response_time_ms": round(rng.lognormvariate(7, 0.8), 1),
                "success": not failed,
                "error_type": rng.choice(["timeout", "rate_limit", "server_error"]) if failed else None,
            }
        )
    return records


def matches(record: dict[str, Any], f: RequestFilters) -> bool:
    """Return whether a record passes the filters, decided here independently of the explorer."""
    moment = datetime.fromisoformat(record["timestamp"])
    return (
        (f.start is None or moment >= f.start)
        and (f.end is None or moment < f.end)
        and (not f.models or record["model_id"] in f.models)
        and (not f.providers or PROVIDERS[record["model_id"]] in f.providers)
        and (f.success is None or record["success"] == f.success)
        and (not f.error_types or record["error_type"] in f.error_types)
        and (not f.request_types or record["request_type"] in f.request_types)
        and (not f.languages or record["language"] in f.languages)
        and (f.min_latency_ms is None or record["response_time_ms"] >= f.min_latency_ms)
    )


@pytest.fixture
def stored(engine: Engine) -> list[dict[str, Any]]:
    records = traffic()
    result = api.ingest_records(engine, records)
    assert result.accepted == len(records)
    return records


def walk(engine: Engine, filters: RequestFilters, limit: int) -> list[dict[str, Any]]:
    rows, after = [], None
    while True:
        page = find_requests(engine, filters, limit=limit, after=after)
        assert len(page.rows) <= limit
        rows.extend(page.rows)
        if page.next is None:
            return rows
        assert len(page.rows) == limit
        after = page.next


CASES = [
    RequestFilters(),
    RequestFilters(models=("deepseek-chat",)),
    RequestFilters(providers=("ollama",), success=False),
    RequestFilters(models=("mistral-small-latest",)),
    RequestFilters(success=False, error_types=("timeout",)),
    RequestFilters(success=True, error_types=("timeout",)),
    RequestFilters(request_types=("grammar",), languages=("ja",)),
    RequestFilters(min_latency_ms=3000.0),
    RequestFilters(models=("llama2:latest",), success=False, min_latency_ms=1500.0, languages=("en", "es")),
    RequestFilters(start=START + timedelta(days=1, hours=5), end=START + timedelta(days=2, minutes=30)),
    RequestFilters(providers=("nobody",)),
]


@pytest.mark.parametrize("filters", CASES, ids=lambda f: json.dumps(f.query_string()) or "none")
def test_pages_visit_every_match_once_newest_first(
    engine: Engine, stored: list[dict[str, Any]], filters: RequestFilters
) -> None:
    rows = walk(engine, filters, limit=37)
    expected = {r["request_id"] for r in stored if matches(r, filters)}
    assert [r["request_id"] for r in rows if r["request_id"] not in expected] == []
    assert len(rows) == len(expected)
    assert {r["request_id"] for r in rows} == expected
    times = [r["timestamp"] for r in rows]
    assert times == sorted(times, reverse=True)


def test_a_row_shows_what_was_stored(engine: Engine, stored: list[dict[str, Any]]) -> None:
    newest = max(stored, key=lambda r: (r["timestamp"], int(r["request_id"][2:])))
    rows = find_requests(engine, RequestFilters(), limit=5).rows
    row = next(r for r in rows if r["request_id"] == newest["request_id"])
    assert row["model_id"] == newest["model_id"]
    assert row["provider"] == PROVIDERS[newest["model_id"]]
    assert row["response_time_ms"] == newest["response_time_ms"]
    assert row["success"] == newest["success"]
    assert datetime.fromisoformat(row["timestamp"]) == datetime.fromisoformat(newest["timestamp"])


def test_bad_cursor_limit_and_range_are_named(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="after: 'garbage' is not a cursor"):
        find_requests(engine, RequestFilters(), after="garbage")
    for past_any in ("9999999999999999999-1", "1-9999999999999999999"):
        with pytest.raises(InvalidInput, match="points past any time"):
            find_requests(engine, RequestFilters(), after=past_any)
    with pytest.raises(InvalidInput, match="limit: 0 is outside 1..1000"):
        find_requests(engine, RequestFilters(), limit=0)
    with pytest.raises(InvalidInput, match="to: .* is not after from"):
        find_requests(engine, RequestFilters(start=START, end=START))


def test_csv_is_the_filtered_set_and_bounded(engine: Engine, stored: list[dict[str, Any]]) -> None:
    failures = RequestFilters(success=False)
    text = "".join(requests_csv(engine, failures))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == sum(not r["success"] for r in stored)
    assert {r["success"] for r in rows} == {"False"}
    bounded = list(csv.DictReader(io.StringIO("".join(requests_csv(engine, failures, max_rows=10)))))
    assert [r["request_id"] for r in bounded] == [r["request_id"] for r in rows[:10]]


def test_cli_pages_with_the_json_contract(
    db_url: str, stored: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--db", db_url, "requests", "--model", "deepseek-chat", "--failed", "--limit", "5", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"rows", "next"} and len(first["rows"]) == 5
    assert main([*args, "--after", first["next"]]) == 0
    second = json.loads(capsys.readouterr().out)
    seen = [r["request_id"] for r in first["rows"] + second["rows"]]
    assert len(set(seen)) == 10
    assert all(r["model_id"] == "deepseek-chat" and not r["success"] for r in first["rows"] + second["rows"])


def test_cli_refuses_a_bad_cursor_with_exit_2(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "requests", "--after", "12-x"]) == 2
    assert "after: '12-x' is not a cursor" in capsys.readouterr().err
