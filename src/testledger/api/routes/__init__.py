"""Route modules, one per feature; each exposes a `router`."""
