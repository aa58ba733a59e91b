"""The ZenML training pipeline (the weekly retrain): collect -> features -> train ->
evaluate (MLflow, gate, champion/challenger) -> register -> publish [-> Bento].

The steps run the functions of `pipelines.training_flow`, which `pokewatch train` runs in
the same order without ZenML. Runs offline on ZenML's default local stack:

    python -m pipelines.training [--config pipelines/configs/training.yaml]
    pokewatch pipeline run [--config ...]

Run parameters (data path, whether to build a Bento) come from the YAML run config.
"""

import argparse
from pathlib import Path

from zenml import pipeline
from zenml.models import PipelineRunResponse

from pipelines.steps.build_bento import build_bento
from pipelines.steps.build_features import build_features
from pipelines.steps.collect_prices import collect_prices
from pipelines.steps.evaluate_model import evaluate_model
from pipelines.steps.publish_answers import publish_answers
from pipelines.steps.register_model import register_model
from pipelines.steps.train_model import train_model

DEFAULT_RUN_CONFIG = Path(__file__).resolve().parent / "configs" / "training.yaml"


@pipeline(enable_cache=False)
def training_pipeline(data: str | None = None, bento: bool = False) -> None:
    raw_prices = collect_prices(data)
    prices, _rejected = build_features(raw_prices)
    result = train_model(prices)
    decision, mlflow_run_id = evaluate_model(result, prices)
    model_tag = register_model(result, decision, mlflow_run_id)
    publish_answers(model_tag)
    if bento:
        build_bento(model_tag, decision)


def run_training(config: Path = DEFAULT_RUN_CONFIG) -> PipelineRunResponse:
    run = training_pipeline.with_options(config_path=str(config))()
    if run is None:
        raise RuntimeError("ZenML returned no pipeline run")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=DEFAULT_RUN_CONFIG)
    run = run_training(parser.parse_args().config)
    print(f"pipeline run {run.name}: {run.status}")


if __name__ == "__main__":
    main()
