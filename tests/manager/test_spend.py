"""Spend by user, team, API key, app, environment and tag: kept at ingest, exact, and read without a scan."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Engine, text

from manager import api, spend
from manager.cli import main
from manager.ledger import ingest, verify
from manager.money import usd_to_nanos
from manager.schema import alembic_config
from tests.utils.factories import LOG_COLUMNS, generated_records, write_csv

DAYS = (date(2026, 3, 1), date(2026, 3, 3))
FIELDS = {"user": "user", "team": "team", "api_key": "api_key", "app": "app", "environment": "environment"}


def attributed(n: int, *, seed: int = 7, users: int = 300, skew: float = 1.1) -> list[dict[str, Any]]:
    """Return generated records with attribution: Zipf-like users, a few teams and keys, tags, some left blank."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, users + 1) ** skew
    picks = rng.choice(users, size=n, p=weights / weights.sum())
    tag_sets = ["beta", "beta;mobile", "mobile", "", "batch;beta;eval"]
    records = generated_records(n, seed=seed, days=3)
    for i, (row, user) in enumerate(zip(records, picks, strict=True)):
        row["user"] = f"user-{user}" if i % 11 else ""
        row["team"] = ["growth", "search", "support", "research"][int(user) % 4] if i % 7 else ""
        row["api_key"] = f"{row['team'] or 'shared'}-key"
        row["app"] = ["tutor", "grader"][i % 2]
        row["environment"] = "production" if i % 5 else "staging"
        row["tags"] = tag_sets[i % len(tag_sets)]
    return records


def independent_sums(records: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], list[int]]:
    """Return (day, dimension, value, model) -> [requests, failures, input, output, cost nanos], summed one by one."""
    sums: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for row in records:
        day = datetime.fromisoformat(row["timestamp"]).date().isoformat()
        values = [(dim, row[field]) for dim, field in FIELDS.items() if row[field]]
        values += [("tag", tag) for tag in row["tags"].split(";") if tag]
        for dimension, value in values:
            total = sums[(day, dimension, value, row["model_id"])]
            total[0] += 1
            total[1] += row["success"] == "false"
            total[2] += row["input_tokens"]
            total[3] += row["output_tokens"]
            total[4] += usd_to_nanos(Decimal(row["cost"]))
    return sums


