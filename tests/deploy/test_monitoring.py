"""Alerts and dashboards (deploy/monitoring): promtool checks and unit-tests every rule, every
alert has a runbook, the Kubernetes PrometheusRule is the same rules, and the Grafana
dashboard reads metrics the service exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.prometheus_rule import TARGET, render
from tests.deploy.conftest import REPO

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "rules.yaml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "pokewatch.json"
METRIC = re.compile(r"\b((?:pokewatch|bentoml)_[a-z_]+)")
# Histogram series of the metrics the code declares.
SUFFIXES = ("_bucket", "_count", "_sum")
BENTOML_METRICS = {
    "bentoml_service_request_total",
    "bentoml_service_request_duration_seconds",
    "bentoml_service_request_in_progress",
}


def promtool() -> str:
    """promtool (Debian's `prometheus` package; .ci/run installs it)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool is not installed (apt-get install prometheus); CI runs these")
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_and_the_prometheus_config_check() -> None:
    for argv in (
        ["check", "rules", str(RULES)],
        ["check", "config", str(MONITORING / "prometheus.yml")],
    ):
        result = subprocess.run([promtool(), *argv], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_fires_in_its_unit_test_and_the_tests_pass() -> None:
    tests = yaml.safe_load((MONITORING / "rules_test.yaml").read_text())["tests"]
    fired = {
        check["alertname"]
        for test in tests
        for check in test["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alerts()}
    result = subprocess.run(
        [promtool(), "test", "rules", "rules_test.yaml"],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_fails_its_unit_test(tmp_path: Path) -> None:
    broken = RULES.read_text().replace("> 36 * 3600", "> 48 * 3600")
    (tmp_path / "rules.yaml").write_text(broken)
    shutil.copy(MONITORING / "rules_test.yaml", tmp_path)
    result = subprocess.run(
        [promtool(), "test", "rules", "rules_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "PokeWatchDataStale" in result.stdout + result.stderr


def test_every_alert_has_a_runbook_section() -> None:
    anchors = {
        "runbook-" + re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
        for heading in re.findall(
            r"^#+ Runbook: (.+)$", (REPO / "docs" / "deployment.md").read_text(), re.M
        )
    }
    for rule in alerts():
        runbook = rule["annotations"]["runbook"]
        assert runbook == f"docs/deployment.md#runbook-{rule['alert'].lower()}"
        assert runbook.split("#")[1] in anchors, runbook


def test_the_kubernetes_prometheus_rule_is_the_rules_file() -> None:
    assert TARGET.read_text() == render(), "run `python -m scripts.prometheus_rule`"
    from tests.deploy.kustomize import render_overlay

    for overlay in ("dev", "prod"):
        resources = render_overlay(REPO / "deploy" / "k8s" / "overlays" / overlay)
        (rule,) = [r for r in resources if r["kind"] == "PrometheusRule"]
        assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def declared_metrics() -> set[str]:
    """The metric names service/metrics.py declares, and BentoML's own."""
    source = (REPO / "service" / "metrics.py").read_text()
    return set(re.findall(r'"(pokewatch_[a-z_]+)"', source)) | BENTOML_METRICS


def used_metrics(text: str) -> set[str]:
    names = set()
    for name in METRIC.findall(text):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name.removesuffix(suffix) in declared_metrics():
                name = name.removesuffix(suffix)
        names.add(name)
    return names


def test_rules_and_dashboard_read_metrics_that_exist() -> None:
    declared = declared_metrics()
    assert used_metrics(RULES.read_text()) <= declared
    exprs = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    ]
    assert used_metrics("\n".join(exprs)) <= declared


def test_the_dashboard_covers_what_operators_watch() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pokewatch"
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(set(titles)) == len(titles)
    text = json.dumps(dashboard)
    for metric in (
        "bentoml_service_request_total",
        "bentoml_service_request_duration_seconds_bucket",
        "pokewatch_cache_lookups_total",
        "pokewatch_signals_total",
        "pokewatch_rate_limit_decisions_total",
        "pokewatch_data_age_seconds",
        "pokewatch_serving_info",
    ):
        assert metric in text, metric
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    datasource = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"


def test_compose_provisions_prometheus_and_grafana() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    for service in (prometheus, grafana):
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), source
    mounted = " ".join(prometheus["volumes"])
    assert "rules.yaml" in mounted
    assert "prometheus.yml" in mounted
    assert "grafana/dashboards" in " ".join(grafana["volumes"])
