"""The request explorer: individual requests, newest first, filtered, a page at a time by keyset.

The per-model hourly rollups serve as a coarse index. From them each (hour, model) gets an upper bound on the
requests that can match the filters: exact for model, provider, success and error type, the latency
histogram's count at or above the minimum latency, the model's whole count when request type or language is
filtered. The log is then read only over the newest stretch of hours whose bounds add up to the rows still
wanted, for the models that can match there, through the (model_id, timestamp) index. A page costs about
what it returns, however large the log and however rare the match, and hours that cannot match are never
read.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, literal, or_, select

from manager.db import read_session
from manager.errors import InvalidInput
from manager.ledger.attribution import RECORD_COLUMNS as ATTRIBUTION_RECORD_COLUMNS
from manager.ledger.attribution import TAG_SEPARATOR
from manager.ledger.grains import MODEL_HOURLY, decode_counts
from manager.ledger.histogram import bucket_of, count_at_or_above
from manager.models import RequestLog
from manager.registry import registry_info
from manager.spreadsheet import safe_cell
from manager.timeutil import as_utc

LOG = RequestLog.__table__  # type: ignore[attr-defined]
HOUR = timedelta(hours=1)
PAGE_SIZE = 100
MAX_PAGE = 1_000
# Most (model, hours) ranges one read ORs together: each is one range of the (model_id, timestamp) index.
MAX_RUNS = 64
CSV_LIMIT = 100_000
COLUMNS = [
    "timestamp",
    "request_id",
    "model_id",
    "provider",
    "request_type",
    "language",
    "success",
    "error_type",
    "response_time_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cost_usd",
    "quality_rating",
    *ATTRIBUTION_RECORD_COLUMNS,
]
# Attribution filters: (RequestFilters field, query parameter, request-log column).
ATTRIBUTION_FILTERS = (
    ("users", "user", "end_user"),
    ("teams", "team", "team"),
    ("api_keys", "api_key", "api_key"),
    ("apps", "app", "app"),
    ("environments", "environment", "environment"),
    ("tags", "tag", "tags"),
)


@dataclass(frozen=True)
class RequestFilters:
    """Which requests to list; empty tuples and None mean any."""

    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    models: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    success: bool | None = None
    error_types: tuple[str, ...] = ()
    request_types: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    min_latency_ms: float | None = None
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def query_string(self) -> dict[str, str | list[str]]:
        """Return these filters as URL query parameters (what a link to the explorer page carries)."""
        params: dict[str, str | list[str]] = {}
        if self.start:
            params["from"] = self.start.isoformat()
        if self.end:
            params["to"] = self.end.isoformat()
        for name, values in (
            ("model", self.models),
            ("provider", self.providers),
            ("error_type", self.error_types),
            ("request_type", self.request_types),
            ("language", self.languages),
            *((parameter, getattr(self, name)) for name, parameter, _ in ATTRIBUTION_FILTERS),
        ):
            if values:
                params[name] = list(values)
        if self.success is not None:
            params["outcome"] = "success" if self.success else "failure"
        if self.min_latency_ms is not None:
            params["min_latency_ms"] = f"{self.min_latency_ms:g}"
        return params


def filters_from_query(params: Mapping[str, Sequence[str]]) -> RequestFilters:
    """Return the filters a link's query parameters carry (what `query_string` wrote); InvalidInput names a bad
    one."""
    problems: list[str] = []

    def moment(name: str) -> datetime | None:
        values = params.get(name) or []
        if not values:
            return None
        try:
            return as_utc(datetime.fromisoformat(values[-1]))
        except ValueError:
            problems.append(f"{name}: {values[-1][:40]!r} is not an ISO 8601 time")
            return None

    outcome = (params.get("outcome") or [""])[-1]
    if outcome not in ("", "success", "failure"):
        problems.append(f"outcome: {outcome[:40]!r} is not success or failure")
    latency: float | None = None
    if params.get("min_latency_ms"):
        try:
            latency = float(params["min_latency_ms"][-1])
        except ValueError:
            problems.append(f"min_latency_ms: {params['min_latency_ms'][-1][:40]!r} is not a number")
    filters = RequestFilters(
        start=moment("from"),
        end=moment("to"),
        models=tuple(params.get("model") or ()),
        providers=tuple(params.get("provider") or ()),
        success={"success": True, "failure": False}.get(outcome),
        error_types=tuple(params.get("error_type") or ()),
        request_types=tuple(params.get("request_type") or ()),
        languages=tuple(params.get("language") or ()),
        min_latency_ms=latency,
        **{name: tuple(params.get(parameter) or ()) for name, parameter, _ in ATTRIBUTION_FILTERS},
    )
    if problems:
        raise InvalidInput(problems)
    _check(filters, PAGE_SIZE)
    return filters


@dataclass(frozen=True)
class RequestPage:
    """One page of requests and the cursor of the next (None on the last page)."""

    rows: list[dict[str, Any]]
    next: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the CLI's JSON contract."""
        return {"rows": self.rows, "next": self.next}


