"""Reading request logs from CSV, JSON Lines and OTLP/JSON GenAI spans into plain records."""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from manager.errors import UnusableFile
from manager.records import RowError

FORMATS = ("auto", "csv", "jsonl", "otlp")
REQUIRED_CSV_COLUMNS = ("timestamp", "model_id", "response_time_ms")
# One item per input record: its line number, the record (or why it could not be read) and its text.
Item = tuple[int, Mapping[str, Any] | RowError, str]


def check_utf8(path: Path) -> None:
    """Raise UnusableFile when the file cannot be opened or is not UTF-8 text."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    line += chunk[: error.start].count(b"\n")
                    raise UnusableFile(f"{path}: line {line}: not UTF-8 text") from None
                line += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except OSError as error:
        raise UnusableFile(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UnusableFile(f"{path}: line {line}: not UTF-8 text (ends mid-character)") from None


def detect_format(path: Path) -> str:
    """Return 'csv', 'jsonl' or 'otlp' from the file's first non-blank line."""
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            text = line.strip()
            if not text:
                continue
            if not text.startswith("{"):
                return "csv"
            return "otlp" if '"resourceSpans"' in text or text == "{" else "jsonl"
    raise UnusableFile(f"{path}: the file is empty")


def read_records(path: Path, fmt: str) -> Iterator[Item]:
    """Return an iterator over the file's records; raise UnusableFile before any when it cannot be read."""
    check_utf8(path)
    if fmt not in FORMATS:
        raise UnusableFile(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "csv":
        return _read_csv(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    return _read_otlp(path)


def _read_csv(path: Path) -> Iterator[Item]:
    handle = path.open(encoding="utf-8-sig", newline="")
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader, [])]
    if not header:
        handle.close()
        raise UnusableFile(f"{path}: the file is empty")
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if "input_tokens" not in header and "output_tokens" not in header and "tokens_used" not in header:
        missing.append("input_tokens/output_tokens (or tokens_used)")
    if missing:
        handle.close()
        raise UnusableFile(f"{path}: line 1: header lacks column(s) {', '.join(missing)}")
    return _csv_rows(handle, reader, header)


def _csv_rows(handle: Any, reader: Any, header: list[str]) -> Iterator[Item]:
    with handle:
        start = reader.line_num + 1
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            raw = ",".join(cells)
            if len(cells) > len(header):
                yield line, RowError("*", f"{len(cells)} cells for {len(header)} columns"), raw
                continue
            yield line, dict(zip(header, cells, strict=False)), raw


def _read_jsonl(path: Path) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                yield line, RowError("*", f"not valid JSON ({error.msg} at column {error.colno})"), text.strip()
                continue
            if not isinstance(record, dict):
                yield line, RowError("*", "not a JSON object"), text.strip()
                continue
            yield line, record, text.strip()


def _otlp_documents(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        yield 1, json.loads(text)
        return
    except json.JSONDecodeError:
        pass
    # The Collector's file exporter writes one export request per line.
    for line, chunk in enumerate(text.splitlines(), start=1):
        if not chunk.strip():
            continue
        try:
            yield line, json.loads(chunk)
        except json.JSONDecodeError as error:
            raise UnusableFile(f"{path}: line {line}: not OTLP/JSON ({error.msg})") from None


def _read_otlp(path: Path) -> Iterator[Item]:
    documents = list(_otlp_documents(path))
    if not any(isinstance(doc, dict) and "resourceSpans" in doc for _, doc in documents):
        raise UnusableFile(f"{path}: no resourceSpans: not an OTLP/JSON trace export")
    return _otlp_items(documents)


def _objects(value: Any) -> list[dict[str, Any]] | None:
    """Return a JSON list of objects, or None when the value is anything else."""
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


def _otlp_items(documents: list[tuple[int, Any]]) -> Iterator[Item]:
    for line, doc in documents:
        resources = _objects(doc.get("resourceSpans", [])) if isinstance(doc, dict) else []
        if resources is None:
            yield line, RowError("resourceSpans", "not a list of objects"), str(doc)[:2000]
            continue
        for resource_spans in resources:
            for scope_spans in _objects(resource_spans.get("scopeSpans", [])) or []:
                spans = _objects(scope_spans.get("spans", []))
                if spans is None:
                    yield line, RowError("spans", "not a list of objects"), str(scope_spans)[:2000]
                    continue
                for span in spans:
                    yield from _span_item(line, span)


# Attributes that carry what people wrote or models answered: the manager never keeps any of it.
_CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "llm.prompts",
        "traceloop.entity.input",
        "traceloop.entity.output",
    }
)
_CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.completions.")
CONTENT_REMOVED = "[content not kept]"


