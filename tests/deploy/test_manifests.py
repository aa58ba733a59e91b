"""deploy/k8s: each overlay renders, validates against the Kubernetes schemas offline, and
keeps the promises of docs/deployment.md."""

import os
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from service.settings import ServiceSettings
from tests.deploy.conftest import REPO
from tests.deploy.kustomize import (
    KustomizeError,
    kubectl,
    pod_spec,
    render,
    render_overlay,
    render_with_kubectl,
    strategic_merge,
)
from tests.deploy.pod_security import violations

K8S = REPO / "deploy" / "k8s"
OVERLAYS = {"dev": "pokewatch-dev", "prod": "pokewatch", "staging": "pokewatch-staging"}
KUBERNETES_VERSION = "1.33.0"  # the oldest release these manifests are meant for
# Custom resources have no schema in kubernetes-validate: tests/deploy/test_monitoring.py
# checks the PrometheusRule against the rules promtool tests.
CUSTOM_KINDS = {"PrometheusRule"}

Resource = dict[str, Any]


def _one(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)}"
    return found[0]


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    name: str = request.param
    return name, render_overlay(K8S / "overlays" / name)


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, kubernetes_validate.latest_version()])
def test_every_rendered_resource_validates(
    overlay: tuple[str, list[Resource]], version: str
) -> None:
    _, resources = overlay
    for resource in resources:
        if resource["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(resource, version, strict=True)


def test_the_validator_rejects_a_bad_resource() -> None:
    deployment = _one(render_overlay(K8S / "overlays" / "prod"), "Deployment", "pokewatch")
    deployment["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_everything_lands_in_the_overlay_namespace(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    namespace = OVERLAYS[name]
    _one(resources, "Namespace", namespace)
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace, resource["metadata"]
    kinds = {resource["kind"] for resource in resources}
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "CronJob",
        "ConfigMap",
        "PersistentVolumeClaim",
    }


def test_api_pods_are_locked_down_and_probed(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    deployment = _one(resources, "Deployment", "pokewatch")
    spec = pod_spec(deployment)
    assert spec is not None
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    # BentoML writes its scratch files under BENTOML_HOME: it must be on a writable volume.
    env = {item["name"]: item for item in container["env"]}
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert env["BENTOML_HOME"]["value"].startswith("/tmp/")
    assert "/tmp" in mounts


def test_shutdown_outlasts_the_request_timeout(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    spec = pod_spec(_one(resources, "Deployment", "pokewatch"))
    assert spec is not None
    settings = _deployed_settings(resources)
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pre_stop + settings.service.timeout_seconds


def _deployed_settings(resources: list[Resource]) -> ServiceSettings:
    """The settings the pods get: the ConfigMap's file plus the POKEWATCH_* variables."""
    config = _one(resources, "ConfigMap", "pokewatch-config")["data"]["configuration.yaml"]
    variables = _one(resources, "ConfigMap", "pokewatch-env")["data"]
    env = {
        **variables,
        "POKEWATCH_CONFIG": "",  # replaced below by a file holding the ConfigMap's text
        "POKEWATCH_REDIS__URL": "redis://redis.example:6379/0",  # from the Secret
    }
    directory = Path(os.environ["BENTOML_HOME"]).parent
    path = directory / f"deployed-configuration-{os.getpid()}.yaml"
    path.write_text(config)
    env["POKEWATCH_CONFIG"] = str(path)
    saved = {key: os.environ.get(key) for key in env}
    # The test session's own overrides (keys file, quotas) must not leak into this check.
    hidden = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("POKEWATCH_")}
    try:
        os.environ.update(env)
        return ServiceSettings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.update(hidden)
        path.unlink()


def test_the_pods_configuration_is_valid(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    settings = _deployed_settings(resources)
    variables = _one(resources, "ConfigMap", "pokewatch-env")["data"]
    assert variables["POKEWATCH_CONFIG"] == "/etc/pokewatch/config/configuration.yaml"
    assert settings.security.rate_limit.backend == "redis"  # shared limits across replicas
    assert settings.security.auth_mode == "enforce"
    assert settings.security.key_env == {"dev": "dev", "prod": "live", "staging": "staging"}[name]
    assert settings.security.keys_file == "/etc/pokewatch/secrets/keys.json"
    assert settings.service.log_format == "json"  # one object a line for the log collector


def test_references_resolve(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    deployment = _one(resources, "Deployment", "pokewatch")
    spec = pod_spec(deployment)
    assert spec is not None
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for kind in ("Service",):
        assert _one(resources, kind, "pokewatch")["spec"]["selector"].items() <= labels.items()
    pdb = _one(resources, "PodDisruptionBudget", "pokewatch")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(resources, "HorizontalPodAutoscaler", "pokewatch")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "pokewatch",
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    policy = _one(resources, "NetworkPolicy", "pokewatch-api")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (ingress,) = policy["spec"]["ingress"]
    assert [port["port"] for port in ingress["ports"]] == [
        spec["containers"][0]["ports"][0]["containerPort"]
    ]
    # Config maps come from the kustomization; the Secret is created by hand (documented).
    for volume in spec["volumes"]:
        if "configMap" in volume:
            _one(resources, "ConfigMap", volume["configMap"]["name"])
    for job in ("pokewatch-daily", "pokewatch-retrain"):
        (claim,) = [
            volume["persistentVolumeClaim"]["claimName"]
            for volume in pod_spec(_one(resources, "CronJob", job))["volumes"]  # type: ignore[index]
            if "persistentVolumeClaim" in volume
        ]
        _one(resources, "PersistentVolumeClaim", claim)


def test_dev_runs_redis_and_prod_points_outside() -> None:
    dev = render_overlay(K8S / "overlays" / "dev")
    redis = _one(dev, "StatefulSet", "redis")
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert "--appendonly" in redis["spec"]["template"]["spec"]["containers"][0]["args"]
    redis_policy = _one(dev, "NetworkPolicy", "redis")
    assert redis_policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    dev_egress = _one(dev, "NetworkPolicy", "pokewatch-api")["spec"]["egress"]
    assert dev_egress[0]["to"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}
    ]

    prod = render_overlay(K8S / "overlays" / "prod")
    assert not [r for r in prod if r["kind"] == "StatefulSet"]
    prod_egress = _one(prod, "NetworkPolicy", "pokewatch-api")["spec"]["egress"]
    assert "ipBlock" in prod_egress[0]["to"][0]
    assert prod_egress[0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    image = pod_spec(_one(prod, "Deployment", "pokewatch"))["containers"][0]["image"]  # type: ignore[index]
    assert not image.endswith(":latest")
    assert _one(prod, "PodDisruptionBudget", "pokewatch")["spec"] == {
        "minAvailable": 2,
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "pokewatch",
                "app.kubernetes.io/component": "api",
            }
        },
    }


def test_the_base_configuration_is_a_valid_configuration() -> None:
    """deploy/k8s/base/configuration.yaml has every section the repository's file has."""
    deployed = yaml.safe_load((K8S / "base" / "configuration.yaml").read_text())
    repository = yaml.safe_load((REPO / "configuration.yaml").read_text())
    assert set(deployed) == set(repository)


def test_the_renderer_refuses_what_it_does_not_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nreplicas: [{name: x}]\n")
    with pytest.raises(KustomizeError, match="replicas"):
        render(tmp_path)


def test_strategic_merge_by_key_and_null_deletes() -> None:
    target = {
        "containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}],
        "keep": 1,
        "drop": 2,
        "args": ["x", "y"],
    }
    patch = {
        "containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}],
        "drop": None,
        "args": ["z"],
    }
    assert strategic_merge(target, patch) == {
        "containers": [
            {
                "name": "a",
                "image": "x",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            }
        ],
        "keep": 1,
        "args": ["z"],
    }


def _pod_templates(resources: list[Resource]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{resource['kind']}/{resource['metadata']['name']}", spec)
        for resource in resources
        if (spec := pod_spec(resource)) is not None
    ]


def test_every_pod_passes_the_restricted_pod_security_profile(
    overlay: tuple[str, list[Resource]],
) -> None:
    name, resources = overlay
    namespace = _one(resources, "Namespace", OVERLAYS[name])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    templates = _pod_templates(resources)
    assert {where for where, _ in templates} >= {
        "Deployment/pokewatch",
        "CronJob/pokewatch-daily",
        "CronJob/pokewatch-retrain",
    }
    for where, spec in templates:
        assert violations(spec) == [], where


def test_the_pod_security_check_catches_what_the_admission_refuses() -> None:
    cronjob = _one(render_overlay(K8S / "overlays" / "prod"), "CronJob", "pokewatch-daily")
    spec = pod_spec(cronjob)
    assert spec is not None
    container = spec["containers"][0]
    del container["securityContext"]["allowPrivilegeEscalation"]
    container["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    del spec["securityContext"]["seccompProfile"]
    assert violations(spec) == [
        "volume host: type ['hostPath'] is not allowed",
        "containers[daily]: allowPrivilegeEscalation must be false",
        "containers[daily]: seccompProfile must be RuntimeDefault or Localhost",
        "containers[daily]: capabilities.drop must include ALL",
        "containers[daily]: capabilities.add ['NET_ADMIN'] beyond NET_BIND_SERVICE",
    ]


def _env(resources: list[Resource], spec: dict[str, Any]) -> dict[str, str]:
    """A container's environment: its envFrom ConfigMaps, then its own values."""
    (container,) = spec["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(_one(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
    env.update(
        {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    )
    return env


def test_the_jobs_write_where_the_api_reads(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    api = pod_spec(_one(resources, "Deployment", "pokewatch"))
    assert api is not None
    api_env = _env(resources, api)
    store = api_env["POKEWATCH_STORE__PATH"]
    api_mounts = {m["mountPath"]: m for m in api["containers"][0]["volumeMounts"]}
    (data_mount,) = [path for path in api_mounts if store.startswith(path + "/")]
    assert api_mounts[data_mount].get("readOnly") is True
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in api["volumes"]
        if "persistentVolumeClaim" in v
    }
    api_claim = claims[api_mounts[data_mount]["name"]]
    for job in ("pokewatch-daily", "pokewatch-retrain"):
        spec = pod_spec(_one(resources, "CronJob", job))
        assert spec is not None
        env = _env(resources, spec)
        assert env["POKEWATCH_STORE__PATH"] == store
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert not mounts[data_mount].get("readOnly", False)
        job_claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert job_claims[mounts[data_mount]["name"]] == api_claim
        # Every path the pipeline writes is on that volume (none relative to the image's /app).
        for key in (
            "POKEWATCH_COLLECTOR__RAW_DIR",
            "POKEWATCH_COLLECTOR__CACHE_DIR",
            "POKEWATCH_COLLECTOR__STATE_DIR",
            "POKEWATCH_COLLECTOR__CATALOGUE_FILE",
            "ZENML_CONFIG_PATH",
        ):
            assert env[key].startswith(data_mount + "/"), key
        assert env["POKEWATCH_MLFLOW__TRACKING_URI"] == f"sqlite:///{data_mount}/mlruns/mlflow.db"
        assert spec["containers"][0]["image"].split(":")[0].endswith("pokewatch-pipelines")
    modes = _one(resources, "PersistentVolumeClaim", api_claim)["spec"]["accessModes"]
    assert modes == (["ReadWriteOnce"] if name == "dev" else ["ReadWriteMany"])


def test_the_jobs_run_the_commands_of_the_schedule() -> None:
    from pipelines.scheduling import job_commands
    from service.settings import ScheduleSettings

    resources = render_overlay(K8S / "overlays" / "prod")
    schedule = ScheduleSettings()
    commands = job_commands()
    for job, expression in (("daily", schedule.daily), ("retrain", schedule.retrain)):
        cronjob = _one(resources, "CronJob", f"pokewatch-{job}")
        assert cronjob["spec"]["schedule"] == expression
        assert cronjob["spec"]["timeZone"] == "Etc/UTC"
        spec = pod_spec(cronjob)
        assert spec is not None
        args = spec["containers"][0]["args"]
        expected = [str(part).replace(str(REPO) + "/", "") for part in commands[job][1:]]
        assert args == expected


def test_the_ingress_bounds_what_a_request_may_cost(overlay: tuple[str, list[Resource]]) -> None:
    _, resources = overlay
    ingress = _one(resources, "Ingress", "pokewatch")
    settings = _deployed_settings(resources)
    annotations = ingress["metadata"]["annotations"]
    size = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert size == f"{settings.security.max_body_bytes // 1_048_576}m"
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        seconds = int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"])
        assert settings.service.timeout_seconds < seconds <= settings.service.timeout_seconds + 10
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    service = _one(resources, "Service", backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}


def test_only_the_ingress_controller_and_prometheus_reach_the_api(
    overlay: tuple[str, list[Resource]],
) -> None:
    _, resources = overlay
    (rule,) = _one(resources, "NetworkPolicy", "pokewatch-api")["spec"]["ingress"]
    sources = rule["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    } in sources
    assert len(sources) == 2
    jobs = _one(resources, "NetworkPolicy", "pokewatch-jobs")["spec"]
    assert (jobs["policyTypes"], jobs["ingress"]) == (["Ingress"], [])
    selected = jobs["podSelector"]["matchLabels"].items()
    for job in ("pokewatch-daily", "pokewatch-retrain"):
        template = _one(resources, "CronJob", job)["spec"]["jobTemplate"]["spec"]["template"]
        assert selected <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("name", sorted(OVERLAYS))
def test_the_fallback_renders_what_kubectl_renders(name: str) -> None:
    if kubectl() is None:
        pytest.skip("kubectl is not installed: the overlays are rendered by the fallback")

    def by_name(resources: list[Resource]) -> dict[tuple[str, str], Resource]:
        return {(r["kind"], r["metadata"]["name"]): r for r in resources}

    directory = K8S / "overlays" / name
    assert by_name(render(directory)) == by_name(render_with_kubectl(directory))


def test_the_api_reaches_redis_postgresql_and_dns_in_every_overlay(
    overlay: tuple[str, list[Resource]],
) -> None:
    """An overlay's egress list replaces the base's: each must keep what the API calls."""
    _, resources = overlay
    egress = _one(resources, "NetworkPolicy", "pokewatch-api")["spec"]["egress"]
    ports = {(port["protocol"], port["port"]) for rule in egress for port in rule["ports"]}
    assert {("TCP", 6379), ("TCP", 5432), ("UDP", 53), ("TCP", 53)} <= ports
