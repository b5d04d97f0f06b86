import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import Engine, func, select

from manager import api, budgets, demo, export
from manager.errors import InvalidInput, UnusableFile
from manager.ledger import histogram, ingest, verify
from manager.models import RequestLog, UsageHourly
from tests.utils.factories import LOG_COLUMNS, generated_records, record, write_csv, write_jsonl


def stored_requests(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequestLog)).scalar_one())


def rolled_up_requests(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.sum(UsageHourly.requests), 0))).scalar_one())


def test_good_rows_are_kept_and_bad_rows_go_to_the_rejects_file(engine: Engine, tmp_path: Path) -> None:
    rows = [record(request_id="a"), record(request_id="b", input_tokens="-5"), record(request_id="c")]
    path = write_csv(tmp_path / "log.csv", rows)
    result = ingest.ingest_file(engine, path)
    assert (result.accepted, result.rejected, result.duplicates) == (2, 1, 0)
    rejects = list(csv.DictReader(result.rejects_file.open()))
    assert [(r["line"], r["column"]) for r in rejects] == [("3", "input_tokens")]
    assert result.rejects_file == tmp_path / "log.csv.rejects.csv"


def test_loading_a_file_twice_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", generated_records(50))
    ingest.ingest_file(engine, path)
    again = ingest.ingest_file(engine, path)
    assert (again.accepted, again.duplicates) == (0, 50)
    assert stored_requests(engine) == rolled_up_requests(engine) == 50


def test_a_request_id_repeated_within_a_file_is_a_duplicate(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", [record(request_id="x"), record(request_id="x")])
    assert ingest.ingest_file(engine, path).as_dict()["duplicates"] == 1


def test_duplicates_across_files_are_skipped(engine: Engine, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "one.csv", [record(request_id="x"), record(request_id="y")])
    second = write_jsonl(tmp_path / "two.jsonl", [record(request_id="y"), record(request_id="z")])
    ingest.ingest_file(engine, first)
    result = ingest.ingest_file(engine, second)
    assert (result.accepted, result.duplicates) == (1, 1)


def test_rows_from_many_batches_all_reach_the_log_and_the_rollups(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", generated_records(1200))
    result = ingest.ingest_file(engine, path, batch_size=100)
    assert result.accepted == stored_requests(engine) == rolled_up_requests(engine) == 1200


def test_export_usage_totals_equal_an_independent_sum_of_the_input(engine: Engine, tmp_path: Path) -> None:
    rows = generated_records(600)
    ingest.ingest_file(engine, write_csv(tmp_path / "log.csv", rows))
    exported = list(csv.DictReader(StringIO(export.export_csv(engine, "usage"))))
    expected: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for r in rows:
        sums = expected[(r["timestamp"][:10], r["model_id"])]
        sums[0] += 1
        sums[1] += 0 if r["success"] == "true" else 1
        sums[2] += r["input_tokens"] + r["output_tokens"]
        sums[3] += Decimal(r["cost"])
    found = {
        (e["date"], e["model_id"]): [
            Decimal(e["requests"]),
            Decimal(e["failures"]),
            Decimal(e["input_tokens"]) + Decimal(e["output_tokens"]),
            Decimal(e["cost_usd"]),
        ]
        for e in exported
    }
    assert found == dict(expected)


def test_export_usage_has_the_contracted_columns(engine: Engine) -> None:
    header = export.export_csv(engine, "usage").splitlines()[0]
    assert header == (
        "date,model_id,provider,requests,successes,failures,input_tokens,output_tokens,cache_read_tokens,"
        "cache_write_tokens,reasoning_tokens,requests_without_usage,cost_usd,requests_without_cost,"
        "avg_response_time_ms,p50_response_time_ms,p95_response_time_ms,avg_quality_rating"
    )


def test_jsonl_lines_that_are_not_json_objects_are_rejected_with_their_line(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(record()) + "\n{broken\n[1, 2]\n")
    result = ingest.ingest_file(engine, path)
    assert [(r.line, r.column) for r in result.rejects] == [(2, "*"), (3, "*")]
    assert result.accepted == 1


def test_unusable_file_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("when,which\n2026-01-01,deepseek-chat\n")
    with pytest.raises(UnusableFile, match="header lacks column"):
        ingest.ingest_file(engine, path)
    assert stored_requests(engine) == 0


def test_binary_garbage_is_an_unusable_file(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"timestamp,model_id\n\xff\xfe\x00garbage")
    with pytest.raises(UnusableFile, match="line 2: not UTF-8"):
        ingest.ingest_file(engine, path)


def test_log_usage_stores_one_request_and_refuses_a_bad_one(engine: Engine) -> None:
    assert api.log_usage(engine, **record(request_id="one")) is True
    assert api.log_usage(engine, **record(request_id="one")) is False
    with pytest.raises(InvalidInput, match="quality_rating"):
        api.log_usage(engine, **record(request_id="two", quality_rating=9))
    assert stored_requests(engine) == 1


def _otlp_file(path: Path) -> Path:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("chat deepseek-chat") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "deepseek",
                "gen_ai.request.model": "deepseek-chat",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 500,
                "app.request_type": "translation",
                "app.language": "fr",
            }
        )
    with tracer.start_as_current_span("chat claude") as span:
        span.set_attributes(
            {
                "gen_ai.system": "anthropic",
                "gen_ai.request.model": "claude-3-haiku-20240307",
                "error.type": "timeout",  # and no usage, as no instrumentation writes usage on a failure
            }
        )
        span.set_status(Status(StatusCode.ERROR, "timed out"))
    with tracer.start_as_current_span("GET /health"):
        pass  # no GenAI attributes: ignored
    path.write_text(MessageToJson(encode_spans(exporter.get_finished_spans())))
    return path


