"""Accounts and roles: argon2-hashed passwords, sign-in with a lockout, and the role check every write passes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, func, select

from manager.audit import SYSTEM_ACTOR, record_change
from manager.db import bump_data_version
from manager.errors import InvalidInput, NotFound, PermissionDenied, SignInRefused
from manager.models import Role, SignInThrottle, UserAccount
from manager.timeutil import as_utc

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# Who may write without an account: the CLI and scripts, run by someone who already holds the database.
TRUSTED_ACTORS = frozenset({SYSTEM_ACTOR, "cli"})
LOCAL_ACTOR = "local"
RESERVED_NAMES = TRUSTED_ACTORS | {LOCAL_ACTOR}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}
WRONG_CREDENTIALS = "wrong name or password"

_hasher = PasswordHasher()


@cache
def _decoy_hash() -> str:
    # Checked against when the name is unknown, so a wrong name costs as much time as a wrong password.
    return _hasher.hash("decoy password that matches nothing")


def normalize_name(name: str) -> str:
    """Return an account name as stored: trimmed and lower-case."""
    return name.strip().lower()


def validate_name(name: str) -> str:
    """Return the normalized name, or raise InvalidInput saying what a name may hold."""
    normalized = normalize_name(name)
    if not NAME_PATTERN.fullmatch(normalized):
        raise InvalidInput(
            [f"name: {name!r} must be 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"]
        )
    if normalized in RESERVED_NAMES:
        raise InvalidInput([f"name: {normalized!r} is reserved; choose another"])
    return normalized


def validate_role(role: str) -> Role:
    """Return the role, or raise InvalidInput naming the allowed ones."""
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput([f"role: {role!r} is not one of {allowed}"]) from None


def validate_password(password: str) -> str:
    """Return the password, or raise InvalidInput when it is too short, too long or blank."""
    if not password.strip():
        raise InvalidInput(["password: must not be empty"])
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            [f"password: must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters, got {len(password)}"]
        )
    return password


def to_public(account: UserAccount, at: datetime | None = None) -> dict[str, Any]:
    """Return an account as a plain dict, never its hash; 'locked' is judged at the given moment (default now)."""
    now = at or datetime.now(UTC)
    locked_until = as_utc(account.locked_until) if account.locked_until else None
    return {
        "name": account.name,
        "role": account.role,
        "created_at": as_utc(account.created_at),
        "password_changed_at": as_utc(account.password_changed_at),
        "last_sign_in_at": as_utc(account.last_sign_in_at) if account.last_sign_in_at else None,
        "failed_attempts": account.failed_attempts,
        "locked_until": locked_until if locked_until and locked_until > now else None,
    }


def count_accounts(*, session: Session) -> int:
    """Return how many accounts exist (0 means local single-user mode)."""
    return int(session.exec(select(func.count()).select_from(UserAccount)).one())


def list_accounts(*, session: Session) -> list[UserAccount]:
    """Return every account, ordered by name."""
    return list(session.exec(select(UserAccount).order_by(UserAccount.name)))


def get_account(*, session: Session, name: str) -> UserAccount:
    """Return one account, or raise NotFound."""
    account = session.get(UserAccount, normalize_name(name))
    if account is None:
        raise NotFound(f"account {normalize_name(name)!r} does not exist")
    return account


def role_allows(role: str, needed: Role) -> bool:
    """Return True when an account of the role may do what needs the given role."""
    return RANK[Role(role)] >= RANK[needed]


def lockout_rule() -> str:
    """Return the sign-in lockout rule in words, from its numbers."""
    minutes = int(LOCKOUT.total_seconds() // 60)
    return f"{MAX_FAILED_ATTEMPTS} failed sign-ins lock an account for {minutes} minutes."


def authorize(session: Session, actor: str, needed: Role, action: str) -> None:
    """Raise PermissionDenied unless the actor may do what needs the given role.

    Trusted actors (the CLI, scripts) always may; with no accounts at all (local single-user mode) anyone
    may; otherwise the actor must be an account whose role is at least the one needed, read inside the
    caller's transaction so a role changed a moment ago counts.
    """
    if actor in TRUSTED_ACTORS:
        return
    account = session.get(UserAccount, normalize_name(actor))
    if account is None:
        if count_accounts(session=session) == 0:
            return
        raise PermissionDenied(f"{actor!r} is not an account: sign in to {action}")
    role = Role(account.role)
    if RANK[role] < RANK[needed]:
        article = "an" if role.value[0] in "aeiou" else "a"
        raise PermissionDenied(f"{account.name} is {article} {role.value}: to {action} takes the {needed.value} role")


def _admins(session: Session) -> int:
    query = select(func.count()).select_from(UserAccount).where(UserAccount.role == Role.ADMIN.value)
    return int(session.exec(query).one())


def _audit(session: Session, actor: str, name: str, action: str, field: str, old: Any, new: Any) -> None:
    record_change(session, actor=actor, entity="user", entity_id=name, action=action, field=field, old=old, new=new)


def add_account(*, session: Session, name: str, role: str, password: str, actor: str = SYSTEM_ACTOR) -> UserAccount:
    """Create an account with an argon2 hash of the password; the first account must be an admin."""
    authorize(session, actor, Role.ADMIN, "manage accounts")
    problems: list[str] = []
    checked: dict[str, Any] = {}
    for key, check, value in (
        ("name", validate_name, name),
        ("role", validate_role, role),
        ("password", validate_password, password),
    ):
        try:
            checked[key] = check(value)
        except InvalidInput as error:
            problems += error.problems
    if problems:
        raise InvalidInput(problems)
    if session.get(UserAccount, checked["name"]) is not None:
        raise InvalidInput([f"name: account {checked['name']!r} already exists"])
    if checked["role"] != Role.ADMIN and count_accounts(session=session) == 0:
        raise InvalidInput(["role: the first account must be an admin, so that someone can manage the others"])
    now = datetime.now(UTC)
    account = UserAccount(
        name=checked["name"],
        role=checked["role"].value,
        password_hash=_hasher.hash(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(account)
    _audit(session, actor, account.name, "create", "role", None, account.role)
    session.flush()
    return account


def remove_account(*, session: Session, name: str, actor: str = SYSTEM_ACTOR) -> None:
    """Delete an account; the last admin goes only when it is the last account."""
    authorize(session, actor, Role.ADMIN, "manage accounts")
    account = get_account(session=session, name=name)
    if account.role == Role.ADMIN and _admins(session) == 1 and count_accounts(session=session) > 1:
        raise InvalidInput([f"name: {account.name} is the last admin; make another account admin first"])
    _audit(session, actor, account.name, "delete", "role", account.role, None)
    session.delete(account)
    session.flush()


def set_role(*, session: Session, name: str, role: str, actor: str = SYSTEM_ACTOR) -> UserAccount:
    """Change an account's role; the last admin keeps it."""
    authorize(session, actor, Role.ADMIN, "manage accounts")
    new_role = validate_role(role)
    account = get_account(session=session, name=name)
    if account.role == new_role.value:
        return account
    if account.role == Role.ADMIN and _admins(session) == 1:
        raise InvalidInput([f"role: {account.name} is the last admin; make another account admin first"])
    _audit(session, actor, account.name, "update", "role", account.role, new_role.value)
    account.role = new_role.value
    session.add(account)
    session.flush()
    return account


