"""Exceptions whose messages a user can act on."""

from __future__ import annotations


class ManagerError(Exception):
    """Base of every error the manager reports to a user."""


class NotFound(ManagerError):
    """The named thing does not exist."""


class InvalidInput(ManagerError):
    """Input was refused; `problems` lists each field (or row) at fault and why."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class UnusableFile(ManagerError):
    """A file could not be read at all; nothing was written."""


class DatabaseUnavailable(ManagerError):
    """The database URL names nothing usable: an unknown scheme, a missing file, a server that does not answer."""


class DatabaseBusy(ManagerError):
    """Another writer held the database's write lock for longer than the busy timeout; nothing was written."""


class PermissionDenied(ManagerError):
    """The acting account's role does not allow this change."""


class SignInRefused(ManagerError):
    """A sign-in failed: wrong name or password, or the account is locked."""
