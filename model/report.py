"""Strategy comparison for `pokewatch evaluate`: the tables, a markdown report, a chart.

matplotlib is imported only when a chart is drawn (it is in the `train` extra).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from model.evaluation import Evaluation, OutOfSample, evaluate, evaluate_out_of_sample
from model.features import Panels
from model.settings import ModelSettings
from model.strategies import DEFAULT_STRATEGY

TABLE_COLUMNS = (
    "mape",
    "naive_mape",
    "mape_ratio_to_naive",
    "median_ape",
    "naive_median_ape",
    "bias",
    "coverage",
    "band_coverage",
    "seconds",
)
BREAKDOWN = ("mape", "naive_mape", "mape_ratio_to_naive", "band_coverage")


# `--by price-bucket`: the market price on the origin day, in dollars.
PRICE_BUCKETS = (0.0, 1.0, 10.0, 100.0, np.inf)
PRICE_BUCKET_NAMES = ("< $1", "$1-10", "$10-100", "> $100")


class Breakdown(StrEnum):
    SET = "set"
    PRICE_BUCKET = "price-bucket"


@dataclass(frozen=True)
class StrategyRun:
    strategy: str
    evaluation: Evaluation
    computed: OutOfSample
    seconds: float
    rows: pd.DataFrame  # the backtest rows the evaluation scored


@dataclass(frozen=True)
class Comparison:
    horizon: int
    runs: list[StrategyRun] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per strategy: its errors next to the naive forecast's on the same rows."""
        records = {
            run.strategy: {
                **{name: run.evaluation.metrics.get(name, np.nan) for name in TABLE_COLUMNS},
                "seconds": run.seconds,
            }
            for run in self.runs
        }
        table = pd.DataFrame.from_dict(records, orient="index")[list(TABLE_COLUMNS)]
        return table.rename_axis("strategy")

    def signals(self) -> pd.DataFrame:
        """Per strategy and signal: count, mean and median forward return, hit rate."""
        return pd.concat(
            {run.strategy: run.evaluation.signals for run in self.runs}, names=["strategy"]
        )

    def breakdown(self, by: Breakdown, sets: pd.Series, settings: ModelSettings) -> pd.DataFrame:
        """The table's metrics and the BUY and SELL mean forward returns per strategy and
        group: the item's set (`sets`: item id -> set code) or its price bucket."""
        records = []
        for run in self.runs:
            if by == Breakdown.SET:
                groups = run.rows["item_id"].map(sets).fillna("(none)").astype(str)
            else:
                groups = pd.cut(
                    run.rows["market"], PRICE_BUCKETS, labels=PRICE_BUCKET_NAMES, right=False
                ).astype(str)
            for group, rows in run.rows.groupby(groups.to_numpy(), sort=True):
                evaluation = evaluate(
                    rows, settings.horizon, settings.thresholds, settings.backtest.min_price
                )
                signals = evaluation.signals["mean_forward_return"]
                records.append(
                    {
                        "strategy": run.strategy,
                        by.value: group,
                        "rows": evaluation.metrics["rows"],
                        **{name: evaluation.metrics.get(name, np.nan) for name in BREAKDOWN},
                        "buy_return": signals.get("BUY", np.nan),
                        "sell_return": signals.get("SELL", np.nan),
                    }
                )
        return pd.DataFrame.from_records(records).set_index(["strategy", by.value])

    def as_json(self) -> Any:
        """The metrics and signal tables, for scripts (`pokewatch evaluate --json`); an
        undefined number (NaN) is null."""
        return json_ready(
            {
                "horizon": self.horizon,
                "strategies": {
                    run.strategy: {
                        "metrics": run.evaluation.metrics,
                        "seconds": run.seconds,
                        "signals": run.evaluation.signals.reset_index().to_dict(orient="records"),
                    }
                    for run in self.runs
                },
            }
        )

    def text(self) -> str:
        rows = self.runs[0].evaluation.metrics if self.runs else {}
        head = (
            f"horizon {self.horizon} days: {int(rows.get('rows', 0))} scored rows, "
            f"{int(rows.get('items', 0))} items (targets under the min price left out)"
        )
        return "\n\n".join(
            [
                head,
                self.table().to_string(float_format=format_number),
                "signal returns over the horizon:\n"
                + self.signals().to_string(float_format=format_number),
            ]
        )


