"""The ingest paths people run, timed against plain references in the same run.

- `python -m manager ingest FILE` on CSV, JSON Lines and OTLP/JSON files, against Python's own csv or json
  module reading the same file and sqlite3 `executemany` of its rows into a table with the log's columns
  and the log's own unique request-id and timestamp indexes.
- `python -m manager ingest --format litellm` of LiteLLM's spend log (CSV in its table's columns), against the
  csv and json modules reading it and the same executemany.
- `ManagerLogger`, LiteLLM's callback, handed calls as LiteLLM hands them, against `ingest_records` of the same
  records built beforehand.
- `python -m manager serve-otlp` fed by four concurrent real OTLP/HTTP exporters sending 512-span batches,
  against `executemany` of the same rows, already built, into that indexed table.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
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

    table = RequestLog.__table__
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


def cli_ingest_seconds(path: Path, database: Path, fmt: str = "auto") -> float:
    """Time `python -m manager ingest FILE` on a fresh initialised database, as a user runs it."""
    url = f"sqlite:///{database}"
    subprocess.run([sys.executable, "-m", "manager", "--db", url, "init"], cwd=ROOT, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "manager", "--db", url, "ingest", "--format", fmt, str(path), "--json"],
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
            if exporter.export(batch) != SpanExportResult.SUCCESS:
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


# --- LiteLLM ---------------------------------------------------------------------------------------------------

PROVIDERS = {
    "claude-3-haiku-20240307": "anthropic",
    "mistral-small-latest": "mistral",
    "deepseek-chat": "deepseek",
    "llama2:latest": "ollama",
    "mistral:latest": "ollama",
}


def spend_log_columns() -> list[str]:
    """Return the columns of LiteLLM's LiteLLM_SpendLogs table, from the schema the installed package ships."""
    spec = importlib.util.find_spec("litellm")
    assert spec is not None and spec.origin is not None, "litellm is not installed (requirements-integrations.txt)"
    schema = (Path(spec.origin).parent / "proxy" / "schema.prisma").read_text(encoding="utf-8")
    body = schema.split("model LiteLLM_SpendLogs {", 1)[1].split("\n}", 1)[0]
    return [line.split()[0] for line in body.splitlines() if line.strip() and line.strip()[0] not in "@/"]


