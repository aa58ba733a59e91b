"""ZenML materializer for `TrainingResult`: the model artifact's own files plus the evaluation.

Written through the artifact store (via a local temporary directory), so it works on a
remote artifact store too, and readable without ZenML: `model.artifact` files, metrics as
JSON, signal returns as parquet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.utils.io_utils import copy_dir

from model.artifact import load_trained_model, save_trained_model
from model.evaluation import Evaluation
from model.training import TrainingResult

EVALUATION_FILE = "evaluation.json"
SIGNALS_FILE = "signal_returns.parquet"
MODEL_DIRECTORY = "model"


class TrainingResultMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainingResult,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def save(self, data: TrainingResult) -> None:
        with self.get_temporary_directory(delete_at_exit=True) as scratch:
            folder = Path(scratch)
            save_trained_model(data.trained, folder / MODEL_DIRECTORY)
            evaluation = {
                "horizon": data.evaluation.horizon,
                "metrics": data.evaluation.metrics,
                "gate_failures": data.gate_failures,
            }
            (folder / EVALUATION_FILE).write_text(json.dumps(evaluation))
            data.evaluation.signals.to_parquet(folder / SIGNALS_FILE)
            copy_dir(scratch, self.uri, overwrite=True)

    def load(self, data_type: type[Any]) -> TrainingResult:
        with self.get_temporary_directory(delete_at_exit=True) as scratch:
            copy_dir(self.uri, scratch, overwrite=True)
            folder = Path(scratch)
            trained = load_trained_model(folder / MODEL_DIRECTORY)
            recorded = json.loads((folder / EVALUATION_FILE).read_text())
            signals = pd.read_parquet(folder / SIGNALS_FILE)
        evaluation = Evaluation(recorded["horizon"], recorded["metrics"], signals)
        return TrainingResult(trained, evaluation, list(recorded["gate_failures"]))

    def extract_metadata(self, data: TrainingResult) -> dict[str, Any]:
        # Shown beside the artifact in ZenML; metrics NaN on an empty backtest are left out.
        return {
            name: value for name, value in data.evaluation.metrics.items() if not math.isnan(value)
        }
