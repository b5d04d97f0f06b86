"""LiteLLM's records as this ledger's request records: a logged call, or a row of its spend log.

LiteLLM names a model as `provider/model` (`anthropic/claude-3-haiku-20240307`), as the deployment's bare
model, or by a model group (an alias the Router routes). `ModelNames` maps any of these to a registry
model_id: an alias the team gives first, then a registry model's own LiteLLM name (its metadata's
`litellm_model`, else `<provider>/<model_id>`), then the model_id itself with or without the provider
prefix. A call whose model maps to nothing is refused by name, never stored under a guess.

No prompt or completion text is read: a record carries ids, times, tokens, cost, status and attribution.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from manager.ledger.validate import RowError, parse_timestamp
from manager.registry import registry_info

# Registry provider -> the prefix LiteLLM puts before a model of that provider.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "ollama": "ollama",
    "google": "gemini",
    "gemini": "gemini",
    "groq": "groq",
    "cohere": "cohere",
    "together": "together_ai",
    "fireworks": "fireworks_ai",
    "azure": "azure",
    "bedrock": "bedrock",
    "vertex": "vertex_ai",
    "xai": "xai",
    "openrouter": "openrouter",
}
# LiteLLM prefixes that name the same provider another way.
_SAME_PROVIDER = {"ollama_chat": "ollama", "text-completion-openai": "openai", "azure_ai": "azure"}
# The Router groups `export litellm-config` writes: "route" for the whole policy, "route:<type>:<language>".
ROUTE = "route"
_ROUTE_SEPARATOR = ":"


def litellm_model(model_id: str, provider: str, given: str | None = None) -> str:
    """Return the name LiteLLM calls a registry model by: the one its metadata gives (litellm_model), else
    provider/model_id."""
    if given and given.strip():
        return given.strip()
    prefix = PROVIDERS.get(provider.strip().lower(), provider.strip().lower())
    return model_id if model_id.startswith(f"{prefix}/") else f"{prefix}/{model_id}"


def route_group(request_type: str | None = None, language: str | None = None) -> str:
    """Return the Router group name of the policy's route, or of one (request type, language) segment."""
    if request_type is None:
        return ROUTE
    return _ROUTE_SEPARATOR.join((ROUTE, request_type, language or "unknown"))


def parse_route(group: str | None) -> tuple[str, str] | None:
    """Return the (request type, language) a segment's Router group name stands for; None for any other name."""
    parts = (group or "").split(_ROUTE_SEPARATOR)
    if len(parts) == 3 and parts[0] == ROUTE and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None


def _without_provider(name: str) -> str:
    head, slash, rest = name.partition("/")
    return rest if slash and (head in PROVIDERS.values() or head in _SAME_PROVIDER or head in PROVIDERS) else name


@dataclass(frozen=True)
class ModelNames:
    """Which registry model a LiteLLM model name stands for."""

    ids: frozenset[str]
    litellm: Mapping[str, str] = field(default_factory=dict)  # a registry model's LiteLLM name -> its model_id
    aliases: Mapping[str, str] = field(default_factory=dict)  # the team's own names -> model_id

    @classmethod
    def of(cls, registry: Mapping[str, tuple[str, str | None]], aliases: Mapping[str, str] | None = None) -> ModelNames:
        """Build from each model_id's (provider, LiteLLM name its metadata gives) and the team's aliases
        (alias -> model_id); an alias to a model not in the registry is left out (see `ignored`)."""
        return cls(
            ids=frozenset(registry),
            litellm={litellm_model(m, provider, given): m for m, (provider, given) in registry.items()},
            aliases={alias: target for alias, target in (aliases or {}).items() if target in registry},
        )

    def ignored(self, aliases: Mapping[str, str]) -> list[str]:
        """Return the given aliases left out because their model is not in the registry, as `alias -> model`."""
        return [f"{a} -> {m}" for a, m in sorted(aliases.items()) if self.aliases.get(a) != m]

    def resolve(self, *names: str | None) -> str | None:
        """Return the model_id the first resolvable name stands for, or None."""
        for name in names:
            if not name:
                continue
            for key in dict.fromkeys((name, _without_provider(name))):
                found = self.aliases.get(key) or self.litellm.get(key) or (key if key in self.ids else None)
                if found is None and ":" not in key and f"{key}:latest" in self.ids:
                    found = f"{key}:latest"  # Ollama's default tag
                if found is not None:
                    return found
        return None


