"""Step: fit the configured strategy and backtest it out of sample (the gate is applied by
`evaluate_model`, after the numbers are recorded)."""

from typing import Annotated

import pandas as pd
from zenml import step

from model.settings import load_settings
from model.training import TrainingResult
from pipelines.materializers import TrainingResultMaterializer
from pipelines.settings import PipelineSettings
from pipelines.training_flow import fit


@step(output_materializers=TrainingResultMaterializer)
def train_model(prices: pd.DataFrame) -> Annotated[TrainingResult, "training_result"]:
    return fit(prices, load_settings(PipelineSettings))
