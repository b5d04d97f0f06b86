"""Every SQLModel table of the manager, with the data models used to create and update them."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, field_validator
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel


class ModelStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DEPRECATED = "deprecated"
    EXPERIMENTAL = "experimental"
    MAINTENANCE = "maintenance"


class ModelCategory(StrEnum):
    GENERAL = "general"
    TRANSLATION = "translation"
    VOCABULARY = "vocabulary"
    GRAMMAR = "grammar"
    CONVERSATION = "conversation"
    SPECIALIZED = "specialized"


class ModelSize(StrEnum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    XLARGE = "xlarge"


# Allowed ranges of the registry's numeric fields: the single source for the Field
# constraints below and for the messages that name a range when a value falls outside it.
RANGES: dict[str, tuple[float, float | None]] = {
    "priority": (1, 10),
    # Dollars per 1k tokens; the dearest list price is under $1 (o1-pro output), so $1,000 is a typing mistake.
    "cost_per_1k_input": (0, 1000),
    "cost_per_1k_output": (0, 1000),
    "cost_per_1k_cache_read": (0, 1000),
    "cost_per_1k_cache_write": (0, 1000),
    # Dollars per hour of a self-hosted model's host; the largest GPU nodes rent for under $100 an hour.
    "host_cost_per_hour": (0, 10_000),
    "max_tokens": (1, None),
    "quality_score": (0, 1),
    "avg_response_time": (0, None),
    "temperature": (0, 2),
    "top_p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}


def _ranged(name: str, default: Any) -> Any:
    low, high = RANGES[name]
    return Field(default=default, ge=low, le=high)


class ModelFields(SQLModel):
    """The editable fields of a registry row, with their constraints."""

    provider: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    version: str = Field(default="", max_length=64)
    status: ModelStatus = ModelStatus.ACTIVE
    category: ModelCategory = ModelCategory.GENERAL
    size: ModelSize = ModelSize.MEDIUM
    enabled: bool = True
    priority: int = _ranged("priority", 5)
    cost_per_1k_input: float | None = _ranged("cost_per_1k_input", None)
    cost_per_1k_output: float | None = _ranged("cost_per_1k_output", None)
    # Prompt-cache prices; None means cached input is priced as ordinary input.
    cost_per_1k_cache_read: float | None = _ranged("cost_per_1k_cache_read", None)
    cost_per_1k_cache_write: float | None = _ranged("cost_per_1k_cache_write", None)
    # What a self-hosted model's host costs an hour; rankings and what-if spread it over the model's traffic.
    host_cost_per_hour: float | None = _ranged("host_cost_per_hour", None)
    max_tokens: int = _ranged("max_tokens", 4096)
    supports_streaming: bool = True
    primary_language: str = Field(default="en", min_length=1, max_length=16)
    supported_languages: list[str] = Field(default_factory=lambda: ["en"], sa_type=JSON)
    quality_score: float = _ranged("quality_score", 0.7)
    avg_response_time: float = _ranged("avg_response_time", 1000.0)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    model_metadata: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    temperature: float = _ranged("temperature", 0.7)
    top_p: float = _ranged("top_p", 1.0)
    frequency_penalty: float = _ranged("frequency_penalty", 0.0)
    presence_penalty: float = _ranged("presence_penalty", 0.0)


def _list_from_text(value: Any) -> Any:
    """Accept 'en, fr' for ['en', 'fr'] (as typed in a table cell or on the command line)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _dict_from_text(value: Any) -> Any:
    """Accept a JSON object written as text."""
    if isinstance(value, str):
        text = value.strip() or "{}"
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON object ({error.msg})") from None
    return value


def _plain_name(value: str) -> str:
    """Refuse an id that traffic could never name: spaces at either end, or control characters."""
    if value != value.strip():
        raise ValueError("starts or ends with a space; request logs would never match it")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("holds a control character")
    return value


