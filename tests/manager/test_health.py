import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine

from manager import api, export, health
from manager.cli import main
from manager.health import probe
from manager.health_rules import HealthThresholds
from tests.conftest import free_port
from tests.utils.factories import record

AT = datetime(2026, 3, 18, 12, 30, tzinfo=UTC)


def traffic(
    engine: Engine,
    model_id: str,
    n: int,
    *,
    failed: int = 0,
    latency: float = 800.0,
    when: datetime = AT - timedelta(minutes=20),
    prefix: str = "",
) -> None:
    api.ingest_records(
        engine,
        [
            record(
                request_id=f"{prefix}{model_id}-{i}",
                model_id=model_id,
                timestamp=when.isoformat(),
                response_time_ms=latency,
                success="false" if i < failed else "true",
                error_type="server_error" if i < failed else "",
            )
            for i in range(n)
        ],
    )


def health_of(engine: Engine, **options: object) -> dict[str, health.ModelHealth]:
    return {m.model_id: m for m in health.model_health(engine, AT, **options)}


def test_forty_percent_errors_is_unhealthy_none_is_healthy_no_traffic_is_idle(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 50, failed=20)
    traffic(engine, "claude-3-haiku-20240307", 50)
    health = health_of(engine)
    assert health["deepseek-chat"].status == "unhealthy"
    assert health["deepseek-chat"].reason == "40.0% errors of 50 in 1 h"
    assert health["claude-3-haiku-20240307"].status == "healthy"
    assert health["llama2:latest"].status == "idle"
    assert health["llama2:latest"].reason == "no requests in the last 24 h"


def test_one_failure_in_fifteen_is_healthy_and_ten_in_a_hundred_degraded(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 15, failed=1)
    traffic(engine, "mistral-small-latest", 100, failed=10)
    health = health_of(engine)
    assert health["deepseek-chat"].status == "healthy"
    assert health["mistral-small-latest"].status == "degraded"


def test_a_quiet_hour_is_judged_on_a_window_widened_until_it_holds_enough(engine: Engine) -> None:
    for hours_ago in range(1, 6):
        traffic(engine, "deepseek-chat", 6, failed=2, when=AT - timedelta(hours=hours_ago), prefix=f"{hours_ago}-")
    judged = health_of(engine)["deepseek-chat"]
    assert judged.status == "degraded"  # at least 18% with 95% confidence: past 5%, not yet 25%
    assert (judged.requests, judged.window_hours) == (24, 5)
    assert judged.reason == "33.3% errors of 24 in 5 h, widened"
    assert "widened from 1 h to reach 20 requests" in judged.detail


def test_inactive_and_deprecated_models_have_their_own_status_and_count_in_no_health(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 50, failed=40)
    api.update_model(engine, "deepseek-chat", {"status": "deprecated"})
    api.update_model(engine, "llama2:latest", {"status": "inactive"})
    models = health.model_health(engine, AT)
    statuses = {m.model_id: m.status for m in models}
    assert (statuses["deepseek-chat"], statuses["llama2:latest"]) == ("deprecated", "inactive")
    assert health.system_health(models)[0] == "idle"
    assert health.provider_health(models).set_index("provider").loc["deepseek", "status"] == "disabled"


def test_a_new_status_shows_once_it_held_for_two_hourly_checks(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 100, when=AT - timedelta(hours=2, minutes=10), prefix="before-")
    traffic(engine, "deepseek-chat", 100, failed=50)
    first = health_of(engine)["deepseek-chat"]
    assert first.status == "healthy"
    assert first.reason.startswith("unhealthy if it holds: ")
    traffic(engine, "deepseek-chat", 100, failed=50, when=AT + timedelta(minutes=40), prefix="after-")
    later = {m.model_id: m for m in health.model_health(engine, AT + timedelta(hours=1))}
    assert later["deepseek-chat"].status == "unhealthy"


def test_latency_over_twice_the_baseline_is_degraded(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 100, latency=500.0, when=AT - timedelta(days=3), prefix="old-")
    traffic(engine, "deepseek-chat", 30, latency=1500.0)
    health = health_of(engine)["deepseek-chat"]
    assert health.status == "degraded"
    assert "over 2x its 7 days baseline" in health.detail


