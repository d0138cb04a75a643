"""What the client tests share: the report and pipeline they use, and the `Server` handle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
