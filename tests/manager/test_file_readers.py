"""A file is read exactly as its rows would be one by one: whichever reader takes a chunk of it (pyarrow's C++
readers, or Python's csv and json modules when a chunk needs them), the same rows are stored and the same
lines are refused for the same columns."""

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from manager.ledger import ingest
from manager.ledger.validate import RowError, validate_record
from tests.utils.factories import LOG_COLUMNS, record

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NEAR_MISSES = [
    "",
    " ",
    "NaN",
    "nan",
    "inf",
    "-1",
    "1e309",
    "1e3",
    " 42 ",
    "2026-03-01T10:15:00Z",
    "2026-03-01 10:15",
    "2026-13-45",
    "deepseek-chat",
    "DEEPSEEK-CHAT",
    "true",
    "False",
    "yes",
    "9007199254740993",
    "1_000",
    "0.000000001",
    "999999.999999999",
    "translation",
    "a\x00b\x1bc",
    "<class 'openai.RateLimitError'>",
    "sk-proj-abcdefghijklmnop1234",
    "growth;beta;growth",
    '["a";"b"]',
    "[1",
    "x" * 129,
]
# Cells a CSV file holds without quoting: no comma, quote or line break.
PLAIN = st.text(st.characters(blacklist_characters=',"\r\n', blacklist_categories=("Cs",)), max_size=10)
CSV_CELLS = st.one_of(PLAIN, st.sampled_from(NEAR_MISSES), st.integers(-5, 10**6).map(str), st.floats().map(str))
CSV_COLUMNS = [c for c in LOG_COLUMNS if c != "request_id"] + [
    "cache_read_tokens",
    "reasoning_tokens",
    "team",
    "api_key",
    "tags",
]


def expected(records: list[dict[str, Any]], engine: Engine, first_line: int) -> tuple[int, list[tuple[int, str]]]:
    """Return (rows accepted, (line, column) refused) as validate_record judges each record alone."""
    prices = ingest.registry_prices(engine)
    refused = []
    for line, one in enumerate(records, start=first_line):
        try:
            validate_record(one, prices)
        except RowError as error:
            refused.append((line, error.column))
    return len(records) - len(refused), refused


def outcome(result: ingest.IngestResult) -> tuple[int, list[tuple[int, str]]]:
    return result.accepted, [(r.line, r.column) for r in result.rejects]


@FUZZ
@given(rows=st.lists(st.fixed_dictionaries(dict.fromkeys(CSV_COLUMNS, CSV_CELLS)), min_size=1, max_size=8))
def test_a_csv_file_is_read_as_its_rows_one_by_one(engine: Engine, tmp_path_factory: Any, rows: list[dict]) -> None:
    records = [{"request_id": uuid4().hex, **row} for row in rows]
    path = tmp_path_factory.mktemp("csv") / "log.csv"
    header = list(records[0])
    path.write_text("\n".join([",".join(header), *(",".join(r[c] for c in header) for r in records)]) + "\n")
    assert outcome(ingest.ingest_file(engine, path)) == expected(records, engine, first_line=2)


JSON_VALUES = st.one_of(
    st.sampled_from(NEAR_MISSES),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(["beta", "ios", " beta ", "a;b", "", 7]), max_size=3),
)


@FUZZ
@given(
    rows=st.lists(
        st.dictionaries(st.sampled_from(CSV_COLUMNS + ["tokens_used", "error_count", "cost_usd"]), JSON_VALUES),
        min_size=1,
        max_size=8,
    )
)
def test_json_lines_are_read_as_their_records_one_by_one(
    engine: Engine, tmp_path_factory: Any, rows: list[dict]
) -> None:
    lines = [json.dumps({**record(), **row, "request_id": uuid4().hex}) for row in rows]
    path = tmp_path_factory.mktemp("jsonl") / "log.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records = [json.loads(line) for line in lines]
    assert outcome(ingest.ingest_file(engine, path, fmt="jsonl")) == expected(records, engine, first_line=1)


def test_a_chunk_with_a_quoted_cell_is_read_like_the_rest(engine: Engine, tmp_path: Path) -> None:
    rows = [record(request_id=f"r-{i}", error_type=None) for i in range(6)]
    rows[4]["error_type"] = 'timeout, then "retry"'
    rows[4]["success"] = "false"
    path = tmp_path / "log.csv"
    header = list(rows[0])
    cells = [
        ",".join(
            '"' + str(v).replace('"', '""') + '"' if isinstance(v, str) and "," in v else str(v or "")
            for v in r.values()
        )
        for r in rows
    ]
    path.write_text("\n".join([",".join(header), *cells]) + "\n")
    result = ingest.ingest_file(engine, path)
    assert outcome(result) == (6, [])


def test_json_lines_that_are_not_objects_are_refused_at_their_lines(engine: Engine, tmp_path: Path) -> None:
    good = json.dumps(record(request_id="kept"))
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join([good, "null", "[1, 2]", "5", '"text"', json.dumps(record(request_id="too"))]) + "\n")
    result = ingest.ingest_file(engine, path, fmt="jsonl")
    assert outcome(result) == (2, [(2, "*"), (3, "*"), (4, "*"), (5, "*")])
