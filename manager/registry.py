"""The model registry: add, read, change and remove models, with validation and an audit trail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from manager.accounts import authorize
from manager.audit import SYSTEM_ACTOR, record_change
from manager.errors import InvalidInput, NotFound
from manager.models import RANGES, ModelConfig, ModelCreate, ModelUpdate, Role
from manager.prices import catalog_price
from manager.timeutil import as_utc

# SPEC's public field names that differ from the attribute names on the table.
_PUBLIC_TO_ATTR = {"metadata": "model_metadata"}
_ATTR_TO_PUBLIC = {v: k for k, v in _PUBLIC_TO_ATTR.items()}


def public_fields() -> list[str]:
    """Return the registry's field names as users see them, in display order."""
    names = ["model_id"] + [n for n in ModelConfig.model_fields if n != "model_id"]
    return [_ATTR_TO_PUBLIC.get(n, n) for n in names]


def to_public(model: ModelConfig) -> dict[str, Any]:
    """Return a registry row as a plain dict under SPEC's field names."""
    row: dict[str, Any] = {}
    for name in public_fields():
        value = getattr(model, _PUBLIC_TO_ATTR.get(name, name))
        row[name] = as_utc(value).isoformat() if isinstance(value, datetime) else value
    row["status"] = str(model.status)
    row["category"] = str(model.category)
    row["size"] = str(model.size)
    return row


def price_label(model: ModelConfig) -> str:
    """Return how the model is priced: 'free', 'unpriced' or the dollars per 1k in/out tokens."""
    if model.cost_per_1k_input is None or model.cost_per_1k_output is None:
        return "unpriced"
    if model.cost_per_1k_input == 0 and model.cost_per_1k_output == 0:
        return "free"
    return f"${model.cost_per_1k_input:g} / ${model.cost_per_1k_output:g} per 1k"


def _to_attrs(data: Mapping[str, Any]) -> dict[str, Any]:
    return {_PUBLIC_TO_ATTR.get(k, k): v for k, v in data.items()}


def describe_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """Return one message per problem, each naming the field and what is allowed."""
    problems = []
    for item in error.errors():
        field = _ATTR_TO_PUBLIC.get(str(item["loc"][0]), str(item["loc"][0])) if item["loc"] else "?"
        value = item.get("input")
        kind = item["type"]
        if kind == "extra_forbidden":
            text = f"{field}: unknown field"
        elif kind == "missing":
            text = f"{field}: required"
        elif field in RANGES and kind in ("greater_than_equal", "less_than_equal"):
            low, high = RANGES[field]
            allowed = f"{low:g} to {high:g}" if high is not None else f"at least {low:g}"
            text = f"{field}: {value!r} is out of range (allowed {allowed})"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            text = f"{field}: {value!r} {item['msg'].replace('Input should be', 'must be')}"
        elif kind == "value_error":
            text = f"{field}: {item['ctx']['error']}"
        elif kind == "enum":
            text = f"{field}: {value!r} is not one of {item['ctx']['expected']}"
        else:
            text = f"{field}: {value!r} {item['msg'][0].lower()}{item['msg'][1:]}"
        problems.append(prefix + text)
    return problems


