"""Exporting a run as JUnit XML or CTRF JSON."""

from __future__ import annotations

from typing import IO

from sqlalchemy.orm import Session

from testledger.errors import Invalid
from testledger.export.ctrf import write_ctrf
from testledger.export.junit import write_junit
from testledger.export.rows import export_rows
from testledger.services import runs

FORMATS = {"junit": write_junit, "ctrf": write_ctrf}


def export_run(db: Session, *, workspace: str, key: str, format: str, out: IO[bytes]) -> None:
    """Write the run's results to `out` in `format` (junit or ctrf), streaming large runs."""
    writer = FORMATS.get(format)
    if writer is None:
        raise Invalid(f"unknown export format '{format}' (expected one of {', '.join(FORMATS)})")
    execution = runs.get_execution(db, workspace=workspace, key=key, with_cases=False)
    writer(execution, export_rows(db, run_id=execution.id), out)
