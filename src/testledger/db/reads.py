"""The tables read paths and a run's bookkeeping query, as plain Core columns: no ORM, no declarative
models, no PostgreSQL dialect.

`runs list`, `runs show` and `GET /api/v1/executions` read through these, so a command that only
reads does not import and configure the ORM at start-up (issue 9: ~100 ms of the ~600 ms), and a
request builds its page from rows instead of loading entities (issue 11). A run of a stored pipeline
is created, started, synced and finished through these too, and an ingest writes its run, reports and
results through them (issue 10: the ORM's import, mapping and statement compilation were a third of the
own start of `testledger run` and of a small `testledger ingest`). The models in
`db.tables` stay the one definition of the schema (migrations, writers); each column here carries
the type its model gives it, which `tests/core/test_store.py` checks.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text, Uuid, column, table

from testledger.db.types import JSONType, UTCDateTime

workspaces = table(
    "workspaces", column("id", Integer()), column("key", String()), column("name", String()),
    column("run_seq", Integer()), column("created_at", UTCDateTime()),
)

pipelines = table(
    "pipelines", column("id", Uuid()), column("workspace_id", Integer()), column("key", String()),
    column("name", String()), column("version", Integer()), column("parallelism", Integer()),
    column("retries", Integer()), column("fail_fast", Boolean()), column("created_at", UTCDateTime()),
    column("updated_at", UTCDateTime()),
)

pipeline_versions = table(
    "pipeline_versions", column("pipeline_id", Uuid()), column("version", Integer()), column("spec", JSONType()),
)

runs = table(
    "test_runs",
    column("id", Uuid()), column("key", String()), column("workspace_id", Integer()),
    column("test_definition_id", Uuid()), column("pipeline_version", Integer()), column("rerun_of", String()),
    column("status", String()), column("result", String()),
    column("created_at", UTCDateTime()), column("started_at", UTCDateTime()), column("completed_at", UTCDateTime()),
    column("duration_ms", BigInteger()), column("environment", String()), column("triggered_by", String()),
    column("trigger", String()), column("parameters", JSONType()), column("revision", String()),
    column("branch", String()), column("build_url", Text()), column("labels", JSONType()), column("error", Text()),
    column("tests", Integer()), column("passed", Integer()), column("failed", Integer()), column("errors", Integer()),
    column("skipped", Integer()), column("flaky", Integer()), column("infra_faults", Integer()),
    column("executor", String()), column("heartbeat_at", UTCDateTime()), column("cancel_requested", Boolean()),
    column("case_keys", JSONType()),
)

cases = table(
    "cases",
    column("id", BigInteger()), column("key", String()), column("name", Text()), column("suite", Text()),
    column("classname", Text()),
)

case_results = table(
    "case_results",
    column("run_id", Uuid()), column("idx", Integer()), column("parent_idx", Integer()),
    column("case_id", BigInteger()), column("status", String()), column("duration_ms", Float()),
    column("message", Text()), column("error_type", String()), column("failure_category", String()),
    column("attempt_count", Integer()), column("flaky", Boolean()), column("worker", String()),
    column("stack_trace", Text()), column("stdout", Text()), column("stderr", Text()),
    column("properties", JSONType()), column("attempts", JSONType()), column("attachments", JSONType()),
)

report_files = table("report_files", column("run_id", Uuid()), column("name", Text()), column("sha256", String()))

api_tokens = table(
    "api_tokens",
    column("id", Integer()), column("workspace_id", Integer()), column("name", String()),
    column("token_hash", String()), column("scopes", JSONType()), column("expires_at", UTCDateTime()),
    column("last_used_at", UTCDateTime()), column("revoked_at", UTCDateTime()),
)

#: Every table here, for the check against the models.
TABLES = (workspaces, pipelines, pipeline_versions, runs, cases, case_results, report_files, api_tokens)
