"""The OTLP/HTTP trace receiver: `POST /v1/traces` as the OpenTelemetry protocol specification defines it.

Each request is stored whole in one transaction or not at all, and a 2xx means that transaction committed.
One writer thread takes every request waiting for it into the next transaction (group commit), so concurrent
exporters share the cost of a write instead of queueing for the lock one by one. Spans
are de-duplicated by trace and span id exactly as `ingest` does, so an exporter's retry of a batch that did
land adds nothing. Spans that are not GenAI spans are skipped (counted, not rejected); GenAI spans that are
refused come back as `partial_success.rejected_spans` with the first reasons in `error_message`.

Answers follow the specification: the response in the request's encoding (protobuf or JSON), 400 for a body
that does not decode, 413 over the size limit, 415 for other content types, 401 for a wrong or missing
bearer token, and 503 with Retry-After while the database is busy, which exporters retry.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import DecodeError
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from manager.errors import DatabaseBusy, DatabaseUnavailable
from manager.ledger.formats import MAX_RAW, Batch, Item, Reject, SpanSource, otlp_items, span_record
from manager.ledger.ingest import IngestStopped, ingest_batches
from manager.ledger.validate import RowError
from manager.settings import otlp_attributes

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_BODY_BYTES = 16 * 1024 * 1024  # a body, compressed or not; the Collector's default batch is far smaller
RETRY_AFTER_SECONDS = 2
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TRACES_PATH = "/v1/traces"
REASONS_SHOWN = 3
GROUP_SPANS = 20_000  # a transaction takes the requests waiting for it, up to about this many spans

log = logging.getLogger("manager.receiver")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    """What the receiver stored, refused and skipped since it started."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    skipped: int = 0


def _status(code: int, message: str, media: str, headers: dict[str, str] | None = None) -> Answer:
    """Return an error answer carrying a google.rpc.Status in the request's encoding (JSON when unknown)."""
    status = Status(code=code, message=message)
    if media == PROTOBUF:
        return Answer(code, status.SerializeToString(), PROTOBUF, headers or {})
    return Answer(code, MessageToJson(status, indent=None).encode(), JSON, headers or {})


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decode(
    body: bytes, content_type: str | None, content_encoding: str | None, *, max_body: int = MAX_BODY_BYTES
) -> ExportTraceServiceRequest | dict[str, Any]:
    """Return an export request (the message, or OTLP/JSON data); raise ValueError saying why it does not decode."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = _gunzip(body, max_body)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"the body is not valid gzip: {error}") from None
    elif encoding != "identity":
        raise ValueError(f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    if _media(content_type) == PROTOBUF:
        try:
            request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(body)
        except DecodeError as error:
            raise ValueError(f"the body is not an ExportTraceServiceRequest: {error}") from None
        return request
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ValueError(f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError("the body is not a JSON object")
    return document


def _gunzip(body: bytes, limit: int) -> bytes:
    """Return gzip-decompressed bytes, refusing to inflate past the size limit (a zip bomb)."""
    inflater = zlib.decompressobj(wbits=31)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise OverflowError
    if not inflater.eof:
        raise EOFError("the gzip stream ends early")
    return out


def protobuf_items(request: ExportTraceServiceRequest) -> Iterator[Item]:
    """Yield each GenAI span of an export request as a record, read from the message's fields directly (no
    detour through JSON); spans that are not GenAI spans are skipped, as the file reader skips them."""
    position = 0
    names = otlp_attributes()
    for resource_spans in request.resource_spans:
        source = SpanSource(_scalar_attributes(resource_spans.resource.attributes), names)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                position += 1
                attributes = _scalar_attributes(span.attributes)
                if not any(key.startswith("gen_ai.") for key in attributes):
                    continue
                fields = {
                    "traceId": span.trace_id.hex(),
                    "spanId": span.span_id.hex(),
                    "startTimeUnixNano": span.start_time_unix_nano,
                    "endTimeUnixNano": span.end_time_unix_nano,
                    "status": {"code": span.status.code, "message": span.status.message},
                }
                try:
                    yield position, span_record(fields, attributes, source), ""
                except RowError as error:
                    yield position, error, MessageToJson(span, indent=None)[:MAX_RAW]


_SCALARS = ("string_value", "int_value", "double_value", "bool_value")


def _scalar_attributes(items: Any) -> dict[str, Any]:
    """Return protobuf KeyValues as a dict: scalars as themselves, an array as the list of its scalars."""
    found: dict[str, Any] = {}
    for item in items:
        kind = item.value.WhichOneof("value")
        if kind in _SCALARS:
            found[item.key] = getattr(item.value, kind)
        elif kind == "array_value":
            found[item.key] = [
                getattr(v, k) if (k := v.WhichOneof("value")) in _SCALARS else None
                for v in item.value.array_value.values
            ]
    return found


def _span_count(document: ExportTraceServiceRequest | dict[str, Any]) -> int:
    if isinstance(document, ExportTraceServiceRequest):
        return sum(len(s.spans) for r in document.resource_spans for s in r.scope_spans)
    count = 0
    for resource in document.get("resourceSpans") or []:
        for scope in (resource.get("scopeSpans") if isinstance(resource, dict) else None) or []:
            spans = scope.get("spans") if isinstance(scope, dict) else None
            count += len(spans) if isinstance(spans, list) else 0
    return count


def _response(media: str, rejected: int, message: str) -> Answer:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=rejected, error_message=message))
    if media == PROTOBUF:
        return Answer(200, response.SerializeToString(), PROTOBUF)
    return Answer(200, MessageToJson(response, indent=None).encode(), JSON)


@dataclass
class _Request:
    """One export request's spans waiting for the writer, and what became of them."""

    records: list[Any]
    refused: list[Reject]
    done: threading.Event = field(default_factory=threading.Event)
    rejects: list[Reject] = field(default_factory=list)
    error: BaseException | None = None


