"""`testledger rerun KEY`: a new run of the same pipeline version, environment and parameters that executes
only the cases that did not pass (with the cases they need), linked to the original, on both stores."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testledger.db.engine import Store
from testledger.db.types import utcnow
from testledger.errors import Conflict, Invalid
from testledger.provenance import Provenance
from testledger.services import execution, runs
from testledger.services.rerun import NothingToRerun, rerun_cases

ENVS = ["dev", "staging", "prod", "local", "ci"]

PIPELINE = """\
key: shop
environment: staging
parameters:
  region: {value: eu}
  token: {secret: true}
cases:
  - key: setup
    command: echo "setting up ${{ params.region }}"
  - key: login
    command: "true"
  - key: cart
    needs: [setup]
    command: test -f fixed && test "$TL_PARAM_TOKEN" = s3cr3t && test "$TL_PARAM_REGION" = us
  - key: report
    needs: [cart]
    command: "true"
"""


def _show(cli: Callable[..., Any], key: str) -> dict[str, Any]:
    shown = cli("runs", "show", key, "--json")
    assert shown.code == 0, shown.stderr
    result: dict[str, Any] = json.loads(shown.stdout)
    return result


def _statuses(run: dict[str, Any]) -> dict[str, str]:
    return {c["case_key"]: c["status"] for c in run["cases"]}


@pytest.fixture
def failed_run(cli: Callable[..., Any], pipeline_file: Callable[..., Path]) -> tuple[str, Path]:
    """A run of `shop` in which `cart` failed (so `report`, which needs it, never ran)."""
    path = pipeline_file(PIPELINE)
    first = cli("run", str(path), "-P", "region=us", "-P", "token=s3cr3t", "--json")
    assert first.code == 1, first.stderr
    run = json.loads(first.stdout)
    assert _statuses(run) == {"setup": "PASSED", "login": "PASSED", "cart": "FAILED", "report": "SKIPPED"}
    return run["execution_id"], path.parent


def test_rerun_runs_only_what_did_not_pass_with_its_needs_linked_to_the_original(
    cli: Callable[..., Any], failed_run: tuple[str, Path]
) -> None:
    key, folder = failed_run
    before = _show(cli, key)
    (folder / "fixed").write_text("")

    done = cli("rerun", key, "-P", "token=s3cr3t", "--json")

    assert done.code == 0, done.stderr
    rerun = json.loads(done.stdout)
    assert f"reruns 3 cases of {key}: setup (needed by 'cart'), cart (failed), report (not run: needs 'cart'" in (
        done.stderr)
    assert rerun["rerun_of"] == key and rerun["execution_id"] != key
    assert _statuses(rerun) == {"setup": "PASSED", "cart": "PASSED", "report": "PASSED"}
    assert [c["index"] for c in rerun["cases"]] == [0, 1, 2]
    # Same version, environment and parameters; the secret is still never stored.
    assert (rerun["pipeline_version"], rerun["environment"]) == (before["pipeline_version"], "staging")
    assert rerun["parameters"] == before["parameters"] == {"region": "us", "token": "***"}
    assert "s3cr3t" not in json.dumps(rerun)
    # The original run is as it was, and `runs show` names the link.
    assert _show(cli, key) == before
    assert f"Rerun of: {key}" in cli("runs", "show", rerun["execution_id"]).stdout


def test_a_secret_given_by_param_must_be_given_again_and_others_cannot_change(
    cli: Callable[..., Any], failed_run: tuple[str, Path]
) -> None:
    key, _folder = failed_run
    before = cli("runs", "list", "--json").stdout

    missing = cli("rerun", key)
    changed = cli("rerun", key, "-P", "token=s3cr3t", "-P", "region=eu")

    assert missing.code == 3 and missing.stderr.count("\n") == 1
    assert f"secret parameter 'token' of run '{key}' was passed when it started and is never stored" in missing.stderr
    assert "--param token=VALUE" in missing.stderr
    assert changed.code == 3 and "parameter 'region' is not secret" in changed.stderr
    assert cli("runs", "list", "--json").stdout == before  # nothing was created


def test_a_rerun_that_fails_again_exits_1_and_reruns_of_reruns_follow_the_chain(
    cli: Callable[..., Any], failed_run: tuple[str, Path]
) -> None:
    key, folder = failed_run
    again = cli("rerun", key, "-P", "token=wrong", "--json")
    assert again.code == 1
    second = json.loads(again.stdout)
    assert _statuses(second) == {"setup": "PASSED", "cart": "FAILED", "report": "SKIPPED"}

    (folder / "fixed").write_text("")
    third = cli("rerun", second["execution_id"], "-P", "token=s3cr3t", "--json")
    assert third.code == 0, third.stderr
    assert json.loads(third.stdout)["rerun_of"] == second["execution_id"]

    nothing = cli("rerun", json.loads(third.stdout)["execution_id"])
    assert nothing.code == 0 and nothing.stderr == ""
    assert nothing.stdout == f"run '{json.loads(third.stdout)['execution_id']}' has nothing to rerun: all 3 of its " \
                             "cases passed\n"


def test_all_reruns_every_case_and_a_passed_run_has_nothing_to_rerun(
    cli: Callable[..., Any], pipeline_file: Callable[..., Path]
) -> None:
    path = pipeline_file("key: ok\ncases:\n  - {key: a, command: 'true'}\n  - {key: b, command: 'true'}\n")
    key = json.loads(cli("run", str(path), "--json").stdout)["execution_id"]

    nothing = cli("rerun", key)
    everything = cli("rerun", key, "--all", "--json")

    assert (nothing.code, nothing.stdout) == (0, f"run '{key}' has nothing to rerun: all 2 of its cases passed\n")
    assert everything.code == 0, everything.stderr
    assert _statuses(json.loads(everything.stdout)) == {"a": "PASSED", "b": "PASSED"}
    assert len(json.loads(cli("runs", "list", "--json").stdout)) == 2


def test_ingested_and_unfinished_runs_say_what_to_do(
    cli: Callable[..., Any], tmp_path: Path, store_url: str, home: Path
) -> None:
    report = tmp_path / "junit.xml"
    report.write_text('<testsuite name="s"><testcase classname="a" name="b"><failure message="x"/></testcase>'
                      "</testsuite>")
    ingested = json.loads(cli("ingest", str(report), "--pipeline", "api", "--json").stdout)["execution_id"]
    opened = json.loads(cli("runs", "start", "--pipeline", "api", "--json").stdout)["execution_id"]
    store = Store(store_url)
    try:
        pending = _pending_run(store)
    finally:
        store.dispose()

    results = {key: cli("rerun", key) for key in (ingested, opened, pending)}

    assert results[ingested].code == 3
    assert results[ingested].stderr == (
        f"error: run '{ingested}' was ingested from reports, so testledger has no cases to execute again: rerun its "
        "tests where they ran, or define them in a pipeline file and `testledger run` it\n")
    assert results[opened].code == 3 and "was opened by `runs start`" in results[opened].stderr
    assert results[pending].code == 3 and results[pending].stderr == (
        f"error: run '{pending}' is still pending: wait for it to finish, or cancel it (`testledger cancel "
        f"{pending}`), then rerun it\n")
    assert cli("rerun", "WKS-0101-999").code == 4


def _pending_run(store: Store) -> str:
    from testledger.pipelinefile import parse_pipeline
    from testledger.services.pipelines import apply_pipeline

    with store.write() as db:
        apply_pipeline(db, workspace="WKS", document=parse_pipeline("key: p\ncases:\n  - {key: a, command: 'true'}\n"),
                       actor="t")
        return execution.create_pipeline_run(db, workspace="WKS", pipeline_key="p", provenance=Provenance(actor="t"),
                                             allowed_environments=ENVS).execution_id


def test_a_stuck_rerun_is_repaired_with_only_its_own_cases(
    store: Store, cli: Callable[..., Any], failed_run: tuple[str, Path]
) -> None:
    key, folder = failed_run
    with store.write() as db:
        launched = rerun_cases(db, workspace="WKS", key=key, provenance=Provenance(actor="t"),
                               allowed_environments=ENVS, workdir=folder, parameters={"token": "x"})
        execution.start_run(db, key=launched.run_key, executor=f"local:{socket.gethostname()}:999999999")
    with store.write() as db:
        assert execution.repair_stuck_runs(db, now=utcnow(), stale_after=60) == [launched.run_key]
    passed = _passed_run(cli, folder)
    with store.read() as db:
        repaired = runs.get_execution(db, workspace="WKS", key=launched.run_key)
        with pytest.raises(NothingToRerun):
            rerun_cases(db, workspace="WKS", key=passed, provenance=Provenance(actor="t"),
                        allowed_environments=ENVS, workdir=folder)
    assert [(c.case_key, c.status) for c in repaired.cases or []] == [
        ("setup", "ERROR"), ("cart", "ERROR"), ("report", "ERROR")]


def _passed_run(cli: Callable[..., Any], folder: Path) -> str:
    path = folder / "ok.yaml"
    path.write_text("key: ok\ncases:\n  - {key: a, command: 'true'}\n")
    key: str = json.loads(cli("run", str(path), "--json").stdout)["execution_id"]
    return key


def test_the_service_refuses_bad_input_before_creating_anything(store: Store, failed_run: tuple[str, Path]) -> None:
    key, folder = failed_run
    with store.write() as db:
        with pytest.raises(Invalid, match="unknown parameter 'nope'"):
            rerun_cases(db, workspace="WKS", key=key, provenance=Provenance(actor="t"), allowed_environments=ENVS,
                        workdir=folder, parameters={"nope": "1"})
        with pytest.raises(Invalid, match="--parallel must be between 1 and 256"):
            rerun_cases(db, workspace="WKS", key=key, provenance=Provenance(actor="t"), allowed_environments=ENVS,
                        workdir=folder, parameters={"token": "x"}, parallelism=0)
    with store.read() as db:
        assert len(runs.list_executions(db, workspace="WKS").items) == 1
    assert issubclass(NothingToRerun, Conflict)


def test_a_pytest_case_whose_tests_failed_reruns_whole_with_its_sub_results_numbered_anew(
    local_cli: Callable[..., Any], local_run: Callable[..., Any], pipeline_file: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_sample.py").write_text(
        "import pathlib\n\ndef test_good():\n    pass\n\n"
        "def test_bad():\n    assert pathlib.Path(__file__).parents[1].joinpath('fixed').exists(), 'not fixed'\n"
    )
    path = pipeline_file("""\
        key: py
        cases:
          - {key: first, command: "true"}
          - key: unit
            pytest: {target: suite, args: ["-p", "no:cacheprovider"]}
        """)
    first = local_run(path)
    assert first.case("unit")["status"] == "FAILED"
    (tmp_path / "fixed").write_text("")

    done = local_cli("rerun", first.run["execution_id"], "--json")

    assert done.code == 0, done.stderr
    rerun = json.loads(done.stdout)
    assert [(c["index"], c["parent_index"], c["name"], c["status"]) for c in rerun["cases"]] == [
        (0, None, "unit", "PASSED"), (1, 0, "test_good", "PASSED"), (2, 0, "test_bad", "PASSED")]
    assert rerun["totals"]["tests"] == 2 and rerun["rerun_of"] == first.run["execution_id"]
