"""The analytics tables: the rollups of finished runs (folded off the ingest path, `analytics/fold.py`) and
what people set by hand (quarantines, aliases). Tables only, on the same `Base` as `db.tables`; imported by
the analytics services, not by a command that only runs, ingests or shows runs. `tables.schema()` is every
table at once (migrations, tests).

No `from __future__ import annotations` here, as in `db.tables`.
"""

import uuid
from datetime import date, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from testledger.db.tables import Base, BigId
from testledger.db.types import UTCDateTime

# -- analytics: rollups of finished runs (folded off the ingest path), and what people set by hand --

#: Duration histogram buckets of `test_days`: 0 is under 1 ms; bucket k >= 1 holds [2^((k-1)/2), 2^(k/2)) ms,
#: half an octave each; the last one is open-ended (over ~9 min). Percentiles come from these sums, since
#: SQLite has no percentile function and a per-window sort of raw durations takes seconds at 10M rows.
DURATION_BUCKETS = 40


class TestDay(Base):
    """One test's outcomes and duration histogram on one day (the day its run was created)."""

    __tablename__ = "test_days"
    __table_args__ = (
        # Covers the slowest-tests ranking (each test's maximum in a window) and the duration regressions
        # (today's maxima, the baseline sums), which read only these columns of the wide rows.
        Index("test_days_durations_idx", "workspace_id", "day", "case_id", "duration_max", "timed", "duration_sum",
              "pipeline_id"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    workspace_id: Mapped[int] = mapped_column(Integer)
    #: The pipeline whose run last recorded the test that day (filters `slow --pipeline`).
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    results: Mapped[int] = mapped_column(Integer)
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    flaky: Mapped[int] = mapped_column(Integer)
    timed: Mapped[int] = mapped_column(Integer)
    duration_sum: Mapped[float] = mapped_column(Float)
    duration_max: Mapped[float | None] = mapped_column(Float)


for _k in range(DURATION_BUCKETS):
    cast(Table, TestDay.__table__).append_column(Column(f"h{_k}", Integer, nullable=False, default=0))


class FailureCluster(Base):
    """Failures that are the same failure: one normalised signature (type, masked message, top frames)."""

    __tablename__ = "failure_clusters"
    __table_args__ = (UniqueConstraint("workspace_id", "signature"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    signature: Mapped[str] = mapped_column(String(32))
    error_type: Mapped[str | None] = mapped_column(String(255))
    pattern: Mapped[str] = mapped_column(Text)
    frames: Mapped[str | None] = mapped_column(Text)
    #: Set by hand (`clusters ID --category`); wins over each failure's own category.
    category: Mapped[str | None] = mapped_column(String(20))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseFailure(Base):
    """One failed case result with its cluster, copied out when its run is folded so failure questions never
    scan `case_results` (failures are a few percent of results)."""

    __tablename__ = "case_failures"
    __table_args__ = (
        Index("case_failures_workspace_idx", "workspace_id", "created_at"),
        Index("case_failures_run_idx", "run_id"),
        Index("case_failures_cluster_idx", "cluster_id", "created_at"),
    )

    result_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    workspace_id: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[int] = mapped_column(BigInteger)
    cluster_id: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The run failed for (almost) every test: an outage, never evidence of flakiness.
    outage: Mapped[bool] = mapped_column(Boolean, default=False)


class FlakyEvidence(Base):
    """One observation that a test is flaky: `revision` (passed and failed on one revision), `retry`
    (passed on a retry in one run) or `flip` (its flip rate on a branch crossed the alarm threshold)."""

    __tablename__ = "flaky_evidence"
    __table_args__ = (
        Index("flaky_evidence_workspace_idx", "workspace_id", "created_at"),
        UniqueConstraint("case_id", "signal", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(BigInteger)
    signal: Mapped[str] = mapped_column(String(10))
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    other_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revision: Mapped[str | None] = mapped_column(String(64))
    branch: Mapped[str | None] = mapped_column(String(255))
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    flip_rate: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TestBranchState(Base):
    """A test's recent outcomes on one branch, kept only once it has failed there (a test that only
    passes needs no row): the flip-rate signal with its alarm state (hysteresis)."""

    __tablename__ = "test_branch_states"

    workspace_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    branch: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Newest last: `p` passed, `f` failed or error, at most `FLIP_WINDOW` long.
    recent: Mapped[str] = mapped_column(String(100))
    alarm: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AnalyticsQueue(Base):
    """A finished run not yet folded into the rollups: written in the transaction that ends the run (one
    insert, the whole analytics cost of ingest), taken off by the fold (`testledger.analytics.fold`)."""

    __tablename__ = "analytics_queue"

    #: Folding follows this order, the order the runs ended in.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class AnalyticsFold(Base):
    """One row (id 1): the fold locks it first, so one process folds at a time on either store."""

    __tablename__ = "analytics_fold"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    folded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Quarantine(Base):
    """A test set aside with an owner, a reason and an expiry: it keeps running and recording, and
    health (and gates) can leave it out. Expired quarantines lift themselves (they stop counting)."""

    __tablename__ = "quarantines"
    __table_args__ = (UniqueConstraint("workspace_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int] = mapped_column(BigInteger)
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    owner: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(255))


class TestAlias(Base):
    """A renamed test: `old_case_id` is the same test as `case_id`, so its history continues."""

    __tablename__ = "test_aliases"

    workspace_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    old_case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    case_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(255))
