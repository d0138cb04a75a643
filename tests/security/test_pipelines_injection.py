"""Parameters reach a shell only as data: no quoting context lets a value run as code, and a secret
never appears on a case's command line (`ps`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipelines_support import run_json, write_pipeline

ATTACKS = [
    "$(touch pwned)",
    "`touch pwned`",
    "'; touch pwned; echo '",
    '"; touch pwned; echo "',
    "x; touch pwned #",
    "$(touch pwned)\nEOF\ntouch pwned\n",
    "*",
]

PIPELINE = """\
key: inject
parameters:
  NAME: DECLARED
cases:
  - key: unquoted
    command: printf '[%s]' ${{ params.NAME }} > out-unquoted.txt
  - key: double
    command: printf '%s' "[${{ params.NAME }}]" > out-double.txt
  - key: single
    command: printf '%s' '[${{ params.NAME }}]' > out-single.txt
  - key: mixed
    command: printf '%s' "a'${{ params.NAME }}'b" 'c"${{ params.NAME }}"d' > out-mixed.txt
  - key: subshell
    command: printf '%s' "$(printf '%s' "[${{ params.NAME }}]")" > out-subshell.txt
  - key: heredoc
    command: |
      cat > out-heredoc.txt <<EOF
      [${{ params.NAME }}]
      EOF
"""

EXPECTED = {
    "unquoted": "[{v}]", "double": "[{v}]", "single": "[{v}]", "mixed": "a'{v}'bc\"{v}\"d",
    "subshell": "[{v}]", "heredoc": "[{v}]\n",
}


def _pwned(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("pwned*")]


@pytest.mark.parametrize("name", ["x", "s"], ids=["plain", "secret"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_a_parameter_is_data_in_every_quoting_context(
    cli: Any, tmp_path: Path, attack: str, name: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    declared = "harmless" if name == "x" else "{secret: true}"
    path = write_pipeline(work, PIPELINE.replace("NAME", name).replace("DECLARED", declared))
    ran = run_json(cli, str(path), "--param", f"{name}={attack}")
    assert _pwned(tmp_path) == [], "a parameter value ran as shell code"
    assert ran.code == 0, [(c["case_key"], c["error"]) for c in ran.run["cases"] if c["status"] != "PASSED"]
    for key, template in EXPECTED.items():
        assert (work / f"out-{key}.txt").read_text() == template.format(v=attack), key


def test_a_value_given_in_the_file_is_data_too(cli: Any, tmp_path: Path) -> None:
    path = write_pipeline(tmp_path, """\
        key: inject-default
        parameters:
          x: "$(touch pwned); `touch pwned`"
        cases:
          - {key: echo, command: "echo ${{ params.x }}; echo '${{ params.x }}'"}
        """)
    assert run_json(cli, str(path)).code == 0
    assert _pwned(tmp_path) == []


def test_a_secret_is_never_on_a_case_command_line(cli: Any, tmp_path: Path) -> None:
    """What `ps` shows: the command line of every process but testledger's own (which holds `--param`)."""
    # Unique to this test's run: the other store's variant may be running beside it, its own
    # `testledger run --param` (a command line this test does not exempt) holding its own secret.
    secret = f"ps-visible-s3cret-{os.getpid()}-{time.monotonic_ns()}"
    path = write_pipeline(tmp_path, """\
        key: ps
        parameters:
          s: {secret: true}
        cases:
          - key: sleeper
            command: echo $$ > case.pid; sleep 3; test -n "${{ params.s }}" && echo ${{ params.s }} >/dev/null
        """)
    process = subprocess.Popen(
        [sys.executable, "-m", "testledger", "run", str(path), "--param", f"s={secret}"],
        env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        pid_file, deadline = tmp_path / "case.pid", time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().endswith("\n")) and time.monotonic() < deadline:
            time.sleep(0.05)
        shell = int(pid_file.read_text())
        shell_line = Path(f"/proc/{shell}/cmdline").read_bytes()
        assert b"sleep 3" in shell_line  # the running case's own `sh -c` line
        seen = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != process.pid:
                try:
                    seen[entry.name] = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
        assert [pid for pid, line in seen.items() if secret.encode() in line] == []
        environ = Path(f"/proc/{shell}/environ").read_bytes().split(b"\0")
        assert f"TL_PARAM_S={secret}".encode() in environ  # it arrives through the environment
    finally:
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("command: |\n      cat <<'EOF'\n      ${{ params.s }}\n      EOF", "quoted here-document"),
        ("pytest: {target: tests, args: ['--token=${{ params.s }}']}", "cannot be on pytest's command line"),
        ("command: {run: 'true', env: {TL_PARAM_S: forged}}", "variables named TL_PARAM_*"),
        # What no process can be given fails when the file is read, not at every run of it.
        ("command: {run: 'true', env: {'A=B': x}}", "name cannot be empty or hold '='"),
        ("command: {run: 'true', env: {'': x}}", "name cannot be empty or hold '='"),
        ('command: {run: "true", env: {A: "x\\0y"}}', "value cannot hold a NUL character"),
        ("command: 'echo $((1 + ${{ params.s }}))'", "inside $((...))"),
    ],
)
def test_uses_that_would_defeat_the_rules_are_refused(tmp_path: Path, cli: Any, case: str, message: str) -> None:
    text = f"key: refuse\nparameters:\n  s: {{secret: true}}\ncases:\n  - key: a\n    {case}\n"
    path = write_pipeline(tmp_path, text)
    result = cli("pipelines", "validate", str(path))
    assert result.code == 3 and message in result.stderr and f"{path}:" in result.stderr, result.stderr


def test_parameters_that_would_share_a_variable_are_refused(tmp_path: Path, cli: Any) -> None:
    text = "key: clash\nparameters: {base-url: a, base_url: b}\ncases:\n  - {key: a, command: 'true'}\n"
    path = write_pipeline(tmp_path, text)
    result = cli("pipelines", "validate", str(path))
    assert result.code == 3 and "TL_PARAM_BASE_URL" in result.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.sampled_from(list("$`'\"\\;&|()<>{}*?~#! \n\tEOFab")), max_size=30))
def test_any_value_arrives_verbatim_in_every_context(tmp_path: Path, value: str) -> None:
    """The command text as the case's shell gets it: each context prints exactly the value, nothing else runs."""
    from testledger.execute.parameters import parameter_environment, shell_text

    template = (
        "printf '<%s>' ${{ params.x }} \"${{ params.x }}\" '${{ params.x }}' \"$(printf %s \"${{ params.x }}\")\"\n"
        "cat <<EOF\n${{ params.x }}\nEOF\n"
    )
    done = subprocess.run(
        ["/bin/sh", "-c", shell_text(template)], cwd=tmp_path, capture_output=True, text=True, timeout=10,
        env={"PATH": os.environ["PATH"], **parameter_environment({"x": value})},
    )
    substituted = value.rstrip("\n")  # $(...) drops trailing new lines, as it does for any output
    assert done.stdout == f"<{value}>" * 3 + f"<{substituted}>{value}\n", done.stderr
    assert list(tmp_path.iterdir()) == []
