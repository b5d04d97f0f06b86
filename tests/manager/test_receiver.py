"""The OTLP/HTTP receiver, driven by the real OpenTelemetry exporter and real instrumented clients' spans."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, create_engine, func, select

from manager import api, export
from manager.cli import main
from manager.ledger import ingest, receiver, verify
from manager.models import RequestLog
from tests.utils.llm_stub import Call, stub_llm_server
from tests.utils.real_traffic import Planned, export_request_lines, finished_spans
from tests.utils.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def _plan() -> list[Planned]:
    """Thirty calls through the three real clients: some fail after the clients' retries, some stream."""
    plan = []
    for i in range(30):
        client, model = [
            ("openai", "deepseek-chat"),
            ("anthropic", "claude-3-haiku-20240307"),
            ("ollama", "llama2:latest"),
        ][i % 3]
        attempts = [500] if client == "ollama" and i % 7 == 2 else [429] * 3 if i % 7 == 2 else [200]
        plan.append(Planned(client, model, Call(i + 1, attempts, 300 + i, 50 + i), stream=i % 5 == 4))
    return plan


@pytest.fixture(scope="module")
def spans() -> list[ReadableSpan]:
    """Return the spans the real instrumentations finished for the plan, plus one span that is not GenAI."""
    with stub_llm_server() as stub:
        made = finished_spans(stub, _plan())
    plain = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(plain))
    with provider.get_tracer("app").start_as_current_span("GET /orders"):
        pass
    return [*made, *plain.get_finished_spans()]


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[str, receiver.Tally]]:
    """Serve the receiver on a free loopback port for the test's database; yield its base URL and tally."""
    server, tally = receiver.make_server(engine, "127.0.0.1", 0, token=None, max_body=256 * 1024)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tally
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """POST a body and return the status, headers and body, whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequestLog)).scalar_one())


def test_the_real_exporter_stores_exactly_what_ingesting_the_same_spans_stores(
    engine: Engine, served: tuple[str, receiver.Tally], spans: list[ReadableSpan], tmp_path: Path
) -> None:
    url, tally = served
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert tally.skipped == 1  # the span that is not a GenAI span
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join(export_request_lines(spans)), encoding="utf-8")
    from_file = api.open_engine(f"sqlite:///{tmp_path / 'from-file.db'}")
    ingest.ingest_file(from_file, path)
    assert export.export_csv(engine, "logs") == export.export_csv(from_file, "logs")
    assert stored(engine) == len(spans) - 1
    assert verify.verify(engine) == []


def test_a_resent_batch_adds_nothing_in_either_encoding(
    engine: Engine, served: tuple[str, receiver.Tally], spans: list[ReadableSpan]
) -> None:
    url, _ = served
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    before = export.export_csv(engine, "logs")
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # protobuf, as an exporter's retry sends it
    for line in export_request_lines(spans):  # and OTLP/JSON, as a Collector would
        status, headers, body = post(f"{url}/v1/traces", line.encode(), {"Content-Type": "application/json"})
        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert json.loads(body) == {}
    assert export.export_csv(engine, "logs") == before


def _genai_span(span_id: str, **attributes: Any) -> dict[str, Any]:
    values = {"gen_ai.request.model": "deepseek-chat", "gen_ai.usage.input_tokens": 10, **attributes}
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": span_id,
        "name": "chat deepseek-chat",
        "startTimeUnixNano": "1764000000000000000",
        "endTimeUnixNano": "1764000000500000000",
        "attributes": [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
            for k, v in values.items()
        ],
    }


def test_refused_spans_come_back_as_partial_success_and_the_rest_is_stored(
    engine: Engine, served: tuple[str, receiver.Tally]
) -> None:
    url, _ = served
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            _genai_span("eee19b7ec3c1b174"),
                            _genai_span("eee19b7ec3c1b175", **{"gen_ai.usage.output_tokens": -5}),
                        ]
                    }
                ]
            }
        ]
    }
    status, _, body = post(
        f"{url}/v1/traces",
        gzip.compress(json.dumps(document).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    answer = json.loads(body)
    assert status == 200
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert "output_tokens" in answer["partialSuccess"]["errorMessage"]
    assert stored(engine) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\x0a\xff\xff", {"Content-Type": "application/x-protobuf"}, 400),
        (b"{not json", {"Content-Type": "application/json"}, 400),
        (b"not gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
        (b"x" * (256 * 1024 + 1), {"Content-Type": "application/x-protobuf"}, 413),
        (gzip.compress(b" " * (300 * 1024)), {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 413),
    ],
)
def test_a_body_that_cannot_be_used_is_refused_whole_with_the_status_the_spec_names(
    engine: Engine, served: tuple[str, receiver.Tally], body: bytes, headers: dict[str, str], status: int
) -> None:
    url, _ = served
    got, answer_headers, answer = post(f"{url}/v1/traces", body, headers)
    assert got == status
    assert answer_headers["Content-Type"] in ("application/json", "application/x-protobuf")
    assert answer
    assert stored(engine) == 0


def test_health_answers_with_what_was_received(served: tuple[str, receiver.Tally]) -> None:
    url, _ = served
    with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "ok"


def test_a_token_is_required_when_set_and_compared_exactly(engine: Engine, spans: list[ReadableSpan]) -> None:
    server, _ = receiver.make_server(engine, "127.0.0.1", 0, token="s3cret-token")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        assert post(endpoint, b"", {"Content-Type": "application/x-protobuf"})[0] == 401
        wrong = {"Content-Type": "application/x-protobuf", "Authorization": "Bearer s3cret-tokem"}
        assert post(endpoint, b"", wrong)[0] == 401
        exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": "Bearer s3cret-token"})
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        assert stored(engine) == len(spans) - 1
    finally:
        server.shutdown()
        server.server_close()


def test_serving_beyond_loopback_without_a_token_is_refused(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "serve-otlp", "--host", "0.0.0.0", "--port", str(free_port())]) == 2
    assert "MANAGER_OTLP_TOKEN" in capsys.readouterr().err


def test_a_busy_database_answers_503_with_retry_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spans: list[ReadableSpan]
) -> None:
    monkeypatch.setenv("MANAGER_BUSY_TIMEOUT_SECONDS", "0.2")
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    engine = api.open_engine(url)
    server, _ = receiver.make_server(engine, "127.0.0.1", 0, token=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line = export_request_lines(spans)[0].encode()
    holder = create_engine(url).connect()
    holder.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        status, headers, _ = post(
            f"http://127.0.0.1:{server.server_address[1]}/v1/traces", line, {"Content-Type": "application/json"}
        )
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert stored(engine) == 0
    finally:
        holder.rollback()
        holder.close()
        server.shutdown()
        server.server_close()


def many_genai_spans(count: int) -> list[ReadableSpan]:
    """Return `count` GenAI spans made by the real SDK, as an instrumentation makes them."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    start = time.time_ns() - 3600 * 10**9
    for i in range(count):
        span = tracer.start_span(f"chat {i}", start_time=start + i * 10**6)
        span.set_attributes(
            {
                "gen_ai.request.model": "deepseek-chat",
                "gen_ai.usage.input_tokens": 100 + i % 50,
                "gen_ai.usage.output_tokens": 20,
            }
        )
        span.end(end_time=start + i * 10**6 + 400 * 10**6)
    return list(memory.get_finished_spans())


def test_a_receiver_killed_mid_batch_leaves_whole_batches_and_the_retry_lands_exactly(
    db_url: str, engine: Engine
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "manager", "--db", db_url, "serve-otlp", "--port", str(port)]
    batch = many_genai_spans(20_000)
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=120)
    result: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: result.append(exporter.export(batch)))
    sender.start()
    time.sleep(0.5)  # the receiver is decoding, validating or writing the batch
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert stored(engine) in (0, len(batch))  # the batch is whole or absent, never part
    assert verify.verify(engine) == []
    second = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sender.join(timeout=180)  # the exporter retries the connection it lost, into the new receiver
        assert result == [SpanExportResult.SUCCESS]
        assert stored(engine) == len(batch)
        assert verify.verify(engine) == []
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)


def test_the_response_is_an_export_trace_service_response_in_protobuf(
    served: tuple[str, receiver.Tally], spans: list[ReadableSpan]
) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    url, _ = served
    body = encode_spans(spans).SerializeToString()
    status, headers, answer = post(f"{url}/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    assert (status, headers["Content-Type"]) == (200, "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans == 0
