"""The schema: workspaces, pipelines and their versions, cases, runs (`test_runs`), case results,
report files, plans and API tokens; the analytics rollups are in `db.analytics_tables`, and `schema()` is
every table. Tables only; behaviour lives in `testledger.services`.

No `from __future__ import annotations` here: SQLAlchemy would evaluate each of the `Mapped[...]`
strings itself, a third of this module's import (~25 ms on every command that writes, when the
analytics tables were here too).
"""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from testledger.db.ids import uuid7
from testledger.db.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: An auto-incrementing 64-bit key; on SQLite it must be plain INTEGER to alias the rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    #: Last number handed out in run keys (`WKS-0601-<n>`); bumped atomically per new run.
    run_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Pipeline(Base):
    """The seed's "test definition": a named, versioned, ordered set of cases with defaults."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    environment: Mapped[str | None] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    timeout_s: Mapped[float | None] = mapped_column(Float)
    parallelism: Mapped[int] = mapped_column(Integer, default=1)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    fail_fast: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Current version number; 0 for a pipeline only known from ingested reports.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PipelineVersion(Base):
    """An immutable snapshot of a pipeline document; runs point at the version they executed."""

    __tablename__ = "pipeline_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    source: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(255))


class PipelineCase(Base):
    """The ordered case list of one pipeline version."""

    __tablename__ = "pipeline_cases"

    pipeline_version_id: Mapped[int] = mapped_column(
        ForeignKey("pipeline_versions.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))


class Case(Base):
    """A test with a stable identity across runs: a pipeline case, or a test learned from reports.

    `identity` is a digest of (pipeline key, case key) for defined cases and of
    (suite, classname, name) for reported ones, so the same test maps to the same row in
    every run without a lookup by name. Its uniqueness per workspace is carried by `id`.
    """

    __tablename__ = "cases"

    #: Derived from (workspace, identity) by `testledger.caseid`, never auto-incremented: writers
    #: know a test's id without a round trip, and the primary key is the only index to maintain.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    #: No foreign key (migration 0011): the id is derived from this workspace's id by the writer, which
    #: resolves the workspace in the same transaction, and no path deletes a workspace. On PostgreSQL
    #: the check cost 7-9% of a 100-case run of new tests and locked the workspace's row (KEY SHARE)
    #: in every concurrent ingest into the workspace.
    workspace_id: Mapped[int] = mapped_column(Integer)
    identity: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(Text)
    suite: Mapped[str | None] = mapped_column(Text)
    classname: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    tags: Mapped[list[str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(Base):
    """One execution of a pipeline or one ingested report set: the seed's `test_runs` row."""

    __tablename__ = "test_runs"
    # Every list index ends in (created_at, id), the keyset order, so "newest N" reads N entries and
    # never sorts; (pipeline, status, result, ...) serves the commonest filter, "failed runs of P".
    __table_args__ = (
        Index("test_runs_definition_idx", "test_definition_id", "created_at", "id"),
        Index("test_runs_definition_status_idx", "test_definition_id", "status", "result", "created_at", "id"),
        Index("test_runs_status_idx", "status", "result", "created_at", "id"),
        Index("test_runs_environment_idx", "environment", "created_at", "id"),
        Index("test_runs_started_idx", "started_at"),
        Index("test_runs_workspace_idx", "workspace_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    test_definition_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pipelines.id"))
    pipeline_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    environment: Mapped[str] = mapped_column(String(50))
    triggered_by: Mapped[str] = mapped_column(String(255))
    trigger: Mapped[str] = mapped_column(String(20))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    revision: Mapped[str | None] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255))
    build_url: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    #: Why the run ended in error or was repaired (executor lost, run-level fault).
    error: Mapped[str | None] = mapped_column(Text)
    #: Who executes it: "local:<host>:<pid>", "celery:<task id>", "ingest"; and its last sign of life.
    executor: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Test counters (leaf results), kept up to date as results are recorded (no COUNT per statistic).
    tests: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    flaky: Mapped[int] = mapped_column(Integer, default=0)
    infra_faults: Mapped[int] = mapped_column(Integer, default=0)
    #: The key of the run this one reruns (kept as text: deleting the original leaves the note).
    rerun_of: Mapped[str | None] = mapped_column(String(64))
    #: The pipeline cases this run executes, in pipeline order; None: every case of its version.
    case_keys: Mapped[list[str] | None] = mapped_column(JSONType)


class CaseResult(Base):
    """One case's outcome in a run. `attempts` holds every try when the case was retried."""

    __tablename__ = "case_results"
    __table_args__ = (UniqueConstraint("run_id", "idx"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: No foreign keys on this hottest table (migration 0010): the writer makes the run and each case in
    #: the transaction that writes the results, and `services.runs.delete_runs` deletes them with their run.
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    idx: Mapped[int] = mapped_column(Integer)
    #: Index of the pipeline case this is a sub-result of (one pytest test inside a pytest case).
    parent_idx: Mapped[int | None] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(255))
    failure_category: Mapped[str | None] = mapped_column(String(20))
    stack_trace: Mapped[str | None] = mapped_column(Text)
    stdout: Mapped[str | None] = mapped_column(Text)
    stderr: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, str] | None] = mapped_column(JSONType)
    attempt_count: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    flaky: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    log_ref: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[str] | None] = mapped_column(JSONType)


class ReportFile(Base):
    """A report ingested into a run; its name and digest make ingesting the same report again a no-op."""

    __tablename__ = "report_files"
    __table_args__ = (UniqueConstraint("run_id", "name", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("test_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    dialect: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    cases: Mapped[int] = mapped_column(Integer)
    #: Entries in the file by status (tests, passed, ...), counted before reruns became attempts.
    entries: Mapped[dict[str, int] | None] = mapped_column(JSONType)
    suites: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    notes: Mapped[list[str] | None] = mapped_column(JSONType)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Plan(Base):
    """A cron schedule that triggers a pipeline (behaviour arrives with the scheduler)."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    key: Mapped[str] = mapped_column(String(100))
    pipeline_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    environment: Mapped[str | None] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """An API token. Only a SHA-256 digest of the secret is stored; `prefix` identifies it to people."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    name: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str] | None] = mapped_column(JSONType)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def schema() -> MetaData:
    """Every table of the store: these and the analytics ones (`db.analytics_tables`, which a command that
    does not analyse never imports: mapping its ~90 columns cost every run and ingest ~15 ms)."""
    import testledger.db.analytics_tables  # noqa: F401  (its tables join `Base.metadata`)

    return Base.metadata
