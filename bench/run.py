"""Benchmark: ingest against the databases' own bulk paths, page reruns as the log grows, percentile error,
replay time and the dashboard's peak memory. Writes the figures into BENCHMARKS.md.

    python bench/run.py            # 100k, 1M and 10M requests (about 20 minutes on 2 cores)
    python bench/run.py --quick    # smaller sizes, under three minutes
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paths

from manager import api, explorer, performance, whatif
from manager.demo import DEMO_MODELS, LANGUAGES, REQUEST_TYPES
from manager.ledger import ingest
from manager.window import read_window
from tests.utils.servers import free_port, postgres_server, wait_for_port

PAGES = [
    "pages/overview.py",
    "pages/usage.py",
    "pages/spend.py",
    "pages/performance.py",
    "pages/budgets.py",
    "pages/health.py",
    "pages/requests.py",
    "pages/whatif.py",
    "pages/registry.py",
]
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
ATTRIBUTION = ("user", "team", "api_key", "app", "environment", "tags")
USERS = np.array([f"user-{i:05d}" for i in range(50_000)], dtype=object)
TEAMS = np.array([f"team-{i:03d}" for i in range(200)], dtype=object)
KEYS = np.array([f"key-{i:04d}" for i in range(1_000)], dtype=object)
APPS = np.array([f"app-{i:02d}" for i in range(20)], dtype=object)
_TAGS = [f"tag-{i:03d}" for i in range(500)]
# Tag sets: none, one tag, or two; every one of the 500 tags in some set.
TAG_SETS = np.array([None, *_TAGS, *(f"{_TAGS[i]};{_TAGS[(7 * i + 3) % 500]}" for i in range(500))], dtype=object)
DAYS = 90


def traffic(n: int, seed: int, offset: int = 0) -> pd.DataFrame:
    """Return n generated requests spread over the last DAYS days, in time order (log-normal latencies per model).

    A part `offset` of a larger set covers its own slice of the days, so parts arrive in time order too.
    """
    rng = np.random.default_rng(seed)
    names = np.array(list(DEMO_MODELS))
    shares = np.array([v[0] for v in DEMO_MODELS.values()])
    model = rng.choice(len(names), size=n, p=shares / shares.sum())
    medians = np.array([v[1] for v in DEMO_MODELS.values()])[model]
    sigmas = np.array([v[2] for v in DEMO_MODELS.values()])[model]
    seconds = np.sort(rng.uniform(0, DAYS * 86400, n))  # logs arrive in time order
    failed = rng.random(n) < 0.03
    rated = rng.random(n) < 0.3

    def pick(weights: dict[str, float]) -> np.ndarray:
        p = np.array(list(weights.values()))
        return np.array(list(weights))[rng.choice(len(p), size=n, p=p / p.sum())]

    def zipf(names: np.ndarray, skew: float = 1.0) -> np.ndarray:
        """Return n of the names, the k-th most used about 1/k^skew as often as the first (spend concentrates)."""
        weights = 1 / np.arange(1, len(names) + 1) ** skew
        return names[rng.choice(len(names), size=n, p=weights / weights.sum())]

    return pd.DataFrame(
        {
            "request_id": [f"b{seed}-{offset + i}" for i in range(n)],
            "timestamp": (pd.to_datetime(END - timedelta(days=DAYS)) + pd.to_timedelta(seconds, unit="s")).floor("us"),
            "model_id": names[model],
            "request_type": pick(REQUEST_TYPES),
            "language": pick(LANGUAGES),
            "input_tokens": rng.integers(20, 2000, n),
            "output_tokens": rng.integers(10, 1000, n),
            "response_time_ms": np.round(rng.lognormal(np.log(medians), sigmas), 1),
            "quality_rating": np.where(rated, np.clip(np.round(rng.normal(4, 0.7, n) * 2) / 2, 0, 5), np.nan),
            "success": ~failed,
            "error_type": np.where(failed, "timeout", None),
            # Who each request was for: 50,000 users, 200 teams, 1,000 keys, 500 tags (0 to 2 a request).
            "user": zipf(USERS),
            "team": zipf(TEAMS),
            "api_key": zipf(KEYS),
            "app": zipf(APPS),
            "environment": pick({"production": 0.8, "staging": 0.15, "development": 0.05}),
            "tags": zipf(TAG_SETS, 0.8),
        }
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def raw_copy_seconds(frame: pd.DataFrame, url: str) -> float:
    """Time psycopg COPY of the rows, built as the log stores them, into a copy of the log's table (its columns,
    defaults and indexes): the reference for PostgreSQL."""
    import psycopg

    names, rows = paths.stored_rows(frame, sqlite=False)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("CREATE TABLE bare_log (LIKE request_log INCLUDING ALL)")
        start = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY bare_log ({', '.join(names)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        conn.commit()
        return time.perf_counter() - start


def build_database(path: Path, size: int) -> None:
    """Fill a fresh SQLite file with `size` requests through the public bulk API, a million at a time."""
    engine = api.open_engine(f"sqlite:///{path}")
    for part, start in enumerate(range(0, size, 1_000_000)):
        ingest.ingest_frame(engine, traffic(min(1_000_000, size - start), seed=100 + part, offset=start))
    api.add_budget(engine, {"name": "monthly", "scope": "global", "period": "monthly", "amount_usd": 5000})
    engine.dispose()


def _pick_user(at: Any) -> None:
    at.segmented_control(key="spend_dimension").set_value("user").run()
    at.selectbox(key="spend_value").set_value("user-00002")


# Attribution views, each a page with its widgets set: (page, what to set before the timed rerun).
ATTRIBUTION_VIEWS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "spend by user, one user open": ("pages/spend.py", _pick_user),
    "spend by tag": ("pages/spend.py", lambda at: at.segmented_control(key="spend_dimension").set_value("tag")),
    "usage stacked by user": ("pages/usage.py", lambda at: at.selectbox(key="usage_group_by").set_value("user")),
}


def page_seconds(path: Path, page: str, runs: int, setup: Callable[[Any], object] | None = None) -> float:
    """Return the median time of a page's AppTest rerun with Streamlit's cache cleared (the only one), after
    `setup` set its widgets (on a first run of the page)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    times = []
    for _ in range(runs):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.run()
        at.switch_page(page)
        if setup is not None:
            at.run()
            setup(at)
        st.cache_data.clear()
        times.append(timed(at.run))
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].message}")
    return statistics.median(times)


