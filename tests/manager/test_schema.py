from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from alembic import command
from sqlalchemy import Engine, column, insert, select, table, text

from manager import api, export, performance
from manager.db import create_db_engine
from manager.ledger import histogram, verify
from manager.models import ModelUsageDaily, ModelUsageHourly, UsageDaily, UsageHourly
from manager.schema import alembic_config, schema_is_current
from manager.window import read_window
from tests.utils.factories import generated_records


def test_daily_rollups_equal_the_hourly_ones_summed_by_day(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(2000))
    with engine.connect() as conn:
        hourly = pd.DataFrame(conn.execute(select(UsageHourly)).mappings().all())
        daily = pd.DataFrame(conn.execute(select(UsageDaily)).mappings().all())
    hourly["day"] = pd.to_datetime(hourly["hour"], utc=True).dt.floor("D")
    daily["day"] = pd.to_datetime(daily["day"], utc=True)
    keys, measures = ["day", "model_id", "request_type", "language"], ["requests", "failures", "cost_nanos"]
    summed = hourly.groupby(keys)[measures].sum().sort_index()
    assert summed.equals(daily.set_index(keys)[measures].sort_index())


def test_per_model_rollups_equal_the_per_segment_ones_summed_by_model(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(2000))
    measures = ["requests", "failures", "input_tokens", "cost_nanos", "quality_count"]
    for segments, models, grain in ((UsageHourly, ModelUsageHourly, "hour"), (UsageDaily, ModelUsageDaily, "day")):
        with engine.connect() as conn:
            fine = pd.DataFrame(conn.execute(select(segments)).mappings().all())
            coarse = pd.DataFrame(conn.execute(select(models)).mappings().all())
        summed = fine.groupby([grain, "model_id"])[measures].sum().sort_index()
        assert summed.equals(coarse.set_index([grain, "model_id"])[measures].sort_index())
        merged = fine.groupby([grain, "model_id"])["latency_hist"].agg(lambda hists: histogram.merge_stored(hists))
        stored = coarse.set_index([grain, "model_id"])["latency_hist"].map(histogram.decode)
        assert merged.sort_index().tolist() == stored.sort_index().tolist()


def test_upgrading_fills_daily_rollups_from_existing_hourly_ones(db_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}" if db_url.startswith("sqlite") else db_url
    engine = create_db_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        if schema_is_current(engine):  # the PostgreSQL test database starts at the newest schema
            command.downgrade(config, "0004")
        else:
            command.upgrade(config, "0004")
    row = {
        "model_id": "m",
        "request_type": "general",
        "language": "en",
        "requests": 3,
        "successes": 2,
        "failures": 1,
        "input_tokens": 30,
        "output_tokens": 20,
        "cost_nanos": 900,
        "latency_sum_ms": 30.0,
        "quality_sum": 8.0,
        "quality_count": 2,
        "latency_hist": '{"200":3}',
        "error_types": '{"timeout":1}',
    }
    # The table as revision 0004 had it, histograms as JSON text.
    old_hourly = table("usage_hourly", *(column(name) for name in [*row, "hour"]))
    with engine.begin() as conn:
        for hour in (9, 17):
            conn.execute(insert(old_hourly), {**row, "hour": datetime(2026, 3, 1, hour, tzinfo=UTC)})
    api.open_engine(url)
    with engine.connect() as conn:
        daily = conn.execute(select(UsageDaily)).mappings().one()
        hourly = conn.execute(select(UsageHourly)).mappings().all()
    assert (daily["requests"], daily["cost_nanos"], daily["error_types"]) == (6, 1800, '{"timeout":2}')
    assert histogram.decode(daily["latency_hist"]) == {200: 6}
    assert [histogram.decode(h["latency_hist"]) for h in hourly] == [{200: 3}, {200: 3}]
    with engine.connect() as conn:
        per_model = conn.execute(select(ModelUsageDaily)).mappings().one()
    assert (per_model["model_id"], per_model["requests"], per_model["error_types"]) == ("m", 6, '{"timeout":2}')
    assert histogram.decode(per_model["latency_hist"]) == {200: 6}
    engine.dispose()


def test_histograms_survive_a_downgrade_and_upgrade_of_the_storage_format(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(500))
    before = performance.performance_report(read_window(engine, date(2000, 1, 1), date(2100, 1, 1)))
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT latency_hist FROM usage_daily")).scalars().first()
    assert str(stored).startswith("{")
    api.open_engine(engine.url.render_as_string(hide_password=False))
    assert performance.performance_report(read_window(engine, date(2000, 1, 1), date(2100, 1, 1))).equals(before)


def test_a_ledger_from_before_cache_tokens_upgrades_intact_with_catalog_cache_prices(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(300))
    before = export.export_csv(engine, "usage")
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    api.open_engine(engine.url.render_as_string(hide_password=False))
    assert export.export_csv(engine, "usage") == before
    assert verify.verify(engine) == []
    claude = api.get_model(engine, "claude-3-haiku-20240307")
    assert (claude["cost_per_1k_cache_read"], claude["cost_per_1k_cache_write"]) == (0.00003, 0.0003)
