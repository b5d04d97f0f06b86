"""The one place engines, sessions and write transactions are made."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from manager.errors import DatabaseBusy, DatabaseUnavailable
from manager.models import DataVersion
from manager.settings import BUSY_TIMEOUT_VARIABLE as MANAGER_BUSY_TIMEOUT
from manager.settings import busy_timeout, database_url

# Any constant will do: it names the lock that serialises ingest batches on PostgreSQL.
INGEST_LOCK_KEY = 7_318_204


SCHEMES = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DBNAME"


def create_db_engine(url: str | None = None, *, create: bool = True) -> Engine:
    """Return an engine for the URL (or the configured default), ready for concurrent use.

    A SQLite file that does not exist is made (0600, in a 0700 folder: it holds password hashes) only with
    create; otherwise DatabaseUnavailable says how to make one.
    """
    text = database_url(url)
    try:
        parsed = make_url(text)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, create=create)
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as error:
        raise DatabaseUnavailable(f"{text!r} is not a database URL this manager can use ({SCHEMES})") from error


def describe_database(engine: Engine) -> str:
    """Return where an engine's database is, without its password."""
    return engine.url.render_as_string(hide_password=True)


def _sqlite_engine(url: Any, *, create: bool) -> Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.exists():
            if not create:
                raise DatabaseUnavailable(
                    f"no database at {path}: `python -m manager init` (or starting the dashboard) creates it"
                )
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            for folder in missing:
                folder.chmod(0o700)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    timeout = busy_timeout()
    engine = create_engine(url, connect_args={"timeout": timeout})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so the busy timeout applies instead of a
        # "database is locked" error when a read transaction later tries to write.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(engine: Engine, *, lock: bool = False, bump: bool = True) -> Iterator[Connection]:
    """Yield a connection in one write transaction that commits on success, bumping the data version.

    Pass bump=False for writes that change nothing a report shows (sign-in bookkeeping), so they
    do not retire every cached read.
    """
    try:
        with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
            if lock and engine.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INGEST_LOCK_KEY})")
            yield conn
            if bump:
                bump_data_version(conn)
    except OperationalError as error:
        if "locked" not in str(error) and "busy" not in str(error):
            raise
        raise DatabaseBusy(
            f"the database is busy: another writer held it for more than {busy_timeout():g} s "
            f"({MANAGER_BUSY_TIMEOUT}); nothing of this change was written, so trying again is safe"
        ) from None


@contextmanager
def write_session(engine: Engine, *, bump: bool = True) -> Iterator[Session]:
    """Yield an ORM session in one write transaction that commits on success."""
    with write_transaction(engine, bump=bump) as conn, Session(bind=conn) as session:
        yield session
        session.flush()


def read_session(engine: Engine) -> Session:
    """Return a session for reading."""
    return Session(engine)


def bump_data_version(conn: Connection) -> None:
    """Increase the data version inside the caller's transaction."""
    table = DataVersion.__table__  # type: ignore[attr-defined]
    conn.execute(update(table).values(version=table.c.version + 1))


def data_version(engine: Engine) -> int:
    """Return the current data version (0 before any write)."""
    table = DataVersion.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(select(table.c.version)).scalar() or 0)


def sqlite_timestamps(moments: pd.Series) -> list[str]:
    """Return UTC datetimes as SQLAlchemy's text form for SQLite ('YYYY-MM-DD HH:MM:SS.ffffff'), vectorised."""
    values = moments.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    text = np.datetime_as_string(values, unit="us")  # 'YYYY-MM-DDTHH:MM:SS.ffffff'
    if not len(text):
        return []
    characters = text.view(np.uint32).reshape(len(text), -1).copy()
    characters[:, 10] = ord(" ")
    strings: list[str] = characters.view(text.dtype).ravel().tolist()
    return strings
