"""Sums that cannot wrap: totals past what a BIGINT holds are refused before they are stored, and reports over
many stored rows add up exactly whatever their size."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from manager import api, export, overview, usage
from manager.cli import main
from manager.ledger import verify
from manager.ledger.ingest import IngestStopped
from manager.ledger.rollups import TotalTooLarge
from manager.window import read_window
from tests.utils.factories import record, write_csv

DEAREST = "999999.999999999"  # the most one request may cost
START = datetime(2026, 1, 1, tzinfo=UTC)


def dear(count: int, *, hours_apart: int, model: str = "deepseek-chat") -> list[dict]:
    return [
        record(
            request_id=f"{model}-{i}",
            model_id=model,
            cost=DEAREST,
            timestamp=(START + timedelta(hours=i * hours_apart)).isoformat(),
        )
        for i in range(count)
    ]


def test_totals_past_what_int64_holds_add_up_exactly_in_reports(engine: Engine) -> None:
    models = ["deepseek-chat", "claude-3-haiku-20240307", "mistral-small-latest"]
    api.ingest_records(engine, [r for m in models for r in dear(4_000, hours_apart=1, model=m)])
    exact = 12_000 * 999_999_999_999_999  # $12 billion: past 2**63 nano-dollars
    assert exact > 2**63
    assert usage.kpis(read_window(engine, date(2026, 1, 1), date(2027, 12, 31))).cost_nanos == exact
    assert overview.report(engine, date(2026, 1, 1), date(2027, 12, 31)).total_cost_usd == pytest.approx(exact / 10**9)
    usage_rows = export.export_csv(engine, "usage").splitlines()[1:]
    assert sum(Decimal(line.split(",")[12]) for line in usage_rows) == Decimal(exact) / 10**9
    assert verify.verify(engine) == []


def test_one_models_all_time_total_past_the_largest_storable_is_refused(engine: Engine) -> None:
    with pytest.raises(TotalTooLarge, match="deepseek-chat: its all-time total_cost_nanos would pass"):
        api.ingest_records(engine, dear(10_000, hours_apart=1))
    assert api.is_empty(engine)


def test_a_day_past_the_largest_storable_total_is_refused_and_nothing_is_written(engine: Engine) -> None:
    with pytest.raises(TotalTooLarge, match="deepseek-chat in the hour from 2026-01-01 00:00 UTC: cost_nanos"):
        api.ingest_records(engine, dear(5_000, hours_apart=0))
    assert api.is_empty(engine)


def test_a_batch_refused_after_others_were_stored_says_what_was_kept(engine: Engine) -> None:
    cheap = [record(request_id=f"c-{i}", cost="0.01") for i in range(5_000)]
    with pytest.raises(IngestStopped, match="5,000 rows of earlier batches were kept") as caught:
        api.ingest_records(engine, cheap + dear(5_000, hours_apart=0), batch_size=5_000)
    assert caught.value.kept == 5_000
    assert usage.kpis(read_window(engine, date(2026, 1, 1), date(2026, 12, 31))).requests == 5_000


def test_the_cli_exits_3_with_one_line_when_a_later_batch_is_refused(
    db_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cheap = [record(request_id=f"c-{i}", cost="0.01", timestamp="2026-03-01T10:00:00Z") for i in range(20_000)]
    cheap[7]["model_id"] = "gpt-9"  # refused in the first batch, which is stored
    path = write_csv(tmp_path / "log.csv", cheap + dear(5_000, hours_apart=0))
    assert main(["--db", db_url, "ingest", str(path), "--batch-rows", "20000"]) == 3
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "19,999 rows of earlier batches were kept" in error[0]
    rejects = (tmp_path / "log.csv.rejects.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in rejects[1:]] == [["9", "model_id"]]


def test_verify_flags_a_stored_total_that_cannot_be(engine: Engine) -> None:
    api.ingest_records(engine, [record()])
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE usage_daily SET cost_nanos = -5, failures = failures + 1")
    fields = {(d.table, d.field) for d in verify.verify(engine)}
    assert {("usage_daily", "cost_nanos"), ("usage_daily", "successes + failures != requests")} <= fields
