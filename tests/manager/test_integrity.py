import json
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select, update

from manager import api, usage
from manager.cli import main
from manager.ledger import ingest, verify
from manager.models import ModelUsageHourly, RequestLog, UsageDaily, UsageHourly
from manager.window import read_window
from tests.utils.factories import generated_records, record, write_csv

ROOT = Path(__file__).resolve().parents[2]


def stored_requests(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(RequestLog)).scalar_one())


def test_fresh_ingest_has_no_drift(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(800))
    assert verify.verify(engine) == []


def test_tampered_rollup_is_reported_and_rebuilt(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(300))
    with engine.begin() as conn:
        conn.execute(update(UsageDaily).values(requests=UsageDaily.requests + 1))
    drift = verify.verify(engine)
    assert {(d.table, d.field) for d in drift} == {
        ("usage_daily", "requests"),
        ("usage_daily", "successes + failures != requests"),
    }
    verify.rebuild_rollups(engine)
    assert verify.verify(engine) == []


def test_a_tampered_per_model_rollup_is_reported_and_rebuilt(engine: Engine) -> None:
    api.ingest_records(engine, generated_records(300))
    with engine.begin() as conn:
        conn.execute(update(ModelUsageHourly).values(failures=ModelUsageHourly.failures + 2))
    drift = verify.verify(engine)
    assert {(d.table, d.field) for d in drift} == {
        ("usage_model_hourly", "failures"),
        ("usage_model_hourly", "successes + failures != requests"),
    }
    assert all(d.key.endswith(" * *") for d in drift)
    verify.rebuild_rollups(engine)
    assert verify.verify(engine) == []


def test_verify_cli_exit_codes(db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    api.ingest_records(engine, generated_records(100))
    assert main(["--db", db_url, "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"drift": [], "ok": True}
    with engine.begin() as conn:
        conn.execute(update(UsageHourly).values(cost_nanos=0))
    assert main(["--db", db_url, "verify"]) == 1
    assert main(["--db", db_url, "rebuild-rollups"]) == 0
    assert main(["--db", db_url, "verify"]) == 0


def test_sigkill_mid_ingest_leaves_whole_batches_and_a_rerun_completes(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    rows = generated_records(60_000, seed=12, days=30)
    path = write_csv(tmp_path / "big.csv", rows)
    script = (
        "import sys; from manager import api; from manager.ledger import ingest; "
        "ingest.ingest_file(api.open_engine(sys.argv[1]), sys.argv[2], batch_size=2000)"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script, db_url, str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and stored_requests(engine) < 6000:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    stored = stored_requests(engine)
    assert 0 < stored < len(rows)
    assert stored % 2000 == 0
    assert verify.verify(engine) == []
    result = ingest.ingest_file(engine, path)
    assert (result.accepted + result.duplicates, result.duplicates) == (len(rows), stored)
    assert verify.verify(engine) == []


def test_writes_go_on_while_the_rollups_are_rebuilt_and_are_counted(engine: Engine) -> None:
    ingest.ingest_frame(engine, pd.DataFrame(generated_records(200_000, days=30)))
    rebuild = threading.Thread(target=verify.rebuild_rollups, args=(engine,))
    rebuild.start()
    for i in range(3):
        api.log_usage(engine, **record(request_id=f"during-{i}"))
    written_while_rebuilding = rebuild.is_alive()
    rebuild.join()
    assert written_while_rebuilding  # the old rebuild held the write lock throughout: these writes waited
    assert verify.verify(engine) == []
    assert usage.kpis(read_window(engine, date(2026, 1, 1), date(2026, 12, 31))).requests == 200_003