def validate_new(data: Mapping[str, Any]) -> ModelCreate:
    """Return a validated new registry row, or raise InvalidInput naming each bad field."""
    try:
        return ModelCreate.model_validate(_to_attrs(data))
    except ValidationError as error:
        raise InvalidInput(describe_validation_error(error)) from None


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Return validated changes to a registry row, or raise InvalidInput naming each bad field."""
    if "model_id" in changes:
        raise InvalidInput(["model_id: cannot be changed; add a new model and remove the old one"])
    try:
        update = ModelUpdate.model_validate(_to_attrs(changes))
    except ValidationError as error:
        raise InvalidInput(describe_validation_error(error)) from None
    values = update.model_dump(exclude_unset=True)
    nullable = set(_PRICE_FIELDS)
    bad = [f"{_ATTR_TO_PUBLIC.get(k, k)}: required" for k, v in values.items() if v is None and k not in nullable]
    if bad:
        raise InvalidInput(bad)
    return values


def _audit(session: Session, *, actor: str, model_id: str, action: str, field: str, old: Any, new: Any) -> None:
    record_change(
        session, actor=actor, entity="model", entity_id=model_id, action=action, field=field, old=old, new=new
    )


_PRICE_FIELDS = ("cost_per_1k_input", "cost_per_1k_output", "cost_per_1k_cache_read", "cost_per_1k_cache_write")


def _with_catalog_prices(data: ModelCreate) -> ModelCreate:
    """Fill the prices a new row leaves empty from the catalog (cache prices only beside the catalog's input price)."""
    missing = [name for name in _PRICE_FIELDS if getattr(data, name) is None]
    price = catalog_price(data.model_id, data.provider) if missing else None
    if price is None:
        return data
    if data.cost_per_1k_input not in (None, price.cost_per_1k_input):
        missing = [name for name in missing if "cache" not in name]
    return data.model_copy(update={name: getattr(price, name) for name in missing})


def list_models(*, session: Session) -> list[ModelConfig]:
    """Return every registry row, ordered by model_id."""
    return list(session.exec(select(ModelConfig).order_by(ModelConfig.model_id)))


@dataclass(frozen=True)
class ModelInfo:
    """What the reports, health, budgets and selection read of a registered model: a read-only projection."""

    provider: str
    category: str
    enabled: bool
    status: str
    quality_score: float
    cost_per_1k_input: float | None
    cost_per_1k_output: float | None
    priority: int = 5
    avg_response_time: float = 1000.0
    primary_language: str = "en"
    supported_languages: tuple[str, ...] = ("en",)
    base_url: str | None = None
    host_cost_per_hour: float | None = None
    cost_per_1k_cache_read: float | None = None
    cost_per_1k_cache_write: float | None = None
    max_tokens: int | None = None
    litellm_model: str | None = None  # LiteLLM's name for it and where to call it, when its metadata gives them
    api_base: str | None = None


def registry_info(*, session: Session) -> dict[str, ModelInfo]:
    """Return each registered model's projection, by model_id."""
    return {m.model_id: _info(m) for m in list_models(session=session)}


def _info(m: ModelConfig) -> ModelInfo:
    metadata = m.model_metadata if isinstance(m.model_metadata, dict) else {}
    base_url, api_base, litellm_model = (metadata.get(k) for k in ("base_url", "api_base", "litellm_model"))
    return ModelInfo(
        provider=m.provider,
        category=str(m.category),
        enabled=m.enabled,
        status=str(m.status),
        quality_score=m.quality_score,
        cost_per_1k_input=m.cost_per_1k_input,
        cost_per_1k_output=m.cost_per_1k_output,
        priority=m.priority,
        avg_response_time=m.avg_response_time,
        primary_language=m.primary_language,
        supported_languages=tuple(m.supported_languages),
        base_url=str(base_url) if base_url else None,
        host_cost_per_hour=m.host_cost_per_hour,
        cost_per_1k_cache_read=m.cost_per_1k_cache_read,
        cost_per_1k_cache_write=m.cost_per_1k_cache_write,
        max_tokens=m.max_tokens,
        litellm_model=str(litellm_model) if litellm_model else None,
        api_base=str(api_base) if api_base else None,
    )


def get_model(*, session: Session, model_id: str) -> ModelConfig:
    """Return one registry row, or raise NotFound."""
    model = session.get(ModelConfig, model_id)
    if model is None:
        raise NotFound(f"model {model_id!r} is not in the registry")
    return model


def add_model(*, session: Session, data: Mapping[str, Any] | ModelCreate, actor: str = SYSTEM_ACTOR) -> ModelConfig:
    """Add a model, filling missing prices from the public catalog; refuse duplicates."""
    authorize(session, actor, Role.EDITOR, "edit the registry")
    create = data if isinstance(data, ModelCreate) else validate_new(data)
    if session.get(ModelConfig, create.model_id) is not None:
        raise InvalidInput([f"model_id: {create.model_id!r} is already in the registry"])
    create = _with_catalog_prices(create)
    now = datetime.now(UTC)
    model = ModelConfig.model_validate(create, update={"created_at": now, "updated_at": now})
    session.add(model)
    _audit(session, actor=actor, model_id=model.model_id, action="create", field="*", old=None, new=to_public(model))
    session.flush()
    return model


def update_model(
    *, session: Session, model_id: str, changes: Mapping[str, Any], actor: str = SYSTEM_ACTOR
) -> ModelConfig:
    """Apply validated changes to a model and record each changed field in the audit log."""
    authorize(session, actor, Role.EDITOR, "edit the registry")
    values = validate_changes(changes)
    model = get_model(session=session, model_id=model_id)
    changed = False
    for attr, new in values.items():
        old = getattr(model, attr)
        if old == new:
            continue
        field = _ATTR_TO_PUBLIC.get(attr, attr)
        _audit(session, actor=actor, model_id=model_id, action="update", field=field, old=old, new=new)
        setattr(model, attr, new)
        changed = True
    if changed:
        model.updated_at = datetime.now(UTC)
        session.add(model)
        session.flush()
    return model


def remove_model(*, session: Session, model_id: str, actor: str = SYSTEM_ACTOR) -> None:
    """Remove a model from the registry (its request history stays)."""
    authorize(session, actor, Role.EDITOR, "edit the registry")
    model = get_model(session=session, model_id=model_id)
    _audit(session, actor=actor, model_id=model_id, action="delete", field="*", old=to_public(model), new=None)
    session.delete(model)
    session.flush()


def apply_edits(
    *,
    session: Session,
    updates: Mapping[str, Mapping[str, Any]],
    additions: Sequence[Mapping[str, Any]],
    deletions: Sequence[str],
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Apply a table's worth of edits all-or-nothing: every row is checked before anything is written."""
    authorize(session, actor, Role.EDITOR, "edit the registry")
    problems: list[str] = []
    existing = {m.model_id for m in list_models(session=session)}
    for model_id, changes in updates.items():
        if model_id not in existing:
            problems.append(f"row {model_id}: not in the registry")
            continue
        try:
            validate_changes(changes)
        except InvalidInput as error:
            problems += [f"row {model_id}: {p}" for p in error.problems]
    new_ids: set[str] = set()
    for position, row in enumerate(additions, start=1):
        label = f"new row {position}"
        try:
            create = validate_new(row)
        except InvalidInput as error:
            problems += [f"{label}: {p}" for p in error.problems]
            continue
        if create.model_id in existing or create.model_id in new_ids:
            problems.append(f"{label}: model_id: {create.model_id!r} is already in the registry")
        new_ids.add(create.model_id)
    problems += [f"row {m}: not in the registry" for m in deletions if m not in existing]
    if problems:
        raise InvalidInput(problems)
    for model_id in deletions:
        remove_model(session=session, model_id=model_id, actor=actor)
    for model_id, changes in updates.items():
        if model_id not in deletions:
            update_model(session=session, model_id=model_id, changes=changes, actor=actor)
    for row in additions:
        add_model(session=session, data=row, actor=actor)
