"""Reading request logs from CSV, JSON Lines and OTLP/JSON GenAI spans into plain records."""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import gc
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as arrow_csv
import pyarrow.json as arrow_json

from manager.errors import UnusableFile
from manager.integrations.litellm_records import ModelNames, spend_log_record
from manager.ledger.attribution import COLUMNS as ATTRIBUTION
from manager.ledger.validate import EARLIEST, LATEST, RowError
from manager.settings import otlp_attributes

FORMATS = ("auto", "csv", "jsonl", "otlp", "litellm")
MAX_RAW = 4000  # characters of a refused record kept in the rejects file
EARLIEST_NANOS = int(EARLIEST.timestamp()) * 10**9
LATEST_NANOS = int(LATEST.timestamp()) * 10**9
REQUIRED_CSV_COLUMNS = ("timestamp", "model_id", "response_time_ms")
# One item per input record: its line number, the record (or why it could not be read) and its text (a str, or
# an object whose str() is the text, made only when the record is refused).
Item = tuple[int, Mapping[str, Any] | RowError, object]


@dataclass(frozen=True)
class Reject:
    """A refused input row: where it was, which column, why, and its original text."""

    line: int
    column: str
    reason: str
    raw: str


@dataclass
class Batch:
    """Records to validate together (a frame, or mappings), with each one's input line and text (str() of it),
    and what the reader already refused."""

    records: Sequence[Mapping[str, Any]] | pd.DataFrame
    lines: Sequence[int]
    raws: Sequence[object] | None = None
    refused: list[Reject] = field(default_factory=list)


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