def test_otlp_spans_from_the_sdk_encoder_load(engine: Engine, tmp_path: Path) -> None:
    result = ingest.ingest_file(engine, _otlp_file(tmp_path / "spans.json"))
    assert (result.accepted, result.rejected) == (2, 0)
    logs = list(csv.DictReader(StringIO(export.export_csv(engine, "logs"))))
    by_model = {row["model_id"]: row for row in logs}
    assert by_model["deepseek-chat"]["cost"] == "0.00082"
    assert by_model["deepseek-chat"]["request_type"] == "translation"
    assert (by_model["claude-3-haiku-20240307"]["success"], by_model["claude-3-haiku-20240307"]["error_type"]) == (
        "False",
        "timeout",
    )


def test_otlp_file_loaded_twice_is_all_duplicates(engine: Engine, tmp_path: Path) -> None:
    path = _otlp_file(tmp_path / "spans.json")
    ingest.ingest_file(engine, path)
    assert ingest.ingest_file(engine, path, fmt="otlp").duplicates == 2


def test_demo_seeding_is_reproducible_and_not_doubled(engine: Engine) -> None:
    first = demo.seed_demo(engine, days=3, requests=300, seed=11)
    second = demo.seed_demo(engine, days=3, requests=300, seed=11)
    assert (first.accepted, second.duplicates) == (300, 300)


def test_batches_that_share_an_hour_add_up_in_one_rollup_row(engine: Engine) -> None:
    first = [
        record(request_id="a1", response_time_ms=100, success="false", error_type="timeout"),
        record(request_id="a2", response_time_ms=200),
    ]
    second = [
        record(request_id="b1", response_time_ms=200, success="false", error_type="rate_limit"),
        record(request_id="b2", response_time_ms=5000, success="false", error_type="timeout"),
    ]
    third = [record(request_id="c1", response_time_ms=300)]
    for batch in (first, second, third):
        api.ingest_records(engine, batch)
    with engine.connect() as conn:
        (row,) = conn.execute(select(UsageHourly)).mappings().all()
    assert (row["requests"], row["failures"]) == (5, 3)
    assert json.loads(row["error_types"]) == {"rate_limit": 1, "timeout": 2}
    assert sum(histogram.decode(row["latency_hist"]).values()) == 5
    assert verify.verify(engine) == []


def _varied_records() -> list[dict]:
    """Records of every shape the ledger holds: usage unknown, failures without usage, cache and reasoning
    tokens, stated costs, no request_id."""
    rows = generated_records(40)
    rows += [
        record(request_id="no-usage", input_tokens="", output_tokens="", cost=""),
        record(request_id="no-usage-priced", input_tokens="", output_tokens="", cost="0.0123"),
        record(request_id="failed", input_tokens="", output_tokens="", success="false", error_type="429"),
        record(
            request_id="cached",
            model_id="claude-3-haiku-20240307",
            input_tokens=5000,
            output_tokens=900,
            cache_read_tokens=3000,
            cache_write_tokens=1000,
            reasoning_tokens=200,
        ),
        record(request_id="", quality_rating="", response_time_ms=0.125),
    ]
    return rows