class ModelCreate(ModelFields):
    """A new registry row as a user gives it; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    model_id: str = Field(min_length=1, max_length=128)

    _lists = field_validator("supported_languages", "tags", mode="before")(_list_from_text)
    _dicts = field_validator("model_metadata", mode="before")(_dict_from_text)
    _id = field_validator("model_id")(lambda value: _plain_name(value))


class ModelUpdate(SQLModel):
    """A partial change to a registry row; every field optional, unknown fields refused."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    provider: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    version: str | None = Field(default=None, max_length=64)
    status: ModelStatus | None = None
    category: ModelCategory | None = None
    size: ModelSize | None = None
    enabled: bool | None = None
    priority: int | None = _ranged("priority", None)
    cost_per_1k_input: float | None = _ranged("cost_per_1k_input", None)
    cost_per_1k_output: float | None = _ranged("cost_per_1k_output", None)
    cost_per_1k_cache_read: float | None = _ranged("cost_per_1k_cache_read", None)
    cost_per_1k_cache_write: float | None = _ranged("cost_per_1k_cache_write", None)
    host_cost_per_hour: float | None = _ranged("host_cost_per_hour", None)
    max_tokens: int | None = _ranged("max_tokens", None)
    supports_streaming: bool | None = None
    primary_language: str | None = Field(default=None, min_length=1, max_length=16)
    supported_languages: list[str] | None = None
    quality_score: float | None = _ranged("quality_score", None)
    avg_response_time: float | None = _ranged("avg_response_time", None)
    tags: list[str] | None = None
    model_metadata: dict[str, Any] | None = None
    temperature: float | None = _ranged("temperature", None)
    top_p: float | None = _ranged("top_p", None)
    frequency_penalty: float | None = _ranged("frequency_penalty", None)
    presence_penalty: float | None = _ranged("presence_penalty", None)

    _lists = field_validator("supported_languages", "tags", mode="before")(_list_from_text)
    _dicts = field_validator("model_metadata", mode="before")(_dict_from_text)


class ModelConfig(ModelFields, table=True):
    """A registry row (the seed's model_configurations)."""

    __tablename__ = "model_configurations"
    model_id: str = Field(primary_key=True, max_length=128)
    status: ModelStatus = Field(default=ModelStatus.ACTIVE, sa_type=String(16))
    category: ModelCategory = Field(default=ModelCategory.GENERAL, sa_type=String(16))
    size: ModelSize = Field(default=ModelSize.MEDIUM, sa_type=String(16))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class RequestLog(SQLModel, table=True):
    """One request of the managed application (the seed's model_performance_logs, extended)."""

    __tablename__ = "request_log"
    # Reports read the rollups, so the log keeps only the indexes its own reads need (exports and the
    # request explorer by time, the explorer by model, de-duplication by request_id): each index slows ingest.
    __table_args__ = (
        Index("ix_request_log_timestamp", "timestamp"),
        Index("ix_request_log_model_timestamp", "model_id", "timestamp"),
    )
    # BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid.
    id: int | None = Field(default=None, sa_type=BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    request_id: str | None = Field(default=None, max_length=128, unique=True)
    timestamp: datetime = Field(sa_type=DateTime(timezone=True))
    model_id: str = Field(max_length=128)
    request_type: str = Field(max_length=16)
    language: str = Field(max_length=16)
    # input_tokens counts cached input too, output_tokens reasoning too (as OpenTelemetry GenAI and the
    # price catalog count them); all are 0 when usage_known is false (a request that reported no usage).
    input_tokens: int = Field(sa_type=BigInteger)
    output_tokens: int = Field(sa_type=BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    cache_write_tokens: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    reasoning_tokens: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})
    usage_known: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    response_time_ms: float
    # Integer nano-dollars: a per-1k-token price times a token count is then exact; 0 when cost_known is false.
    cost_nanos: int = Field(sa_type=BigInteger)
    cost_known: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})
    quality_rating: float | None = None
    success: bool
    error_type: str | None = Field(default=None, max_length=128)
    # Who and what the request was for (manager.ledger.attribution); an API key is its alias or fingerprint.
    end_user: str | None = Field(default=None, max_length=128)
    team: str | None = Field(default=None, max_length=128)
    api_key: str | None = Field(default=None, max_length=128)
    app: str | None = Field(default=None, max_length=128)
    environment: str | None = Field(default=None, max_length=128)
    tags: str | None = Field(default=None, sa_type=Text)


def _counter() -> Any:
    """A BIGINT counter that rows stored before it existed read as 0."""
    return Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})


