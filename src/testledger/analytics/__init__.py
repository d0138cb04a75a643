"""Analytics storage: the rollups of finished runs (daily per-test rows, failure signatures, flaky evidence),
folded in batches off the ingest path."""