def is_content(key: str) -> bool:
    """Return True for a span attribute that holds prompt or completion text."""
    return key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES)


def span_without_content(span: dict[str, Any]) -> dict[str, Any]:
    """Return a span as the rejects file shows it: message content blanked, events reduced to their names."""
    shown = dict(span)
    items = span.get("attributes")
    if isinstance(items, list):
        shown["attributes"] = [
            {**item, "value": {"stringValue": CONTENT_REMOVED}}
            if isinstance(item, dict) and is_content(str(item.get("key", "")))
            else item
            for item in items
        ]
    events = span.get("events")
    if isinstance(events, list):
        shown["events"] = [{"name": e.get("name")} if isinstance(e, dict) else e for e in events]
    return shown


def _span_item(line: int, span: dict[str, Any]) -> Iterator[Item]:
    raw = json.dumps(span_without_content(span), separators=(",", ":"), default=str)[:4000]
    items = _objects(span.get("attributes", []))
    if items is None:
        yield line, RowError("attributes", "not a list of {key, value} objects"), raw
        return
    attributes = _attributes(items)
    if not any(key.startswith("gen_ai.") for key in attributes):
        return  # not a GenAI span: ignored, not rejected
    try:
        yield line, span_record(span, attributes), raw
    except RowError as error:
        yield line, error, raw


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        value = item.get("value")
        if not isinstance(value, dict):
            continue
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if kind in value:
                values[str(item.get("key", ""))] = value[kind]
                break
    return values


def _hex_id(value: Any) -> str:
    text = str(value or "")
    try:
        int(text, 16)
        return text.lower()
    except ValueError:
        pass
    try:  # protobuf's own JSON mapping writes ids as base64
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        return text


def _nanos(span: Mapping[str, Any], key: str) -> int:
    try:
        return int(span[key])
    except (KeyError, TypeError, ValueError):
        raise RowError(key, f"{span.get(key)!r} is not a time in Unix nanoseconds") from None


def span_record(span: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Return the request record of one GenAI span."""
    start = _nanos(span, "startTimeUnixNano")
    end = _nanos(span, "endTimeUnixNano")
    found = span.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}

    def pick(*keys: str) -> Any:
        return next((attributes[k] for k in keys if k in attributes), None)

    http_status = pick("http.response.status_code", "http.status_code")
    http_failed = str(http_status).isdigit() and int(str(http_status)) >= 400
    failed = status.get("code") in (2, "2", "STATUS_CODE_ERROR") or "error.type" in attributes or http_failed
    # An HTTP status is what people search for ("429"); otherwise the instrumentation's error type.
    error_type = (
        str(http_status) if http_failed else attributes.get("error.type") or (status.get("message") or "error")
    ) if failed else None

    model = pick("gen_ai.response.model", "gen_ai.request.model")
    if model is None:
        raise RowError("gen_ai.request.model", "missing")
    return {
        "request_id": f"{_hex_id(span.get('traceId'))}-{_hex_id(span.get('spanId'))}",
        "timestamp": datetime.fromtimestamp(start // 1_000_000_000, UTC).replace(
            microsecond=start % 1_000_000_000 // 1000
        ),
        "model_id": model,
        "request_type": pick("app.request_type", "request_type"),
        "language": pick("app.language", "language"),
        "input_tokens": pick("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
        "output_tokens": pick("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
        "cache_read_tokens": pick("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"),
        "cache_write_tokens": pick(
            "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens"
        ),
        "reasoning_tokens": pick(
            "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens"
        ),
        "response_time_ms": (end - start) / 1_000_000,
        "cost": pick("app.cost_usd", "gen_ai.usage.cost"),
        "quality_rating": pick("app.quality_rating", "quality_rating"),
        "success": not failed,
        "error_type": error_type,
    }
