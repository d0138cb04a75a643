"""Pydantic schemas: the one shape of runs and case results across `--json`, REST, MCP and the web UI.

Run and case statuses are upper case, as in the execution seed (`COMPLETED`, `FAILED`);
`test_run_status` is the `test_runs` view's single lower-case status.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel as PydanticModel
from pydantic import ConfigDict, Field


class BaseModel(PydanticModel):
    """Every schema below: its validator and serializer are built on first use instead of at import
    (~15-40 ms of each command's start, issue 9; `runs list` into a pipe never builds one)."""

    model_config = ConfigDict(defer_build=True)


class TotalsOut(BaseModel):
    tests: int = Field(
        description="Tests recorded: leaf results (a pipeline case with sub-results is a group; its tests count)."
    )
    passed: int
    failed: int
    errors: int
    skipped: int
    flaky: int = Field(description="Cases that passed only on a retry, or whose attempts disagree.")


class AttemptOut(BaseModel):
    status: str
    duration_ms: float | None = None
    message: str | None = None
    error_type: str | None = None


class CaseOut(BaseModel):
    index: int = Field(description="0-based position of the result in its run (the seed's caseIndex).")
    case_key: str
    name: str
    suite: str | None = None
    classname: str | None = None
    status: str = Field(description="PASSED, FAILED, ERROR or SKIPPED.")
    duration_ms: int | None = None
    error: str | None = Field(
        default=None, description="`ErrorType: message` of a failed case; why a skipped case did not run."
    )
    failure_category: str | None = Field(
        default=None, description="assertion, timeout, error or infrastructure for a non-passed case."
    )
    attempts: int = 1
    flaky: bool = False
    parent_index: int | None = Field(default=None, description="The pipeline case this is a sub-result of.")
    runtime_id: str | None = Field(default=None, description="Worker or process that ran the case.")


class CaseDetailOut(CaseOut):
    """One case result with everything recorded about it (`runs case KEY N`)."""

    message: str | None = None
    error_type: str | None = None
    stack_trace: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    properties: dict[str, str] | None = None
    attempt_details: list[AttemptOut] = Field(default_factory=list)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    log_ref: str | None = None
    attachments: list[str] = Field(default_factory=list)


class ExecutionOut(BaseModel):
    """A run in the execution shape of the seed, with its cases when asked for."""

    execution_id: str = Field(description="Human key, `<WORKSPACE>-<MMDD>-<n>`.")
    id: uuid.UUID
    workspace: str
    status: str = Field(description="PENDING, RUNNING, COMPLETED, CANCELLED or TIMEOUT.")
    result: str | None = Field(description="PASSED, FAILED, ERROR or SKIPPED once COMPLETED.")
    test_run_status: str = Field(description="The test_runs view: running, passed, failed, cancelled, error.")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    pipeline_key: str | None
    pipeline_version: int | None = None
    rerun_of: str | None = Field(default=None, description="The run this one reruns (`testledger rerun`), if any.")
    environment: str
    trigger: str
    triggered_by: str
    revision: str | None = None
    branch: str | None = None
    build_url: str | None = None
    labels: dict[str, str] | None = None
    parameters: dict[str, Any] | None = None
    error: str | None = None
    totals: TotalsOut
    cases: list[CaseOut] | None = None
    cases_total: int | None = Field(
        default=None, description="How many case results the run has, when `cases` may list only some of them."
    )
    next_cursor: str | None = Field(
        default=None, description="Pass back as `cursor` to list the following cases; null when `cases` is complete."
    )


class RunPage(BaseModel):
    items: list[ExecutionOut]
    next_cursor: str | None = Field(description="Pass back as `cursor` for the next page; null on the last.")


class PipelineCaseOut(BaseModel):
    index: int
    key: str
    name: str
    kind: str


class PipelineOut(BaseModel):
    """A pipeline and its current version (secret parameter values shown as `***`)."""

    key: str
    name: str
    workspace: str
    version: int
    environment: str | None = None
    parameters: dict[str, Any] | None = None
    timeout_s: float | None = None
    parallelism: int
    retries: int
    fail_fast: bool
    updated_at: datetime
    cases: list[PipelineCaseOut] | None = None


class LaunchedOut(BaseModel):
    """A pending run of a pipeline, ready for an executor (`testledger run`)."""

    run_key: str
    workspace: str
    cases: int = Field(description="Cases the pipeline version defines.")
    workdir: Path = Field(description="Directory its cases run in.")


class AppliedOut(BaseModel):
    pipeline: PipelineOut
    created: bool = Field(description="False when the document equals the current version (no new version).")


class IngestOptions(BaseModel):
    """What an ingest records about its run, and how it reads its reports (every adapter passes one)."""

    model_config = {"frozen": True, "extra": "forbid"}

    actor: str = Field(description="Who ingests (`triggered_by` of a new run).")
    pipeline_key: str | None = Field(default=None, description="Pipeline of a new run (created if new).")
    environment: str = "ci"
    allowed_environments: tuple[str, ...] = Field(description="Environment names a new run may use (settings).")
    trigger: str = "manual"
    revision: str | None = None
    branch: str | None = None
    build_url: str | None = None
    labels: dict[str, str] | None = None
    run_key: str | None = Field(default=None, description="Add to this open run instead of creating one.")
    partial: bool = Field(default=False, description="Keep the reports that parse when others fail.")
    finish: bool = Field(default=True, description="Complete a new run once its reports are in.")
    max_report_bytes: int = Field(default=512 * 1024 * 1024, gt=0, description="Largest report after gunzip.")
    parse_process_min_bytes: int | None = Field(
        default=None, ge=0,
        description="Parse in a second process when the reports add up to this many bytes; None: never "
        "(the caller decides: it is a process of its own).",
    )


class ReportFileOut(BaseModel):
    """One report of an ingest: what was read from it, or why it was not."""

    name: str
    format: str | None = None
    dialect: str | None = None
    cases: int = Field(default=0, description="Results stored from this report (reruns folded into attempts).")
    entries: TotalsOut | None = Field(default=None, description="The report's own entries by status.")
    duplicate: bool = Field(default=False, description="Same name and content already in the run: skipped.")
    error: str | None = None


class IngestOut(BaseModel):
    """The outcome of one ingest: the run the reports went into, and each report."""

    run_key: str
    files: list[ReportFileOut] = Field(default_factory=list)

    @property
    def failed_files(self) -> list[ReportFileOut]:
        return [f for f in self.files if f.error]

    @property
    def duplicates(self) -> int:
        return sum(f.duplicate for f in self.files)
