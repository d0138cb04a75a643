"""A store written before secrets were refused in pipeline files loses the secret values its old
versions hold when it is upgraded: `strings` over the file finds them no more."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from testledger.db.engine import Store
from testledger.db.migrate import alembic_config
from testledger.pipelinefile import parse_pipeline
from testledger.services.pipelines import apply_pipeline

SECRET = "s3cr3t-from-an-old-version"
PIPELINE = """\
key: api
parameters:
  base_url: http://x
  token: {secret: true, from_env: API_TOKEN}
cases:
  - key: ping
    command: "true"
"""


def test_upgrading_an_old_store_removes_stored_secret_values(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = Store(f"sqlite:///{path}")
    with store.write() as db:
        apply_pipeline(db, workspace="WKS", document=parse_pipeline(PIPELINE), actor="t")
    store.dispose()
    # What a version stored before issue 8 held: the secret's value in clear, in a store at revision 0004
    # (migrated down, so the later revisions' schema changes are undone too).
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
        conn.commit()
    with engine.begin() as conn:
        spec = json.loads(conn.execute(text("SELECT spec FROM pipeline_versions")).scalar_one())
        spec["parameters"]["token"]["value"] = SECRET
        conn.execute(text("UPDATE pipeline_versions SET spec = :spec"), {"spec": json.dumps(spec)})
    engine.dispose()
    assert SECRET.encode() in path.read_bytes()

    Store(f"sqlite:///{path}").dispose()  # a SQLite store migrates itself on first use
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        stored = json.loads(conn.execute(text("SELECT spec FROM pipeline_versions")).scalar_one())
        conn.execute(text("VACUUM"))
    engine.dispose()
    assert "value" not in stored["parameters"]["token"] and stored["parameters"]["base_url"]["value"] == "http://x"
    assert SECRET.encode() not in path.read_bytes()
