"""Analytics over the recorded history: health, flaky and slow tests, failure clusters, comparisons,
quarantine and test identity. `rollup.record_run` keeps the rollups these questions read."""
