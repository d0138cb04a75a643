"""What the client tests share: the report and pipeline they use, and the `Server` handle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

JUNIT = """<?xml version="1.0"?>
<testsuite name="unit" tests="3">
  <testcase classname="app.Login" name="ok" time="0.1"><system-out>logged in as alice</system-out></testcase>
  <testcase classname="app.Cart" name="adds" time="0.2">
    <failure message="expected 2, got 3" type="AssertionError">trace line</failure>
    <system-out>cart has 3 items</system-out><system-err>warning: slow</system-err>
  </testcase>
  <testcase classname="app.Pay" name="quiet" time="0.3"/>
</testsuite>
"""

PIPELINE = """\
key: echo
name: Echo
environment: local
cases:
  - key: hello
    command: echo hello from case && echo second line
  - key: bad
    command: echo about to fail && exit 3
"""


@dataclass
class Server:
    url: str
    #: Tokens of workspace WKS by role, and `other`: an admin of workspace OTHER.
    tokens: dict[str, str]
    #: An ingested run of WKS (3 tests, 1 failed, with stored output).
    run_key: str
    report: Path




Use = Callable[..., None]
