"""The `pokewatch` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from model.artifact import MODEL_NAME
from model.data import BUNDLED_PRICES, load_prices
from model.evaluation import Evaluation
from model.predictor import Predictor, QueryError
from model.settings import ConfigurationError, Settings, load_settings
from model.strategies import STRATEGIES
from model.training import evaluate_strategy, train
from pipelines.registry import has_model, load_from_store, save_to_store
from service.keys_cli import keys_app

app = typer.Typer(help="PokeWatch: Pokémon TCG fair prices.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Price rows (.parquet, .csv, or a parquet directory)."),
]


def _settings() -> Settings:
    try:
        return load_settings(Settings)
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _prices(data: Path | None, settings: Settings) -> pd.DataFrame:
    path = data or settings.data.prices or BUNDLED_PRICES
    try:
        checked = load_prices(path)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{path}: {checked.summary()}", err=True)
    if checked.valid.empty:
        typer.echo("error: no valid price rows", err=True)
        raise typer.Exit(1)
    return checked.valid


def _print_evaluation(evaluation: Evaluation, strategy: str) -> None:
    metrics = evaluation.metrics
    typer.echo(
        f"strategy {strategy}, horizon {evaluation.horizon} days: "
        f"{int(metrics['rows'])} rows, {int(metrics['items'])} items, "
        f"coverage {metrics['coverage']:.1%}, MAPE ratio to naive "
        f"{metrics['mape_ratio_to_naive']:.3f}"
    )
    typer.echo(evaluation.table().to_string(float_format=lambda value: f"{value:.4f}"))
    typer.echo("\nsignal returns over the horizon:")
    typer.echo(evaluation.signals.to_string(float_format=lambda value: f"{value:.4f}"))


@app.command("train")
def train_command(
    data: DataOption = None,
    skip_if_present: Annotated[
        bool, typer.Option(help="Do nothing when the store already has a model.")
    ] = False,
) -> None:
    """Fit, evaluate out of sample, gate, and save to the BentoML model store."""
    if skip_if_present and has_model():
        typer.echo(f"the model store already has {MODEL_NAME}; not training", err=True)
        return
    settings = _settings()
    result = train(_prices(data, settings), settings.model)
    _print_evaluation(result.evaluation, settings.model.strategy)
    if not result.passed:
        for failure in result.gate_failures:
            typer.echo(f"gate failed: {failure}", err=True)
        raise typer.Exit(1)
    typer.echo(f"saved {save_to_store(result)}")


@app.command("evaluate")
def evaluate_command(
    data: DataOption = None,
    horizon: Annotated[int | None, typer.Option(min=1, help="Days ahead.")] = None,
    strategy: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(sorted(STRATEGIES))}.")
    ] = None,
) -> None:
    """Rolling-origin backtest of a strategy against the naive forecast."""
    settings = _settings()
    model_settings = settings.model.model_copy(
        update={"horizon": horizon or settings.model.horizon}
    )
    chosen = strategy or model_settings.strategy
    if chosen not in STRATEGIES:
        typer.echo(f"error: unknown strategy {chosen!r}; one of {sorted(STRATEGIES)}", err=True)
        raise typer.Exit(2)
    _print_evaluation(evaluate_strategy(_prices(data, settings), model_settings, chosen), chosen)


@app.command("predict")
def predict_command(
    item_id: Annotated[str, typer.Argument(help="Card or product id, e.g. tcg-133777.")],
    date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: latest).")] = None,
) -> None:
    """Fair price and signal of one item from the model in the store."""
    settings = _settings()
    tag, trained = load_from_store()
    predictor = Predictor(trained, tag, settings.model.thresholds)
    try:
        typer.echo(json.dumps(predictor.fair_price(item_id, date), indent=2))
    except QueryError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
