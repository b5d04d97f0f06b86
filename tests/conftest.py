"""Shared fixtures: a real SQLite file and a real PostgreSQL server, each built by the manager's own init.

Under CI=true a missing PostgreSQL fails the run instead of skipping its tests.
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# LiteLLM fetches its price map from GitHub at import unless told to use the copy it ships: no network in tests.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest  # noqa: E402
from sqlalchemy import Engine, create_engine, text

from manager import api
from manager.db import create_db_engine
from tests.utils import servers
from tests.utils.servers import free_port, postgres_binary, wait_for_port

__all__ = ["free_port", "unavailable", "wait_for_port"]

IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def unavailable(reason: str) -> None:
    """Skip locally, fail under CI: a missing server or browser must never pass quietly there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def required(module: str, install: str) -> Any:
    """Return an imported optional package; skip without it locally, fail under CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(f"{module} is not installed ({install})")
        raise


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL on a loopback port; yield its base URL."""
    if not postgres_binary("initdb") or not postgres_binary("pg_ctl"):
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    with servers.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> str:
    """Create a database initialised by the manager, used as the template of each test's database."""
    admin = create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE manager_template"))
    admin.dispose()
    engine = api.open_engine(f"{postgres_server}/manager_template")
    engine.dispose()
    return "manager_template"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Create a SQLite file initialised by the manager, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "manager.db"
    engine = api.open_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


_counter = itertools.count()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a fresh, initialised database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "manager.db"
        shutil.copy(template, target)
        yield f"sqlite:///{target}"
        return
    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("postgres_template")
    name = f"test_{os.getpid()}_{next(_counter)}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """Yield an engine on a fresh, initialised database."""
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()
