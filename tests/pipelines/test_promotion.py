"""`pokewatch train` and `promote`: stage labels and the champion/challenger decision."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from service.store import Stage
from tests.pipelines.conftest import private_store

runner = CliRunner()


def saved_tag(output: str) -> str:
    match = re.search(r"saved (\S+) as stage=(\S+)", output)
    assert match, output
    return match.group(1)


@pytest.mark.slow
def test_a_worse_challenger_is_kept_out_of_production(
    write_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    champion = runner.invoke(app, ["train"])
    assert champion.exit_code == 0, champion.output
    champion_tag = saved_tag(champion.output)
    registry = private_store(tmp_path).registry
    assert registry.get(champion_tag).stage == Stage.PRODUCTION
    champion_model = registry.newest_production()
    assert champion_model is not None
    assert champion_model.tag == champion_tag
    assert f"published {champion_tag}@" in champion.output

    # mean3 passes a looser gate but forecasts worse than `last` on the same rows.
    monkeypatch.setenv("POKEWATCH_MODEL__STRATEGY", "mean3")
    monkeypatch.setenv("POKEWATCH_MODEL__GATE__MAX_MAPE_RATIO_TO_NAIVE", "2.0")
    challenger = runner.invoke(app, ["train"])
    assert challenger.exit_code == 0, challenger.output
    assert "keep the champion: challenger mape 0.0" in challenger.output
    assert f"champion {champion_tag} mape 0.0" in challenger.output
    challenger_tag = saved_tag(challenger.output)
    stored = registry.get(challenger_tag)
    assert stored.stage == Stage.REJECTED
    metadata: dict[str, Any] = dict(stored.metadata)
    promotion = metadata["promotion"]
    assert promotion["promote"] is False
    newest = registry.newest_production()
    assert newest is not None
    assert newest.tag == champion_tag

    # Both scores reach MLflow.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["pokewatch-fair-price"], output_format="list")
    latest = max(runs, key=lambda run: run.info.start_time)
    assert latest.data.tags["promotion.promote"] == "false"
    assert latest.data.tags["bentoml.model_tag"] == challenger_tag
    assert {"challenger_mape", "champion_mape", "coverage"} <= set(latest.data.metrics)

    # A rollback/override: promoting a stored version makes a production copy of it.
    promoted = runner.invoke(app, ["promote", challenger_tag])
    assert promoted.exit_code == 0, promoted.output
    copy = registry.newest_production()
    assert copy is not None
    assert copy.tag != challenger_tag
    assert copy.metadata["promoted_from"] == challenger_tag
    assert registry.load(copy).model.strategy == "mean3"
    # ... and publishes its answers: the service serves the new production model's day.
    assert f"published {copy.tag}@" in promoted.output


def test_a_model_failing_the_gate_is_not_saved_but_tracked(
    write_config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POKEWATCH_MODEL__GATE__MAX_MAPE", "0.0001")
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert "gate failed: MAPE" in result.output
    assert private_store(tmp_path).registry.models() == []
    # The CLI runs the pipeline's flow: a failed model leaves its MLflow run behind.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["pokewatch-fair-price"], output_format="list")
    assert run.data.tags["gate"] == "failed"
    assert run.data.metrics["mape"] > 0.0001


def test_promoting_an_unknown_tag_fails(write_config: Path) -> None:
    result = runner.invoke(app, ["promote", "pokewatch-fair-price:doesnotexist"])
    assert result.exit_code == 1


def test_no_bento_is_built_after_a_losing_challenger() -> None:
    from pipelines.promotion import PromotionDecision
    from pipelines.training_flow import build_bento

    lost = PromotionDecision(False, "mape", 0.02, 0.01, "pokewatch-fair-price:x", "worse")
    assert build_bento(lost) is None
    assert PromotionDecision.from_dict(lost.as_dict()) == lost
    first = PromotionDecision(True, "mape", 0.02, None, None, "no production model yet")
    assert PromotionDecision.from_dict(first.as_dict()) == first
