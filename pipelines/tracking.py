"""MLflow tracking of training runs: parameters, every metric, the evaluation table, the
promotion decision and the model's store tag.

When ZenML's MLflow experiment tracker runs a step, it has already opened an MLflow run;
we log into that one. Otherwise we open (or reopen, by id) a run in the configured store.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from model.settings import ModelSettings
from model.training import TrainingResult
from pipelines.promotion import PromotionDecision
from pipelines.settings import MlflowSettings


@contextmanager
def tracking_run(
    settings: MlflowSettings, run_name: str | None = None, run_id: str | None = None
) -> Iterator[str]:
    """Yields the MLflow run id: ZenML's active run, the run `run_id`, or a new one."""
    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    mlflow.set_tracking_uri(settings.resolved_uri())
    if run_id is None:
        experiment = mlflow.get_experiment_by_name(settings.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else mlflow.create_experiment(
                settings.experiment, artifact_location=settings.resolved_artifact_location()
            )
        )
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            yield run.info.run_id
    else:
        with mlflow.start_run(run_id=run_id) as run:
            yield run.info.run_id


def log_training(
    result: TrainingResult,
    settings: ModelSettings,
    decision: PromotionDecision | None,
    extra_params: dict[str, Any] | None = None,
) -> None:
    """Everything about one training run (the active MLflow run)."""
    trained = result.trained
    start, end = trained.data_window
    mlflow.log_params(
        {
            "strategy": trained.model.strategy,
            "horizon": trained.model.horizon,
            "data_start": start,
            "data_end": end,
            "items": len(trained.items),
            **{f"backtest.{k}": v for k, v in settings.backtest.model_dump().items()},
            **{f"gate.{k}": v for k, v in settings.gate.model_dump().items()},
            **(extra_params or {}),
        }
    )
    mlflow.log_metrics(result.evaluation.metrics)
    mlflow.set_tag("gate", "passed" if result.passed else "failed")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        result.evaluation.table().to_csv(folder / "evaluation.csv")
        result.evaluation.signals.to_csv(folder / "signal_returns.csv")
        (folder / "gate.json").write_text(json.dumps({"failures": result.gate_failures}))
        if decision is not None:
            (folder / "promotion.json").write_text(json.dumps(decision.as_dict(), indent=2))
        mlflow.log_artifacts(scratch, artifact_path="evaluation")
    if decision is not None:
        mlflow.log_metric(f"challenger_{decision.metric}", decision.challenger_score)
        if decision.champion_score is not None:
            mlflow.log_metric(f"champion_{decision.metric}", decision.champion_score)
        mlflow.set_tags(
            {
                "promotion.promote": str(decision.promote).lower(),
                "promotion.reason": decision.reason,
                "promotion.champion": decision.champion_tag or "",
            }
        )


def log_registration(tag: str, stage: str) -> None:
    mlflow.set_tags({"bentoml.model_tag": tag, "bentoml.stage": stage})
