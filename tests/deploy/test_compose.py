"""compose.yaml and .env.example (no Docker here: the structure, not a run)."""

import re
from typing import Any

import yaml

from tests.deploy.conftest import REPO


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return loaded


def test_services_and_profiles() -> None:
    services = _compose()["services"]
    assert set(services) == {"redis", "pokewatch", "pipelines", "mlflow", "prometheus", "grafana"}
    redis = services["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "redis-data:/data" in redis["volumes"]
    api = services["pokewatch"]
    assert api["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert api["environment"]["POKEWATCH_SECURITY__RATE_LIMIT__BACKEND"] == "redis"
    assert api["read_only"] is True
    mounts = {volume.rsplit(":", 2)[-2] for volume in api["volumes"]}
    assert mounts == {"/data", "/etc/pokewatch/configuration.yaml", "/etc/pokewatch/keys"}
    assert all(volume.endswith(":ro") for volume in api["volumes"])
    assert api["environment"]["POKEWATCH_CONFIG"] == "/etc/pokewatch/configuration.yaml"
    assert api["environment"]["POKEWATCH_SECURITY__KEYS_FILE"].startswith("/etc/pokewatch/keys/")
    assert services["mlflow"]["profiles"] == ["mlflow"]


def test_only_the_api_is_published_beyond_this_machine() -> None:
    """MLflow, Prometheus and Grafana have no authentication: loopback only."""
    services = _compose()["services"]
    assert services["pokewatch"]["ports"] == ["${POKEWATCH_PORT:-3000}:3000"]
    for name in ("mlflow", "prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name


def test_env_example_documents_every_variable_compose_reads() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (REPO / "compose.yaml").read_text()))
    documented = set(
        re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M)
    )
    assert used, "compose.yaml reads no variables?"
    assert used <= documented, sorted(used - documented)


def test_env_is_never_committed() -> None:
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_the_jobs_share_the_store_with_the_api() -> None:
    compose = _compose()
    services = compose["services"]
    api, jobs = services["pokewatch"], services["pipelines"]
    assert "pokewatch-data:/data:ro" in api["volumes"]
    assert "pokewatch-data:/data" in jobs["volumes"]
    assert "pokewatch-data" in compose["volumes"]
    store = api["environment"]["POKEWATCH_STORE__PATH"]
    assert jobs["environment"]["POKEWATCH_STORE__PATH"] == store
    assert store.startswith("/data/")
    for key, value in jobs["environment"].items():
        if key.startswith("POKEWATCH_COLLECTOR__") or key == "ZENML_CONFIG_PATH":
            assert value.startswith("/data/"), key
    assert jobs["build"]["dockerfile"] == "deploy/pipelines/Containerfile"
    assert (REPO / jobs["build"]["dockerfile"]).is_file()
    assert jobs["command"] == ["schedule", "run", "--now"]
    assert jobs["read_only"] is True