class ModelRollupFields(SQLModel):
    """What a rollup row sums for one (period, model)."""

    model_id: str = Field(primary_key=True, max_length=128)
    requests: int = Field(sa_type=BigInteger)
    successes: int = Field(sa_type=BigInteger)
    failures: int = Field(sa_type=BigInteger)
    input_tokens: int = Field(sa_type=BigInteger)
    output_tokens: int = Field(sa_type=BigInteger)
    cache_read_tokens: int = _counter()
    cache_write_tokens: int = _counter()
    reasoning_tokens: int = _counter()
    # Requests that reported no token usage, and those whose cost is therefore unknown (not in cost_nanos).
    usage_unknown: int = _counter()
    cost_unknown: int = _counter()
    cost_nanos: int = Field(sa_type=BigInteger)
    latency_sum_ms: float
    quality_sum: float
    quality_count: int = Field(sa_type=BigInteger)
    # Sparse log-bucket latency histogram, packed (bucket, count) pairs; see manager.ledger.histogram.
    latency_hist: bytes = Field(sa_type=LargeBinary)
    # Failed requests per error type as JSON {error_type: count}.
    error_types: str = Field(default="{}", sa_type=Text, sa_column_kwargs={"server_default": "{}"})


class RollupFields(ModelRollupFields):
    """What a rollup row sums for one (period, model, request type, language)."""

    request_type: str = Field(primary_key=True, max_length=16)
    language: str = Field(primary_key=True, max_length=16)


class UsageHourly(RollupFields, table=True):
    """Hourly rollup, kept up to date at ingest: trailing windows (health) and hourly charts read it."""

    __tablename__ = "usage_hourly"
    hour: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class UsageDaily(RollupFields, table=True):
    """Daily rollup, kept up to date at ingest: reports over days, weeks and months read it."""

    __tablename__ = "usage_daily"
    day: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class ModelUsageHourly(ModelRollupFields, table=True):
    """Hourly rollup per model only: what trailing windows and per-model charts read, a row per model-hour."""

    __tablename__ = "usage_model_hourly"
    hour: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class ModelUsageDaily(ModelRollupFields, table=True):
    """Daily rollup per model only: what per-model reports over days read, a row per model-day."""

    __tablename__ = "usage_model_daily"
    day: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class AttributionCounters(SQLModel):
    """What a spend-by-attribution row sums: requests, failures, tokens and billed cost."""

    requests: int = Field(sa_type=BigInteger)
    failures: int = Field(sa_type=BigInteger)
    input_tokens: int = Field(sa_type=BigInteger)
    output_tokens: int = Field(sa_type=BigInteger)
    cost_nanos: int = Field(sa_type=BigInteger)
    # Requests whose cost is unknown (no usage reported), not in cost_nanos.
    cost_unknown: int = Field(sa_type=BigInteger)


class AttributionDaily(AttributionCounters, table=True):
    """Daily spend per (dimension, value, model), kept at ingest: each value's days (its page, its budgets,
    exports) by the primary key.

    dimension is user, team, api_key, app, environment or tag; a request with two tags counts under each.
    Requests without a value for a dimension have no row in it. On SQLite the rows live in the primary key's
    own b-tree (WITHOUT ROWID): one b-tree is all that a row costs to write.
    """

    __tablename__ = "usage_attribution_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=128)
    day: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)
    model_id: str = Field(primary_key=True, max_length=128)


class AttributionMonthly(AttributionCounters, table=True):
    """Monthly spend per (dimension, value), over models: each month's values in spend order (the rank index), from
    which a window's top values are found without reading every value (manager.spend)."""

    __tablename__ = "usage_attribution_monthly"
    __table_args__ = (
        Index("ix_usage_attribution_monthly_rank", "dimension", "month", "cost_nanos", "requests"),
        {"sqlite_with_rowid": False},
    )
    dimension: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=128)
    month: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class AttributionDimensionDaily(AttributionCounters, table=True):
    """Daily sums over every value of a dimension: what "other" is, beside a window's top values."""

    __tablename__ = "usage_attribution_dimension_daily"
    __table_args__ = ({"sqlite_with_rowid": False},)
    dimension: str = Field(primary_key=True, max_length=16)
    day: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)


