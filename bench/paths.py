"""The ingest paths people run, timed against plain references in the same run.

- `python -m manager ingest FILE` on CSV, JSON Lines and OTLP/JSON files, against Python's own csv or json
  module reading the same file and sqlite3 `executemany` of its rows into a table with the log's columns
  and the log's own unique request-id and timestamp indexes.
- `python -m manager serve-otlp` fed by four concurrent real OTLP/HTTP exporters sending 512-span batches,
  against `executemany` of the same rows, already built, into that indexed table.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = [
    "request_id",
    "timestamp",
    "model_id",
    "request_type",
    "language",
    "input_tokens",
    "output_tokens",
    "response_time_ms",
    "quality_rating",
    "success",
    "error_type",
    "user",
    "team",
    "api_key",
    "app",
    "environment",
    "tags",
]
# The request log's name of each file column ("user" is stored as end_user).
LOG_NAMES = ["end_user" if name == "user" else name for name in COLUMNS]
EXPORTERS = 4
SPANS_PER_BATCH = 512


def write_files(frame: pd.DataFrame, work: Path) -> dict[str, Path]:
    """Write the rows as a CSV file, a JSON Lines file and an OTLP/JSON file (Collector layout)."""
    rows = frame[COLUMNS].assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    paths = {"csv": work / "log.csv", "jsonl": work / "log.jsonl", "otlp": work / "spans.jsonl"}
    rows.to_csv(paths["csv"], index=False)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    with paths["jsonl"].open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    with paths["otlp"].open("w", encoding="utf-8") as handle:
        for start in range(0, len(records), SPANS_PER_BATCH):
            batch = records[start : start + SPANS_PER_BATCH]
            spans = [_span(r) for r in batch]
            # One process sends a batch: its app and environment are the resource's, as an SDK sets them.
            resource = {"service.name": batch[0]["app"], "deployment.environment.name": batch[0]["environment"]}
            attributes = [{"key": k, "value": _value(v)} for k, v in resource.items()]
            line = {"resourceSpans": [{"resource": {"attributes": attributes}, "scopeSpans": [{"spans": spans}]}]}
            handle.write(json.dumps(line) + "\n")
    return paths


def _span(record: dict[str, object]) -> dict[str, object]:
    start = int(pd.Timestamp(str(record["timestamp"])).value)
    end = start + int(float(str(record["response_time_ms"])) * 1_000_000)
    number = int(str(record["request_id"]).rsplit("-", 1)[-1])
    attributes: dict[str, object] = {
        "gen_ai.request.model": record["model_id"],
        "gen_ai.usage.input_tokens": record["input_tokens"],
        "gen_ai.usage.output_tokens": record["output_tokens"],
        "app.request_type": record["request_type"],
        "app.language": record["language"],
    }
    if record["quality_rating"] is not None:
        attributes["app.quality_rating"] = record["quality_rating"]
    if not record["success"]:
        attributes["error.type"] = record["error_type"]
    for key, name in (("user.id", "user"), ("app.team", "team"), ("app.api_key", "api_key")):
        if record[name] is not None:
            attributes[key] = record[name]
    if record["tags"]:
        attributes["app.tags"] = str(record["tags"]).split(";")
    return {
        "traceId": f"{number:032x}",
        "spanId": f"{number + 1:016x}",
        "name": f"chat {record['model_id']}",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


def _value(value: object) -> dict[str, object]:
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def log_table(path: Path, *, indexed: bool = True) -> sqlite3.Connection:
    """Return a connection to a fresh copy of the request log's own table (its columns, types and defaults) with
    its unique request-id and timestamp indexes, or without any index."""
    import sqlalchemy
    from sqlalchemy.schema import CreateIndex, CreateTable

    from manager.models import RequestLog

    table = RequestLog.__table__  # type: ignore[attr-defined]
    dialect = sqlalchemy.create_engine("sqlite://").dialect
    create = str(CreateTable(table).compile(dialect=dialect))
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)  # a fresh table each time, whichever reference used the name before
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if not indexed:
        create = create.replace("UNIQUE (request_id)", "CHECK (1)")
    conn.execute(create)
    if indexed:
        for index in table.indexes:
            conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
    return conn


# The files' columns, and the one log column without a default that the files do not give.
INSERT = f"INSERT INTO request_log ({', '.join(LOG_NAMES)}, cost_nanos) VALUES ({', '.join('?' * len(COLUMNS))}, 0)"


def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]], statement: str = INSERT) -> None:
    for chunk in range(0, len(rows), 20_000):
        conn.executemany(statement, rows[chunk : chunk + 20_000])
        conn.commit()


def _otlp_rows(line: str) -> list[tuple[object, ...]]:
    rows = []
    for resource in json.loads(line)["resourceSpans"]:
        owner = {a["key"]: next(iter(a["value"].values())) for a in resource["resource"]["attributes"]}
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                values = {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}
                tags = values.get("app.tags")
                rows.append(
                    (
                        span["traceId"] + span["spanId"],
                        span["startTimeUnixNano"],
                        values["gen_ai.request.model"],
                        values.get("app.request_type"),
                        values.get("app.language"),
                        values.get("gen_ai.usage.input_tokens"),
                        values.get("gen_ai.usage.output_tokens"),
                        (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6,
                        values.get("app.quality_rating"),
                        "error.type" not in values,
                        values.get("error.type"),
                        values.get("user.id"),
                        values.get("app.team"),
                        values.get("app.api_key"),
                        owner.get("service.name"),
                        owner.get("deployment.environment.name"),
                        ";".join(next(iter(v.values())) for v in tags["values"]) if tags else None,
                    )
                )
    return rows


def reference_seconds(fmt: str, path: Path, work: Path) -> float:
    """Time the standard library reading the file and sqlite3 executemany of its rows into the log's table."""
    conn = log_table(work / f"reference-{fmt}.db")
    start = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            rows = [tuple(row) for row in list(csv.reader(handle))[1:]]
        elif fmt == "jsonl":
            rows = [tuple(json.loads(line).values()) for line in handle]
        else:
            rows = [row for line in handle for row in _otlp_rows(line)]
    _insert(conn, rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def stored_rows(frame: pd.DataFrame, *, sqlite: bool = True) -> tuple[list[str], list[tuple[object, ...]]]:
    """Return the log's column names and the rows as ingest stores them, built as tuples in the driver's types
    (timestamps as SQLite's text, or as datetimes for PostgreSQL)."""
    from manager.db import sqlite_timestamps
    from manager.demo import DEMO_MODELS
    from manager.ledger.validate import COLUMNS as STORED
    from manager.ledger.validate import Prices, validate_batch

    rows, _ = validate_batch(frame, range(len(frame)), {m: Prices(0.001, 0.002) for m in DEMO_MODELS})
    stamps = sqlite_timestamps(rows["timestamp"]) if sqlite else rows["timestamp"].dt.to_pydatetime().tolist()
    columns = [
        stamps if name == "timestamp" else rows[name].astype(object).where(rows[name].notna(), None).tolist()
        for name in STORED
    ]
    return list(STORED), list(zip(*columns, strict=True))


def prepared_reference_seconds(frame: pd.DataFrame, work: Path, *, indexed: bool = True) -> float:
    """Time executemany of the rows, already built as the log stores them, into the log's table."""
    conn = log_table(work / f"reference-prepared-{len(frame)}-{indexed}.db", indexed=indexed)
    names, rows = stored_rows(frame)
    statement = f"INSERT INTO request_log ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    start = time.perf_counter()
    _insert(conn, rows, statement)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def cli_ingest_seconds(path: Path, database: Path) -> float:
    """Time `python -m manager ingest FILE` on a fresh initialised database, as a user runs it."""
    url = f"sqlite:///{database}"
    subprocess.run([sys.executable, "-m", "manager", "--db", url, "init"], cwd=ROOT, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "manager", "--db", url, "ingest", str(path), "--json"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def genai_spans(frame: pd.DataFrame) -> list[object]:
    """Return the rows as finished SDK spans with GenAI attributes, as an instrumentation leaves them."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanContext, Status, StatusCode

    spans: list[object] = []
    starts = frame["timestamp"].astype("int64").to_numpy()
    for number, (row, start) in enumerate(zip(frame.itertuples(index=False), starts, strict=True), start=1):
        attributes = {
            "gen_ai.request.model": row.model_id,
            "gen_ai.usage.input_tokens": int(row.input_tokens),
            "gen_ai.usage.output_tokens": int(row.output_tokens),
            "app.request_type": row.request_type,
            "app.language": row.language,
        }
        if row.quality_rating == row.quality_rating:  # not NaN
            attributes["app.quality_rating"] = float(row.quality_rating)
        if not row.success:
            attributes["error.type"] = str(row.error_type)
        attributes |= {"user.id": row.user, "app.team": row.team, "app.api_key": row.api_key}
        if row.tags:
            attributes["app.tags"] = tuple(str(row.tags).split(";"))
        spans.append(
            ReadableSpan(
                name=f"chat {row.model_id}",
                context=SpanContext(trace_id=number, span_id=number, is_remote=False),
                attributes=attributes,
                start_time=int(start),
                end_time=int(start + row.response_time_ms * 1_000_000),
                status=Status(StatusCode.OK if row.success else StatusCode.ERROR),
            )
        )
    return spans


def receiver_seconds(spans: list[object], database: Path, port: int) -> float:
    """Time four concurrent real OTLP/HTTP exporters sending the spans, 512 a batch, to `serve-otlp`."""
    url = f"sqlite:///{database}"
    subprocess.run([sys.executable, "-m", "manager", "--db", url, "init"], cwd=ROOT, check=True, capture_output=True)
    command = [sys.executable, "-m", "manager", "--db", url, "serve-otlp", "--port", str(port)]
    return _exporters_seconds(spans, command, port)


def null_receiver_seconds(spans: list[object], port: int) -> float:
    """Time the same exporters sending the spans to a receiver that stores nothing: their own ceiling."""
    return _exporters_seconds(spans, [sys.executable, str(ROOT / "bench" / "null_receiver.py"), str(port)], port)


def _exporters_seconds(spans: list[object], server_command: list[str], port: int) -> float:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    from tests.utils.servers import wait_for_port

    batches = [spans[i : i + SPANS_PER_BATCH] for i in range(0, len(spans), SPANS_PER_BATCH)]
    failures: list[int] = []

    def send(mine: list[list[object]]) -> None:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=120)
        for batch in mine:
            if exporter.export(batch) != SpanExportResult.SUCCESS:  # type: ignore[arg-type]
                failures.append(len(batch))

    server = subprocess.Popen(server_command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        threads = [threading.Thread(target=send, args=(batches[i::EXPORTERS],)) for i in range(EXPORTERS)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=60)
    if failures:
        raise RuntimeError(f"{sum(failures):,} spans were not accepted by the receiver")
    return elapsed
