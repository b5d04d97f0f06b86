"""A routing policy as a LiteLLM configuration: the `model_list` and `router_settings` its proxy and Router load.

Every model the policy ranks is a deployment in a group named by its model_id, priced and limited from
the registry in `model_info` (LiteLLM computes each call's cost from these prices). Beside them, group
`route` is the policy's top model and falls back to the others in the policy's order; each
(request type, language) segment of the what-if's routing table is a group `route:<type>:<language>`
with its own top model and fallbacks. The logger reads a segment's type and language back from the
group's name, so calls routed this way land in the ledger under their segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import yaml
from sqlalchemy import Engine

from manager.errors import InvalidInput
from manager.integrations.litellm_records import litellm_model, route_group
from manager.registry import ModelInfo
from manager.selection import Policy, Selection, merge_weights, select_in
from manager.whatif import ReplayResult, reads, replay
from manager.window import read_window


def _per_token(price_per_1k: float) -> float:
    return float(f"{price_per_1k / 1000:.12g}")  # 0.00025 per 1k is 2.5e-07, not 2.4999999999999998e-07


def _entry(group: str, model_id: str, m: ModelInfo) -> dict[str, Any]:
    """Return one deployment of a registry model: how LiteLLM calls it, its prices per token, its output limit."""
    params: dict[str, Any] = {"model": litellm_model(model_id, m.provider, m.litellm_model)}
    if m.api_base or m.base_url:
        params["api_base"] = m.api_base or m.base_url
    info: dict[str, Any] = {"mode": "chat"}
    for key, price in (
        ("input_cost_per_token", m.cost_per_1k_input),
        ("output_cost_per_token", m.cost_per_1k_output),
        ("cache_read_input_token_cost", m.cost_per_1k_cache_read),
        ("cache_creation_input_token_cost", m.cost_per_1k_cache_write),
    ):
        if price is not None:
            info[key] = _per_token(price)
    if m.max_tokens is not None:
        info["max_output_tokens"] = m.max_tokens
    return {"model_name": group, "litellm_params": params, "model_info": info}


def build(
    ranking: Sequence[str], routes: Mapping[tuple[str, str], Sequence[str]], models: Mapping[str, ModelInfo]
) -> dict[str, Any]:
    """Return the LiteLLM config: a group per ranked model, `route` for the ranking, one per segment's route."""
    ranked = [m for m in ranking if m in models]
    groups: list[tuple[str, list[str]]] = [(route_group(), ranked)] if ranked else []
    groups += [(route_group(t, lang), [m for m in order if m in models]) for (t, lang), order in sorted(routes.items())]
    groups = [(name, order) for name, order in groups if order]
    members = list(dict.fromkeys([*ranked, *(m for _, order in groups for m in order)]))
    model_list = [_entry(m, m, models[m]) for m in members]
    model_list += [_entry(name, order[0], models[order[0]]) for name, order in groups]
    fallbacks = [{name: order[1:]} for name, order in groups if len(order) > 1]
    return {"model_list": model_list, "router_settings": {"fallbacks": fallbacks}}


def _header(selection: Selection, policy: Policy, at: datetime) -> str:
    weights = ", ".join(f"{k} {v:g}" for k, v in merge_weights(policy.weights).items())
    lines = [
        f"LiteLLM configuration written by the AI Model Manager at {at:%Y-%m-%d %H:%M} UTC.",
        f"Policy weights: {weights}.",
        "Groups: one per model (its model_id); `route` is the policy's ranking, top model first, falling back in",
        "order; `route:<request type>:<language>` is a segment's route from the what-if replay.",
        "Provider keys come from the usual variables (ANTHROPIC_API_KEY, OPENAI_API_KEY, ...).",
    ]
    lines += [f"Not routed: {model_id} ({reason})." for model_id, reason in selection.excluded]
    return "".join(f"# {line}\n" for line in lines)


def config_text(
    selection: Selection, result: ReplayResult, registry: Mapping[str, ModelInfo], *, at: datetime | None = None
) -> str:
    """Return the config as YAML the LiteLLM proxy accepts, headed by comments naming the policy."""
    config = build([r.model_id for r in selection.ranking], result.routes, registry)
    body = str(yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=120))
    return _header(selection, result.policy, at or datetime.now(UTC)) + body


def export_config(engine: Engine, policy: Policy, start: date, end: date) -> str:
    """Return the policy as LiteLLM YAML: its live ranking now, and the routes its replay of the days gives."""
    at = datetime.now(UTC)
    window = read_window(engine, start, end, reads(at), at=at)
    chosen = select_in(window, policy)
    if not chosen.ranking:
        raise InvalidInput(
            ["no model passes the policy, so there is nothing to route"]
            + [f"{model_id}: {reason}" for model_id, reason in chosen.excluded]
        )
    return config_text(chosen, replay(window, policy), window.registry, at=at)