def _litellm_rows(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Return the rows as LiteLLM reports calls: provider, times in epoch seconds, its cost, its metadata."""
    start = frame["timestamp"].astype("int64").to_numpy() / 1e9
    rows = frame[COLUMNS].astype(object).where(frame[COLUMNS].notna(), None).to_dict("records")
    cost = (frame["input_tokens"] * 2.5e-7 + frame["output_tokens"] * 1.25e-6).round(9).tolist()
    for row, begin, spend in zip(rows, start.tolist(), cost, strict=True):
        row["start"], row["end"] = begin, begin + row["response_time_ms"] / 1000
        row["provider"] = PROVIDERS[str(row["model_id"])]
        row["spend"] = spend if row["success"] else 0.0
        row["tag_list"] = str(row["tags"]).split(";") if row["tags"] else []
    return rows


def write_spend_log(frame: pd.DataFrame, work: Path) -> Path:
    """Write the rows as LiteLLM's spend log exported to CSV (psql's \\copy): JSON columns as JSON text."""
    columns = spend_log_columns()
    path = work / "spend_logs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in _litellm_rows(frame):
            metadata = {
                "user_api_key_alias": row["api_key"],
                "user_api_key_team_alias": row["team"],
                "usage_object": {"prompt_tokens": row["input_tokens"], "completion_tokens": row["output_tokens"]},
            }
            if not row["success"]:
                metadata["error_information"] = {"error_class": "Timeout", "error_code": "408"}
            writer.writerow(
                {
                    "request_id": row["request_id"],
                    "call_type": "acompletion",
                    "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                    "spend": row["spend"],
                    "total_tokens": row["input_tokens"] + row["output_tokens"],
                    "prompt_tokens": row["input_tokens"],
                    "completion_tokens": row["output_tokens"],
                    "startTime": datetime.fromtimestamp(row["start"], UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "endTime": datetime.fromtimestamp(row["end"], UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "model": row["model_id"],
                    "model_group": row["model_id"],
                    "custom_llm_provider": row["provider"],
                    "user": "",
                    "metadata": json.dumps(metadata),
                    "request_tags": json.dumps(row["tag_list"]),
                    "end_user": row["user"],
                    "messages": "{}",
                    "response": "{}",
                    "status": "success" if row["success"] else "failure",
                }
            )
    return path


def spend_log_reference_seconds(path: Path, work: Path) -> float:
    """Time Python's csv module reading the spend log, json reading its metadata and tags, and executemany."""
    conn = log_table(work / "reference-spend-log.db")
    start = time.perf_counter()
    rows = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            metadata, tags = json.loads(row["metadata"]), json.loads(row["request_tags"])
            rows.append(
                (
                    row["request_id"],
                    row["startTime"],
                    row["model"],
                    "general",  # what the ledger stores when a request names no type or language
                    "unknown",
                    row["prompt_tokens"],
                    row["completion_tokens"],
                    (datetime.fromisoformat(row["endTime"]) - datetime.fromisoformat(row["startTime"])).total_seconds()
                    * 1000,
                    None,
                    row["status"] == "success",
                    None,
                    row["end_user"],
                    metadata.get("user_api_key_team_alias"),
                    metadata.get("user_api_key_alias"),
                    None,
                    None,
                    ";".join(tags) or None,
                )
            )
    _insert(conn, rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def litellm_calls(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Return the rows as the keyword arguments LiteLLM hands a logger: its standard payload, the call's metadata."""
    calls = []
    for row in _litellm_rows(frame):
        payload = {
            "id": row["request_id"],
            "model": row["model_id"],
            "model_group": None,
            "custom_llm_provider": row["provider"],
            "status": "success" if row["success"] else "failure",
            "startTime": row["start"],
            "endTime": row["end"],
            "prompt_tokens": row["input_tokens"] if row["success"] else 0,
            "completion_tokens": row["output_tokens"] if row["success"] else 0,
            "response_cost": row["spend"],
            "response_cost_failure_debug_info": None,
            "end_user": row["user"],
            "request_tags": row["tag_list"],
            "error_information": None if row["success"] else {"error_class": "Timeout", "error_code": "408"},
            "metadata": {"user_api_key_alias": row["api_key"], "user_api_key_team_alias": row["team"]},
            "hidden_params": {"litellm_model_name": f"{row['provider']}/{row['model_id']}"},
            "messages": [{"role": "user", "content": "..."}],
        }
        own = {k: row[k] for k in ("app", "environment", "request_type", "language")}
        calls.append({"standard_logging_object": payload, "litellm_params": {"metadata": own}})
    return calls


def logger_seconds(calls: list[dict[str, object]], database: Path) -> tuple[float, float]:
    """Hand the calls to ManagerLogger's success hook as LiteLLM would; return the callers' time and the time
    until every call is written."""
    from manager import api
    from manager.integrations.litellm import ManagerLogger

    # Handed over far faster than any proxy serves calls: room for all of them, to time the writer.
    logger = ManagerLogger(engine=api.open_engine(f"sqlite:///{database}"), max_pending=len(calls))
    start = time.perf_counter()
    for kwargs in calls:
        logger.log_success_event(kwargs, None, None, None)
    callers = time.perf_counter() - start
    assert logger.flush(timeout_s=3600)
    total = time.perf_counter() - start
    logger.close()
    assert logger.stats.stored == len(calls), logger.stats
    return callers, total


def logger_reference_seconds(calls: list[dict[str, object]], database: Path) -> float:
    """Time `ingest_records` (the bulk Python API) of the same calls' records, built beforehand."""
    from manager import api
    from manager.db import read_session
    from manager.integrations.litellm_records import call_record, read_model_names
    from manager.ledger.ingest import ingest_records

    engine = api.open_engine(f"sqlite:///{database}")
    with read_session(engine) as session:
        names = read_model_names(session)
    records = [call_record(c["standard_logging_object"], names, c["litellm_params"]["metadata"]) for c in calls]
    start = time.perf_counter()
    ingest_records(engine, records)
    return time.perf_counter() - start
