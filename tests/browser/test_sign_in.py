"""The sign-in wall in Chromium: a dashboard with accounts shows nothing but the form until someone signs in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from manager import api, demo
from tests.utils.servers import dashboard_server

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).with_name("screenshots")
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve a seeded database that has an admin and a viewer."""
    database = tmp_path_factory.mktemp("sign-in") / "manager.db"
    engine = api.open_engine(f"sqlite:///{database}")
    demo.seed_demo(engine, days=7, requests=2000, seed=4, end=datetime.now(UTC))
    api.add_budget(engine, {"name": "monthly-all", "scope": "global", "period": "monthly", "amount_usd": 50})
    api.add_account(engine, "ada", "admin", PASSWORD)
    api.add_account(engine, "vi", "viewer", PASSWORD)
    engine.dispose()
    with dashboard_server(database, ROOT) as url:
        yield url


def data_on(page) -> int:
    """Count what would show data: metrics, tables, charts, navigation and the sidebar's date range."""
    selectors = [
        "[data-testid=stMetric]",
        "[data-testid=stDataFrame]",
        ".js-plotly-plot",
        "[data-testid=stSidebarNav]",
        "[data-testid=stDateInput]",
    ]
    return sum(page.locator(selector).count() for selector in selectors)


def sign_in(page, name: str, password: str = PASSWORD) -> None:
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_deep_link_shows_only_the_sign_in_form_then_the_page(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{server}/budgets")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)
    assert data_on(page) == 0
    assert "monthly-all" not in page.content()
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "sign-in.png"))
    sign_in(page, "vi", "a wrong guess")
    expect(page.get_by_text("Not signed in: wrong name or password.")).to_be_visible(timeout=30_000)
    assert data_on(page) == 0
    sign_in(page, "vi")
    expect(page.get_by_test_id("stHeading").first).to_contain_text("Budgets", timeout=30_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as vi (viewer)")
    expect(page.get_by_role("button", name="Add budget")).to_be_disabled()
    assert page.get_by_test_id("stException").count() == 0
    page.close()


def test_an_admin_reaches_the_users_page_and_a_viewer_does_not(server: str, browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server)
    sign_in(page, "ada")
    navigation = page.get_by_test_id("stSidebarNav")
    expect(navigation).to_contain_text("Users", timeout=30_000)
    navigation.get_by_text("Users").click()
    expect(page.get_by_text("Add an account")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
    sign_in(page, "vi")
    expect(navigation).to_contain_text("Overview", timeout=30_000)
    assert "Users" not in navigation.inner_text()
    page.close()