def read_batches(path: Path, fmt: str, size: int, names: ModelNames | None = None) -> Iterator[Batch]:
    """Return an iterator over the file's records in batches of about `size`; raise UnusableFile before any when
    the file cannot be read. A LiteLLM spend log needs the registry's `names` to map its models."""
    check_utf8(path)
    if fmt not in FORMATS:
        raise UnusableFile(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "litellm":
        return item_batches(_read_litellm(path, names or ModelNames(frozenset())), size)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "csv":
        return _read_csv(path, size)
    if fmt == "jsonl":
        return _jsonl_batches(path, size)
    return item_batches(_read_otlp(path), size)


def item_batches(items: Iterable[Item], size: int) -> Iterator[Batch]:
    """Group items into batches; items that could not be read are refused with their own text."""
    iterator = iter(items)
    while True:
        with collector_paused():
            batch = _next_batch(iterator, size)
        if batch is None:
            return
        yield batch


def _next_batch(items: Iterator[Item], size: int) -> Batch | None:
    records: list[Mapping[str, Any]] = []
    lines: list[int] = []
    raws: list[object] = []
    refused: list[Reject] = []
    for line, record, raw in items:
        if isinstance(record, RowError):
            refused.append(Reject(line, record.column, record.reason, str(raw)))
        else:
            records.append(record)
            lines.append(line)
            raws.append(raw)
        if len(lines) + len(refused) >= size:
            break
    return Batch(records, lines, raws, refused) if lines or refused else None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: the json module's and the readers' dicts and lists form no cycles (they
    are freed as soon as a batch is stored), and with a batch of them alive the collector walks them all again
    and again (it took two thirds of the time of reading OTLP files). It runs again on leaving."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# The fast readers: pyarrow's C++ CSV and JSON parsers read a chunk of lines into columns. A chunk they cannot
# read exactly as Python's csv and json modules would (quotes, ragged rows, blank lines, a field over the csv
# module's limit, JSON the columns cannot hold) is read line by line instead, so every file is accepted or
# refused the same way whichever reader took it, and every reject keeps its line.


def _read_csv(path: Path, size: int) -> Iterator[Batch]:
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
    return _csv_batches(handle, header, reader.line_num + 1, size)


def _csv_batches(handle: Any, header: list[str], first: int, size: int) -> Iterator[Batch]:
    with handle:
        while chunk := list(islice(handle, size)):
            text = "".join(chunk)
            while text.count('"') % 2:  # a quoted cell runs past the chunk: it stays in one chunk
                more = list(islice(handle, size))
                if not more:
                    break
                chunk += more
                text += "".join(more)
            yield _arrow_csv(text, chunk, header, first) or _csv_module_batch(chunk, header, first)
            first += len(chunk)


def _arrow_csv(text: str, lines: list[str], header: list[str], first: int) -> Batch | None:
    """Return a chunk read by pyarrow, or None when only the csv module reads it right."""
    if '"' in text:
        return None
    options = arrow_csv.ReadOptions(column_names=[f"c{i}" for i in range(len(header))], use_threads=False)
    convert = arrow_csv.ConvertOptions(
        column_types={f"c{i}": pa.string() for i in range(len(header))}, strings_can_be_null=False
    )
    parse = arrow_csv.ParseOptions(quote_char=False, ignore_empty_lines=False)
    try:
        table = arrow_csv.read_csv(io.BytesIO(text.encode()), options, parse, convert)
    except pa.ArrowInvalid:  # a ragged or blank line
        return None
    if table.num_rows != len(lines) or any(
        (pa.compute.max(pa.compute.utf8_length(column)).as_py() or 0) > csv.field_size_limit()
        for column in table.columns
    ):
        return None
    # A repeated column name means its last cell, as a dict of the row would.
    last = {name: i for i, name in enumerate(header)}
    frame = pd.DataFrame({name: table.column(i).to_pandas() for name, i in last.items()})
    blank = pd.Series(True, index=frame.index)
    for name in frame:
        blank &= frame[name].str.strip() == ""
    keep = (~blank).to_numpy()
    numbers = range(first, first + len(lines))
    return Batch(
        frame[keep],
        [n for n, kept in zip(numbers, keep, strict=True) if kept],
        [line.rstrip("\r\n")[:MAX_RAW] for line, kept in zip(lines, keep, strict=True) if kept],
    )


def _csv_module_batch(lines: list[str], header: list[str], first: int) -> Batch:
    """Read a chunk with the csv module: quoted cells, ragged rows and unreadable lines each get their say."""
    records = []
    numbers = []
    raws: list[object] = []
    refused = []
    reader = csv.reader(lines)
    start = first
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # the reader goes on with the next line
            refused.append(Reject(start, "*", f"unreadable CSV ({error})", ""))
            start = first + reader.line_num
            continue
        line = start
        start = first + reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        raw = ",".join(cells)[:MAX_RAW]
        if len(cells) > len(header):
            refused.append(Reject(line, "*", f"{len(cells)} cells for {len(header)} columns", raw))
        elif any("\n" in cell or "\r" in cell for cell in cells):
            reason = f"a quoted cell runs over {start - line} lines (an unterminated quote?)"
            refused.append(Reject(line, "*", reason, raw))
        else:
            records.append(dict(zip(header, cells, strict=False)))
            numbers.append(line)
            raws.append(raw)
    return Batch(records, numbers, raws, refused)


def _jsonl_batches(path: Path, size: int) -> Iterator[Batch]:
    with path.open(encoding="utf-8-sig") as handle:
        first = 1
        while chunk := list(islice(handle, size)):
            numbered = [(first + i, text) for i, text in enumerate(chunk) if text.strip()]
            yield _arrow_jsonl(numbered) or next(item_batches(_json_items(numbered), len(numbered) + 1))
            first += len(chunk)


# Text columns are read as text (pyarrow would otherwise turn date-like text into timestamps); a line whose
# text column holds a number goes to the json module.
_JSON_TEXT = pa.schema(
    [
        (name, pa.string())
        for name in ("request_id", "timestamp", "model_id", "request_type", "language", "error_type", *ATTRIBUTION)
    ]
)
_JSON_TYPES = (pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.null())


def _arrow_jsonl(numbered: list[tuple[int, str]]) -> Batch | None:
    """Return a chunk of JSON lines read by pyarrow, or None when only the json module reads it right."""
    # Only lines that look like one object each: a bare `null` line crashes pyarrow 26.0.1's reader (SIGSEGV).
    if not numbered or not all(text.strip().startswith("{") and text.strip().endswith("}") for _, text in numbered):
        return None
    body = "".join(text if text.endswith("\n") else text + "\n" for _, text in numbered).encode()
    parse = arrow_json.ParseOptions(explicit_schema=_JSON_TEXT, unexpected_field_behavior="infer")
    try:
        table = arrow_json.read_json(io.BytesIO(body), arrow_json.ReadOptions(use_threads=False), parse)
    except pa.ArrowInvalid:  # not an object per line, mixed types in a column, a repeated key
        return None
    if table.num_rows != len(numbered) or any(t not in _JSON_TYPES for t in table.schema.types):
        return None
    return Batch(table.to_pandas(), [n for n, _ in numbered], [text.strip()[:MAX_RAW] for _, text in numbered])


def _json_items(numbered: list[tuple[int, str]]) -> Iterator[Item]:
    for line, text in numbered:
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
    """Yield the file's export requests with their lines, one at a time: the Collector's file exporter writes one
    per line; a file that is one (pretty-printed) document is read whole."""
    with path.open(encoding="utf-8-sig") as handle:
        numbered = ((line, text) for line, text in enumerate(handle, start=1) if text.strip())
        first = next(numbered, None)
        if first is None:
            return
        document = _json_line(first[1])
        if isinstance(document, RowError):
            handle.seek(0)
            try:
                yield 1, json.loads(handle.read().removeprefix("\ufeff"))
                return
            except (RecursionError, ValueError):
                pass
        yield first[0], document
        for line, text in numbered:
            yield line, _json_line(text)


def _read_otlp(path: Path) -> Iterator[Item]:
    documents = _otlp_documents(path)
    skipped = []  # documents before the first export request, kept to be refused in their place
    for line, doc in documents:
        skipped.append((line, doc))
        if isinstance(doc, dict) and "resourceSpans" in doc:
            return _otlp_items(chain(skipped, documents))
    raise UnusableFile(f"{path}: no resourceSpans: not an OTLP/JSON trace export")


def otlp_items(document: Any) -> Iterator[Item]:
    """Yield each span of one OTLP/JSON-shaped export request (a receiver's body, decoded) as an item."""
    return _otlp_items([(1, document)])


def _otlp_items(documents: Iterable[tuple[int, Any]]) -> Iterator[Item]:
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
    described = resource.get("resource")
    items = described.get("attributes") if isinstance(described, dict) else None
    found = _attributes(items) if isinstance(items, list) else None
    scopes = partial(_scope_items, source=SpanSource(found or {}, otlp_attributes()))
    yield from _nested(line, resource, "scopeSpans", path, scopes)


def _scope_items(line: int, scope: dict[str, Any], path: str, source: SpanSource) -> Iterator[Item]:
    # The spans level is walked here rather than through _nested: it runs once per span, so it makes no
    # generator and no path text per span (a refused span's path is written only into its reject).
    where = f"{path}.spans" if path else "spans"
    spans = scope.get("spans", [])
    if not isinstance(spans, list):
        yield line, RowError(where, "not a list"), str(spans)[:MAX_RAW]
        return
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            yield line, RowError(f"{where}[{index}]", "not an object"), str(span)[:MAX_RAW]
            continue
        item = _span_item(line, span, where, index, source)
        if item is not None:
            yield item


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


class SpanText:
    """A span as the rejects file shows it, written out only if the span is refused: its JSON path first (with a
    whole document on "line 1", the path is what finds the span), then the span without its content."""

    __slots__ = ("index", "span", "where")

    def __init__(self, where: str, index: int, span: dict[str, Any]):
        self.where, self.index, self.span = where, index, span

    def __str__(self) -> str:
        shown = json.dumps(_span_without_content(self.span), separators=(",", ":"), default=str)
        return f"{self.where}[{self.index}] {shown}"[:MAX_RAW]


def _span_item(line: int, span: dict[str, Any], where: str, index: int, source: SpanSource) -> Item | None:
    """Return a span's item, or None for a span that is not a GenAI span (ignored, not refused)."""
    raw = SpanText(where, index, span)
    items = span.get("attributes", [])
    if not isinstance(items, list):
        return line, RowError(f"{where}[{index}].attributes", "not a list of {key, value} objects"), raw
    attributes = _attributes(items)
    if attributes is None:
        return line, RowError(f"{where}[{index}].attributes", "not a list of {key, value} objects"), raw
    for key in attributes:
        if key.startswith("gen_ai."):
            break
    else:
        return None
    try:
        return line, span_record(span, attributes, source), raw
    except RowError as error:
        return line, error, raw


_VALUE_KINDS = ("stringValue", "intValue", "doubleValue", "boolValue")


def _attributes(items: list[Any]) -> dict[str, Any] | None:
    """Return the scalar attributes by key (the first kind of value each has), or None when an item is not an
    object."""
    values: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            return None
        value = item.get("value")
        if not isinstance(value, dict):
            continue
        if len(value) == 1:  # the usual shape: one kind of value
            ((kind, found),) = value.items()
            if kind in _VALUE_KINDS:
                values[str(item.get("key", ""))] = found
            elif kind == "arrayValue" and isinstance(found, dict) and isinstance(found.get("values"), list):
                values[str(item.get("key", ""))] = [
                    next((v[k] for k in _VALUE_KINDS if k in v), None) if isinstance(v, dict) else None
                    for v in found["values"]
                ]
            continue
        for kind in _VALUE_KINDS:
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


@dataclass(frozen=True)
class SpanSource:
    """What the spans of one resource share: its attributes (app, environment), and which span attributes carry
    team, API key and tags (read from the settings once per resource, not per span)."""

    resource: Mapping[str, Any] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=otlp_attributes)


