"""Pydantic schemas of the analytics answers: one shape for `--json`, REST, MCP and the web UI."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class RunRef(BaseModel):
    execution_id: str
    created_at: datetime


class HealthDay(BaseModel):
    day: date
    runs: int
    passed: int
    failed: int
    pass_rate: float | None


class HealthGroup(BaseModel):
    """Health of one pipeline in one environment on one branch over the window."""

    pipeline_key: str | None
    environment: str
    branch: str | None
    runs: int = Field(description="Finished runs (cancelled ones included) in the window.")
    passed: int
    failed: int = Field(description="Runs that failed or ended in error or timeout.")
    pass_rate: float | None = Field(description="passed / (passed + failed); null without such runs.")
    failure_rate: float | None
    mean_duration_ms: float | None
    p95_duration_ms: float | None
    streak: int = Field(description="Newest runs in a row with the same outcome (in the window).")
    streak_outcome: str | None = Field(description="passed or failed.")
    last_green: RunRef | None
    last_red: RunRef | None


class HealthReport(BaseModel):
    since: datetime
    days: int
    excluded_quarantined: bool
    groups: list[HealthGroup]
    trend: list[HealthDay]


class TestRef(BaseModel):
    case_id: int
    test: str = Field(description="`classname::name`, or the case key of a pipeline case.")


class CaseChange(TestRef):
    status: str | None = Field(description="Status in the compared run (PASSED, FAILED, ...).")
    base_status: str | None
    duration_ms: float | None = None
    base_duration_ms: float | None = None
    error: str | None = None


class Comparison(BaseModel):
    run: str
    base: str
    new_failures: list[CaseChange]
    fixed: list[CaseChange]
    still_failing: list[CaseChange]
    new_tests: list[CaseChange]
    removed_tests: list[CaseChange]
    duration_regressions: list[CaseChange]


class ClusterOut(BaseModel):
    id: int
    signature: str
    error_type: str | None
    pattern: str = Field(description="The message with numbers, ids, hex, paths, timestamps and temp names masked.")
    frames: str | None
    category: str | None = Field(description="The hand-set category, else the commonest of its failures.")
    category_overridden: bool
    count: int = Field(description="Failures in the window.")
    tests: int = Field(description="Distinct tests affected in the window.")
    first_seen: datetime
    last_seen: datetime
    sample_tests: list[str] = Field(default_factory=list)


class CategoryDay(BaseModel):
    day: date
    assertion: int = 0
    timeout: int = 0
    error: int = 0
    infrastructure: int = 0


class ClusterReport(BaseModel):
    since: datetime
    clusters: list[ClusterOut]
    categories: list[CategoryDay]


class FlakyTest(TestRef):
    score: float = Field(description="0-1: how sure the evidence makes it that the test is flaky.")
    same_revision: int = Field(description="Runs where it passed and failed on one revision.")
    retries: int = Field(description="Runs where it passed only on a retry.")
    flip_rate: float | None = Field(description="Current flip rate on the branch in alarm, if any.")
    flip_alarms: int
    first_seen: datetime
    last_seen: datetime
    runs: list[str] = Field(description="Newest runs that show it (up to 5).")
    quarantined: bool


class FlakyReport(BaseModel):
    since: datetime
    tests: list[FlakyTest]


class SlowTest(TestRef):
    results: int
    mean_ms: float
    p50_ms: float = Field(description="From half-octave histograms, interpolated (within ~20%).")
    p95_ms: float
    max_ms: float


class DurationRegression(TestRef):
    recent_max_ms: float
    baseline_mean_ms: float
    baseline_max_ms: float


class SlowReport(BaseModel):
    since: datetime
    tests: list[SlowTest]
    regressions: list[DurationRegression]


class QuarantineOut(TestRef):
    pipeline_key: str | None
    owner: str
    reason: str
    expires_at: datetime | None
    created_at: datetime
    created_by: str
    active: bool


class HistoryEntry(BaseModel):
    execution_id: str
    created_at: datetime
    pipeline_key: str | None
    environment: str
    branch: str | None
    revision: str | None
    status: str
    duration_ms: float | None
    error: str | None
    name: str = Field(description="The test's name in that run (an old name before a rename).")


class TestHistory(TestRef):
    aliases: list[str]
    quarantined: bool
    results: list[HistoryEntry]


class AliasOut(BaseModel):
    old: TestRef
    new: TestRef


class FoldReport(BaseModel):
    """What `testledger analytics fold` did: finished runs folded into the rollups, and what is still queued."""

    runs: int = Field(description="Queued runs taken off the queue (deleted runs included: nothing left to fold).")
    batches: int
    seconds: float
    pending: int = Field(description="Runs queued since (by ingests that ended meanwhile).")
