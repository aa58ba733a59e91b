"""Strategy comparison for `pokewatch evaluate`: the tables, a markdown report, a chart.

matplotlib is imported only when a chart is drawn (it is in the `train` extra).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from model.evaluation import Evaluation, OutOfSample, backtest, evaluate, out_of_sample
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


@dataclass(frozen=True)
class StrategyRun:
    strategy: str
    evaluation: Evaluation
    computed: OutOfSample
    seconds: float


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

    def text(self) -> str:
        rows = self.runs[0].evaluation.metrics if self.runs else {}
        head = (
            f"horizon {self.horizon} days: {int(rows.get('rows', 0))} scored rows, "
            f"{int(rows.get('items', 0))} items (targets under the min price left out)"
        )
        return "\n\n".join(
            [
                head,
                self.table().to_string(float_format=_number),
                "signal returns over the horizon:\n"
                + self.signals().to_string(float_format=_number),
            ]
        )


def compare(panel: pd.DataFrame, settings: ModelSettings, strategies: Sequence[str]) -> Comparison:
    """Backtest each strategy on the same panel with the settings (horizon, rule, band)."""
    runs = []
    for strategy in strategies:
        started = time.perf_counter()
        model = settings.model_for(strategy)
        computed = out_of_sample(panel, model, settings.backtest, settings.band)
        rows = backtest(panel, model, settings.backtest, settings.band, computed)
        evaluation = evaluate(rows, model.horizon, settings.thresholds, settings.backtest.min_price)
        runs.append(StrategyRun(strategy, evaluation, computed, time.perf_counter() - started))
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
        return "" if np.isnan(value) else _number(float(value))
    return str(value)


def _number(value: float) -> str:
    return f"{value:.4f}"