def span_record(
    span: Mapping[str, Any], attributes: Mapping[str, Any], source: SpanSource | None = None
) -> dict[str, Any]:
    """Return the request record of one GenAI span (its resource's attributes say which app and environment)."""
    start = _nanos(span, "startTimeUnixNano")
    end = _nanos(span, "endTimeUnixNano")
    if not EARLIEST_NANOS <= start < LATEST_NANOS:
        raise RowError("startTimeUnixNano", f"{span.get('startTimeUnixNano')!r} is outside 1970 to 2199")
    if end < start:
        raise RowError("endTimeUnixNano", "is before startTimeUnixNano")
    found = span.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}

    # get(a, get(b)) is a's value when the span has a, else b's: the first name present wins, as the
    # conventions' newer names are listed first.
    get = attributes.get
    http_status = get("http.response.status_code", get("http.status_code"))
    http_failed = str(http_status).isdigit() and int(str(http_status)) >= 400
    failed = status.get("code") in (2, "2", "STATUS_CODE_ERROR") or "error.type" in attributes or http_failed
    if not failed:
        error_type = None
    elif http_failed:
        error_type = str(http_status)  # what people search for ("429")
    else:
        error_type = get("error.type") or status.get("message") or "error"

    model = get("gen_ai.response.model", get("gen_ai.request.model"))
    if model is None:
        raise RowError("gen_ai.request.model", "missing")
    record = {
        "request_id": f"{_hex_id(span.get('traceId'))}-{_hex_id(span.get('spanId'))}",
        "timestamp": datetime.fromtimestamp(start // 1_000_000_000, UTC).replace(
            microsecond=start % 1_000_000_000 // 1000
        ),
        "model_id": model,
        "request_type": get("app.request_type", get("request_type")),
        "language": get("app.language", get("language")),
        "input_tokens": get("gen_ai.usage.input_tokens", get("gen_ai.usage.prompt_tokens")),
        "output_tokens": get("gen_ai.usage.output_tokens", get("gen_ai.usage.completion_tokens")),
        "cache_read_tokens": get("gen_ai.usage.cache_read.input_tokens", get("gen_ai.usage.cache_read_input_tokens")),
        "cache_write_tokens": get(
            "gen_ai.usage.cache_creation.input_tokens", get("gen_ai.usage.cache_creation_input_tokens")
        ),
        "reasoning_tokens": get(
            "gen_ai.usage.reasoning.output_tokens",
            get("gen_ai.usage.reasoning_tokens", get("llm.usage.reasoning_tokens")),
        ),
        "response_time_ms": (end - start) / 1_000_000,
        "cost": get("app.cost_usd", get("gen_ai.usage.cost")),
        "quality_rating": get("app.quality_rating", get("quality_rating")),
        "success": not failed,
        "error_type": error_type,
    }
    # Attribution only where the span carries it: a batch whose spans carry none reads no such columns.
    source = source or SpanSource()
    resource, names = source.resource, source.names
    for column, value in (
        ("user", get("user.id", get("enduser.id"))),
        ("team", get(names["team"])),
        ("api_key", get(names["api_key"])),
        ("tags", get(names["tags"])),
        ("app", resource.get("service.name")),
        ("environment", resource.get("deployment.environment.name", resource.get("deployment.environment"))),
    ):
        if value is not None:
            record[column] = value
    return record


