"""Analytics storage: the rollups kept as runs end (daily per-test rows, failure signatures, flaky evidence)."""
