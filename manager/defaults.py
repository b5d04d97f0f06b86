"""The five models every installation starts with (from the seed), loaded once: never again after their removal."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from manager.models import AuditEntry, ModelConfig
from manager.registry import add_model

DEFAULT_MODELS: list[dict[str, Any]] = [
    {
        "model_id": "claude-3-haiku-20240307",
        "provider": "anthropic",
        "name": "Claude Haiku",
        "version": "3",
        "category": "general",
        "size": "medium",
        "priority": 8,
        "max_tokens": 4096,
        "primary_language": "en",
        "supported_languages": ["en", "es", "fr", "de", "it", "pt", "ja", "zh"],
        "quality_score": 0.88,
        "avg_response_time": 900.0,
        "tags": ["fast", "cost-effective"],
    },
    {
        "model_id": "mistral-small-latest",
        "provider": "mistral",
        "name": "Mistral Small",
        "version": "latest",
        "category": "general",
        "size": "medium",
        "priority": 7,
        "max_tokens": 8192,
        "primary_language": "fr",
        "supported_languages": ["fr", "en", "es", "de", "it"],
        "quality_score": 0.82,
        "avg_response_time": 1100.0,
        "tags": ["balanced", "european"],
    },
    {
        "model_id": "deepseek-chat",
        "provider": "deepseek",
        "name": "DeepSeek Chat",
        "version": "v3",
        "category": "conversation",
        "size": "large",
        "priority": 6,
        "max_tokens": 8192,
        "primary_language": "en",
        "supported_languages": ["en", "zh"],
        "quality_score": 0.8,
        "avg_response_time": 1600.0,
        "tags": ["budget-friendly"],
    },
    {
        "model_id": "llama2:latest",
        "provider": "ollama",
        "name": "Ollama Llama2",
        "version": "2",
        "category": "general",
        "size": "medium",
        "priority": 4,
        "max_tokens": 4096,
        "supports_streaming": True,
        "primary_language": "en",
        "supported_languages": ["en"],
        "quality_score": 0.65,
        "avg_response_time": 2500.0,
        "tags": ["local", "free"],
        "metadata": {"base_url": "http://127.0.0.1:11434"},
    },
    {
        "model_id": "mistral:latest",
        "provider": "ollama",
        "name": "Ollama Mistral",
        "version": "7b",
        "category": "general",
        "size": "small",
        "priority": 5,
        "max_tokens": 4096,
        "primary_language": "en",
        "supported_languages": ["en", "fr"],
        "quality_score": 0.7,
        "avg_response_time": 2000.0,
        "tags": ["local", "free"],
        "metadata": {"base_url": "http://127.0.0.1:11434"},
    },
]


def load_default_models(*, session: Session) -> int:
    """Add the default models that are missing, never overwriting edits; return how many were added.

    A default someone removed stays removed: its removal is in the audit trail, and `init` (which the
    dashboard's start script runs every time) does not bring it back.
    """
    removed = set(
        session.exec(select(AuditEntry.entity_id).where(AuditEntry.entity == "model", AuditEntry.action == "delete"))
    )
    added = 0
    for data in DEFAULT_MODELS:
        if data["model_id"] not in removed and session.get(ModelConfig, data["model_id"]) is None:
            add_model(session=session, data=data)
            added += 1
    return added
