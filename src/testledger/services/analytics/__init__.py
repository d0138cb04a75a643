"""Analytics over the recorded history: health, flaky and slow tests, failure clusters, comparisons,
quarantine and test identity. `analytics.fold` keeps the rollups these questions read (each folds the
queued finished runs first)."""
