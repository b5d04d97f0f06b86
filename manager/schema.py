"""Creating and upgrading the schema through Alembic, the same way in production and tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """Return the Alembic configuration of the manager's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_schema(engine: Engine) -> None:
    """Upgrade the database to the newest schema."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_is_current(engine: Engine) -> bool:
    """Return True when the database is at the newest schema revision."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def initialize(engine: Engine) -> int:
    """Create or upgrade the schema and load the default models; return how many models were added."""
    from manager.db import write_session
    from manager.defaults import load_default_models

    upgrade_schema(engine)
    with write_session(engine) as session:
        return load_default_models(session=session)
