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
from manager.ledger.validate import EARLIEST, LATEST, RowError

FORMATS = ("auto", "csv", "jsonl", "otlp")
MAX_RAW = 4000  # characters of a refused record kept in the rejects file
EARLIEST_NANOS = int(EARLIEST.timestamp()) * 10**9
LATEST_NANOS = int(LATEST.timestamp()) * 10**9
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
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the reader goes on with the next line
                yield start, RowError("*", f"unreadable CSV ({error})"), ""
                start = reader.line_num + 1
                continue
            line = start
            start = reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            raw = ",".join(cells)[:MAX_RAW]
            if len(cells) > len(header):
                yield line, RowError("*", f"{len(cells)} cells for {len(header)} columns"), raw
            elif any("\n" in cell or "\r" in cell for cell in cells):
                reason = f"a quoted cell runs over {start - line} lines (an unterminated quote?)"
                yield line, RowError("*", reason), raw
            else:
                yield line, dict(zip(header, cells, strict=False)), raw


def _read_jsonl(path: Path) -> Iterator[Item]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            record = _json_line(text)
            if isinstance(record, RowError):
                yield line, record, text.strip()[:MAX_RAW]
            elif not isinstance(record, dict):
                yield line, RowError("*", "not a JSON object"), text.strip()[:MAX_RAW]
            else:
                yield line, record, text.strip()[:MAX_RAW]


def _json_line(text: str) -> Any:
    """Return one line's JSON value, or a RowError saying why it cannot be read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        return RowError("*", f"not valid JSON ({error.msg} at column {error.colno})")
    except RecursionError:
        return RowError("*", "nested too deeply to read")
    except ValueError as error:  # e.g. an integer with more digits than Python will convert
        return RowError("*", f"not readable JSON ({error})")


def _otlp_documents(path: Path) -> Iterator[tuple[int, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    try:
        yield 1, json.loads(text)
        return
    except (RecursionError, ValueError):
        pass
    # The Collector's file exporter writes one export request per line.
    for line, chunk in enumerate(text.splitlines(), start=1):
        if chunk.strip():
            yield line, _json_line(chunk)


def _read_otlp(path: Path) -> Iterator[Item]:
    documents = list(_otlp_documents(path))
    if not any(isinstance(doc, dict) and "resourceSpans" in doc for _, doc in documents):
        raise UnusableFile(f"{path}: no resourceSpans: not an OTLP/JSON trace export")
    return _otlp_items(documents)


def otlp_items(document: Any) -> Iterator[Item]:
    """Yield each span of one OTLP/JSON-shaped export request (a receiver's body, decoded) as an item."""
    return _otlp_items([(1, document)])


def _otlp_items(documents: list[tuple[int, Any]]) -> Iterator[Item]:
    """Yield each span of each export request; every structure that is not what OTLP/JSON says is a reject
    naming its JSON path, never skipped."""
    for line, doc in documents:
        if isinstance(doc, RowError):
            yield line, doc, ""
        elif not isinstance(doc, dict):
            yield line, RowError("*", "not a JSON object"), str(doc)[:MAX_RAW]
        else:
            yield from _nested(line, doc, "resourceSpans", "", _resource_items)


def _nested(line: int, parent: dict[str, Any], key: str, path: str, each: Any) -> Iterator[Item]:
    """Yield the items of each element of parent[key] (a list of objects), or a reject naming what is wrong."""
    where = f"{path}.{key}" if path else key
    children = parent.get(key, [])
    if not isinstance(children, list):
        yield line, RowError(where, "not a list"), str(children)[:MAX_RAW]
        return
    for index, child in enumerate(children):
        here = f"{where}[{index}]"
        if isinstance(child, dict):
            yield from each(line, child, here)
        else:
            yield line, RowError(here, "not an object"), str(child)[:MAX_RAW]


def _resource_items(line: int, resource: dict[str, Any], path: str) -> Iterator[Item]:
    yield from _nested(line, resource, "scopeSpans", path, _scope_items)


def _scope_items(line: int, scope: dict[str, Any], path: str) -> Iterator[Item]:
    yield from _nested(line, scope, "spans", path, _span_item)


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
_CONTENT_REMOVED = "[content not kept]"


def _is_content(key: str) -> bool:
    """Return True for a span attribute that holds prompt or completion text."""
    return key in _CONTENT_KEYS or key.startswith(_CONTENT_PREFIXES)


def _span_without_content(span: dict[str, Any]) -> dict[str, Any]:
    """Return a span as the rejects file shows it: message content blanked, events reduced to their names."""
    shown = dict(span)
    items = span.get("attributes")
    if isinstance(items, list):
        shown["attributes"] = [
            {**item, "value": {"stringValue": _CONTENT_REMOVED}}
            if isinstance(item, dict) and _is_content(str(item.get("key", "")))
            else item
            for item in items
        ]
    events = span.get("events")
    if isinstance(events, list):
        shown["events"] = [{"name": e.get("name")} if isinstance(e, dict) else e for e in events]
    return shown


def _span_item(line: int, span: dict[str, Any], path: str) -> Iterator[Item]:
    # The path leads the raw text: with a whole document on "line 1", it is what finds the span.
    raw = f"{path} " + json.dumps(_span_without_content(span), separators=(",", ":"), default=str)[:MAX_RAW]
    items = span.get("attributes", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        yield line, RowError(f"{path}.attributes", "not a list of {key, value} objects"), raw
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
    if not EARLIEST_NANOS <= start < LATEST_NANOS:
        raise RowError("startTimeUnixNano", f"{span.get('startTimeUnixNano')!r} is outside 1970 to 2199")
    if end < start:
        raise RowError("endTimeUnixNano", "is before startTimeUnixNano")
    found = span.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}

    def pick(*keys: str) -> Any:
        return next((attributes[k] for k in keys if k in attributes), None)

    http_status = pick("http.response.status_code", "http.status_code")
    http_failed = str(http_status).isdigit() and int(str(http_status)) >= 400
    failed = status.get("code") in (2, "2", "STATUS_CODE_ERROR") or "error.type" in attributes or http_failed
    if not failed:
        error_type = None
    elif http_failed:
        error_type = str(http_status)  # what people search for ("429")
    else:
        error_type = attributes.get("error.type") or status.get("message") or "error"

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
