"""GitHub Actions: every workflow passes actionlint, and the delivery promises hold."""

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import REPO, tool

WORKFLOWS = REPO / ".github" / "workflows"


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def _runs(workflow: dict[str, Any], job: str) -> str:
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def test_every_workflow_passes_actionlint() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in files} >= {
        "test.yml",
        "quality.yml",
        "bento-build.yml",
        "release.yml",
    }
    result = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, files)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(broken)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "nope" in result.stdout


def test_release_tests_then_builds_then_publishes() -> None:
    release = _workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*.*.*"]}}
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    assert jobs["bento"]["uses"] == "./.github/workflows/bento-build.yml"
    assert jobs["bento"]["needs"] == "test"
    assert set(jobs["release"]["needs"]) == {"bento", "pipelines-image"}
    assert "scripts/version.sh changelog" in _runs(release, "release")
    assert "workflow_call" in _workflow("test.yml")["on"]


def test_bento_build_pushes_both_platforms_and_smoke_tests_the_image() -> None:
    build = _workflow("bento-build.yml")
    assert {"workflow_call", "workflow_dispatch"} <= set(build["on"])
    assert build["permissions"]["packages"] == "write"
    script = _runs(build, "build")
    for expected in (
        "pokewatch train",
        'bentoml build --version "$VERSION"',
        "bentoml export",
        "--backend buildx",
        "platform=linux/amd64",
        "platform=linux/arm64",
        "--opt push",
        "cache-from=type=registry",
        '"$IMAGE:sha-$SHORT_SHA"',
        '"$IMAGE:latest"',
    ):
        assert expected in script, expected
    smoke = build["jobs"]["smoke"]
    assert smoke["needs"] == "build"
    assert "redis" in smoke["services"]
    checks = _runs(build, "smoke")
    for expected in ("/readyz", "/fair_price", "pokewatch keys create", "X-API-Key", "401"):
        assert expected in checks, expected


def test_dependabot_updates_pip_and_actions_weekly_in_groups() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {entry["package-ecosystem"]: entry for entry in config["updates"]}
    assert set(updates) == {"pip", "github-actions"}
    for entry in updates.values():
        assert entry["schedule"]["interval"] == "weekly"
        assert entry["groups"]


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    """Third-party code runs at a reviewed commit; dependabot moves the pin and the comment."""
    pinned = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*$")
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            if "uses:" not in line or "uses: ./" in line:
                continue
            assert pinned.match(line), f"{path.name}: {line.strip()}"
    for path in sorted(WORKFLOWS.glob("*.yml")):
        assert "docker/" not in path.read_text().replace("docker/pipelines", ""), path.name
    assert "github-actions" in (REPO / ".github" / "dependabot.yml").read_text()


def test_images_and_the_bento_get_build_provenance() -> None:
    for name, job in (("bento-build.yml", "build"), ("pipelines-image.yml", "build")):
        workflow = _workflow(name)
        assert workflow["permissions"]["id-token"] == "write"
        assert workflow["permissions"]["attestations"] == "write"
        steps = workflow["jobs"][job]["steps"]
        attested = [
            s["with"]
            for s in steps
            if s.get("uses", "").startswith("actions/attest-build-provenance@")
        ]
        assert {"subject-name", "subject-digest", "push-to-registry"} <= set(attested[0])
    bento_steps = _workflow("bento-build.yml")["jobs"]["build"]["steps"]
    assert any(s.get("with", {}).get("subject-path") == "dist/*.bento" for s in bento_steps)


def test_installs_are_cached() -> None:
    for name in ("test.yml", "quality.yml", "bento-build.yml"):
        text = (WORKFLOWS / name).read_text()
        assert "cache: pip" in text, name
        assert "path: ~/.cache/uv" in text, name


def test_every_push_to_main_builds_both_images_after_the_tests() -> None:
    main = _workflow("main.yml")
    assert main["on"] == {"push": {"branches": ["main"]}}
    jobs = main["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    assert jobs["bento"]["needs"] == jobs["pipelines-image"]["needs"] == "test"
    for name in ("bento-build.yml", "pipelines-image.yml"):
        runs = _runs(_workflow(name), "build")
        assert re.search(r'refs/heads/main \]\]; then\s+tags\+=\(-t "\$IMAGE:main"\)', runs)
        assert "sha-$SHORT_SHA" in runs
        assert "cache-from" in runs


def test_release_deploys_to_staging_with_rollback_then_notifies() -> None:
    release = _workflow("release.yml")
    staging = release["jobs"]["staging"]
    assert set(staging["needs"]) == {"bento", "pipelines-image"}
    script = _runs(release, "staging")
    assert "no KUBECONFIG_STAGING secret" in script  # skipped with a notice
    for step in ("rollout status", "rollout undo", "/readyz", "/fair_price"):
        assert step in script
    # The images it swaps in are the ones the staging overlay pins.
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/k8s/overlays/staging")],
        capture_output=True,
        text=True,
        check=False,
    )
    if rendered.returncode == 0:
        for pinned in re.findall(r"s#([^#]+)#", script):
            assert pinned in rendered.stdout
    notify = release["jobs"]["notify"]
    assert notify["if"] == "always()"
    assert set(notify["needs"]) == {"release", "staging"}
    assert "no NOTIFY_WEBHOOK_URL secret" in _runs(release, "notify")


def test_the_test_job_has_the_servers_the_tests_use() -> None:
    """Redis on 6379 and PostgreSQL on 5432 (`postgres`, trust), as .ci/run starts them."""
    services = _workflow("test.yml")["jobs"]["pytest"]["services"]
    assert services["redis"]["ports"] == ["6379:6379"]
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
