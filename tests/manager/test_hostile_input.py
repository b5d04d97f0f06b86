"""Input a careless or hostile user would send: every bad row is a reject with its line and reason, the good
rows are kept, and nothing crashes half-way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine

from manager import api
from manager.cli import main
from manager.errors import InvalidInput, UnusableFile
from manager.ledger import ingest
from tests.utils.factories import record, write_csv


def _span(span_id: str, start: str = "1772359200000000000") -> dict:
    return {
        "traceId": "ab" * 16,
        "spanId": span_id,
        "startTimeUnixNano": start,
        "endTimeUnixNano": str(int(float(start)) + 500_000_000) if float(start) < 1e20 else start,
        "attributes": [
            {"key": "gen_ai.request.model", "value": {"stringValue": "deepseek-chat"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "10"}},
        ],
    }


def _rejects(result: ingest.IngestResult) -> list[tuple[int, str]]:
    return [(r.line, r.column) for r in result.rejects]


def test_a_csv_field_over_the_csv_modules_limit_is_one_reject(engine: Engine, tmp_path: Path) -> None:
    rows = [record(request_id=f"r-{i}") for i in range(5)]
    rows[2]["error_type"] = "x" * 140_000
    result = ingest.ingest_file(engine, write_csv(tmp_path / "log.csv", rows))
    assert (result.accepted, _rejects(result)) == (4, [(4, "*")])
    assert "field larger than field limit" in result.rejects[0].reason


def test_an_unterminated_quote_is_a_reject_at_its_line(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "log.csv", [record(request_id=f"r-{i}") for i in range(3)])
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("r-1", '"r-1')
    path.write_text("\n".join(lines) + "\n")
    result = ingest.ingest_file(engine, path)
    assert (result.accepted, _rejects(result)) == (1, [(3, "*")])
    assert "unterminated quote" in result.rejects[0].reason


def test_a_json_line_nested_deeper_than_python_reads_is_one_reject(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    good = json.dumps(record(request_id="ok"))
    path.write_text(good + "\n" + "[" * 100_000 + "]" * 100_000 + "\n" + json.dumps(record(request_id="ok2")) + "\n")
    result = ingest.ingest_file(engine, path)
    assert (result.accepted, _rejects(result)) == (2, [(2, "*")])
    assert "nested too deeply" in result.rejects[0].reason


def test_an_otlp_time_no_clock_can_hold_is_a_reject_and_the_rest_is_kept(engine: Engine, tmp_path: Path) -> None:
    spans = [_span("01" * 8), _span("02" * 8, start="1e26"), _span("03" * 8)]
    path = tmp_path / "spans.jsonl"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}) + "\n")
    result = ingest.ingest_file(engine, path)
    assert (result.accepted, _rejects(result)) == (2, [(1, "startTimeUnixNano")])


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"resourceSpans": [{"scopeSpans": [{"spans": [_span("01" * 8)]}, 7]}]}, "resourceSpans[0].scopeSpans[1]"),
        ({"resourceSpans": ["x", {"scopeSpans": [{"spans": [_span("01" * 8)]}]}]}, "resourceSpans[0]"),
        (
            {"resourceSpans": [{"scopeSpans": [{"spans": [_span("01" * 8), None]}]}]},
            "resourceSpans[0].scopeSpans[0].spans[1]",
        ),
    ],
)
def test_otlp_structure_errors_are_rejects_naming_their_json_path(
    engine: Engine, tmp_path: Path, document: dict, path: str
) -> None:
    file = tmp_path / "spans.json"
    file.write_text(json.dumps(document))
    result = ingest.ingest_file(engine, file)
    assert (result.accepted, [r.column for r in result.rejects]) == (1, [path])


def test_a_rejected_span_says_where_it_is_in_the_document(engine: Engine, tmp_path: Path) -> None:
    bad = _span("02" * 8)
    bad["attributes"][0]["value"]["stringValue"] = "gpt-9"
    file = tmp_path / "spans.json"
    file.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [_span("01" * 8), bad]}]}]}, indent=2))
    result = ingest.ingest_file(engine, file)
    assert result.rejects[0].raw.startswith("resourceSpans[0].scopeSpans[0].spans[1] ")


@pytest.mark.parametrize("value", ["1_000", "1_0.5"])
def test_numbers_with_underscores_are_not_numbers(engine: Engine, value: str) -> None:
    result = api.ingest_records(engine, [record(input_tokens=value)])
    assert [(r.column, "not a number" in r.reason) for r in result.rejects] == [("input_tokens", True)]


def test_a_typed_timestamp_outside_1970_to_2199_is_refused(engine: Engine) -> None:
    frame = pd.DataFrame([record(request_id="old"), record(request_id="new")])
    frame["timestamp"] = pd.to_datetime(["1960-01-01T00:00:00Z", "2026-03-01T00:00:00Z"], utc=True)
    result = ingest.ingest_frame(engine, frame)
    assert (result.accepted, [(r.line, r.column) for r in result.rejects]) == (1, [(1, "timestamp")])


def test_the_rejects_file_is_never_written_through_a_symlink(db_url: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = write_csv(tmp_path / "log.csv", [record(model_id="gpt-9")])
    (tmp_path / "log.csv.rejects.csv").symlink_to(victim)
    with pytest.raises(UnusableFile, match="symbolic link"):
        ingest.ingest_file(api.open_engine(db_url), path)
    assert victim.read_text() == "precious"
    assert main(["--db", db_url, "ingest", str(path)]) == 2


@pytest.mark.parametrize("model_id", [" gpt-5", "gpt-5 ", "gpt\x07-5"])
def test_a_model_id_traffic_could_never_name_is_refused(engine: Engine, model_id: str) -> None:
    with pytest.raises(InvalidInput, match="model_id"):
        api.add_models(engine, [{"model_id": model_id, "provider": "openai", "name": "GPT"}])
