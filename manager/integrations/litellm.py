"""A LiteLLM logger that writes every call, success or failure, streamed or not, into the ledger.

Register it with the SDK (`litellm.callbacks = [ManagerLogger("sqlite:///data/manager.db")]`) or with the
proxy (`litellm_settings: {callbacks: manager.integrations.litellm_proxy.handler}`). LiteLLM hands it each
call's StandardLoggingPayload; the logger copies the fields a request record needs (never the prompt or
the completion) onto a queue and returns. A writer thread drains the queue in batches through the same
ingest path as every other source, so a call is de-duplicated by its id, validated and rolled up like any
request. The caller never waits on the database: when it is unreachable the batch is kept and retried
with backoff (up to `max_pending` calls, the oldest dropped and counted past that), and the error is
logged. A call whose model is not in the registry is counted and logged by name, once per name.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Importing LiteLLM fetches its price map from GitHub unless told to use the copy it ships: no network at
# run time, unless the process that imports it asked for that itself.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from manager.api import open_engine
from manager.db import read_session
from manager.integrations.litellm_records import ModelNames, call_record, read_model_names
from manager.ledger.ingest import IngestStopped, ingest_records
from manager.ledger.rollups import TotalTooLarge
from manager.ledger.validate import RowError

log = logging.getLogger("manager.integrations.litellm")
# The fields of LiteLLM's payload a request record reads; messages and response are never copied.
_PAYLOAD_FIELDS = (
    "id",
    "litellm_call_id",
    "model",
    "model_group",
    "custom_llm_provider",
    "status",
    "startTime",
    "endTime",
    "prompt_tokens",
    "completion_tokens",
    "response_cost",
    "response_cost_failure_debug_info",
    "end_user",
    "request_tags",
    "error_information",
)
_METADATA_FIELDS = (
    "user_api_key_alias",
    "user_api_key_hash",
    "user_api_key_team_id",
    "user_api_key_team_alias",
    "user_api_key_end_user_id",
    "team_alias",
    "team_id",
    "usage_object",
)
# What a caller may say about its own call in `metadata=` (or the proxy's requester metadata).
CALL_METADATA = ("team", "user", "api_key", "app", "environment", "request_type", "language")
REGISTRY_REFRESH_S = 30.0  # the registry is read again this often
UNMAPPED_REFRESH_S = 1.0  # or this soon after a call names a model it does not hold
MAX_BACKOFF_S = 60.0


@dataclass
class LoggerStats:
    """What the logger did since it started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    write_errors: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)


