"""Accounts and roles: hashed passwords, sign-in with lockout, and writes the manager itself refuses."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from manager import api, db
from manager.errors import InvalidInput, ManagerError, NotFound, PermissionDenied, SignInRefused
from manager.settings import session_timeout

PASSWORD = "correct horse"
BUDGET = {"name": "monthly", "scope": "global", "period": "monthly", "amount_usd": 100}


@pytest.fixture
def team(engine: Engine) -> Engine:
    """An admin, an editor and a viewer."""
    api.add_account(engine, "ada", "admin", PASSWORD)
    api.add_account(engine, "ed", "editor", PASSWORD, actor="ada")
    api.add_account(engine, "vi", "viewer", PASSWORD, actor="ada")
    return engine


def test_only_an_argon2_hash_of_the_password_is_stored(team: Engine) -> None:
    with team.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM user_accounts WHERE name = 'vi'")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert all("password_hash" not in account for account in api.list_accounts(team))


def test_the_first_account_must_be_an_admin(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="role: the first account must be an admin"):
        api.add_account(engine, "vi", "viewer", PASSWORD)
    assert api.account_count(engine) == 0


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("", "admin", PASSWORD, "name: '' must be 1 to 64 letters"),
        ("has space", "admin", PASSWORD, "name: 'has space' must be"),
        ("cli", "admin", PASSWORD, "name: 'cli' is reserved"),
        ("ok", "owner", PASSWORD, "role: 'owner' is not one of viewer, editor, admin"),
        ("ok", "admin", "short", "password: must be 8 to 1024 characters, got 5"),
        ("ok", "admin", "        ", "password: must not be empty"),
    ],
)
def test_bad_account_fields_are_refused_naming_the_field(
    engine: Engine, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        api.add_account(engine, name, role, password)
    assert api.account_count(engine) == 0


def test_names_are_case_insensitive_and_unique(team: Engine) -> None:
    with pytest.raises(InvalidInput, match="name: account 'vi' already exists"):
        api.add_account(team, " VI ", "viewer", PASSWORD)
    assert api.sign_in(team, "Vi", PASSWORD)["name"] == "vi"


def test_sign_in_with_the_right_password_records_when(team: Engine) -> None:
    at = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    account = api.sign_in(team, "ed", PASSWORD, at=at)
    assert (account["name"], account["role"], account["last_sign_in_at"]) == ("ed", "editor", at)


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(team: Engine) -> None:
    with pytest.raises(SignInRefused) as unknown:
        api.sign_in(team, "nobody", PASSWORD)
    with pytest.raises(SignInRefused) as wrong:
        api.sign_in(team, "ed", "not the password")
    assert str(unknown.value) == str(wrong.value) == "wrong name or password"


def test_five_failed_sign_ins_lock_the_account_for_fifteen_minutes(team: Engine) -> None:
    start = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    for attempt in range(4):
        with pytest.raises(SignInRefused, match="^wrong name or password$"):
            api.sign_in(team, "vi", "guess", at=start + timedelta(seconds=attempt))
    with pytest.raises(SignInRefused, match="vi is now locked for 15 minutes"):
        api.sign_in(team, "vi", "guess", at=start + timedelta(seconds=5))
    with pytest.raises(SignInRefused, match="locked after 5 failed sign-ins until 2026-11-24 09:15 UTC"):
        api.sign_in(team, "vi", PASSWORD, at=start + timedelta(minutes=14))
    assert api.sign_in(team, "vi", PASSWORD, at=start + timedelta(minutes=16))["failed_attempts"] == 0
    locks = api.audit_trail(team, entity="user").query("action == 'lock'")
    assert locks["entity_id"].tolist() == ["vi"]


def test_a_success_resets_the_count_of_failures(team: Engine) -> None:
    for _ in range(4):
        with pytest.raises(SignInRefused):
            api.sign_in(team, "vi", "guess")
    api.sign_in(team, "vi", PASSWORD)
    for _ in range(4):
        with pytest.raises(SignInRefused, match="^wrong name or password$"):
            api.sign_in(team, "vi", "guess")


def test_an_admin_can_lift_a_lockout(team: Engine) -> None:
    for _ in range(5):
        with pytest.raises(SignInRefused):
            api.sign_in(team, "vi", "guess")
    assert api.get_account(team, "vi")["locked_until"] is not None
    api.unlock_account(team, "vi", actor="ada")
    assert api.sign_in(team, "vi", PASSWORD)["name"] == "vi"


def _answers(engine: Engine, name: str, password: str, tries: int, client: str = "") -> list[str]:
    """Return what each of `tries` sign-ins a minute apart was told, with the name taken out."""
    said = []
    for minute in range(tries):
        with pytest.raises(SignInRefused) as refused:
            api.sign_in(engine, name, password, client=client, at=START + timedelta(minutes=minute / 60))
        said.append(str(refused.value).replace(name, "NAME"))
    return said


START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def test_a_name_without_an_account_is_locked_exactly_as_one_with_an_account(team: Engine) -> None:
    known = _answers(team, "vi", "guess", 7)
    unknown = _answers(team, "ghost", "guess", 7)
    assert known == unknown
    assert known[4].endswith("NAME is now locked for 15 minutes")
    assert known[6].startswith("NAME is locked after 5 failed sign-ins until 2026-11-24 09:15 UTC")


def test_failures_from_one_client_do_not_lock_the_owner_out_from_another(team: Engine) -> None:
    _answers(team, "vi", "guess", 5, client="203.0.113.9")
    with pytest.raises(SignInRefused, match="locked"):
        api.sign_in(team, "vi", PASSWORD, client="203.0.113.9", at=START + timedelta(minutes=1))
    signed_in = api.sign_in(team, "vi", PASSWORD, client="198.51.100.4", at=START + timedelta(minutes=1))
    assert signed_in["name"] == "vi"


def test_a_viewer_cannot_change_the_registry_or_budgets(team: Engine) -> None:
    with pytest.raises(PermissionDenied, match="vi is a viewer: to edit the registry takes the editor role"):
        api.update_model(team, "deepseek-chat", {"priority": 1}, actor="vi")
    with pytest.raises(PermissionDenied, match="vi is a viewer: to change budgets takes the editor role"):
        api.add_budget(team, BUDGET, actor="vi")
    with pytest.raises(PermissionDenied):
        api.apply_registry_edits(team, deletions=["deepseek-chat"], actor="vi")
    assert api.get_model(team, "deepseek-chat")["priority"] != 1
    assert api.list_budgets(team) == []


def test_an_editor_changes_the_registry_and_budgets_but_not_accounts(team: Engine) -> None:
    api.update_model(team, "deepseek-chat", {"priority": 1}, actor="ed")
    api.add_budget(team, BUDGET, actor="ed")
    with pytest.raises(PermissionDenied, match="ed is an editor: to manage accounts takes the admin role"):
        api.add_account(team, "eve", "admin", PASSWORD, actor="ed")
    assert api.get_model(team, "deepseek-chat")["priority"] == 1
    assert [b["name"] for b in api.list_budgets(team)] == ["monthly"]
    assert [a["name"] for a in api.list_accounts(team)] == ["ada", "ed", "vi"]


def test_a_new_role_counts_from_the_next_write(team: Engine) -> None:
    api.set_account_role(team, "ed", "viewer", actor="ada")
    with pytest.raises(PermissionDenied):
        api.remove_model(team, "deepseek-chat", actor="ed")
    api.set_account_role(team, "vi", "editor", actor="ada")
    api.remove_model(team, "deepseek-chat", actor="vi")
    with pytest.raises(NotFound):
        api.get_model(team, "deepseek-chat")


def test_writes_need_an_account_once_any_exists(engine: Engine) -> None:
    api.update_model(engine, "deepseek-chat", {"priority": 2}, actor="local")
    api.add_account(engine, "ada", "admin", PASSWORD)
    with pytest.raises(PermissionDenied, match="'local' is not an account: sign in to edit the registry"):
        api.update_model(engine, "deepseek-chat", {"priority": 3}, actor="local")
    api.update_model(engine, "deepseek-chat", {"priority": 4}, actor="cli")
    assert api.get_model(engine, "deepseek-chat")["priority"] == 4


def test_the_last_admin_stays_while_other_accounts_exist(team: Engine) -> None:
    with pytest.raises(InvalidInput, match="ada is the last admin"):
        api.set_account_role(team, "ada", "editor")
    with pytest.raises(InvalidInput, match="ada is the last admin"):
        api.remove_account(team, "ada")
    api.remove_account(team, "ed")
    api.remove_account(team, "vi")
    api.remove_account(team, "ada")
    assert api.account_count(team) == 0


def test_owners_change_their_own_password_and_only_admins_anothers(team: Engine) -> None:
    api.set_account_password(team, "vi", "a new secret", actor="vi")
    with pytest.raises(PermissionDenied, match="to set another account's password takes the admin role"):
        api.set_account_password(team, "ed", "a new secret", actor="vi")
    api.set_account_password(team, "ed", "reset by admin", actor="ada")
    assert api.sign_in(team, "vi", "a new secret")["name"] == "vi"
    assert api.sign_in(team, "ed", "reset by admin")["name"] == "ed"
    with pytest.raises(SignInRefused):
        api.sign_in(team, "ed", PASSWORD)


def test_account_changes_are_audited_without_secrets(team: Engine) -> None:
    api.set_account_role(team, "vi", "editor", actor="ada")
    api.set_account_password(team, "vi", "another secret", actor="vi")
    api.remove_account(team, "ed", actor="ada")
    trail = api.audit_trail(team, entity="user")
    changes = list(zip(trail["actor"], trail["entity_id"], trail["action"], trail["field"], strict=True))
    assert changes[:3] == [
        ("ada", "ed", "delete", "role"),
        ("vi", "vi", "update", "password"),
        ("ada", "vi", "update", "role"),
    ]
    assert trail["new_value"].tolist()[1:3] == ['"(changed)"', '"editor"']
    assert trail["new_value"].isna().tolist()[0]
    assert not trail.apply(lambda row: row.astype(str).str.contains("argon2|secret|horse").any(), axis=1).any()


def test_sign_ins_do_not_retire_cached_reads(team: Engine) -> None:
    before = db.data_version(team)
    api.sign_in(team, "ed", PASSWORD)
    with pytest.raises(SignInRefused):
        api.sign_in(team, "ed", "guess")
    assert db.data_version(team) == before


def test_the_session_timeout_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MANAGER_SESSION_TIMEOUT_MINUTES", raising=False)
    assert session_timeout() == timedelta(minutes=30)
    monkeypatch.setenv("MANAGER_SESSION_TIMEOUT_MINUTES", "5")
    assert session_timeout() == timedelta(minutes=5)
    monkeypatch.setenv("MANAGER_SESSION_TIMEOUT_MINUTES", "soon")
    with pytest.raises(ManagerError, match="MANAGER_SESSION_TIMEOUT_MINUTES: 'soon' is not a number of minutes"):
        session_timeout()
