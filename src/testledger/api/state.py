"""What one running API application holds: settings, the store, the signing key, its runs and its metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from testledger.api.metrics import Metrics
from testledger.api.token_cache import TokenCache
from testledger.db.engine import Store
from testledger.execute.background import BackgroundRuns
from testledger.execute.logstore import FileLogStore
from testledger.services.signing import SigningKey
from testledger.settings import Settings


@dataclass
class ApiState:
    settings: Settings
    store: Store
    signing_key: SigningKey
    auth: bool
    metrics: Metrics = field(default_factory=Metrics)
    tokens: TokenCache = field(default_factory=TokenCache)
    #: Runs started over HTTP execute in this process (until distributed workers exist).
    runs: BackgroundRuns = field(init=False)

    def __post_init__(self) -> None:
        self.runs = BackgroundRuns(self.store, self.settings)

    @property
    def log_store(self) -> FileLogStore:
        return FileLogStore(self.settings.logs_dir)
