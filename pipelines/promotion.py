"""Champion/challenger: promote a newly trained model only if it is not worse.

Both models are scored on the same out-of-sample rows: the rolling-origin backtest of the
challenger's training data under the current backtest settings. The champion (the
production model) is re-run from its recorded strategy, horizon and hyper-parameters, so
its score reflects today's data rather than the window it was trained on. A champion that
cannot be re-run (a strategy this code no longer has, or a different horizon, which
forecasts something else) is not comparable, and the challenger is promoted; the decision
says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from model.artifact import INFO_FILE
from model.settings import ModelSettings
from model.strategies import STRATEGIES
from model.training import TrainingResult, evaluate_strategy
from pipelines.settings import PromotionSettings
from service.store import ModelRegistry


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    metric: str
    challenger_score: float
    champion_score: float | None
    champion_tag: str | None
    reason: str

    def summary(self) -> str:
        verdict = "promote" if self.promote else "keep the champion"
        champion = (
            f"champion {self.champion_tag} {self.metric} {self.champion_score:.4f}"
            if self.champion_score is not None
            else "no comparable champion"
        )
        return (
            f"{verdict}: challenger {self.metric} {self.challenger_score:.4f}, "
            f"{champion} ({self.reason})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Without empty fields: BentoML and ZenML metadata take no None."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> PromotionDecision:
        """The decision `as_dict` recorded (its empty fields back as None)."""
        return cls(
            bool(recorded["promote"]),
            str(recorded["metric"]),
            float(recorded["challenger_score"]),
            recorded.get("champion_score"),
            recorded.get("champion_tag"),
            str(recorded["reason"]),
        )


def decide(
    challenger: TrainingResult,
    prices: pd.DataFrame,
    settings: ModelSettings,
    promotion: PromotionSettings,
    registry: ModelRegistry,
) -> PromotionDecision:
    metric = promotion.metric
    challenger_score = float(challenger.evaluation.metrics[metric])
    champion = registry.newest_production()
    if champion is None:
        return PromotionDecision(
            True, metric, challenger_score, None, None, "no production model yet"
        )
    tag = champion.tag
    info = json.loads((champion.path / INFO_FILE).read_text())
    champion_settings = _champion_settings(info, settings)
    if isinstance(champion_settings, str):
        return PromotionDecision(True, metric, challenger_score, None, tag, champion_settings)
    if champion_settings == settings:
        # Same strategy, horizon and hyper-parameters on the same rows: the same score.
        champion_score = challenger_score
    else:
        champion_score = float(evaluate_strategy(prices, champion_settings).metrics[metric])
    allowed = champion_score * (1 + promotion.margin)
    if math.isnan(champion_score) or challenger_score <= allowed:
        reason = f"within {promotion.margin:.1%} of the champion or better"
        return PromotionDecision(True, metric, challenger_score, champion_score, tag, reason)
    reason = f"worse than the champion by more than {promotion.margin:.1%}"
    return PromotionDecision(False, metric, challenger_score, champion_score, tag, reason)


def _champion_settings(info: dict[str, Any], settings: ModelSettings) -> ModelSettings | str:
    """The settings that re-run the champion, or why it cannot be re-run."""
    strategy = str(info.get("strategy"))
    if strategy not in STRATEGIES:
        return f"the champion's strategy {strategy!r} is unknown to this code"
    if int(info.get("horizon", -1)) != settings.horizon:
        return f"the champion forecasts {info.get('horizon')} days ahead, not {settings.horizon}"
    update: dict[str, Any] = {"strategy": strategy}
    if "hyperparameters" in info:
        update["hyperparameters"] = dict(info["hyperparameters"])
    return settings.model_copy(update=update)