class GroupWriter:
    """The one thread that writes: requests that arrive while a transaction is open wait, then go into the next
    transaction together (group commit). Each request is in exactly one transaction, so it is stored whole or
    not at all, and is answered only after that transaction commits."""

    def __init__(self, engine: Engine, tally: Tally, *, group_spans: int = GROUP_SPANS) -> None:
        self.engine, self.tally, self.group_spans = engine, tally, group_spans
        self.queue: queue.Queue[_Request] = queue.Queue()
        threading.Thread(target=self._run, name="otlp-writer", daemon=True).start()

    def store(self, records: list[Any], refused: list[Reject]) -> _Request:
        """Queue one request's records (and what its decoding refused); return it once its transaction ended."""
        request = _Request(records, refused)
        self.queue.put(request)
        request.done.wait()
        return request

    def _run(self) -> None:
        while True:
            group = [self.queue.get()]
            size = len(group[0].records)
            while size < self.group_spans:
                try:
                    group.append(self.queue.get_nowait())
                except queue.Empty:
                    break
                size += len(group[-1].records)
            self._write(group)

    def _write(self, group: list[_Request]) -> None:
        try:
            result = self._ingest(group)
        except IngestStopped as error:
            if len(group) > 1:  # one request's batch was refused: the others need not be
                for request in group:
                    self._write([request])
                return
            result, group[0].error = None, error
        except Exception as error:  # noqa: BLE001 (every waiting request is told, whatever went wrong)
            result = None
            for request in group:
                request.error = error
        if result is not None:
            self.tally.requests += len(group)
            self.tally.accepted += result.accepted
            self.tally.duplicates += result.duplicates
            self.tally.rejected += result.rejected
        for request in group:
            request.done.set()

    def _ingest(self, group: list[_Request]) -> Any:
        """Store the group's records in one transaction; hand each request back its own rejects."""
        records: list[Any] = []
        lines: list[int] = []
        refused: list[Reject] = []
        owner: list[_Request] = []
        for request in group:
            for record in request.records:
                records.append(record)
                lines.append(len(owner) + 1)
                owner.append(request)
            for reject in request.refused:
                refused.append(Reject(len(owner) + 1, reject.column, reject.reason, reject.raw))
                owner.append(request)
        result = ingest_batches(self.engine, [Batch(records, lines, [""] * len(records), refused)])
        for reject in result.rejects:
            owner[reject.line - 1].rejects.append(reject)
        return result


