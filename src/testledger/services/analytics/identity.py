"""Test identity: link a renamed test to its old name, so its history, flakiness and quarantine continue."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from testledger.analytics.fold import catch_up
from testledger.db.analytics_tables import Quarantine, TestAlias, TestBranchState
from testledger.db.types import utcnow
from testledger.errors import Conflict
from testledger.services.analytics import scope
from testledger.services.analytics.schemas import AliasOut, TestRef


def link_renamed_test(db: Session, *, workspace: str, old: str, new: str, actor: str) -> AliasOut:
    """Record that `old` is now called `new`: its results count as `new`'s from now on."""
    catch_up(db)  # every queued finished run folded first: the answer is never stale
    ws = scope.workspace_id(db, workspace)
    before, after = scope.find_test(db, ws, old), scope.find_test(db, ws, new)
    if before.case_id == after.case_id:
        raise Conflict(f"'{old}' and '{new}' are the same test")
    if scope.alias_map(db, ws).get(after.case_id) == before.case_id:
        raise Conflict(f"'{new}' is already an old name of '{old}'")
    db.execute(delete(TestAlias).where(TestAlias.workspace_id == ws, TestAlias.old_case_id == before.case_id))
    db.add(TestAlias(workspace_id=ws, old_case_id=before.case_id, case_id=after.case_id, created_at=utcnow(),
                     created_by=actor))
    # The flip state and a quarantine follow the test to its new name unless the new name has its own.
    has_state = {b for b in db.scalars(select(TestBranchState.branch).where(
        TestBranchState.workspace_id == ws, TestBranchState.case_id == after.case_id))}
    moving = update(TestBranchState).where(TestBranchState.workspace_id == ws,
                                           TestBranchState.case_id == before.case_id)
    if has_state:
        moving = moving.where(TestBranchState.branch.not_in(has_state))
    db.execute(moving.values(case_id=after.case_id), execution_options={"synchronize_session": False})
    own = select(Quarantine.id).where(Quarantine.workspace_id == ws, Quarantine.case_id == after.case_id)
    if db.scalar(own) is None:
        db.execute(update(Quarantine).where(Quarantine.workspace_id == ws, Quarantine.case_id == before.case_id)
                   .values(case_id=after.case_id), execution_options={"synchronize_session": False})
    db.flush()
    return AliasOut(old=TestRef(case_id=before.case_id, test=before.display),
                    new=TestRef(case_id=after.case_id, test=after.display))