def by_value(sums: dict[tuple[str, str, str, str], list[int]], dimension: str) -> dict[str, list[int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for (_, dim, value, _), counts in sums.items():
        if dim == dimension:
            totals[value] = [a + b for a, b in zip(totals[value], counts, strict=True)]
    return totals


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return attributed(3000)


def stored(engine: Engine, records: list[dict[str, Any]]) -> None:
    for part in (records[:1000], records[1000:2200], records[2200:]):  # later batches fold into stored days
        assert ingest.ingest_records(engine, part, batch_size=400).rejected == 0


def test_export_spend_rows_equal_an_independent_sum_of_the_input(engine: Engine, records: list[dict[str, Any]]) -> None:
    stored(engine, records)
    expected = independent_sums(records)
    found = {}
    for dimension in spend.LABELS:
        for row in spend.export_rows(engine, dimension, *DAYS):
            key = (row["date"], row["dimension"], row["value"], row["model_id"])
            counts = [row["requests"], row["failures"], row["input_tokens"], row["output_tokens"]]
            found[key] = [*counts, usd_to_nanos(Decimal(row["cost_usd"]))]
    assert found == expected
    assert verify.verify(engine) == []


def test_the_breakdown_shows_the_top_values_then_other_then_none(engine: Engine, records: list[dict[str, Any]]) -> None:
    stored(engine, records)
    expected = by_value(independent_sums(records), "user")
    ranked = sorted(expected.items(), key=lambda item: (-item[1][4], -item[1][0], item[0]))
    result = spend.breakdown(engine, "user", *DAYS, top=5)
    labels = [label for label, _ in result.rows]
    assert labels == [value for value, _ in ranked[:5]] + [spend.OTHER, spend.NONE]
    rows = dict(result.rows)
    assert [rows[v].cost_nanos for v, _ in ranked[:5]] == [counts[4] for _, counts in ranked[:5]]
    assert rows[spend.OTHER].requests == sum(counts[0] for _, counts in ranked[5:])
    assert rows[spend.NONE].requests == sum(1 for r in records if not r["user"])
    assert sum(s.requests for s in rows.values()) == len(records)
    assert result.daily.groupby("value")["requests"].sum().to_dict() == {k: v.requests for k, v in rows.items()}


def test_tags_count_a_request_under_each_of_its_tags_and_have_no_none(
    engine: Engine, records: list[dict[str, Any]]
) -> None:
    stored(engine, records)
    result = spend.breakdown(engine, "tag", *DAYS, top=2)
    tagged = by_value(independent_sums(records), "tag")
    assert {label: s.requests for label, s in result.rows} == {
        "beta": tagged["beta"][0],
        "mobile": tagged["mobile"][0],
        spend.OTHER: tagged["batch"][0] + tagged["eval"][0],
    }


def test_report_by_lists_every_value_most_spent_first(engine: Engine, records: list[dict[str, Any]]) -> None:
    stored(engine, records)
    expected = by_value(independent_sums(records), "team")
    found = spend.totals_by_value(engine, "team", *DAYS)
    assert [(value, s.requests, s.cost_nanos) for value, s in found] == sorted(
        ((value, c[0], c[4]) for value, c in expected.items()), key=lambda t: (-t[2], -t[1], t[0])
    )


@pytest.mark.parametrize("skew", [0.0, 0.6, 1.4])
def test_the_top_values_are_exact_however_spend_is_spread(tmp_path: Path, skew: float) -> None:
    engine = api.open_engine(f"sqlite:///{tmp_path / 'spread.db'}")
    records = attributed(2500, seed=3, users=400, skew=skew)
    ingest.ingest_records(engine, records)
    expected = by_value(independent_sums(records), "user")
    ranked = sorted(expected.items(), key=lambda item: (-item[1][4], -item[1][0], item[0]))
    for top in (1, 7, 30):
        result = spend.breakdown(engine, "user", *DAYS, top=top)
        assert result.values == [value for value, _ in ranked[:top]]


def test_concentrated_spend_settles_the_top_without_reading_every_value(tmp_path: Path) -> None:
    engine = api.open_engine(f"sqlite:///{tmp_path / 'skewed.db'}")
    ingest.ingest_records(engine, attributed(20_000, seed=5, users=10_000, skew=1.3))
    with engine.connect() as conn:
        stored_rows = conn.execute(
            text("SELECT count(*) FROM usage_attribution_daily WHERE dimension = 'user'")
        ).scalar_one()
    result = spend.breakdown(engine, "user", *DAYS, top=5)
    assert result.values_read < stored_rows / 4


def test_a_tampered_attribution_row_is_reported_and_rebuilt(engine: Engine, records: list[dict[str, Any]]) -> None:
    stored(engine, records)
    with engine.begin() as conn:
        tamper = "UPDATE usage_attribution_daily SET cost_nanos = cost_nanos + 1 WHERE value = 'growth'"
        conn.execute(text(tamper))
        conn.execute(text("DELETE FROM usage_attribution_dimension_daily WHERE dimension = 'tag'"))
    drift = verify.verify(engine)
    assert {d.table for d in drift} == {"usage_attribution_daily", "usage_attribution_dimension_daily"}
    assert any(d.field == "cost_nanos" and "growth" in d.key for d in drift)
    assert any(d.field == "*" and d.stored == "missing" and "tag" in d.key for d in drift)
    verify.rebuild_rollups(engine)
    assert verify.verify(engine) == []


def test_an_unknown_dimension_is_named_with_the_known_ones(engine: Engine) -> None:
    with pytest.raises(spend.UnknownDimension, match="unknown dimension 'org': use one of user, team, api_key"):
        spend.breakdown(engine, "org", *DAYS)


def test_a_ledger_from_before_spend_by_attribution_upgrades_with_its_attributed_requests_summed(
    engine: Engine, records: list[dict[str, Any]]
) -> None:
    stored(engine, records)
    before = {d: list(spend.export_rows(engine, d, *DAYS)) for d in spend.LABELS}
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0013")
    api.open_engine(engine.url.render_as_string(hide_password=False))
    assert {d: list(spend.export_rows(engine, d, *DAYS)) for d in spend.LABELS} == before
    assert verify.verify(engine) == []


def test_the_cli_exports_spend_by_tag_and_reports_by_team_from_an_ingested_csv(
    db_url: str, tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "log.csv", records, [*LOG_COLUMNS, "user", "team", "api_key", "app", "environment", "tags"]
    )
    assert main(["--db", db_url, "ingest", str(path)]) == 0
    out = tmp_path / "spend.csv"
    assert main(["--db", db_url, "export", "spend", "--by", "tag", "--from", "2026-03-02", "--out", str(out)]) == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == spend.EXPORT_COLUMNS
    expected = {k: v for k, v in independent_sums(records).items() if k[1] == "tag" and k[0] >= "2026-03-02"}
    assert {
        (r["date"], r["dimension"], r["value"], r["model_id"]): [
            int(r["requests"]),
            int(r["failures"]),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            usd_to_nanos(Decimal(r["cost_usd"])),
        ]
        for r in rows
    } == expected
    capsys.readouterr()
    assert main(["--db", db_url, "report", "--from", "2026-03-01", "--to", "2026-03-03", "--by", "team", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    teams = by_value(independent_sums(records), "team")
    assert report["by"] == "team"
    ranked = sorted(teams.items(), key=lambda item: (-item[1][4], -item[1][0], item[0]))
    assert [(r["value"], r["requests"]) for r in report["rows"]] == [(team, c[0]) for team, c in ranked]
    assert report["unattributed"]["requests"] == sum(1 for r in records if not r["team"])
    assert sum(r["requests"] for r in report["rows"]) + report["unattributed"]["requests"] == report["total_requests"]


def test_export_spend_names_what_is_missing_or_misplaced(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "export", "spend"]) == 2
    assert "export spend needs --by: one of user, team, api_key, app, environment, tag" in capsys.readouterr().err
    assert main(["--db", db_url, "export", "usage", "--by", "team"]) == 2
    assert "--by goes with export spend, not export usage" in capsys.readouterr().err
    assert main(["--db", db_url, "export", "spend", "--by", "team", "--out", "/nonexistent/dir/s.csv"]) == 2
    assert capsys.readouterr().err.strip() == "error: cannot write /nonexistent/dir/s.csv: No such file or directory"
