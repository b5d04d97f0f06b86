"""Real GenAI telemetry, made as a team would make it: the real openai, anthropic and ollama clients, instrumented
by the real OpenTelemetry instrumentations, calling a stub LLM server; the spans go through the SDK's own OTLP
encoder into a file laid out as the OpenTelemetry Collector's file exporter writes it (one export request per
line, hex ids).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.utils.llm_stub import Call, StubLLM

_exporter = InMemorySpanExporter()
_instrumented = False


def _instrument() -> None:
    """Instrument the three clients once per process, into an in-memory exporter."""
    global _instrumented
    if _instrumented:
        return
    from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
    from opentelemetry.instrumentation.ollama import OllamaInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    AnthropicInstrumentor().instrument(tracer_provider=provider)
    OllamaInstrumentor().instrument(tracer_provider=provider)
    _instrumented = True


@dataclass(frozen=True)
class Planned:
    """One client call to make: which client, which model, streamed or not (and with usage asked for)."""

    client: str  # openai | anthropic | ollama
    model: str
    call: Call
    stream: bool = False
    include_usage: bool = False


def _make_call(stub: StubLLM, planned: Planned) -> None:
    import anthropic
    import ollama
    import openai

    prompt = stub.plan(planned.call)
    try:
        if planned.client == "openai":
            client = openai.OpenAI(base_url=f"{stub.url}/v1", api_key="test", max_retries=2)
            options: dict[str, Any] = {}
            if planned.stream and planned.include_usage:
                options["stream_options"] = {"include_usage": True}
            answer = client.chat.completions.create(
                model=planned.model, messages=[{"role": "user", "content": prompt}], stream=planned.stream, **options
            )
            if planned.stream:
                for _ in answer:
                    pass
        elif planned.client == "anthropic":
            messages = anthropic.Anthropic(base_url=stub.url, api_key="test", max_retries=2).messages
            if planned.stream:
                with messages.stream(
                    model=planned.model, max_tokens=256, messages=[{"role": "user", "content": prompt}]
                ) as events:
                    for _ in events:
                        pass
            else:
                messages.create(model=planned.model, max_tokens=256, messages=[{"role": "user", "content": prompt}])
        else:
            answer = ollama.Client(host=stub.url).chat(
                model=planned.model, messages=[{"role": "user", "content": prompt}], stream=planned.stream
            )
            if planned.stream:
                for _ in answer:
                    pass
    except (openai.APIError, anthropic.APIError, ollama.ResponseError):
        pass  # a failed call is traffic too: its span is what the test is about


def _hex_ids(value: Any) -> Any:
    """Rewrite protobuf-JSON base64 ids as the Collector's hex, recursively."""
    import base64

    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def finished_spans(stub: StubLLM, plan: list[Planned]) -> list[ReadableSpan]:
    """Make every planned call with the real instrumented clients; return the spans they finished."""
    _instrument()
    _exporter.clear()
    for planned in plan:
        _make_call(stub, planned)
    return list(_exporter.get_finished_spans())


def export_request_lines(spans: Sequence[ReadableSpan], *, per_line: int = 25) -> list[str]:
    """Return the spans as the Collector's file exporter writes them: one OTLP/JSON export request per line."""
    return [
        json.dumps(_hex_ids(MessageToDict(encode_spans(spans[start : start + per_line]))))
        for start in range(0, len(spans), per_line)
    ]


def record_traffic(stub: StubLLM, plan: list[Planned], path: Path, *, per_line: int = 25) -> int:
    """Make every planned call and write their spans as OTLP/JSON lines to `path`; return the number of spans."""
    spans = finished_spans(stub, plan)
    path.write_text("".join(line + "\n" for line in export_request_lines(spans, per_line=per_line)), encoding="utf-8")
    return len(spans)