def encode_cursor(moment: datetime, row_id: int) -> str:
    """Return the opaque cursor after a row: its time in microseconds and its id."""
    micros = round(as_utc(moment).timestamp() * 1_000_000)
    return f"{micros}-{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Return the (time, id) a cursor stands for; InvalidInput names a malformed one."""
    parts = cursor.strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 19 for p in parts):
        raise InvalidInput([f"after: {cursor[:60]!r} is not a cursor this explorer gave (expected NUMBER-NUMBER)"])
    try:
        if int(parts[1]) >= 2**63:
            raise OverflowError
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(parts[0]))
    except OverflowError:
        raise InvalidInput([f"after: {cursor[:60]!r} points past any time this explorer gives"]) from None
    return moment, int(parts[1])


def _check(filters: RequestFilters, limit: int) -> None:
    problems = []
    if not 1 <= limit <= MAX_PAGE:
        problems.append(f"limit: {limit} is outside 1..{MAX_PAGE}")
    if filters.start and filters.end and filters.end <= filters.start:
        problems.append(f"to: {filters.end.isoformat()} is not after from {filters.start.isoformat()}")
    if filters.min_latency_ms is not None and not (
        math.isfinite(filters.min_latency_ms) and filters.min_latency_ms >= 0
    ):
        problems.append(f"min_latency_ms: {filters.min_latency_ms} is not a latency (0 or more ms)")
    if problems:
        raise InvalidInput(problems)


