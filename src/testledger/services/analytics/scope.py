"""What every analytics question starts from: the workspace, the pipeline, the window, and tests by name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from testledger.db.analytics_tables import TestAlias
from testledger.db.tables import Case, Pipeline, Workspace
from testledger.db.types import utcnow
from testledger.errors import Invalid, NotFound

MAX_DAYS = 366


def workspace_id(db: Session, key: str) -> int:
    found = db.scalar(select(Workspace.id).where(Workspace.key == key))
    if found is None:
        raise NotFound(f"workspace '{key}' not found (nothing has been recorded in it yet)")
    return int(found)


def pipeline_id(db: Session, ws: int, key: str | None) -> object | None:
    if key is None:
        return None
    found = db.scalar(select(Pipeline.id).where(Pipeline.workspace_id == ws, Pipeline.key == key))
    if found is None:
        raise NotFound(f"pipeline '{key}' not found (`testledger pipelines list` shows them)")
    return found


def window_start(days: int, now: datetime | None = None) -> datetime:
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"--days must be between 1 and {MAX_DAYS}, got {days}")
    return (now or utcnow()) - timedelta(days=days)


def display_name(classname: str | None, name: str, key: str | None = None) -> str:
    return key or (f"{classname}::{name}" if classname else name)


@dataclass(frozen=True, slots=True)
class TestName:
    case_id: int
    display: str


def find_test(db: Session, ws: int, name: str) -> TestName:
    """A test named `classname::name`, `classname.name`, its bare name or a pipeline case key."""
    name = name.strip()
    if not name or len(name) > 4096:
        raise Invalid("a test is named classname::name or classname.name, e.g. api.Login::test_token")
    conditions = [Case.key == name, Case.name == name]
    for sep in ("::", "."):
        if sep in name:
            classname, _, short = name.rpartition(sep)
            conditions.append((Case.classname == classname) & (Case.name == short))
    rows = db.execute(
        select(Case.id, Case.classname, Case.name, Case.key).where(Case.workspace_id == ws, or_(*conditions)).limit(6)
    ).all()
    if not rows:
        raise NotFound(f"no test named '{name}' (name it classname::name or classname.name)")
    if len(rows) > 1:
        names = ", ".join(sorted({display_name(r.classname, r.name, r.key) for r in rows}))
        raise Invalid(f"'{name}' names several tests ({names}): give classname::name")
    r = rows[0]
    return TestName(int(r.id), display_name(r.classname, r.name, r.key))


def test_names(db: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(ids))
    names: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        for r in db.execute(select(Case.id, Case.classname, Case.name, Case.key).where(Case.id.in_(chunk))):
            names[int(r.id)] = display_name(r.classname, r.name, r.key)
    return names


def alias_map(db: Session, ws: int) -> dict[int, int]:
    """Old case id -> current case id, following chains of renames."""
    direct = {int(o): int(n) for o, n in db.execute(
        select(TestAlias.old_case_id, TestAlias.case_id).where(TestAlias.workspace_id == ws))}
    resolved = {}
    for old in direct:
        seen, current = {old}, direct[old]
        while current in direct and current not in seen:
            seen.add(current)
            current = direct[current]
        resolved[old] = current
    return resolved
