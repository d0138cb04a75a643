"""A command starts without the cyclic garbage collector, and collects again once it begins its work.

Starting a command makes ~120,000 objects that live as long as the process: the modules of
SQLAlchemy, pydantic and Typer, the tables and the models. The collector, which runs every few
hundred allocations, walks them again and again while they are being made and finds next to nothing
(~800 objects of the 120,000): ~9% of a command's start (`benchmarks/bench_startup.py`). So the
`testledger` process pauses it first (`pause`) and turns it back on when the command opens its store
or reaches its server (`resume`). What the start made is then frozen out of every later collection
(`gc.freeze`): later passes walk only the command's own objects.

A command that never gets there (`--help`, `pipelines validate`, `db upgrade`) is over within a
second and ends with the collector still paused. Only the `testledger` process pauses it: the
functions here do nothing in a process that did not call `pause` (tests, a server, the plugin).
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Pause the collector for the command's start (the first thing the `testledger` process does)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """The start is over: freeze what it made out of later collections and collect again. Once only:
    a pause the command makes later for its own work (`ingest`) is left alone."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