def test_export_logs_ingests_back_into_an_identical_ledger(engine: Engine, tmp_path: Path) -> None:
    columns = [*LOG_COLUMNS, "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]
    ingest.ingest_file(engine, write_csv(tmp_path / "in.csv", _varied_records(), columns))
    exported = export.export_csv(engine, "logs")
    first = tmp_path / "first.csv"
    first.write_bytes(exported.encode())
    empty = api.open_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    result = ingest.ingest_file(empty, first)
    assert (result.accepted, result.rejected) == (45, 0)
    assert export.export_csv(empty, "logs") == exported
    empty.dispose()


def test_the_rejects_file_shows_the_refused_span_itself_without_its_content(engine: Engine, tmp_path: Path) -> None:
    def span(span_id: str, model: str) -> dict:
        return {
            "traceId": "ab" * 16,
            "spanId": span_id,
            "startTimeUnixNano": "1772359200000000000",
            "endTimeUnixNano": "1772359200500000000",
            "attributes": [
                {"key": "gen_ai.request.model", "value": {"stringValue": model}},
                {"key": "gen_ai.input.messages", "value": {"stringValue": "secret prompt"}},
            ],
        }

    spans = [span("01" * 8, "deepseek-chat"), span("02" * 8, "gpt-9"), span("03" * 8, "deepseek-chat")]
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}) + "\n")
    result = ingest.ingest_file(engine, path)
    rejects = list(csv.DictReader(result.rejects_file.open()))
    assert (result.accepted, [(r["line"], r["column"]) for r in rejects]) == (2, [("1", "model_id")])
    assert '"spanId":"' + "02" * 8 in rejects[0]["raw"]
    assert "secret prompt" not in rejects[0]["raw"]


def test_an_http_status_on_a_failed_span_is_its_error_type(engine: Engine, tmp_path: Path) -> None:
    attributes = {
        "gen_ai.request.model": "deepseek-chat",
        "http.response.status_code": 429,
        "error.type": "<class 'openai.RateLimitError'>",
    }
    items = [
        {"key": k, "value": {"intValue" if isinstance(v, int) else "stringValue": v}} for k, v in attributes.items()
    ]
    spans = [
        {
            "traceId": "cd" * 16,
            "spanId": "04" * 8,
            "startTimeUnixNano": "1772359200000000000",
            "endTimeUnixNano": "1772359201000000000",
            "attributes": items,
            "status": {"code": 2},
        }
    ]
    path = tmp_path / "spans.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    ingest.ingest_file(engine, path)
    logs = list(csv.DictReader(StringIO(export.export_csv(engine, "logs"))))
    assert [(r["success"], r["error_type"], r["input_tokens"]) for r in logs] == [("False", "429", "0")]


def test_log_usage_over_a_threshold_records_the_crossing_once(engine: Engine) -> None:
    api.add_budget(engine, {"name": "day", "scope": "global", "period": "daily", "amount_usd": 1.0})
    now = datetime.now(UTC).isoformat()
    for i in range(12):
        api.log_usage(engine, **record(request_id=f"live-{i}", timestamp=now, cost="0.1"))
    assert budgets.alerts_table(engine)["level"].tolist() == ["alert", "warning"]


def test_the_original_designs_log_shape_loads_with_its_failures(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_text(
        "id,model_id,timestamp,request_type,language,response_time_ms,tokens_used,cost,quality_rating,error_count\n"
        "1,deepseek-chat,2026-03-01T10:00:00,translation,es,900,1200,0.002,4.5,0\n"
        "2,deepseek-chat,2026-03-01T10:05:00,translation,es,30000,0,0,,1\n"
    )
    assert ingest.ingest_file(engine, path).accepted == 2
    logs = list(csv.DictReader(StringIO(export.export_csv(engine, "logs"))))
    assert [r["success"] for r in logs] == ["True", "False"]
