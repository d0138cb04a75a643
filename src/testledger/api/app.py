"""The application factory: one FastAPI app over one store, its routes registered by feature."""

from __future__ import annotations

from fastapi import FastAPI

from testledger import __version__
from testledger.api import problems
from testledger.api.limits import BodyLimit, NoNulInUrl
from testledger.api.metrics import MetricsMiddleware
from testledger.api.routes import (
    analytics,
    executions,
    health,
    ingest,
    logs,
    pipelines,
    reporting,
    test_runs,
    tokens,
)
from testledger.api.state import ApiState
from testledger.db.engine import Store, open_store
from testledger.services.signing import load_signing_key
from testledger.settings import Settings, get_settings

DESCRIPTION = """\
testledger over HTTP: runs (in the execution and the test_runs shapes), ingest, signed case logs,
pipelines and tokens. Send `Authorization: Bearer <token>` (`testledger tokens create`). Errors are
`application/problem+json`.
"""


def create_app(settings: Settings | None = None, store: Store | None = None, *, auth: bool = True) -> FastAPI:
    """The API over `store` (default: the one the settings name). `auth=False` is for loopback use only."""
    settings = settings or get_settings()
    store = store or open_store(settings.resolved_database_url)
    state = ApiState(settings=settings, store=store, auth=auth,
                     signing_key=load_signing_key(home=settings.home, configured=settings.signing_key))
    app = FastAPI(title="testledger", version=__version__, description=DESCRIPTION)
    app.state.ledger = state
    for module in (health, reporting, executions, test_runs, ingest, logs, pipelines, tokens, analytics):
        app.include_router(module.router, responses=problems.RESPONSES)
    problems.install(app)
    app.add_middleware(BodyLimit, default=settings.api_max_body_bytes, uploads=settings.api_max_upload_bytes,
                       upload_paths=frozenset({ingest.PATH}))
    app.add_middleware(NoNulInUrl)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app