def receive(
    writer: GroupWriter,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    *,
    max_body: int = MAX_BODY_BYTES,
) -> Answer:
    """Store one export request's GenAI spans whole (with whatever arrived beside it) and return the answer the
    specification asks for."""
    media = _media(content_type)
    if media not in (PROTOBUF, JSON):
        return _status(415, f"Content-Type {content_type!r} is not {PROTOBUF} or {JSON}", JSON)
    try:
        document = decode(body, content_type, content_encoding, max_body=max_body)
    except OverflowError:
        return _status(413, f"the decompressed body is over {max_body:,} bytes", media)
    except ValueError as error:
        return _status(400, str(error), media)
    items = list(protobuf_items(document) if isinstance(document, ExportTraceServiceRequest) else otlp_items(document))
    records = [record for _, record, _ in items if not isinstance(record, RowError)]
    refused = [Reject(0, r.column, r.reason, str(raw)) for _, r, raw in items if isinstance(r, RowError)]
    request = writer.store(records, refused)
    if isinstance(request.error, (DatabaseBusy, OperationalError, DatabaseUnavailable)):
        reason = (
            "the database is busy; retry" if not isinstance(request.error, DatabaseUnavailable) else str(request.error)
        )
        return _status(503, reason, media, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(request.error, IngestStopped):
        return _status(400, str(request.error), media)
    if request.error is not None:
        log.error("storing an export request failed", exc_info=request.error)
        return _status(500, "the receiver could not store this batch; its log says why", media)
    writer.tally.skipped += _span_count(document) - len(items)
    rejects = request.rejects
    reasons = [f"{r.column}: {r.reason}" for r in rejects[:REASONS_SHOWN]]
    more = len(rejects) - len(reasons)
    message = "; ".join(reasons) + (f"; and {more} more" if more > 0 else "")
    return _response(media, len(rejects), message)


def authorized(header: str | None, token: str | None) -> bool:
    """Return True when no token is required, or the Authorization header carries it (compared in constant time)."""
    if not token:
        return True
    given = (header or "").encode()
    return hmac.compare_digest(given, f"Bearer {token}".encode())


def make_server(
    engine: Engine, host: str, port: int, token: str | None, *, max_body: int = MAX_BODY_BYTES
) -> tuple[ThreadingHTTPServer, Tally]:
    """Return a threading HTTP server answering OTLP/HTTP traces and /health, not yet serving, and its tally."""
    tally = Tally()
    writer = GroupWriter(engine, tally)

    class Handler(BaseHTTPRequestHandler):
        server_version = "ai-model-manager-otlp"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            log.debug("%s " + format, self.address_string(), *args)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            if self.path.split("?")[0] != "/health":
                self._send(_status(404, f"no such path {self.path!r}; POST {TRACES_PATH}", JSON))
                return
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except OperationalError:
                self._send(_status(503, "the database cannot be reached", JSON, {"Retry-After": "5"}))
                return
            body = json.dumps({"status": "ok", **tally.__dict__}).encode()
            self._send(Answer(200, body, JSON))

        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            media = _media(self.headers.get("Content-Type"))
            media = media if media in (PROTOBUF, JSON) else JSON
            if self.path.split("?")[0] != TRACES_PATH:
                self._drain()
                self._send(_status(404, f"no such path {self.path!r}; POST {TRACES_PATH}", media))
                return
            if not authorized(self.headers.get("Authorization"), token):
                self._drain()
                self._send(_status(401, "a valid bearer token is required", media, {"WWW-Authenticate": "Bearer"}))
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._send(_status(411, "Content-Length is required", media, {"Connection": "close"}))
                self.close_connection = True
                return
            if int(length) > max_body:
                self._send(_status(413, f"the body is over {max_body:,} bytes", media, {"Connection": "close"}))
                self.close_connection = True
                return
            body = self.rfile.read(int(length))
            answer = receive(
                writer,
                body,
                self.headers.get("Content-Type"),
                self.headers.get("Content-Encoding"),
                max_body=max_body,
            )
            self._send(answer)

        def _drain(self) -> None:
            length = self.headers.get("Content-Length")
            if length and length.isdigit() and int(length) <= max_body:
                self.rfile.read(int(length))
            else:
                self.close_connection = True

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server, tally


def refuse_open_binding(host: str, token: str | None) -> str | None:
    """Return why binding to `host` is refused (off loopback without a token), or None when it is allowed."""
    if host in LOOPBACK or token:
        return None
    return (
        f"serving OTLP on {host}, beyond this machine, needs a bearer token: set MANAGER_OTLP_TOKEN "
        "(exporters send it as 'Authorization: Bearer TOKEN'), or bind to 127.0.0.1"
    )
