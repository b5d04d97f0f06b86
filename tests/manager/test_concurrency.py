import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select

from manager.models import RequestLog, UsageHourly
from tests.utils.factories import generated_records, write_csv

ROOT = Path(__file__).resolve().parents[2]


def test_overlapping_ingests_in_parallel_store_each_request_once(db_url: str, engine: Engine, tmp_path: Path) -> None:
    rows = generated_records(3000, seed=9)
    files = [write_csv(tmp_path / f"part{i}.csv", rows[i * 500 : i * 500 + 1500]) for i in range(4)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "manager", "--db", db_url, "ingest", str(f), "--json"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    results = [(w.wait(timeout=120), *w.communicate()) for w in workers]
    assert [code for code, _, err in results] == [0, 0, 0, 0], [err for _, _, err in results]
    accepted = sum(json.loads(out)["accepted"] for _, out, _ in results)
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(RequestLog)).scalar_one()
        rolled = conn.execute(select(func.sum(UsageHourly.requests))).scalar_one()
    assert accepted == stored == rolled == len({r["request_id"] for r in rows[:3000]})
