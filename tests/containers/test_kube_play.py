"""`podman kube play` of the rendered dev overlay: the objects podman can run.

Podman runs Deployments, ConfigMaps and PersistentVolumeClaims; it has no CronJob,
HorizontalPodAutoscaler, PodDisruptionBudget, NetworkPolicy, Ingress, StatefulSet,
Namespace or custom resources (the PrometheusRule), and Services only name ports. Podman
4.3.1 (Debian bookworm's) also cannot use a Secret the way Kubernetes does: it mounts a
Secret's data base64-encoded and reads `secretKeyRef` env as base64 JSON, so here the
keys file comes from a ConfigMap of the same name and the Redis URL is a plain value. With
host networking (no bridge on these machines) it refuses container ports, so the probes
name the port by number. Everything else is the overlay's Deployment as rendered: the
image's user, the read-only root filesystem, dropped capabilities, no privilege
escalation, the emptyDir /tmp, the read-only data volume, the configuration ConfigMaps.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.containers import engine
from tests.deploy.kustomize import pod_spec, render_overlay
from tests.e2e.conftest import free_port

# Building the images (first test of the session) takes minutes.
pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]

RUNS = {"ConfigMap", "PersistentVolumeClaim", "Deployment"}
OVERLAY = engine.REPO / "deploy" / "k8s" / "overlays" / "dev"


def runnable(
    resources: list[dict[str, Any]], image: str, keys: str, port: int
) -> list[dict[str, Any]]:
    """The overlay's objects podman can run, adapted as the module docstring says."""
    kept = [copy.deepcopy(r) for r in resources if r["kind"] in RUNS]
    for resource in kept:
        spec = pod_spec(resource)
        if spec is None or resource["metadata"]["name"] != "pokewatch":
            continue
        resource["spec"]["replicas"] = 1
        (container,) = spec["containers"]
        container["image"] = image
        container["imagePullPolicy"] = "Never"
        container.pop("ports")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            container[probe]["httpGet"]["port"] = port
        container["env"].append({"name": "BENTOML_PORT", "value": str(port)})
        container["env"] = [
            {"name": "POKEWATCH_REDIS__URL", "value": "redis://127.0.0.1:6379/9"}
            if item["name"] == "POKEWATCH_REDIS__URL"
            else item
            for item in container["env"]
            if "secretKeyRef" not in item.get("valueFrom", {})
            or item["name"] == "POKEWATCH_REDIS__URL"
        ]
        for volume in spec["volumes"]:
            if "secret" in volume:
                secret = volume.pop("secret")
                volume["configMap"] = {"name": secret["secretName"], "items": secret["items"]}
    kept.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "pokewatch-secrets"},
            "data": {"keys.json": keys},
        }
    )
    return kept


def test_kube_play_runs_the_dev_overlays_deployment(
    api_image: str, keys_dir: Path, api_key: str, tmp_path: Path
) -> None:
    resources = render_overlay(OVERLAY)
    cannot = sorted({r["kind"] for r in resources} - RUNS)
    print(f"podman kube play cannot run: {', '.join(cannot)}")
    assert {"CronJob", "HorizontalPodAutoscaler", "NetworkPolicy"} <= set(cannot)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    keys = (keys_dir / "keys.json").read_text()
    document = tmp_path / "dev.yaml"
    document.write_text(yaml.safe_dump_all(runnable(resources, api_image, keys, port)))
    engine.podman("kube", "play", "--network", "host", str(document), timeout=300)
    try:
        engine.wait_for(f"{base}/readyz", 180)
        answer = httpx.post(
            f"{base}/fair_price", json={"card_id": "tcg-133777"}, headers={"X-API-Key": api_key}
        )
        assert answer.status_code == 200, answer.text
        assert httpx.post(f"{base}/fair_price", json={}).status_code == 401
        (name,) = [
            line
            for line in engine.podman("ps", "--format", "{{.Names}}").stdout.split()
            if line.endswith("-pokewatch")
        ]
        (inspected,) = json.loads(engine.podman("inspect", name).stdout)
        config = inspected["HostConfig"]
        assert config["ReadonlyRootfs"] is True
        assert inspected["Config"]["User"] == "1034:1034"
        assert "no-new-privileges" in " ".join(config.get("SecurityOpt") or [])
        assert len(config["CapDrop"]) > 10  # ALL, spelled out
    finally:
        engine.podman("kube", "down", str(document), check=False)
        engine.podman("volume", "rm", "-f", "pokewatch-data", check=False)