def percentile_errors(path: Path) -> dict[str, float]:
    """Return the worst relative error of the rollups' p50/p95/p99 per model over 30 days against exact values."""
    engine = api.open_engine(f"sqlite:///{path}")
    start, end = END.date() - timedelta(days=29), END.date()
    report = performance.performance_report(read_window(engine, start, end)).set_index("model_id")
    conn = sqlite3.connect(path)
    worst = {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    for model_id in report.index:
        latencies = np.array(
            [
                r[0]
                for r in conn.execute(
                    "SELECT response_time_ms FROM request_log WHERE model_id = ? AND timestamp >= ? AND timestamp < ?",
                    (model_id, f"{start} 00:00:00", f"{end + timedelta(days=1)} 00:00:00"),
                )
            ]
        )
        for q in (50, 95, 99):
            exact = float(np.percentile(latencies, q))
            estimate = float(report.loc[model_id, f"p{q}_response_time_ms"])
            worst[f"p{q}"] = max(worst[f"p{q}"], abs(estimate - exact) / exact)
    conn.close()
    return worst


EXPLORER_CASES = {
    "newest page, no filter": {},
    "one model's failures": {"models": ("llama2:latest",), "success": False},
    "request type and language (loose bounds)": {"request_types": ("specialized",), "languages": ("ja",)},
    "provider, failures, language": {"providers": ("ollama",), "success": False, "languages": ("de",)},
    "latency of 20 s or more (rare)": {"min_latency_ms": 20_000.0},
}


def explorer_seconds(path: Path, runs: int = 3) -> dict[str, float]:
    """Return the median time of one page of 100 requests (`find_requests`) per filter case over the last 30 days,
    and of the 50th page of the unfiltered list reached by its cursor."""
    engine = api.open_engine(f"sqlite:///{path}")
    start = END - timedelta(days=30)
    result = {}
    for name, options in EXPLORER_CASES.items():
        filters = explorer.RequestFilters(start=start, end=END + timedelta(hours=1), **options)  # type: ignore[arg-type]
        result[name] = statistics.median(
            timed(lambda f=filters: explorer.find_requests(engine, f)) for _ in range(runs)
        )
    everything = explorer.RequestFilters(start=start, end=END + timedelta(hours=1))
    after = None
    for _ in range(49):
        after = explorer.find_requests(engine, everything, after=after).next
    result["50th page by cursor"] = statistics.median(
        timed(lambda: explorer.find_requests(engine, everything, after=after)) for _ in range(runs)
    )
    engine.dispose()
    return result


def replay_seconds(path: Path, runs: int = 3) -> float:
    engine = api.open_engine(f"sqlite:///{path}")
    start, end = END.date() - timedelta(days=DAYS - 1), END.date()
    times = []
    for _ in range(runs):
        times.append(timed(lambda: whatif.replay_between(engine, start, end)))
    return statistics.median(times)


def peak_memory_mb(path: Path) -> float:
    """Serve the database with `streamlit run`, open every page in Chromium, return the process's peak RSS."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page()
            for name in PAGES:
                page.goto(f"http://127.0.0.1:{port}/{Path(name).stem}")
                page.get_by_test_id("stHeading").first.wait_for(timeout=600_000)
                page.wait_for_timeout(3000)
            browser.close()
        status = Path(f"/proc/{server.pid}/status").read_text()
        peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
        return peak_kb / 1024
    finally:
        server.terminate()
        server.wait(timeout=30)


def machine() -> str:
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return f"{os.cpu_count()} cores, {memory_kb / 1024 / 1024:.0f} GiB, Python {sys.version.split()[0]}"


def sizes_label(size: int) -> str:
    return f"{size / 1_000_000:g}M" if size >= 1_000_000 else f"{size / 1000:g}k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes; finishes in under three minutes")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="where to write the report")
    args = parser.parse_args()
    sizes = [20_000, 100_000] if args.quick else [100_000, 1_000_000, 10_000_000]
    ingest_rows = 100_000 if args.quick else 1_000_000
    runs = 1 if args.quick else 3
    work = Path(tempfile.mkdtemp(prefix="manager-bench-"))
    lines: list[str] = []

    def note(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    frame = traffic(ingest_rows, seed=1)
    engine = api.open_engine(f"sqlite:///{work / 'ingest.db'}")
    ours = timed(lambda: ingest.ingest_frame(engine, frame))
    indexed = paths.prepared_reference_seconds(frame, work)
    reference = paths.prepared_reference_seconds(frame, work, indexed=False)
    ingest_rows_text = f"{ingest_rows:,} rows"
    results = [
        (
            "`ingest_frame` on SQLite, rollups included",
            f"{ingest_rows / ours:,.0f} rows/s",
            f"{indexed / ours:.2f}x sqlite3 executemany of the same rows, built, into the log's table "
            f"({ingest_rows / indexed:,.0f} rows/s)",
            ">= 0.5x",
            indexed / ours >= 0.5,
        ),
        (
            "(context) the same executemany into the log's table without its indexes",
            f"{ingest_rows / reference:,.0f} rows/s",
            f"ingest_frame is {reference / ours:.2f}x of it",
            "",
            None,
        ),
    ]
    plain = frame.drop(columns=list(ATTRIBUTION))
    plain_engine = api.open_engine(f"sqlite:///{work / 'ingest-plain.db'}")
    ours_plain = timed(lambda: ingest.ingest_frame(plain_engine, plain))
    indexed_plain = paths.prepared_reference_seconds(plain, work)
    results.append(
        (
            "(context) `ingest_frame` on SQLite of the same traffic without attribution (no user, team, key, app, "
            "environment or tags)",
            f"{ingest_rows / ours_plain:,.0f} rows/s",
            f"{indexed_plain / ours_plain:.2f}x the same executemany of those rows "
            f"({ingest_rows / indexed_plain:,.0f} rows/s)",
            ">= 0.5x",
            indexed_plain / ours_plain >= 0.5,
        )
    )
    files = paths.write_files(frame, work)
    for fmt, path in files.items():
        cli = paths.cli_ingest_seconds(path, work / f"cli-{fmt}.db")
        stdlib = paths.reference_seconds(fmt, path, work)
        label = {"csv": "CSV", "jsonl": "JSON Lines", "otlp": "OTLP/JSON"}[fmt]
        reader = "csv" if fmt == "csv" else "json"
        results.append(
            (
                f"`python -m manager ingest` of a {label} file, rollups included",
                f"{ingest_rows / cli:,.0f} rows/s",
                f"{stdlib / cli:.2f}x Python's {reader} module + executemany into the log's table "
                f"({ingest_rows / stdlib:,.0f} rows/s)",
                ">= 0.5x",
                stdlib / cli >= 0.5,
            )
        )
    spend_log = paths.write_spend_log(frame, work)
    cli = paths.cli_ingest_seconds(spend_log, work / "cli-litellm.db", "litellm")
    stdlib = paths.spend_log_reference_seconds(spend_log, work)
    results.append(
        (
            "`python -m manager ingest --format litellm` of LiteLLM's spend log (CSV in its table's columns), "
            "rollups included",
            f"{ingest_rows / cli:,.0f} rows/s",
            f"{stdlib / cli:.2f}x Python's csv module, json for its metadata and tags, + executemany into the "
            f"log's table ({ingest_rows / stdlib:,.0f} rows/s)",
            ">= 0.5x",
            stdlib / cli >= 0.5,
        )
    )
    logged_rows = min(ingest_rows, 200_000)
    calls = paths.litellm_calls(frame.head(logged_rows))
    callers, written = paths.logger_seconds(calls, work / "logger.db")
    bulk = paths.logger_reference_seconds(calls, work / "logger-reference.db")
    results.append(
        (
            f"`ManagerLogger` (LiteLLM's callback): {logged_rows:,} calls handed over as LiteLLM hands them, until "
            "all are written",
            f"{logged_rows / written:,.0f} calls/s; {callers / logged_rows * 1e6:,.1f} µs of the caller's time a call",
            f"{bulk / written:.2f}x `ingest_records` of the same records, built ({logged_rows / bulk:,.0f} rows/s)",
            ">= 0.5x",
            bulk / written >= 0.5,
        )
    )
    receiver_rows = min(ingest_rows, 100_000)
    part = frame.head(receiver_rows)
    spans = paths.genai_spans(part)
    received = paths.receiver_seconds(spans, work / "receiver.db", free_port())
    prepared = paths.prepared_reference_seconds(part, work)
    ceiling = paths.null_receiver_seconds(spans, free_port())
    results.append(
        (
            f"`serve-otlp`, {paths.EXPORTERS} real OTLP/HTTP exporters, {paths.SPANS_PER_BATCH}-span batches",
            f"{receiver_rows / received:,.0f} spans/s",
            f"{prepared / received:.2f}x executemany of the same rows, built, into the log's table "
            f"({receiver_rows / prepared:,.0f} rows/s)",
            ">= 0.5x",
            prepared / received >= 0.5,
        )
    )
    results.append(
        (
            "(context) the same exporters into a receiver that stores nothing (bench/null_receiver.py)",
            f"{receiver_rows / ceiling:,.0f} spans/s",
            f"serve-otlp is {ceiling / received:.2f}x of it; the reference is "
            f"{ceiling / prepared:.1f}x what the exporters can send",
            "",
            None,
        )
    )
    with postgres_server() as server:
        import sqlalchemy

        admin = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE bench"))
        admin.dispose()
        pg = api.open_engine(f"{server}/bench")
        ours_pg = timed(lambda: ingest.ingest_frame(pg, frame))
        pg.dispose()
        copy = raw_copy_seconds(frame, f"{server}/bench")
    results.append(
        (
            "`ingest_frame` on PostgreSQL, rollups included",
            f"{ingest_rows / ours_pg:,.0f} rows/s",
            f"{copy / ours_pg:.2f}x psycopg COPY of the same rows, built, into the log's table "
            f"({ingest_rows / copy:,.0f} rows/s)",
            ">= 0.5x",
            copy / ours_pg >= 0.5,
        )
    )

    for row in results:
        print(" | ".join(str(cell) for cell in row), flush=True)
    page_times: dict[str, dict[int, float]] = {page: {} for page in [*PAGES, *ATTRIBUTION_VIEWS]}
    explorer_times: dict[int, dict[str, float]] = {}
    databases = {}
    for size in sizes:
        path = work / f"log-{size}.db"
        build_seconds = timed(lambda path=path, size=size: build_database(path, size))
        print(f"built {sizes_label(size)} requests in {build_seconds:.0f}s", flush=True)
        databases[size] = path
        for page in PAGES:
            page_times[page][size] = page_seconds(path, page, runs)
        for view, (script, setup) in ATTRIBUTION_VIEWS.items():
            page_times[view][size] = page_seconds(path, script, runs, setup)
        explorer_times[size] = explorer_seconds(path, runs)
    smallest, largest = sizes[0], sizes[-1]
    for page in page_times:
        ratio = page_times[page][largest] / page_times[page][smallest]
        median_ms = page_times[page][largest] * 1000
        name = f"Page {Path(page).stem}" if page in PAGES else f"Attribution view, {page}"
        results.append(
            (
                f"{name}: rerun at {sizes_label(largest)} vs {sizes_label(smallest)}",
                " / ".join(f"{page_times[page][s] * 1000:,.0f} ms" for s in sizes),
                f"{ratio:.2f}x",
                "<= 1.3x and < 250 ms",
                ratio <= 1.3 and median_ms < 250,
            )
        )
    for case in explorer_times[largest]:
        ratio = explorer_times[largest][case] / explorer_times[smallest][case]
        results.append(
            (
                f"Request explorer, {case}: one page of 100 at {sizes_label(largest)} vs {sizes_label(smallest)}",
                " / ".join(f"{explorer_times[s][case] * 1000:,.0f} ms" for s in sizes),
                f"{ratio:.2f}x",
                "< 250 ms",
                explorer_times[largest][case] < 0.25,
            )
        )
    errors = percentile_errors(databases[largest])
    results.append(
        (
            "Latency percentiles from rollups vs exact (worst model, 30 days)",
            ", ".join(f"{k} {v:.2%}" for k, v in errors.items()),
            "",
            "within 3%",
            max(errors.values()) <= 0.03,
        )
    )
    replay = replay_seconds(databases[largest], runs)
    results.append(
        (
            f"What-if replay of {DAYS} days at {sizes_label(largest)}",
            f"{replay * 1000:,.0f} ms",
            "",
            "< 300 ms",
            replay < 0.3,
        )
    )
    memory = peak_memory_mb(databases[largest])
    results.append(
        (
            f"`streamlit run` peak RSS serving {sizes_label(largest)} (every page opened)",
            f"{memory:,.0f} MB",
            "",
            "< 400 MB",
            memory < 400,
        )
    )

    note("# Benchmarks\n")
    note(
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()} by `python bench/run.py"
        f"{' --quick' if args.quick else ''}`; every ratio compares figures taken in the same run.\n"
    )
    note(
        f"Traffic: generated, in time order, each request naming one of 50,000 users, 200 teams, 1,000 API keys, "
        "20 apps, 3 environments and up to two of 500 tags, each drawn Zipf-like (the k-th most used about 1/k as "
        "often as the first). "
        f"Ingest: {ingest_rows_text} of it through `ingest.ingest_frame` (validation, "
        "de-duplication, hourly and daily rollups per segment and per model, spend per attribution value, usage "
        "stats), through `python -m "
        "manager ingest` on the same rows written as CSV, JSON Lines and OTLP/JSON files and as LiteLLM's spend log "
        "(the command timed whole, interpreter start included), through the LiteLLM logger handed them as LiteLLM's "
        "standard payloads (against `ingest_records` of the same records), and through `serve-otlp` fed by the real "
        "OTLP/HTTP exporter; each file and stream against the "
        "driver's plain path into a copy of the log's own table: its columns, and its unique request-id and "
        "timestamp indexes (bench/paths.py). Pages: AppTest rerun of "
        "each page with Streamlit's cache (the only one) cleared, median of "
        f"{runs}, on SQLite files holding {', '.join(sizes_label(s) for s in sizes)} requests over {DAYS} days. "
        "Request explorer: one page of 100 (`explorer.find_requests`, what the Requests page and `python -m manager "
        "requests` call) over the last 30 days per filter case, median of the same number of runs, and the 50th "
        "page of the unfiltered list reached by its cursor. Attribution views: a page rerun as above with its "
        "widgets set (the Spend page by user with one user open, by tag; Usage stacked by user).\n"
    )
    note("| What | Figure | Ratio | Target | Met |")
    note("| --- | --- | --- | --- | --- |")
    for what, figure, ratio, target, met in results:
        shown = "" if met is None else ("yes" if met else "no")
        note(f"| {what} | {figure} | {ratio} | {target} | {shown} |")
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
