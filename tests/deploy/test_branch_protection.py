"""scripts/branch_protection.sh: shellcheck-clean (as every script here), and the checks it
requires are the real job names of the workflows."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from tests.deploy.conftest import REPO, tool

SCRIPT = REPO / "scripts" / "branch_protection.sh"


def test_every_shell_script_passes_shellcheck() -> None:
    scripts = [*sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]
    result = subprocess.run(
        [tool("shellcheck"), *map(str, scripts)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dry_run() -> list[tuple[str, str, dict[str, object]]]:
    """The requests the script would send, parsed."""
    printed = subprocess.run(
        ["bash", str(SCRIPT), "owner/repo"],
        env={**os.environ, "DRY_RUN": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    decoder = json.JSONDecoder()
    requests = []
    rest = printed
    while rest.strip():
        head, _, rest = rest.lstrip().partition("\n")
        method, path = head.split()
        body, end = decoder.raw_decode(rest.lstrip())
        rest = rest.lstrip()[end:]
        requests.append((method, path, body))
    return requests


def test_the_required_checks_are_the_workflows_job_names() -> None:
    (method, path, protection), (tag_method, tag_path, ruleset) = dry_run()
    assert (method, path) == ("PUT", "repos/owner/repo/branches/main/protection")
    jobs = {
        job
        for name in ("test.yml", "quality.yml")
        for job in yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())["jobs"]
    }
    checks = protection["required_status_checks"]
    assert isinstance(checks, dict)
    assert set(checks["contexts"]) == jobs
    assert protection["required_linear_history"] is True
    assert protection["allow_force_pushes"] is False
    reviews = protection["required_pull_request_reviews"]
    assert isinstance(reviews, dict)
    assert reviews["required_approving_review_count"] >= 1
    assert (tag_method, tag_path) == ("POST", "repos/owner/repo/rulesets")
    assert {"type": "required_signatures"} in ruleset["rules"]  # type: ignore[operator]
