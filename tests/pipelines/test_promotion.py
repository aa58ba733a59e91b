"""`pokewatch train` and `promote`: stage labels and the champion/challenger decision."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import bentoml
import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.registry import (
    REJECTED_STAGE,
    load_from_store,
    production_model,
)
from service.models import PRODUCTION_STAGE, STAGE_LABEL

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
    assert bentoml.models.get(champion_tag).info.labels[STAGE_LABEL] == PRODUCTION_STAGE
    champion_model = production_model()
    assert champion_model is not None
    assert str(champion_model.tag) == champion_tag

    # mean3 passes a looser gate but forecasts worse than `last` on the same rows.
    monkeypatch.setenv("POKEWATCH_MODEL__STRATEGY", "mean3")
    monkeypatch.setenv("POKEWATCH_MODEL__GATE__MAX_MAPE_RATIO_TO_NAIVE", "2.0")
    challenger = runner.invoke(app, ["train"])
    assert challenger.exit_code == 0, challenger.output
    assert "keep the champion: challenger mape 0.0" in challenger.output
    assert f"champion {champion_tag} mape 0.0" in challenger.output
    challenger_tag = saved_tag(challenger.output)
    stored = bentoml.models.get(challenger_tag)
    assert stored.info.labels[STAGE_LABEL] == REJECTED_STAGE
    metadata: dict[str, Any] = dict(stored.info.metadata)
    promotion = metadata["promotion"]
    assert promotion["promote"] is False
    assert load_from_store()[0] == champion_tag

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
    tag, trained = load_from_store()
    assert tag != challenger_tag
    assert bentoml.models.get(tag).info.metadata["promoted_from"] == challenger_tag
    assert trained.model.strategy == "mean3"


def test_a_model_failing_the_gate_is_not_saved(
    write_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {str(model.tag) for model in bentoml.models.list()}
    monkeypatch.setenv("POKEWATCH_MODEL__GATE__MAX_MAPE", "0.0001")
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert "gate failed: MAPE" in result.output
    assert {str(model.tag) for model in bentoml.models.list()} == before


def test_promoting_an_unknown_tag_fails(write_config: Path) -> None:
    result = runner.invoke(app, ["promote", "pokewatch-fair-price:doesnotexist"])
    assert result.exit_code == 1