def _copy(payload: Mapping[str, Any], kwargs: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the writer needs of one call: the payload's fields and the call's own attribution."""
    kept = {k: payload.get(k) for k in _PAYLOAD_FIELDS}
    metadata = payload.get("metadata") or {}
    kept["metadata"] = {k: metadata.get(k) for k in _METADATA_FIELDS}
    hidden = payload.get("hidden_params") or {}
    kept["hidden_params"] = {"litellm_model_name": hidden.get("litellm_model_name")}
    params = kwargs.get("litellm_params") or {}
    own = {**(metadata.get("requester_metadata") or {}), **(params.get("metadata") or {})}
    extra = {**defaults, **{k: own[k] for k in CALL_METADATA if own.get(k) not in (None, "")}}
    user = (payload.get("model_parameters") or {}).get("user")
    if user and "user" not in extra:
        extra["user"] = user
    return {"payload": kept, "extra": extra}


class ManagerLogger(CustomLogger):
    """LiteLLM callback: every call it logs is queued and written to the ledger by a background thread."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        engine: Engine | None = None,
        aliases: Mapping[str, str] | None = None,
        app: str | None = None,
        environment: str | None = None,
        team: str | None = None,
        flush_interval_s: float = 1.0,
        batch_size: int = 5000,
        max_pending: int = 100_000,
    ) -> None:
        """Log into the database at `database_url` (default: DATABASE_URL, else data/manager.db) or `engine`.

        `aliases` maps the team's own model names (a model group alias, say) to registry model_ids; `app`,
        `environment` and `team` are given to every call that does not name its own.
        """
        super().__init__()
        self._url = database_url
        self._engine = engine
        self._aliases = dict(aliases or {})
        self._defaults = {k: v for k, v in (("app", app), ("environment", environment), ("team", team)) if v}
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Condition()
        self._writing = 0
        self._closed = False
        self._names: ModelNames | None = None
        self._names_read = 0.0
        self.stats = LoggerStats()
        self._thread = threading.Thread(target=self._run, name="manager-litellm-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # LiteLLM's hooks: sync for completion(), async for acompletion(); streams report once, when complete.
    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Queue a successful call."""
        self._take(kwargs)

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        """Queue a failed call."""
        self._take(kwargs)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Queue a successful async call."""
        self._take(kwargs)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Queue a failed async call."""
        self._take(kwargs)

    def _take(self, kwargs: Mapping[str, Any]) -> None:
        try:
            payload = kwargs.get("standard_logging_object")
            if not payload:
                log.warning("LiteLLM logged a call without its standard payload; it is not in the ledger")
                return
            item = _copy(payload, kwargs, self._defaults)
        except Exception:  # never break the caller: LiteLLM's payload is not ours to trust
            log.exception("could not read a call LiteLLM logged; it is not in the ledger")
            return
        with self._lock:
            self.stats.received += 1
            self._pending.append(item)
            self._bound()
            if len(self._pending) >= self._batch_size:
                self._lock.notify_all()

    def _bound(self) -> None:
        """Drop the oldest calls past max_pending, counted and logged (the lock held)."""
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.stats.dropped += 1
            if self.stats.dropped in (1, 10, 100) or self.stats.dropped % 1000 == 0:
                log.error(
                    "%d calls waiting for the ledger (it is unreachable, or slower than they come): "
                    "the oldest dropped, %d so far",
                    self._max_pending,
                    self.stats.dropped,
                )

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued call is written (or the timeout passes); return whether all were."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._lock.notify_all()
            while self._pending or self._writing:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
                self._lock.notify_all()
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        if self._closed:
            return
        self.flush(timeout_s)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout_s)
        if self._pending:
            log.error("%d calls LiteLLM logged were not written to the ledger before closing", len(self._pending))

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._lock:
                if not self._pending and not self._closed:
                    self._lock.wait(self._interval)
                if self._closed and (not self._pending or backoff):
                    return
                batch = [self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))]
                self._writing = len(batch)
            if not batch:
                continue
            try:
                self._write(batch)
                backoff = 0.0
            except (TotalTooLarge, IngestStopped) as error:  # refused for what it holds: retrying cannot help
                with self._lock:
                    self.stats.rejected += len(batch)
                log.error("%d calls LiteLLM logged were refused by the ledger: %s", len(batch), error)
            except Exception as error:  # the database is down or busy: keep the batch, retry later
                with self._lock:
                    self.stats.write_errors += 1
                    self._pending.extendleft(reversed(batch))
                    self._bound()
                backoff = min(max(backoff * 2, 1.0), MAX_BACKOFF_S)
                log.error("cannot write %d calls to the ledger (%s); retrying in %.0f s", len(batch), error, backoff)
                time.sleep(backoff)
            finally:
                with self._lock:
                    self._writing = 0
                    self._lock.notify_all()

    def _engine_now(self) -> Engine:
        if self._engine is None:
            self._engine = open_engine(self._url)
        return self._engine

    def _model_names(self, refresh: bool = False) -> ModelNames:
        now = time.monotonic()
        if self._names is None or now - self._names_read > (UNMAPPED_REFRESH_S if refresh else REGISTRY_REFRESH_S):
            with read_session(self._engine_now()) as session:
                self._names = read_model_names(session, self._aliases)
            if self._names_read == 0.0 and (ignored := self._names.ignored(self._aliases)):
                log.warning("aliases to models not in the registry are ignored: %s", ", ".join(ignored))
            self._names_read = now
        return self._names

    def _write(self, batch: list[dict[str, Any]]) -> None:
        records = [record for item in batch if (record := self._record(item)) is not None]
        if not records:
            return
        result = ingest_records(self._engine_now(), records)
        with self._lock:
            self.stats.stored += result.accepted
            self.stats.duplicates += result.duplicates
            self.stats.rejected += result.rejected
        for reject in result.rejects[:5]:
            log.warning("a call LiteLLM logged was refused: %s: %s", reject.column, reject.reason)

    def _record(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Return a queued call's request record; None, counted and logged, when it cannot be one."""
        try:
            try:
                return call_record(item["payload"], self._model_names(), item["extra"])
            except RowError as error:
                if error.column != "model":
                    raise
                try:  # the model may have been registered since the registry was last read
                    return call_record(item["payload"], self._model_names(refresh=True), item["extra"])
                except RowError:
                    self._unmapped(item["payload"], error)
                    return None
        except (RowError, KeyError, TypeError, ValueError) as error:
            with self._lock:
                self.stats.rejected += 1
            log.warning("a call LiteLLM logged was refused: %s", error)
            return None

    def _unmapped(self, payload: Mapping[str, Any], error: RowError) -> None:
        name = str((payload.get("hidden_params") or {}).get("litellm_model_name") or payload.get("model"))
        with self._lock:
            self.stats.unmapped[name] += 1
            first = self.stats.unmapped[name] == 1
        if first:
            log.warning("calls to %s are not in the ledger: %s", name, error.reason)
