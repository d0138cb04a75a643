"""Who and what started a run: the acting user and the CI job's revision, branch, build URL and trigger.

Read from the environment, so every adapter that runs inside a CI job (the CLI, the pytest plugin)
records the same provenance; a server passes what its request says instead.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import TypedDict

from testledger.lifecycle import TRIGGER_GATEKEEPER, TRIGGER_MANUAL


class CiDefaults(TypedDict):
    revision: str | None
    branch: str | None
    build_url: str | None


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who started a run, how, and from which revision: the run fields every launcher fills.

    A plain dataclass, not a schema: the CLI builds one on every start, without importing pydantic.
    """

    actor: str
    trigger: str = TRIGGER_MANUAL
    revision: str | None = None
    branch: str | None = None
    build_url: str | None = None


def actor() -> str:
    """Who is acting: TESTLEDGER_ACTOR, the CI's actor, else the OS user."""
    for var in ("TESTLEDGER_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_REQUESTEDFOR"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def ci_defaults() -> CiDefaults:
    """Revision, branch and build URL from the CI's environment, used when no flag gives them."""
    env = os.environ
    build_url = None
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        build_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return {
        "revision": env.get("GITHUB_SHA") or env.get("CI_COMMIT_SHA") or env.get("GIT_COMMIT"),
        "branch": env.get("GITHUB_HEAD_REF") or env.get("GITHUB_REF_NAME") or env.get("CI_COMMIT_REF_NAME")
        or env.get("GIT_BRANCH"),
        "build_url": build_url or env.get("CI_JOB_URL") or env.get("BUILD_URL"),
    }


def in_ci() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BUILD_URL"))


def default_environment() -> str:
    """The environment of a run that names none: `ci` inside a CI job, else `local` (every launcher)."""
    return "ci" if in_ci() else "local"


def default_trigger() -> str:
    """`gatekeeper` (the seed's CI/CD integration trigger) inside a CI job, else `manual`."""
    return TRIGGER_GATEKEEPER if in_ci() else TRIGGER_MANUAL


def from_environment(
    *, trigger: str | None = None, revision: str | None = None, branch: str | None = None,
    build_url: str | None = None,
) -> Provenance:
    """The provenance of a run started here: what the caller gives, else what the CI job says."""
    ci = ci_defaults()
    return Provenance(
        actor=actor(), trigger=trigger or default_trigger(), revision=revision or ci["revision"],
        branch=branch or ci["branch"], build_url=build_url or ci["build_url"],
    )