def read_model_names(session: Session, aliases: Mapping[str, str] | None = None) -> ModelNames:
    """Return the registry's LiteLLM names, with the team's aliases (alias -> model_id)."""
    registry = {m: (info.provider, info.litellm_model) for m, info in registry_info(session=session).items()}
    return ModelNames.of(registry, aliases)


def _provider_name(provider: Any, model: Any) -> str | None:
    if not provider or not model:
        return None
    return f"{provider}/{model}"


def _unmapped(names: list[str | None]) -> RowError:
    shown = ", ".join(dict.fromkeys(repr(n) for n in names if n))
    if not shown:
        return RowError("model", "missing")
    return RowError("model", f"{shown} is not in the registry: add the model, or map the name to one (aliases)")


def _dict(value: Any) -> Mapping[str, Any]:
    """Return a mapping (itself, read only), or the mapping a JSON text holds; {} for anything else."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError:
            return []
        return parsed if isinstance(parsed, list) else []
    return []


def _first(*values: Any) -> Any:
    return next((v for v in values if v not in (None, "")), None)


def _cache_tokens(usage: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    """Return cache-read, cache-write and reasoning tokens from a LiteLLM (OpenAI-shaped) usage object."""
    prompt_details = _dict(usage.get("prompt_tokens_details"))
    completion_details = _dict(usage.get("completion_tokens_details"))
    read = _first(usage.get("cache_read_input_tokens"), prompt_details.get("cached_tokens"))
    write = _first(usage.get("cache_creation_input_tokens"), prompt_details.get("cache_creation_tokens"))
    return read, write, completion_details.get("reasoning_tokens")


def _attribution(
    metadata: Mapping[str, Any], end_user: Any, tags: list[Any], extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the team, key alias, end user and tags LiteLLM recorded, with app and environment from `extra`."""
    found = {
        "user": _first(end_user, metadata.get("user_api_key_end_user_id"), extra.get("user")),
        "team": _first(
            metadata.get("user_api_key_team_alias"),
            metadata.get("team_alias"),
            metadata.get("user_api_key_team_id"),
            metadata.get("team_id"),
            extra.get("team"),
        ),
        # The key's alias; without one, LiteLLM's hash of the key, kept as a fingerprint like any secret.
        "api_key": _first(metadata.get("user_api_key_alias"), metadata.get("user_api_key_hash"), extra.get("api_key")),
        "app": extra.get("app"),
        "environment": extra.get("environment"),
        "tags": [t for t in tags if isinstance(t, str) and t.strip()] or None,
    }
    return {k: v for k, v in found.items() if v is not None}


