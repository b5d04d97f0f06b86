"""Attribution on a request: who and what it was for (user, team, API key, app, environment, tags).

Each value is trimmed and capped in length; a control character is refused. An API key is a name or an
alias: a value that looks like a secret (`sk-...` and the like) is never stored as given, only a short
fingerprint of it (`sk-...a1b2`), so the ledger never holds a credential. Tags arrive as `a;b` or as a
list (or JSON list text) and are stored as `a;b`, each trimmed, in the order given, without repeats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# Record column -> request-log column. `user` is stored as end_user ("user" is reserved in SQL).
COLUMNS = {"user": "end_user", "team": "team", "api_key": "api_key", "app": "app", "environment": "environment"}
TAGS = "tags"
RECORD_COLUMNS = (*COLUMNS, TAGS)
LOG_COLUMNS = (*COLUMNS.values(), TAGS)
MAX_VALUE = 128
MAX_TAG = 64
MAX_TAGS = 20
TAG_SEPARATOR = ";"
# What spend is broken down by (`--by`), and the request-log column each reads; a tag is one of a row's tags.
DIMENSIONS = {
    "user": "end_user",
    "team": "team",
    "api_key": "api_key",
    "app": "app",
    "environment": "environment",
    "tag": TAGS,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Prefixes secret keys carry (OpenAI sk-, Stripe-style pk-/rk-, sessions, generic key-/api-/token-).
_SECRET_PREFIX = re.compile(r"^(?:sk|pk|rk|sess|key|api|token|ghp|xox[abp])[-_]", re.IGNORECASE)
_TOKEN_LIKE = re.compile(r"^[A-Za-z0-9_\-]{24,}$")


class AttributionError(ValueError):
    """An attribution value was refused; `column` names it."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"column {column}: {reason}")
        self.column = column
        self.reason = reason


def looks_secret(value: str) -> bool:
    """Return whether an API key value looks like a credential rather than a name."""
    if _SECRET_PREFIX.match(value):
        return True
    return bool(_TOKEN_LIKE.match(value)) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def fingerprint(secret: str) -> str:
    """Return what is kept of a secret-looking key: its kind prefix and its last four characters."""
    head = secret[:8].split("-", 1)[0] if "-" in secret[:8] else secret[:2]
    return f"{head}-...{secret[-4:]}"


def clean_value(column: str, value: Any) -> str | None:
    """Return one attribution value as stored (None when blank); AttributionError says why one is refused."""
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise AttributionError(column, f"{type(value).__name__} is not text")
    text = str(value).strip()
    if not text:
        return None
    if _CONTROL.search(text):
        raise AttributionError(column, "holds a control character")
    if column == "api_key" and looks_secret(text):
        return fingerprint(text)
    if len(text) > MAX_VALUE:
        raise AttributionError(column, f"longer than {MAX_VALUE} characters")
    return text


def clean_tags(value: Any) -> str | None:
    """Return tags as stored, `a;b` (None when there are none); AttributionError says why they are refused."""
    if value is None:
        return None
    items: list[Any]
    if isinstance(value, list | tuple):
        items = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                raise AttributionError(TAGS, "starts like a JSON list but is not one") from None
            if not isinstance(parsed, list):
                raise AttributionError(TAGS, "is not a list of tags")
            items = parsed
        else:
            items = text.split(TAG_SEPARATOR)
    else:
        raise AttributionError(TAGS, f"{type(value).__name__} is not a list of tags")
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise AttributionError(TAGS, f"tag {item!r} is not text")
        tag = item.strip()
        if not tag:
            continue
        if _CONTROL.search(tag):
            raise AttributionError(TAGS, f"tag {tag[:20]!r} holds a control character")
        if TAG_SEPARATOR in tag:
            raise AttributionError(TAGS, f"tag {tag[:20]!r} holds a '{TAG_SEPARATOR}', which separates tags")
        if len(tag) > MAX_TAG:
            raise AttributionError(TAGS, f"tag {tag[:20]!r}... is longer than {MAX_TAG} characters")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise AttributionError(TAGS, f"{len(tags)} tags, more than {MAX_TAGS}")
    return TAG_SEPARATOR.join(tags) or None


def attribution_of(record: Mapping[str, Any]) -> dict[str, str | None]:
    """Return a record's attribution as request-log columns (end_user, team, api_key, app, environment, tags)."""
    found: dict[str, str | None] = {
        stored: clean_value(column, record.get(column)) for column, stored in COLUMNS.items()
    }
    found[TAGS] = clean_tags(record.get(TAGS))
    return found


def split_tags(stored: str | None) -> list[str]:
    """Return the tags of a stored `a;b` value."""
    return [t for t in (stored or "").split(TAG_SEPARATOR) if t]


def request_attribution(
    *,
    user: str | None = None,
    team: str | None = None,
    api_key: str | None = None,
    app: str | None = None,
    environment: str | None = None,
    tags: Any = None,
) -> dict[str, tuple[str, ...]]:
    """Return a request's attribution by dimension, cleaned as ingest cleans it (a secret key as its fingerprint);
    AttributionError names a refused value."""
    stored = attribution_of(
        {"user": user, "team": team, "api_key": api_key, "app": app, "environment": environment, "tags": tags}
    )
    found: dict[str, tuple[str, ...]] = {}
    for dimension, column in DIMENSIONS.items():
        value = stored[column]
        if dimension != "tag" and value is not None:
            found[dimension] = (value,)
    if tags_found := split_tags(stored[TAGS]):
        found["tag"] = tuple(tags_found)
    return found
