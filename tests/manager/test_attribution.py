"""Attribution on every request: user, team, API key, app, environment and tags, cleaned, never a secret."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine

from manager import api, export
from manager.errors import InvalidInput
from manager.explorer import RequestFilters, find_requests
from manager.ledger import ingest, receiver
from manager.ledger.attribution import AttributionError, clean_tags, clean_value, fingerprint, looks_secret
from tests.utils.factories import record
from tests.utils.real_traffic import export_request_lines

SECRET = "sk-proj-Q8h2kd93JfLz0aXv7Tq1b2c3"


def test_values_are_trimmed_and_blank_is_none() -> None:
    assert clean_value("team", "  growth  ") == "growth"
    assert clean_value("team", "   ") is None
    assert clean_value("user", 4711) == "4711"


def test_control_characters_and_overlong_values_are_refused_with_the_column() -> None:
    with pytest.raises(AttributionError, match="column team: holds a control character"):
        clean_value("team", "growth\x1b[31m")
    with pytest.raises(AttributionError, match="column app: longer than 128 characters"):
        clean_value("app", "a" * 129)


def test_a_secret_looking_key_keeps_only_a_fingerprint_and_an_alias_stays() -> None:
    assert looks_secret(SECRET)
    assert clean_value("api_key", SECRET) == fingerprint(SECRET) == "sk-...b2c3"
    assert clean_value("api_key", "billing-service") == "billing-service"
    assert clean_value("api_key", "x" * 200 + "9") == fingerprint("x" * 200 + "9")  # never refused, never kept


def test_tags_come_as_text_or_lists_and_are_stored_once_each_in_order() -> None:
    assert clean_tags("beta; mobile ;beta") == "beta;mobile"
    assert clean_tags(["mobile", "beta"]) == "mobile;beta"
    assert clean_tags('["a", "b"]') == "a;b"
    assert clean_tags(" ; ") is None
    with pytest.raises(AttributionError, match="holds a ';'"):
        clean_tags(["a;b"])
    with pytest.raises(AttributionError, match="more than 20"):
        clean_tags([f"t{i}" for i in range(21)])


def csv_file(path: Path, rows: list[dict[str, object]]) -> Path:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_file_keeps_attribution_refuses_bad_values_by_line_and_never_stores_a_secret(
    engine: Engine, tmp_path: Path, db_url: str
) -> None:
    rows = [
        record(request_id=f"a-{i}", team="growth", user=f"u{i % 3}", app="tutor", tags="beta;mobile") for i in range(40)
    ]
    rows[5]["api_key"] = SECRET
    rows[7]["team"] = "bad\x07team"
    result = ingest.ingest_file(engine, csv_file(tmp_path / "log.csv", rows))
    assert result.accepted == 39
    assert [(r.line, r.column) for r in result.rejects] == [(9, "team")]
    page = find_requests(engine, RequestFilters(teams=("growth",), tags=("mobile",)), limit=100)
    assert len(page.rows) == 39
    assert {r["api_key"] for r in page.rows} == {None, "sk-...b2c3"}
    logs = export.export_csv(engine, "logs")
    assert SECRET not in logs
    if db_url.startswith("sqlite"):
        engine.dispose()
        database = Path(db_url.removeprefix("sqlite:///"))
        assert SECRET.encode() not in b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def test_log_usage_takes_attribution_as_keywords_and_the_export_round_trips(engine: Engine, tmp_path: Path) -> None:
    base = record(request_id="k-1")
    api.log_usage(engine, **base, user="ana", team="growth", api_key="ci-bot", environment="prod", tags=["x", "y"])
    with pytest.raises(InvalidInput, match="tags: tag 'a;b' holds a ';'"):
        api.log_usage(engine, **record(request_id="k-2"), tags=["a;b"])
    text = export.export_csv(engine, "logs")
    row = next(csv.DictReader(io.StringIO(text)))
    assert (row["user"], row["team"], row["api_key"], row["environment"], row["tags"]) == (
        "ana",
        "growth",
        "ci-bot",
        "prod",
        "x;y",
    )
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    copy = api.open_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    ingest.ingest_file(copy, path)
    assert export.export_csv(copy, "logs") == text


def attributed_spans() -> list[ReadableSpan]:
    """Return GenAI spans the real OpenTelemetry SDK made, with a resource naming the app and environment."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "tutor-app", "deployment.environment.name": "staging"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app")
    for i in range(3):
        with tracer.start_as_current_span("chat deepseek-chat") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "deepseek-chat",
                    "gen_ai.usage.input_tokens": 100 + i,
                    "gen_ai.usage.output_tokens": 20,
                    "enduser.id": f"learner-{i}",
                    "app.team": "growth",
                    "app.tags": ["beta", "ios"],
                    "app.api_key": SECRET,
                }
            )
    return list(memory.get_finished_spans())


@pytest.fixture
def served(engine: Engine) -> Iterator[str]:
    server, _ = receiver.make_server(engine, "127.0.0.1", 0, token=None, max_body=256 * 1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_otlp_resource_and_span_attributes_carry_attribution_by_receiver_and_by_file(
    engine: Engine, served: str, tmp_path: Path
) -> None:
    spans = attributed_spans()
    assert OTLPSpanExporter(endpoint=f"{served}/v1/traces").export(spans) == SpanExportResult.SUCCESS
    rows = find_requests(engine, RequestFilters(apps=("tutor-app",))).rows
    assert len(rows) == 3
    assert {(r["environment"], r["team"], r["tags"], r["api_key"]) for r in rows} == {
        ("staging", "growth", "beta;ios", "sk-...b2c3")
    }
    assert {r["user"] for r in rows} == {"learner-0", "learner-1", "learner-2"}
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(export_request_lines(spans)), encoding="utf-8")
    from_file = api.open_engine(f"sqlite:///{tmp_path / 'from-file.db'}")
    ingest.ingest_file(from_file, path)
    assert export.export_csv(from_file, "logs") == export.export_csv(engine, "logs")


def test_the_team_attribute_is_configurable(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGER_OTLP_TEAM_ATTRIBUTE", "enduser.id")
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(export_request_lines(attributed_spans())), encoding="utf-8")
    ingest.ingest_file(engine, path)
    assert {r["team"] for r in find_requests(engine, RequestFilters()).rows} == {"learner-0", "learner-1", "learner-2"}