# LiteLLM's spend log: its LiteLLM_SpendLogs rows exported to CSV (JSON columns as JSON text), a JSON array of
# them, the /spend/logs API's answer (an array, or an object whose "data" is one), or JSON Lines.
_SPEND_LOG_TEXT = ("messages", "response", "proxy_server_request")  # prompt and completion: never kept


def _spend_log_raw(row: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in _SPEND_LOG_TEXT}, default=str)[:MAX_RAW]


def _spend_log_item(line: int, row: Any, names: ModelNames) -> Item:
    if not isinstance(row, dict):
        return line, RowError("*", "not a JSON object"), str(row)[:MAX_RAW]
    try:
        return line, spend_log_record(row, names), ""
    except RowError as error:
        return line, error, _spend_log_raw(row)


def _spend_log_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        head = handle.read(4096).lstrip()
        if not head:
            raise UnusableFile(f"{path}: the file is empty")
        handle.seek(0)
        if not head.startswith(("[", "{")):
            yield from _spend_log_csv(path, handle)
            return
        text = handle.read().removeprefix("\ufeff")
    try:
        document = json.loads(text)
    except RecursionError:
        raise UnusableFile(f"{path}: nested too deeply to read") from None
    except ValueError:
        numbered = ((n, t) for n, t in enumerate(text.splitlines(), start=1) if t.strip())
        yield from ((n, _json_line(t)) for n, t in numbered)
        return
    rows = document
    if isinstance(document, dict):
        rows = document.get("data") if "data" in document else [document]
    if not isinstance(rows, list):
        raise UnusableFile(f'{path}: not a LiteLLM spend log (a JSON array of rows, or an object with "data")')
    yield from enumerate(rows, start=1)


SPEND_LOG_FIELD_LIMIT = 1 << 28  # a row's messages and response columns can be far past the csv module's 128 KiB


def _spend_log_csv(path: Path, handle: Any) -> Iterator[tuple[int, Any]]:
    limit = csv.field_size_limit(SPEND_LOG_FIELD_LIMIT)
    try:
        reader = csv.DictReader(handle)
        if not {"request_id", "startTime", "model"} <= set(reader.fieldnames or ()):
            raise UnusableFile(f"{path}: not a LiteLLM spend log (no request_id, startTime and model columns)")
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # the reader goes on with the next line
                yield line, RowError("*", f"unreadable CSV ({error})")
                continue
            yield line, row
    finally:
        csv.field_size_limit(limit)


def _read_litellm(path: Path, names: ModelNames) -> Iterator[Item]:
    for line, row in _spend_log_rows(path):
        if isinstance(row, RowError):
            yield line, row, ""
        else:
            yield _spend_log_item(line, row, names)
