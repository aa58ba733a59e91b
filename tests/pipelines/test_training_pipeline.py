"""A real ZenML run of the training pipeline on the default local stack (isolated config)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from service.store import Stage
from tests.pipelines.conftest import private_store

pytestmark = pytest.mark.slow


def mlflow_runs(tmp_path: Path) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["pokewatch-fair-price"], output_format="list")
    assert isinstance(runs, list)
    return runs


def test_pipeline_registers_a_tracked_production_model_and_fails_on_the_gate(
    write_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zenml.enums import ExecutionStatus

    from pipelines.training import DEFAULT_RUN_CONFIG, run_training

    run = run_training(DEFAULT_RUN_CONFIG)
    assert run.status == ExecutionStatus.COMPLETED
    tag = run.steps["register_model"].output.load()

    store = private_store(tmp_path)
    stored = store.registry.get(tag)
    assert stored.stage == Stage.PRODUCTION
    metadata: dict[str, Any] = dict(stored.metadata)
    assert metadata["pipeline_run_id"] == str(run.id)
    assert metadata["strategy"] == "last"
    metrics = metadata["metrics"]
    assert metrics["items"] == 300
    assert metrics["coverage"] > 0.95
    assert 0 < metrics["mape"] < 0.1
    assert math.isfinite(metrics["rmse"])
    assert metadata["promotion"]["promote"] is True

    (tracked,) = [r for r in mlflow_runs(tmp_path) if r.data.tags.get("bentoml.model_tag") == tag]
    assert tracked.data.params["zenml.pipeline_run_id"] == str(run.id)
    assert tracked.data.metrics["mape"] == pytest.approx(metrics["mape"])
    artifacts = {
        a.path for a in mlflow.MlflowClient().list_artifacts(tracked.info.run_id, "evaluation")
    }
    assert "evaluation/evaluation.csv" in artifacts
    # The run published the new production model's answers.
    publication = run.steps["publish_answers"].output.load()
    newest = store.publications.newest(tag)
    assert newest is not None
    assert publication == newest.id

    # A model failing the gate fails the run visibly, after recording its numbers.
    monkeypatch.setenv("POKEWATCH_MODEL__GATE__MAX_MAPE", "0.0001")
    before = store.registry.models()
    result = CliRunner().invoke(app, ["pipeline", "run"])
    assert result.exit_code == 1
    assert "pipeline run failed" in result.output
    assert "evaluate_model" in result.output
    assert store.registry.models() == before
    assert store.jobs.read()["retrain"].last_failure is not None
    failed = max(mlflow_runs(tmp_path), key=lambda r: r.info.start_time)
    assert failed.data.tags["gate"] == "failed"
