"""The sign-in wall, roles in the pages, session expiry and local single-user mode, through the real app."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from streamlit import config
from streamlit.testing.v1 import AppTest

from manager import api
from tests.pages.conftest import shown

PASSWORD = "correct horse"


@pytest.fixture
def team(seeded: Engine) -> Engine:
    """Demo traffic, an admin and a viewer."""
    api.add_account(seeded, "ada", "admin", PASSWORD)
    api.add_account(seeded, "vi", "viewer", PASSWORD)
    return seeded


def sign_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="sign_in_name").input(name)
    at.text_input(key="sign_in_password").input(password)
    return at.button[0].click().run()


def drawn_data(at: AppTest) -> int:
    """Count what would show data: metrics, tables, charts, and the sidebar's controls."""
    charts = at.get("plotly_chart")
    return len(at.metric) + len(at.dataframe) + len(charts) + len(at.sidebar.date_input)


def test_before_sign_in_nothing_but_the_form_is_drawn(app: Callable[[], AppTest], team: Engine) -> None:
    at = app().run()
    assert not at.exception
    assert drawn_data(at) == 0
    assert [t.label for t in at.text_input] == ["Name", "Password"]
    assert [t.value for t in at.title] == ["AI Model Manager"]


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_dashboard(
    app: Callable[[], AppTest], team: Engine
) -> None:
    at = sign_in(app().run(), "vi", "guess")
    assert [shown(e.value) for e in at.error] == ["Not signed in: wrong name or password."]
    assert drawn_data(at) == 0
    at = sign_in(at, "vi")
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    assert len(at.metric) > 0
    assert "Signed in as **vi** (viewer)" in at.sidebar.caption[0].value


def test_a_locked_account_is_told_until_when(app: Callable[[], AppTest], team: Engine) -> None:
    at = app().run()
    for _ in range(5):
        at = sign_in(at, "vi", "guess")
    assert "vi is now locked for 15 minutes" in shown(at.error[0].value)
    at = sign_in(at, "vi")
    assert "vi is locked after 5 failed sign-ins" in shown(at.error[0].value)
    assert drawn_data(at) == 0


def test_a_viewer_sees_the_editing_widgets_disabled(app: Callable[[], AppTest], team: Engine) -> None:
    api.add_budget(team, {"name": "monthly", "scope": "global", "period": "monthly", "amount_usd": 50})
    at = sign_in(app().run(), "vi")
    at.switch_page("pages/registry.py").run()
    assert not at.exception
    assert "viewer" in at.info[0].value
    assert at.button(key="save_registry").disabled
    at.switch_page("pages/budgets.py").run()
    assert not at.exception
    assert at.button(key="remove_budget").disabled
    assert all(t.disabled for t in at.text_input) and all(n.disabled for n in at.number_input)


def test_an_admin_manages_accounts_on_the_users_page(app: Callable[[], AppTest], team: Engine) -> None:
    at = sign_in(app().run(), "ada")
    at.switch_page("pages/users.py").run()
    assert not at.exception
    assert at.dataframe[0].value["name"].tolist() == ["ada", "vi"]
    at.text_input(key="new_account_name").input("ed")
    at.selectbox(key="new_account_role").select("editor")
    at.text_input(key="new_account_password").input("editor password")
    at.text_input(key="new_account_repeat").input("editor password")
    at.button(key="FormSubmitter:add_account-Add account").click().run()
    assert not at.exception and not at.error
    assert api.get_account(team, "ed")["role"] == "editor"
    assert api.audit_trail(team, entity="user").iloc[0][["actor", "entity_id", "action"]].tolist() == [
        "ada",
        "ed",
        "create",
    ]


def test_the_users_page_is_not_among_a_viewers_pages(app: Callable[[], AppTest], team: Engine) -> None:
    at = sign_in(app().run(), "vi")
    with pytest.raises(ValueError, match="Could not find a navigation page for .*users.py"):
        at.switch_page("pages/users.py")


def test_an_idle_session_expires(app: Callable[[], AppTest], team: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MANAGER_SESSION_TIMEOUT_MINUTES", "10")
    at = sign_in(app().run(), "vi")
    at.session_state["last_activity_at"] = datetime.now(UTC) - timedelta(minutes=11)
    at.run()
    assert drawn_data(at) == 0
    assert "expired after 10 minutes without activity" in at.warning[0].value


def test_signing_out_and_removal_end_the_session(app: Callable[[], AppTest], team: Engine) -> None:
    at = sign_in(app().run(), "vi")
    at.sidebar.button(key="sign_out").click().run()
    assert drawn_data(at) == 0
    at = sign_in(at, "vi")
    api.remove_account(team, "vi")
    at.run()
    assert drawn_data(at) == 0
    assert "Your account was removed" in at.warning[0].value


def test_local_mode_says_so_on_every_page(app: Callable[[], AppTest], seeded: Engine) -> None:
    at = app().run()
    assert not at.exception
    assert "Local single-user mode" in at.warning[0].value
    at.switch_page("pages/health.py").run()
    assert "Local single-user mode" in at.warning[0].value
    assert len(at.text_input) == 0 or "sign_in_name" not in [t.key for t in at.text_input]


@pytest.fixture
def listening_everywhere() -> Iterator[None]:
    """Configure the server address as all interfaces for one test."""
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


def test_local_mode_refuses_to_serve_beyond_this_machine(
    app: Callable[[], AppTest], seeded: Engine, listening_everywhere: None
) -> None:
    at = app().run()
    assert drawn_data(at) == 0
    assert "listens on 0.0.0.0" in at.error[0].value


def test_the_local_user_who_adds_the_first_admin_becomes_that_admin(app: Callable[[], AppTest], engine: Engine) -> None:
    at = app().run()
    at.switch_page("pages/users.py").run()
    assert at.selectbox(key="new_account_role").value == "admin"
    at.text_input(key="new_account_name").input("Ada")
    at.text_input(key="new_account_password").input(PASSWORD)
    at.text_input(key="new_account_repeat").input(PASSWORD)
    at.button(key="FormSubmitter:add_account-Add account").click().run()
    assert not at.exception and not at.error
    assert api.get_account(engine, "ada")["role"] == "admin"
    assert at.session_state["signed_in_as"] == "ada"
    assert not [w for w in at.warning if "Local single-user mode" in w.value]


def test_two_different_passwords_add_no_account(app: Callable[[], AppTest], engine: Engine) -> None:
    at = app().run()
    at.switch_page("pages/users.py").run()
    at.text_input(key="new_account_name").input("ada")
    at.text_input(key="new_account_password").input(PASSWORD)
    at.text_input(key="new_account_repeat").input("something else")
    at.button(key="FormSubmitter:add_account-Add account").click().run()
    assert [shown(e.value) for e in at.error] == ["password: the two passwords differ"]
    assert api.account_count(engine) == 0


@pytest.mark.parametrize(("name", "shown"), [("vi", False), ("ada", True)])
def test_only_an_admin_sees_where_the_database_is(
    app: Callable[[], AppTest], team: Engine, name: str, shown: bool
) -> None:
    at = sign_in(app().run(), name)
    assert not at.exception
    assert any(c.value.startswith("Database:") for c in at.sidebar.caption) is shown
