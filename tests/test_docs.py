"""The docs stay true: every setting is documented, and the README's commands exist."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from testledger.settings import Settings

ROOT = Path(__file__).parents[1]


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    names = [spec.name for spec in dataclasses.fields(Settings)]
    missing = [name for name in names if f"TESTLEDGER_{name.upper()}" not in text]
    assert not missing, f"undocumented settings: {missing}"


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"pip install -q -e '\.\[test\]' && pytest", ci)
    assert command is not None and command.group(0).replace(" -q", "") in readme