class ModelUsageStats(SQLModel, table=True):
    """All-time totals per model (the seed's model_usage_stats)."""

    __tablename__ = "model_usage_stats"
    model_id: str = Field(primary_key=True, max_length=128)
    total_requests: int = Field(default=0, sa_type=BigInteger)
    successful_requests: int = Field(default=0, sa_type=BigInteger)
    failed_requests: int = Field(default=0, sa_type=BigInteger)
    total_input_tokens: int = Field(default=0, sa_type=BigInteger)
    total_output_tokens: int = Field(default=0, sa_type=BigInteger)
    total_cache_read_tokens: int = _counter()
    total_cache_write_tokens: int = _counter()
    total_reasoning_tokens: int = _counter()
    usage_unknown_requests: int = _counter()
    cost_unknown_requests: int = _counter()
    total_cost_nanos: int = Field(default=0, sa_type=BigInteger)
    quality_sum: float = 0.0
    quality_count: int = Field(default=0, sa_type=BigInteger)
    first_used: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_used: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditEntry(SQLModel, table=True):
    """One changed field of a registry (later: budget, account) row."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    actor: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=128)
    action: str = Field(max_length=16)
    field: str = Field(max_length=64)
    old_value: str | None = Field(default=None, sa_type=Text)
    new_value: str | None = Field(default=None, sa_type=Text)


class DataVersion(SQLModel, table=True):
    """A single counter that every write bumps, so readers know when cached results went stale."""

    __tablename__ = "data_version"
    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_type=BigInteger)


class BudgetPeriod(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class BudgetFields(SQLModel):
    """The fields of a budget as a user gives them, with their constraints."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]
    name: str = Field(min_length=1, max_length=64)
    scope: str = Field(min_length=1, max_length=160)
    period: BudgetPeriod
    amount_usd: float = Field(gt=0, le=10**9)  # a billion dollars a period: past that, a typing mistake
    warn_threshold: float = Field(default=0.8, gt=0, le=10)
    alert_threshold: float = Field(default=1.0, gt=0, le=10)
    hard: bool = False


class Budget(SQLModel, table=True):
    """A spending limit for a scope (global, provider:X, model:X, category:X) over a UTC period."""

    __tablename__ = "budgets"
    name: str = Field(primary_key=True, max_length=64)
    scope: str = Field(max_length=160)
    period: str = Field(max_length=16)
    amount_nanos: int = Field(sa_type=BigInteger)
    warn_threshold: float
    alert_threshold: float
    hard: bool
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class BudgetAlert(SQLModel, table=True):
    """The first crossing of a budget's threshold in one period (recorded once)."""

    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("budget_name", "period_start", "level"),)
    id: int | None = Field(default=None, primary_key=True)
    budget_name: str = Field(max_length=64, index=True)
    period_start: datetime = Field(sa_type=DateTime(timezone=True))
    level: str = Field(max_length=16)
    threshold: float
    crossed_at: datetime = Field(sa_type=DateTime(timezone=True))
    spent_nanos: int = Field(sa_type=BigInteger)
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True))


class Role(StrEnum):
    """What an account may do: viewers read, editors change the registry and budgets, admins manage accounts."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"


class UserAccount(SQLModel, table=True):
    """A dashboard account: an argon2 password hash, a role, and the state of its sign-in lockout."""

    __tablename__ = "user_accounts"
    name: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=256)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    password_changed_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_sign_in_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    failed_attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins per typed name and client address, whether or not an account has that name.

    Counting unknown names too means a lockout says nothing about which names exist; counting per client means
    someone guessing elsewhere cannot lock the real user out.
    """

    __tablename__ = "sign_in_throttle"
    name: str = Field(primary_key=True, max_length=64)
    client: str = Field(primary_key=True, max_length=64)
    failed_attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AlertChannel(SQLModel, table=True):
    """Where alerts go: a signed JSON webhook, a Slack incoming webhook, or an email address over SMTP."""

    __tablename__ = "alert_channels"
    name: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    target: str = Field(max_length=512)
    # The webhook's signing key or the SMTP password: written from standard input or the environment, never shown.
    secret: str | None = Field(default=None, max_length=512)
    # Email only: smtp_host, smtp_port, smtp_user, sender, ca_file.
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class AlertEvent(SQLModel, table=True):
    """Something people should hear about, recorded once: `key` names it (a budget's level in a period, a model's
    status change, an hour's spend spike)."""

    __tablename__ = "alert_events"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=256, unique=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=256)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True))
    recorded_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)


class AlertDelivery(SQLModel, table=True):
    """One event to one channel: the outbox row while pending, then the delivery log.

    The sender claims a row (claimed_until) before it sends, so two senders never send it at once; a sender
    killed mid-send leaves the claim to lapse and the next one sends again, with the same idempotency key.
    """

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="alert_events.id")
    channel: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=64)
    status: str = Field(max_length=16)  # pending, delivered, failed (gave up after the retry window)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    claimed_until: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    last_error: str | None = Field(default=None, max_length=512)
    delivered_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class AlertState(SQLModel, table=True):
    """The last health status told about per model, provider and the system, so a change is told once."""

    __tablename__ = "alert_state"
    subject: str = Field(primary_key=True, max_length=160)
    status: str = Field(max_length=16)
    since: datetime = Field(sa_type=DateTime(timezone=True))
