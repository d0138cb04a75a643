"""testledger: run test pipelines, ingest reports from any CI, record and analyse every run."""

__version__ = "0.1.0"