def _segment(group: str | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    route = parse_route(group)
    request_type = _first(extra.get("request_type"), route and route[0])
    language = _first(extra.get("language"), route and route[1])
    return {k: v for k, v in (("request_type", request_type), ("language", language)) if v is not None}


def _stated_cost(value: Any) -> Decimal | None:
    """Return LiteLLM's cost as the exact decimal it printed (a float's shortest text), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        cost = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return cost if cost.is_finite() else None


def call_record(
    payload: Mapping[str, Any], names: ModelNames, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the request record of one call LiteLLM logged (its StandardLoggingPayload).

    `extra` is the call's own metadata (what the caller passed as `metadata=`, or the proxy's requester
    metadata) and the logger's defaults: team, app, environment, request_type and language.
    Raise RowError naming the model when it maps to no registry model.
    """
    extra = extra or {}
    hidden = _dict(payload.get("hidden_params"))
    group = payload.get("model_group") or None
    tried = [
        hidden.get("litellm_model_name"),
        _provider_name(payload.get("custom_llm_provider"), payload.get("model")),
        payload.get("model"),
        group,
    ]
    model_id = names.resolve(*tried)
    if model_id is None:
        raise _unmapped(tried)
    metadata = _dict(payload.get("metadata"))
    usage = _dict(metadata.get("usage_object"))
    failed = payload.get("status") == "failure"
    start, end = float(payload["startTime"]), float(payload["endTime"])
    record: dict[str, Any] = {
        "request_id": _first(payload.get("id"), payload.get("litellm_call_id")),
        "timestamp": datetime.fromtimestamp(start, UTC),
        "model_id": model_id,
        "response_time_ms": max(end - start, 0.0) * 1000,
        "success": not failed,
        **_segment(group, extra),
        **_attribution(metadata, payload.get("end_user"), _list(payload.get("request_tags")), extra),
    }
    prompt, completion = int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0)
    if failed:
        error = _dict(payload.get("error_information"))
        record["error_type"] = _first(error.get("error_class"), error.get("error_code"), "error")
    if not failed or prompt or completion:
        read, write, reasoning = _cache_tokens(usage)
        record.update(
            input_tokens=prompt,
            output_tokens=completion,
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=reasoning,
        )
    # LiteLLM's own cost (0 for a cache hit), unless it said it could not price the call (then it reports 0 and
    # why): the registry prices that one.
    cost = _stated_cost(payload.get("response_cost"))
    if cost is not None and not payload.get("response_cost_failure_debug_info"):
        record["cost"] = cost
    return record


def _tokens(row: Mapping[str, Any], column: str) -> int:
    value = row.get(column)
    if value in (None, ""):
        return 0
    try:
        return int(Decimal(str(value).strip()))
    except ArithmeticError:
        raise RowError(column, f"{value!r} is not a whole number") from None


def spend_log_record(row: Mapping[str, Any], names: ModelNames) -> dict[str, Any]:
    """Return the request record of one LiteLLM spend-log row (JSON values may arrive as JSON text, as in CSV)."""
    tried = [_provider_name(row.get("custom_llm_provider"), row.get("model")), row.get("model"), row.get("model_group")]
    model_id = names.resolve(*tried)
    if model_id is None:
        raise _unmapped(tried)
    for column in ("request_id", "startTime", "endTime"):
        if row.get(column) in (None, ""):
            raise RowError(column, "missing")
    try:
        start, end = parse_timestamp(row["startTime"]), parse_timestamp(row["endTime"])
    except ValueError as error:
        raise RowError("startTime", str(error)) from None
    if end < start:
        raise RowError("endTime", "is before startTime")
    metadata = _dict(row.get("metadata"))
    failed = str(row.get("status") or metadata.get("status") or "success").strip().lower() == "failure"
    usage = _dict(metadata.get("additional_usage_values")) or _dict(metadata.get("usage_object"))
    read, write, reasoning = _cache_tokens(usage)
    extra = {"team": row.get("team_id")}
    record: dict[str, Any] = {
        "request_id": str(row["request_id"]),
        "timestamp": start,
        "model_id": model_id,
        "response_time_ms": (end - start).total_seconds() * 1000,
        "input_tokens": _tokens(row, "prompt_tokens"),
        "output_tokens": _tokens(row, "completion_tokens"),
        "cache_read_tokens": read,
        "cache_write_tokens": write,
        "reasoning_tokens": reasoning,
        "cost": _first(row.get("spend"), 0),
        "success": not failed,
        **_segment(row.get("model_group"), {}),
        **_attribution(
            {**metadata, "user_api_key_hash": row.get("api_key")},
            row.get("end_user"),
            _list(row.get("request_tags")),
            extra,
        ),
    }
    if failed:
        failure = _dict(metadata.get("error_information"))
        record["error_type"] = _first(failure.get("error_class"), failure.get("error_code"), "error")
    return record
