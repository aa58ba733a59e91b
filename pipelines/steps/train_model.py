"""Step: fit the configured strategy, backtest it out of sample, and apply the gate."""

from typing import Annotated

import pandas as pd
from zenml import step

from model.settings import load_settings
from model.training import TrainingResult, train
from pipelines.materializers import TrainingResultMaterializer
from pipelines.settings import PipelineSettings


@step(output_materializers=TrainingResultMaterializer)
def train_model(prices: pd.DataFrame) -> Annotated[TrainingResult, "training_result"]:
    return train(prices, load_settings(PipelineSettings).model)
