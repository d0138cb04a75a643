"""Running Alembic migrations programmatically against a store's engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        if conn.dialect.name != "sqlite":
            command.upgrade(config, revision)
            conn.commit()
            return
        # SQLite changes a table by rebuilding it (Alembic's batch mode), and with foreign keys on,
        # dropping the old copy of a table others refer to fails. SQLite's own procedure for this:
        # foreign keys off for the migration (the pragma cannot change inside a transaction, so it
        # is set before the migration's transaction begins), checked before the commit, on again.
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA foreign_keys=OFF")
        try:
            command.upgrade(config, revision)
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows without the row they refer to: {broken[:5]}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            dbapi.execute("PRAGMA foreign_keys=ON")  # outside the transaction, which has ended


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
