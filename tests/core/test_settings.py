"""Settings come from `TESTLEDGER_*` variables (any case, lists as JSON); values given in code win."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from testledger.settings import Settings, get_settings


def test_settings_read_the_environment_and_given_values_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_HOME", str(tmp_path))
    monkeypatch.setenv("testledger_workspace", "LOWER")
    monkeypatch.setenv("TESTLEDGER_ENVIRONMENTS", '["qa", "prod"]')
    monkeypatch.setenv("TESTLEDGER_MAX_MESSAGE_BYTES", "4096")
    settings = Settings(workspace="GIVEN")
    assert (settings.home, settings.workspace, settings.environments) == (tmp_path, "GIVEN", ["qa", "prod"])
    assert settings.max_message_bytes == 4096 and Settings().workspace == "LOWER"
    monkeypatch.setenv("TESTLEDGER_MAX_MESSAGE_BYTES", "12")
    with pytest.raises(ValidationError, match="max_message_bytes"):
        Settings()


def test_a_setting_that_is_not_json_is_one_line(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_ENVIRONMENTS", "dev,ci")
    get_settings.cache_clear()
    result = cli("runs", "list")
    assert result.code == 3
    assert result.stderr == "error: TESTLEDGER_ENVIRONMENTS must be JSON, e.g. '[\"dev\", \"ci\"]' (got 'dev,ci')\n"