def compare(panels: Panels, settings: ModelSettings, strategies: Sequence[str]) -> Comparison:
    """Backtest each strategy on the same panels with the settings (horizon, rule, band)."""
    runs = []
    for strategy in strategies:
        started = time.perf_counter()
        model = settings.model_for(strategy)
        run = evaluate_out_of_sample(
            panels, model, settings.backtest, settings.band, settings.thresholds
        )
        seconds = time.perf_counter() - started
        runs.append(StrategyRun(strategy, run.evaluation, run.computed, seconds, run.rows))
    return Comparison(settings.horizon, runs)


def write_report(
    directory: Path,
    panel: pd.DataFrame,
    comparison: Comparison,
    by_horizon: dict[int, Comparison],
    command: str,
    seconds: float,
) -> list[Path]:
    """`report.md` and `report.png` (error by horizon; one item's price, fair price, band)."""
    directory.mkdir(parents=True, exist_ok=True)
    chart = directory / "report.png"
    item = example_item(panel)
    draw_chart(chart, panel, comparison, by_horizon, item)
    errors = pd.DataFrame(
        {f"h={horizon}": result.table()["mape"] for horizon, result in sorted(by_horizon.items())}
    )
    naive = {
        f"h={horizon}": result.runs[0].evaluation.metrics["naive_mape"]
        for horizon, result in sorted(by_horizon.items())
        if result.runs
    }
    errors.loc["naive forecast"] = pd.Series(naive)
    errors = errors.rename_axis("strategy")
    markdown = "\n".join(
        [
            f"# PokeWatch evaluation, horizon {comparison.horizon} days",
            "",
            f"Command: `{command}` ({seconds:.0f} s).",
            "",
            comparison.text().split("\n\n")[0] + ".",
            "",
            "## Strategies against the naive forecast",
            "",
            markdown_table(comparison.table()),
            "",
            "## Signals (forward return over the horizon)",
            "",
            markdown_table(comparison.signals()),
            "",
            "## MAPE by horizon",
            "",
            markdown_table(errors),
            "",
            f"![error by horizon; {item}: price, fair price and band]({chart.name})",
            "",
        ]
    )
    path = directory / "report.md"
    path.write_text(markdown)
    return [path, chart]


def example_item(panel: pd.DataFrame) -> str:
    """The item with the most observations among those priced at $20 or more."""
    counts = panel.notna().sum()
    dear = panel.median() >= 20
    chosen = counts[dear] if dear.any() else counts
    return str(chosen.idxmax())


def draw_chart(
    path: Path,
    panel: pd.DataFrame,
    comparison: Comparison,
    by_horizon: dict[int, Comparison],
    item: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    horizons = sorted(by_horizon)
    for position, strategy in enumerate(run.strategy for run in comparison.runs):
        values = [by_horizon[h].table()["mape"].get(strategy, np.nan) for h in horizons]
        left.plot(horizons, values, marker="o", label=strategy, zorder=3 - position)
    if "last" not in {run.strategy for run in comparison.runs}:
        naive = [by_horizon[h].runs[0].evaluation.metrics["naive_mape"] for h in horizons]
        left.plot(horizons, naive, "--", marker="o", label="naive (last)")
    left.set_xlabel("horizon (days)")
    left.set_ylabel("MAPE (out of sample)")
    left.set_title("error by horizon")
    left.legend()

    # The example shows the default strategy when it was evaluated, else the first one.
    run = next(
        (run for run in comparison.runs if run.strategy == DEFAULT_STRATEGY), comparison.runs[0]
    )
    column = panel.columns.get_loc(item)
    days = panel.index
    recent = slice(max(len(days) - 240, 0), len(days))
    market = panel[item].to_numpy()[recent]
    observed = ~np.isnan(market)
    low = run.computed.low[recent, column]
    high = run.computed.high[recent, column]
    fair = run.computed.fair[recent, column]
    right.fill_between(days[recent], low, high, alpha=0.25, label="band (fair_low..fair_high)")
    right.plot(days[recent][observed], market[observed], ".", ms=3, label="market price")
    right.plot(days[recent], fair, lw=1, label=f"fair price ({run.strategy})")
    right.set_title(f"{item}: the last 240 days (h = {comparison.horizon})")
    right.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table; floats with 4 decimals (the index becomes the first columns)."""
    flat = frame.reset_index()
    cells = [[_cell(value) for value in row] for row in flat.itertuples(index=False)]
    header = [str(name) for name in flat.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else format_number(float(value))
    return str(value)


def format_number(value: float) -> str:
    return f"{value:.4f}"
