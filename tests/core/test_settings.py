"""Settings come from `TESTLEDGER_*` variables (any case, lists as JSON); values given in code win."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testledger.errors import Invalid
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
    with pytest.raises(Invalid, match=r"TESTLEDGER_MAX_MESSAGE_BYTES must be at least 256 \(got '12'\)"):
        Settings()


def test_a_setting_that_is_not_json_is_one_line(cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_ENVIRONMENTS", "dev,ci")
    get_settings.cache_clear()
    result = cli("runs", "list")
    assert result.code == 3
    assert result.stderr == "error: TESTLEDGER_ENVIRONMENTS must be JSON, e.g. '[\"dev\", \"ci\"]' (got 'dev,ci')\n"


@pytest.mark.parametrize(("name", "value", "problem"), [
    ("TESTLEDGER_MAX_MESSAGE_BYTES", "12", "TESTLEDGER_MAX_MESSAGE_BYTES must be at least 256 (got '12')"),
    ("TESTLEDGER_HEARTBEAT_SECONDS", "soon", "TESTLEDGER_HEARTBEAT_SECONDS must be a number (got 'soon')"),
    ("TESTLEDGER_REMOTE_TIMEOUT_SECONDS", "0", "TESTLEDGER_REMOTE_TIMEOUT_SECONDS must be more than 0 (got '0')"),
    ("TESTLEDGER_LOG_LEVEL", "loud", "TESTLEDGER_LOG_LEVEL must be one of DEBUG, INFO, WARNING or ERROR (got 'loud')"),
    ("TESTLEDGER_ENVIRONMENTS", '{"qa": 1}', "TESTLEDGER_ENVIRONMENTS must be JSON, e.g."),
])
def test_a_bad_setting_is_one_line_naming_it_and_what_it_takes(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str,
) -> None:
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = cli("runs", "list")
    assert (result.code, result.stdout) == (3, "")
    assert result.stderr.startswith(f"error: {problem}") and result.stderr.count("\n") == 1


def test_secrets_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTLEDGER_SIGNING_KEY", "key-that-signs")
    settings = Settings(token="tl_secret_token")
    assert "key-that-signs" not in repr(settings) and "tl_secret_token" not in repr(settings)
    assert (settings.signing_key, settings.token.get_secret_value() if settings.token else None) == (
        "key-that-signs", "tl_secret_token")
