"""Bad input, generated: never a traceback, never a partial write, every error says where."""

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from manager import api, export
from manager.errors import InvalidInput, ManagerError, NotFound, UnusableFile
from manager.ledger import ingest, verify
from manager.models import RequestLog, UsageDaily
from tests.utils.factories import LOG_COLUMNS, record
from tests.utils.spreadsheet import formula_cells

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
cells = st.one_of(
    st.text(max_size=12),
    st.integers(-5, 10**6).map(str),
    st.floats(allow_nan=True).map(str),
    st.sampled_from(
        [
            "",
            "NaN",
            "-1",
            "1e309",
            "2026-13-45",
            "deepseek-chat",
            "=1+2",
            "true",
            "9007199254740991",
            "1e308",
            "1_000",
            "999999.999999999",
            "ok\r=cmd()",
            "a\x00b\x1bc",
            "x" * 140_000,
            '"unterminated',
            "<class 'openai.RateLimitError'>",
        ]
    ),
)
COLUMNS = [*LOG_COLUMNS, "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(RequestLog)).scalar_one()
        rolled = conn.execute(select(func.coalesce(func.sum(UsageDaily.requests), 0))).scalar_one()
    return int(logged), int(rolled)


def check_ingest(engine: Engine, path: Path, fmt: str = "auto") -> None:
    before = counts(engine)
    try:
        result = ingest.ingest_file(engine, path, fmt=fmt)
    except UnusableFile as error:
        assert str(path) in str(error) or "format" in str(error)
        assert counts(engine) == before
        return
    after = counts(engine)
    assert after[0] - before[0] == result.accepted
    assert after[0] == after[1]
    for reject in result.rejects:
        assert reject.line >= 1 and reject.column and reject.reason
    assert formula_cells(export.export_csv(engine, "logs")) == []
    assert [d for d in verify.verify(engine) if d.stored == "impossible"] == []


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_a_clear_error(engine: Engine, tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.csv"
    path.write_bytes(data)
    check_ingest(engine, path)


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries(dict.fromkeys(COLUMNS, cells)), min_size=1, max_size=8))
def test_near_miss_csv_rows_are_kept_or_rejected_with_their_line(
    engine: Engine, tmp_path_factory, rows: list[dict]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.csv"
    lines = [",".join(COLUMNS)] + [",".join(json.dumps(v) for v in row.values()) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    check_ingest(engine, path)


@FUZZ
@given(
    rows=st.lists(
        st.dictionaries(
            st.sampled_from(COLUMNS + ["tokens_used", "error_count", "cost_usd"]),
            st.one_of(cells, st.none(), st.booleans(), st.integers(), st.floats()),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_near_miss_json_lines_are_kept_or_rejected_with_their_line(
    engine: Engine, tmp_path_factory, rows: list[dict]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.jsonl"
    path.write_text("".join(json.dumps({**record(request_id=None), **row}) + "\n" for row in rows))
    check_ingest(engine, path, "jsonl")


@FUZZ
@given(
    span=st.dictionaries(
        st.sampled_from(["traceId", "spanId", "startTimeUnixNano", "endTimeUnixNano", "attributes", "status"]),
        st.one_of(st.text(max_size=8), st.integers(), st.none(), st.lists(st.integers())),
    )
)
def test_near_miss_otlp_spans_are_kept_or_rejected(engine: Engine, tmp_path_factory, span: dict) -> None:
    attributes = [{"key": "gen_ai.request.model", "value": {"stringValue": "deepseek-chat"}}]
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": attributes, **span}]}]}]}
    path = tmp_path_factory.mktemp("fuzz") / "spans.json"
    path.write_text(json.dumps(document))
    check_ingest(engine, path, "otlp")


registry_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**5),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.text(max_size=3), max_size=3),
)


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "priority",
                "temperature",
                "top_p",
                "status",
                "category",
                "quality_score",
                "supported_languages",
                "metadata",
                "colour",
                "max_tokens",
                "cost_per_1k_input",
            ]
        ),
        registry_values,
        min_size=1,
    )
)
def test_random_registry_edits_apply_whole_or_not_at_all(engine: Engine, changes: dict) -> None:
    before = api.get_model(engine, "deepseek-chat")
    try:
        after = api.update_model(engine, "deepseek-chat", changes)
    except InvalidInput as error:
        assert all(": " in problem for problem in error.problems)
        assert api.get_model(engine, "deepseek-chat") == before
        return
    assert api.get_model(engine, "deepseek-chat") == after


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(
            ["name", "scope", "period", "amount_usd", "warn_threshold", "alert_threshold", "hard", "colour"]
        ),
        st.one_of(registry_values, st.sampled_from(["global", "model:x", "daily", "team:a"])),
        min_size=1,
    )
)
def test_random_budgets_are_added_whole_or_refused_naming_a_field(engine: Engine, data: dict) -> None:
    before = api.list_budgets(engine)
    try:
        api.add_budget(engine, data)
    except (InvalidInput, NotFound, ManagerError) as error:
        assert ": " in str(error)
        assert api.list_budgets(engine) == before
        return
    assert len(api.list_budgets(engine)) == len(before) + 1
    api.remove_budget(engine, data["name"])


JUNK = st.one_of(st.none(), st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2))
SPAN = st.builds(
    lambda n: {
        "traceId": "ab" * 16,
        "spanId": f"{n:016x}",
        "startTimeUnixNano": "1772359200000000000",
        "endTimeUnixNano": "1772359200500000000",
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "deepseek-chat"}}],
    },
    st.integers(0, 2**60),
)
SCOPE = st.one_of(st.builds(lambda spans: {"spans": spans}, st.lists(st.one_of(SPAN, JUNK), max_size=3)), JUNK)
RESOURCE = st.one_of(st.builds(lambda scopes: {"scopeSpans": scopes}, st.lists(SCOPE, max_size=3)), JUNK)


def _leaves(resources: list) -> int:
    """Return how many elements must each be stored or rejected: spans, and anything that is not an object."""
    count = 0
    for resource in resources:
        if not isinstance(resource, dict):
            count += 1
            continue
        for scope in resource["scopeSpans"]:
            count += len(scope["spans"]) if isinstance(scope, dict) else 1
    return count


@FUZZ
@given(resources=st.lists(RESOURCE, min_size=1, max_size=3))
def test_otlp_structure_is_never_skipped_silently(engine: Engine, tmp_path_factory, resources: list) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "spans.json"
    path.write_text(json.dumps({"resourceSpans": resources}))
    result = ingest.ingest_file(engine, path, fmt="otlp")
    assert result.accepted + result.rejected + result.duplicates == _leaves(resources)
