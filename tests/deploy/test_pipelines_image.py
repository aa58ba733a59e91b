"""The pipelines image: its Containerfile passes hadolint, runs as the CronJobs' user, and
the workflow that builds it is part of every release."""

import re
import subprocess

from tests.deploy.conftest import REPO, tool
from tests.deploy.kustomize import pod_spec, render_overlay
from tests.deploy.test_workflows import _runs, _workflow

CONTAINERFILE = REPO / "deploy" / "pipelines" / "Containerfile"


def test_the_containerfile_passes_hadolint_with_no_exceptions() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--failure-threshold", "info", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_the_cronjobs_user_with_the_jobs_extras() -> None:
    text = CONTAINERFILE.read_text()
    (uid,) = re.findall(r"^USER (\d+)$", text, re.M)
    assert '".[train,pipelines]"' in text
    assert 'ENTRYPOINT ["pokewatch"]' in text
    for overlay in ("dev", "prod"):
        for resource in render_overlay(REPO / "deploy" / "k8s" / "overlays" / overlay):
            spec = pod_spec(resource)
            if resource["kind"] == "CronJob" and spec is not None:
                assert spec["securityContext"]["runAsUser"] == int(uid)


def test_every_copied_path_exists() -> None:
    for source in re.findall(r"^COPY (.+) \S+$", CONTAINERFILE.read_text(), re.M):
        for path in source.split():
            assert (REPO / path).exists(), path


def test_releases_build_and_push_the_pipelines_image() -> None:
    release = _workflow("release.yml")
    assert release["jobs"]["pipelines-image"]["uses"] == "./.github/workflows/pipelines-image.yml"
    assert release["jobs"]["pipelines-image"]["needs"] == "test"
    assert set(release["jobs"]["release"]["needs"]) == {"bento", "pipelines-image"}
    workflow = _workflow("pipelines-image.yml")
    assert {"workflow_call", "workflow_dispatch"} <= set(workflow["on"])
    script = _runs(workflow, "build")
    for expected in (
        "--file deploy/pipelines/Containerfile",
        "linux/amd64,linux/arm64",
        "--push",
        '"$IMAGE:sha-$SHORT_SHA"',
        '"$IMAGE:latest"',
        "-pipelines",
    ):
        assert expected in script, expected