def set_password(*, session: Session, name: str, password: str, actor: str = SYSTEM_ACTOR) -> UserAccount:
    """Replace an account's password (its owner or an admin may); this also lifts a lockout."""
    account = get_account(session=session, name=name)
    if normalize_name(actor) != account.name:
        authorize(session, actor, Role.ADMIN, "set another account's password")
    validate_password(password)
    account.password_hash = _hasher.hash(password)
    account.password_changed_at = datetime.now(UTC)
    _forget_failures(session, account)
    session.add(account)
    _audit(session, actor, account.name, "update", "password", None, "(changed)")
    session.flush()
    return account


def unlock(*, session: Session, name: str, actor: str = SYSTEM_ACTOR) -> UserAccount:
    """Lift an account's sign-in lockout and forget its failed attempts."""
    authorize(session, actor, Role.ADMIN, "manage accounts")
    account = get_account(session=session, name=name)
    if account.locked_until is not None or account.failed_attempts:
        _audit(session, actor, account.name, "unlock", "locked_until", account.locked_until, None)
    _forget_failures(session, account)
    session.add(account)
    session.flush()
    return account


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sign_in(*, session: Session, name: str, password: str, client: str = "", at: datetime | None = None) -> UserAccount:
    """Check a name and password; after MAX_FAILED_ATTEMPTS failures of one name from one client, refuse that
    name from that client for LOCKOUT.

    A name without an account is counted and locked the same way, with the same words and the same password
    check's cost, so nothing tells which names exist. Raise SignInRefused when refused. The counts are written
    in the caller's transaction, which the caller commits even when this raises.
    """
    now = at or datetime.now(UTC)
    typed = normalize_name(name)[:64]
    key = (typed, client[:64])
    throttle = session.get(SignInThrottle, key, with_for_update=True) or SignInThrottle(name=key[0], client=key[1])
    locked_until = as_utc(throttle.locked_until) if throttle.locked_until else None
    if locked_until is not None and locked_until > now:
        raise SignInRefused(
            f"{typed} is locked after {MAX_FAILED_ATTEMPTS} failed sign-ins until "
            f"{locked_until:%Y-%m-%d %H:%M} UTC; an admin can unlock it sooner"
        )
    if locked_until is not None:
        throttle.failed_attempts, throttle.locked_until = 0, None
    account = session.get(UserAccount, typed, with_for_update=True)
    matches = _verify(account.password_hash if account else _decoy_hash(), password)
    if account is None or not matches:
        throttle.failed_attempts += 1
        message = WRONG_CREDENTIALS
        if throttle.failed_attempts >= MAX_FAILED_ATTEMPTS:
            throttle.locked_until = now + LOCKOUT
            message += f"; {typed} is now locked for {int(LOCKOUT.total_seconds() // 60)} minutes"
        session.add(throttle)
        if account is not None:
            _count_failure(session, account, throttle)
        session.flush()
        raise SignInRefused(message)
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    if throttle.failed_attempts:
        session.delete(throttle)
    account.failed_attempts = 0
    account.last_sign_in_at = now
    session.add(account)
    session.flush()
    return account


def _count_failure(session: Session, account: UserAccount, throttle: SignInThrottle) -> None:
    """Keep the account's own record (what admins see): failures since its last sign-in, the latest lockout."""
    account.failed_attempts += 1
    if throttle.locked_until is not None and throttle.failed_attempts == MAX_FAILED_ATTEMPTS:
        account.locked_until = throttle.locked_until
        _audit(session, SYSTEM_ACTOR, account.name, "lock", "locked_until", None, account.locked_until)
        bump_data_version(session.connection())  # the audit trail gained a row
    session.add(account)


def _forget_failures(session: Session, account: UserAccount) -> None:
    """Lift every lockout of an account's name, from every client."""
    for throttle in session.exec(select(SignInThrottle).where(SignInThrottle.name == account.name)):
        session.delete(throttle)
    account.failed_attempts = 0
    account.locked_until = None
