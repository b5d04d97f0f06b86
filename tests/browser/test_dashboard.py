"""The dashboard in Debian's Chromium, driven by Playwright against `streamlit run` on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from manager import api, demo, export, performance, window
from manager.window import read_window
from tests.conftest import required
from tests.utils.servers import dashboard_server

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).with_name("screenshots")
PAGES = [
    ("", "overview"),
    ("usage", "usage"),
    ("spend", "spend"),
    ("performance", "performance"),
    ("budgets", "budgets"),
    ("health", "health"),
    ("requests", "requests"),
    ("whatif", "whatif"),
    ("registry", "registry"),
    ("alerts", "alerts"),
    ("audit", "audit"),
    ("users", "users"),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the SQLite file the dashboard under test serves."""
    return tmp_path_factory.mktemp("browser") / "manager.db"


@pytest.fixture(scope="module")
def server(database: Path) -> Iterator[str]:
    """Start the dashboard on a seeded SQLite file; yield its address."""
    engine = api.open_engine(f"sqlite:///{database}")
    demo.seed_demo(engine, days=14, requests=4000, seed=5, end=datetime.now(UTC))
    api.add_budget(engine, {"name": "monthly-all", "scope": "global", "period": "monthly", "amount_usd": 5})
    engine.dispose()
    with dashboard_server(database, ROOT) as url:
        yield url


def test_a_deep_link_on_a_fresh_server_gets_the_app_shell(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/budgets")
    expect(page.get_by_test_id("stHeading").first).to_contain_text("Budgets", timeout=30_000)
    navigation = page.get_by_test_id("stSidebarNav")
    expect(navigation).to_contain_text("Overview", timeout=30_000)
    expect(navigation).not_to_contain_text("common")
    page.close()


@pytest.mark.parametrize(("path", "name"), PAGES)
def test_each_page_renders_without_an_exception(server: str, browser, path: str, name: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/{path}")
    expect(page.get_by_test_id("stApp")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stHeading").first).to_be_visible(timeout=30_000)
    if name in ("registry", "audit", "requests"):
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=30_000)
    elif name == "users":
        expect(page.get_by_text("Add an account")).to_be_visible(timeout=30_000)
    elif name == "alerts":
        expect(page.get_by_text("Add a channel")).to_be_visible(timeout=30_000)
    else:
        expect(page.locator(".js-plotly-plot .plot-container").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)
    assert page.get_by_test_id("stException").count() == 0
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.close()


def test_the_rankings_rank_model_and_score_are_on_screen_at_1440_by_900(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/performance")
    ranking = page.get_by_test_id("stDataFrame").first  # the ranking is the page's first table
    expect(ranking).to_be_visible(timeout=30_000)
    box = ranking.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1440
    # The grid's accessible copy holds the columns it draws, in order: the key ones come first.
    headers = ranking.locator("th")
    expect(headers.first).to_have_text("Rank", timeout=30_000)
    assert [headers.nth(i).inner_text() for i in range(3)] == ["Rank", "Model", "Score"]
    page.close()


def test_a_health_reason_links_to_that_models_requests(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/health")
    models = page.get_by_test_id("stDataFrame").first  # the models' table
    expect(models).to_be_visible(timeout=30_000)
    # The grid's accessible copy holds each link cell's address.
    link = models.locator("td", has_text=re.compile(r"^requests\?")).first
    expect(link).to_have_text(re.compile(r"model="), timeout=30_000)
    page.goto(f"{server}/{link.inner_text()}")
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=30_000)
    expect(table.locator("td").nth(1)).to_have_text(re.compile(r"\S"), timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    page.close()


def test_an_error_type_bar_opens_those_failed_requests(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/performance")
    bar = page.locator(".st-key-errors_chart g.point path").first
    expect(bar).to_be_attached(timeout=30_000)
    bar.scroll_into_view_if_needed()
    bar.click(force=True)
    expect(page).to_have_url(re.compile(r"/requests\?.*outcome=failure.*"), timeout=30_000)
    expect(page.get_by_test_id("stHeading").first).to_contain_text("Requests", timeout=30_000)
    table = page.get_by_test_id("stDataFrame").first
    outcome = table.locator("td").nth(2)  # time, model, outcome
    expect(outcome).to_have_text(re.compile(r"\S"), timeout=30_000)
    assert outcome.inner_text() != "ok"
    page.close()


def test_overview_table_downloads_as_csv(server: str, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server)
    button = page.locator(".st-key-download_model_summary button")
    expect(button).to_be_visible(timeout=30_000)
    with page.expect_download() as download:
        button.click()
    target = tmp_path / "usage.csv"
    download.value.save_as(target)
    lines = target.read_text().splitlines()
    assert lines[0].startswith("model_id,provider,requests,success_rate,cost_usd")
    assert len(lines) == 6
    page.close()


def test_performance_ranking_download_equals_the_table(server: str, browser, database: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/performance")
    button = page.locator(".st-key-download_ranking_table button")
    expect(button).to_be_visible(timeout=30_000)
    with page.expect_download() as download:
        button.click()
    target = tmp_path / "ranking.csv"
    download.value.save_as(target)
    engine = api.open_engine(f"sqlite:///{database}")
    last = window.data_span(engine)[1]
    report = performance.ranking_view(
        performance.performance_report(read_window(engine, last - timedelta(days=29), last))
    )
    assert target.read_bytes().decode() == export.frame_csv(report)
    page.close()


def test_whatif_litellm_config_download_loads_into_a_real_router(server: str, browser, tmp_path: Path) -> None:
    import yaml
    from playwright.sync_api import expect

    litellm = required("litellm", "pip install -r requirements-integrations.txt")

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/whatif")
    button = page.get_by_role("button", name="Download LiteLLM config (YAML)")
    expect(button).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        button.click()
    target = tmp_path / "litellm-config.yaml"
    download.value.save_as(target)
    page.close()
    config = yaml.safe_load(target.read_text(encoding="utf-8"))
    router = litellm.Router(model_list=config["model_list"], **config["router_settings"])
    top = next(e for e in config["model_list"] if e["model_name"] == "route")["litellm_params"]["model"]
    answer = router.completion(model="route", messages=[{"role": "user", "content": "hi"}], mock_response="ok")
    assert str(answer.model) == top.split("/", 1)[1]  # the policy's top model answered


def test_user_text_shows_as_text_never_as_a_link(server: str, browser, database: Path) -> None:
    from playwright.sync_api import expect

    hostile = "[Session expired - sign in](https://evil.example/login)"
    engine = api.open_engine(f"sqlite:///{database}")
    api.add_budget(engine, {"name": hostile, "scope": "global", "period": "monthly", "amount_usd": 0.01})
    engine.dispose()
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    for path in ("", "budgets"):
        page.goto(f"{server}/{path}")
        expect(page.get_by_text("[Session expired - sign in]").filter(visible=True).first).to_be_visible(timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.locator('a[href*="evil.example"]').count() == 0, path
    page.close()