def find_requests(
    engine: Engine, filters: RequestFilters, *, limit: int = PAGE_SIZE, after: str | None = None
) -> RequestPage:
    """Return the newest `limit` requests matching the filters (after the cursor, when given)."""
    _check(filters, limit)
    cursor = decode_cursor(after) if after else None
    with read_session(engine) as session:
        info = registry_info(session=session)
    providers = {m: i.provider for m, i in info.items()}
    models = _candidate_models(filters, providers)
    high = min(filters.end or datetime.max.replace(tzinfo=UTC), _after_cursor(cursor))
    low = filters.start or datetime.min.replace(tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        bounds = _bounds(conn, filters, models, low, high)
        hours = sorted(bounds, reverse=True)
        position, factor = 0, 2
        while len(rows) < limit + 1 and position < len(hours):
            # The newest hours whose bounds cover what is still wanted, `factor` times over: a bound may be
            # loose (request type, language, latency), so each further stretch reaches twice as far. A stretch
            # ends on an hour boundary (the rows of one hour are never split), and is read as one query over
            # each model's runs of hours that can match, never the hours between them.
            target, covered, chunk = factor * (limit + 1 - len(rows)), 0, list[datetime]()
            runs_open, newest_of = 0, dict[str, datetime]()
            while position < len(hours) and (not chunk or (covered < target and runs_open < MAX_RUNS)):
                hour = hours[position]
                chunk.append(hour)
                covered += sum(bounds[hour].values())
                runs_open += sum(newest_of.get(m) != hour + HOUR for m in bounds[hour])
                newest_of.update(dict.fromkeys(bounds[hour], hour))
                position += 1
            runs = [(m, max(low, a), min(high, b)) for m, a, b in _runs(chunk, bounds)]
            rows.extend(_read(conn, filters, runs, cursor, limit + 1 - len(rows)))
            factor *= 2
    more = len(rows) > limit
    rows = rows[:limit]
    page = [_public(row, providers) for row in rows]
    next_cursor = encode_cursor(rows[-1]["timestamp"], rows[-1]["id"]) if more and rows else None
    return RequestPage(page, next_cursor)


def _runs(
    hours: Sequence[datetime], bounds: Mapping[datetime, Mapping[str, int]]
) -> list[tuple[str, datetime, datetime]]:
    """Return each model's runs of consecutive hours among these as (model, start, end), newest first."""
    runs: dict[str, list[list[datetime]]] = {}
    for hour in sorted(hours, reverse=True):
        for model in bounds[hour]:
            mine = runs.setdefault(model, [])
            if mine and mine[-1][0] == hour + HOUR:
                mine[-1][0] = hour
            else:
                mine.append([hour, hour + HOUR])
    return [(model, a, b) for model, spans in sorted(runs.items()) for a, b in spans]


def _after_cursor(cursor: tuple[datetime, int] | None) -> datetime:
    # Rows at the cursor's own instant may still follow it (a smaller id): read up to just past it.
    return cursor[0] + timedelta(microseconds=1) if cursor else datetime.max.replace(tzinfo=UTC)


def _candidate_models(filters: RequestFilters, providers: Mapping[str, str]) -> set[str] | None:
    """Return the models the filters allow (None: any, including unregistered ones)."""
    if not filters.models and not filters.providers:
        return None
    wanted = set(filters.models) if filters.models else None
    if filters.providers:
        of_providers = {m for m, p in providers.items() if p in filters.providers}
        wanted = of_providers if wanted is None else wanted & of_providers
    return wanted


def _bounds(
    conn: Any, filters: RequestFilters, models: set[str] | None, low: datetime, high: datetime
) -> dict[datetime, dict[str, int]]:
    """Return, per hour and model, the most requests that can match the filters, from the hourly rollups."""
    table = MODEL_HOURLY
    conditions = [table.c.hour >= low.replace(minute=0, second=0, microsecond=0), table.c.hour < high]
    if models is not None:
        if not models:
            return {}
        conditions.append(table.c.model_id.in_(sorted(models)))
    columns = [table.c.hour, table.c.model_id, table.c.requests, table.c.failures]
    if filters.error_types:
        columns.append(table.c.error_types)
    if filters.min_latency_ms is not None:
        columns.append(table.c.latency_hist)
    lowest_bucket = bucket_of(filters.min_latency_ms) if filters.min_latency_ms is not None else 0
    bounds: dict[datetime, dict[str, int]] = {}
    for row in conn.execute(select(*columns).where(*conditions)):
        requests, failures = int(row.requests), int(row.failures)
        bound = requests
        if filters.success is True:
            bound = requests - failures
        elif filters.success is False:
            bound = failures
        if filters.error_types:
            counts = decode_counts(row.error_types)
            bound = 0 if filters.success is True else min(bound, sum(counts.get(e, 0) for e in filters.error_types))
        if filters.min_latency_ms is not None:
            bound = min(bound, count_at_or_above(row.latency_hist, lowest_bucket))
        if bound > 0:
            hour = as_utc(row.hour if isinstance(row.hour, datetime) else datetime.fromisoformat(row.hour))
            bounds.setdefault(hour, {})[str(row.model_id)] = bound
    return bounds


def _read(
    conn: Any,
    filters: RequestFilters,
    runs: Sequence[tuple[str, datetime, datetime]],
    cursor: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Return up to `limit` matching log rows in the (model, start, end) runs, newest first, after the cursor."""
    spans = [
        and_(LOG.c.model_id == model, LOG.c.timestamp >= start, LOG.c.timestamp < end) for model, start, end in runs
    ]
    conditions: list[Any] = [or_(*spans)]
    if cursor:
        conditions.append(or_(LOG.c.timestamp < cursor[0], and_(LOG.c.timestamp == cursor[0], LOG.c.id < cursor[1])))
    if filters.success is not None:
        conditions.append(LOG.c.success.is_(filters.success))
    if filters.error_types:
        conditions.append(LOG.c.error_type.in_(filters.error_types))
    if filters.request_types:
        conditions.append(LOG.c.request_type.in_(filters.request_types))
    if filters.languages:
        conditions.append(LOG.c.language.in_(filters.languages))
    if filters.min_latency_ms is not None:
        conditions.append(LOG.c.response_time_ms >= filters.min_latency_ms)
    for name, _, column in ATTRIBUTION_FILTERS:
        wanted = getattr(filters, name)
        if not wanted:
            continue
        if column == "tags":  # stored as a;b: a tag matches between separators
            padded = literal(TAG_SEPARATOR) + LOG.c.tags + literal(TAG_SEPARATOR)
            conditions.append(
                or_(*(padded.contains(f"{TAG_SEPARATOR}{tag}{TAG_SEPARATOR}", autoescape=True) for tag in wanted))
            )
        else:
            conditions.append(LOG.c[column].in_(wanted))
    query = select(LOG).where(*conditions).order_by(LOG.c.timestamp.desc(), LOG.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in conn.execute(query)]


def seen_error_types(rollup_rows: Any) -> list[str]:
    """Return the error types that rollup rows (a frame with an `error_types` column) counted, by name."""
    return sorted({label for text in rollup_rows["error_types"] for label in decode_counts(text)})


def _public(row: Mapping[str, Any], providers: Mapping[str, str]) -> dict[str, Any]:
    """Return a log row as the explorer shows it: UTC ISO time, dollars, unknowns as None."""
    return {
        "timestamp": as_utc(row["timestamp"]).isoformat(),
        "request_id": row["request_id"],
        "model_id": row["model_id"],
        "provider": providers.get(row["model_id"], "unregistered"),
        "request_type": row["request_type"],
        "language": row["language"],
        "success": bool(row["success"]),
        "error_type": row["error_type"],
        "response_time_ms": row["response_time_ms"],
        "input_tokens": row["input_tokens"] if row["usage_known"] else None,
        "output_tokens": row["output_tokens"] if row["usage_known"] else None,
        "cache_read_tokens": row["cache_read_tokens"] if row["usage_known"] else None,
        "cost_usd": row["cost_nanos"] / 1e9 if row["cost_known"] else None,
        "quality_rating": row["quality_rating"],
        "user": row["end_user"],
        "team": row["team"],
        "api_key": row["api_key"],
        "app": row["app"],
        "environment": row["environment"],
        "tags": row["tags"],
    }


def requests_csv(engine: Engine, filters: RequestFilters, *, max_rows: int = CSV_LIMIT) -> Iterator[str]:
    """Yield the matching requests as CSV text, a page at a time, newest first, at most `max_rows` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    after: str | None = None
    written = 0
    while written < max_rows:
        page = find_requests(engine, filters, limit=min(MAX_PAGE, max_rows - written), after=after)
        for row in page.rows:
            writer.writerow([safe_cell(row[c]) for c in COLUMNS])
        written += len(page.rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if page.next is None:
            break
        after = page.next