def test_exhausted_hard_budget_degrades_its_models_with_the_reason(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 30)
    api.add_budget(
        engine, {"name": "cap", "scope": "provider:deepseek", "period": "daily", "amount_usd": 0.01, "hard": True}
    )
    health = health_of(engine)["deepseek-chat"]
    assert health.status == "degraded"
    assert "hard budget 'cap' (provider:deepseek, daily) is exhausted" in health.reason


def test_registry_status_and_enabled_come_first(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"status": "maintenance"})
    api.update_model(engine, "llama2:latest", {"enabled": False})
    health = health_of(engine)
    assert (health["deepseek-chat"].status, health["llama2:latest"].status) == ("maintenance", "disabled")


def test_provider_takes_the_worst_enabled_model_and_the_system_the_worst_provider(engine: Engine) -> None:
    traffic(engine, "mistral:latest", 40, failed=20)
    traffic(engine, "llama2:latest", 40)
    models = health.model_health(engine, AT)
    providers = health.provider_health(models).set_index("provider")
    assert providers.loc["ollama", "status"] == "unhealthy"
    assert providers.loc["ollama", "reason"] == "mistral:latest: 50.0% errors of 40 in 1 h"
    assert health.system_health(models) == ("unhealthy", "unhealthy: mistral:latest")


def test_window_is_configurable(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 30, failed=15, when=AT - timedelta(hours=5))
    narrow = HealthThresholds(widen_to=timedelta(hours=1))
    assert health_of(engine, thresholds=narrow)["deepseek-chat"].status == "idle"
    wide = HealthThresholds(window=timedelta(hours=6), widen_to=timedelta(hours=6))
    assert health_of(engine, thresholds=wide)["deepseek-chat"].status == "unhealthy"


def test_timeline_has_a_status_per_model_and_hour_and_ends_where_the_table_does(engine: Engine) -> None:
    traffic(engine, "deepseek-chat", 40, failed=20, when=AT - timedelta(hours=3))
    timeline = health.health_timeline(engine, AT, hours=6)
    deepseek = timeline[timeline["model_id"] == "deepseek-chat"].set_index("hour")["status"]
    assert len(timeline) == 6 * 5
    assert deepseek[datetime(2026, 3, 18, 8)] == "idle"
    # Each quiet hour after it is judged on the window widened back to it.
    assert deepseek[datetime(2026, 3, 18, 9)] == deepseek[datetime(2026, 3, 18, 12)] == "unhealthy"
    now = {
        row["model_id"]: row["status"] for _, row in timeline[timeline["hour"] == datetime(2026, 3, 18, 12)].iterrows()
    }
    assert now == {m.model_id: m.status for m in health.model_health(engine, AT)}


class _Ollama(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if self.path == "/api/tags" else 404)
        self.end_headers()
        self.wfile.write(b'{"models": []}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Ollama)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_probe_of_a_live_local_server_passes(stub_ollama: str) -> None:
    assert probe(stub_ollama) is None


def test_probe_of_a_closed_port_says_why() -> None:
    assert "refused" in (probe(f"http://127.0.0.1:{free_port()}") or "")


def test_failed_probe_makes_the_model_unhealthy(engine: Engine, stub_ollama: str) -> None:
    api.update_model(engine, "llama2:latest", {"metadata": {"base_url": stub_ollama}})
    api.update_model(engine, "mistral:latest", {"metadata": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    health = health_of(engine, live_probe=True)
    assert health["llama2:latest"].status == "idle"
    assert health["mistral:latest"].status == "unhealthy"
    assert health["mistral:latest"].reason.startswith("live probe failed")


def test_health_cli_prints_the_contract(db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", db_url, "health", "--window", "2h", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]) == {
        "model_id",
        "provider",
        "status",
        "requests",
        "error_rate",
        "p95_response_time_ms",
        "window_hours",
        "reason",
        "detail",
    }


def test_export_health_has_the_same_columns(engine: Engine) -> None:
    header = export.export_csv(engine, "health").splitlines()[0]
    assert header == "model_id,provider,status,requests,error_rate,p95_response_time_ms,window_hours,reason,detail"
