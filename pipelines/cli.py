"""The `pokewatch` command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from bentoml.exceptions import NotFound

from model.artifact import MODEL_NAME
from model.data import BUNDLED_PRICES, load_prices
from model.evaluation import Evaluation
from model.predictor import Predictor, QueryError
from model.schema import PPT_SOURCE, TCGPLAYER_SOURCE
from model.settings import Settings
from model.strategies import STRATEGIES
from model.training import train
from pipelines import scheduling
from pipelines.backfill import download_archives, import_archives
from pipelines.collector import CollectionReport, collect
from pipelines.promotion import decide
from pipelines.registry import (
    REJECTED_STAGE,
    has_model,
    load_from_store,
    promote,
    save_to_store,
)
from pipelines.settings import PipelineSettings
from pipelines.sources import PriceSource, SourceError
from pipelines.sources.pokemonpricetracker import (
    PokemonPriceTrackerClient,
    PokemonPriceTrackerSource,
)
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource
from service.keys_cli import keys_app, settings_or_exit
from service.models import PRODUCTION_STAGE, STAGE_LABEL

app = typer.Typer(help="PokeWatch: Pokémon TCG fair prices.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Price rows (.parquet, .csv, or a parquet directory)."),
]


def _settings() -> Settings:
    return settings_or_exit(Settings)


def _pipeline_settings() -> PipelineSettings:
    return settings_or_exit(PipelineSettings)


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
        bool, typer.Option(help="Do nothing when the store already has a production model.")
    ] = False,
) -> None:
    """Fit, evaluate out of sample, gate, compare with the production model, and save.

    A model that passes the gate and is not worse than the production model (by more than
    `promotion.margin`) becomes production; otherwise it is saved as a rejected challenger.
    """
    if skip_if_present and has_model():
        typer.echo(f"the model store already has a production {MODEL_NAME}; not training", err=True)
        return
    settings = _pipeline_settings()
    prices = _prices(data, settings)
    result = train(prices, settings.model)
    _print_evaluation(result.evaluation, settings.model.strategy)
    if not result.passed:
        for failure in result.gate_failures:
            typer.echo(f"gate failed: {failure}", err=True)
        raise typer.Exit(1)
    decision = decide(result, prices, settings.model, settings.promotion)
    typer.echo(decision.summary())
    stage = PRODUCTION_STAGE if decision.promote else REJECTED_STAGE
    tag = save_to_store(result, stage=stage, extra_metadata={"promotion": decision.as_dict()})
    # Imported here: MLflow takes seconds to import, and only training needs it.
    from pipelines.tracking import log_registration, log_training, tracking_run

    with tracking_run(settings.mlflow, run_name=f"pokewatch-train-{tag.split(':')[-1]}"):
        log_training(result, settings.model, decision)
        log_registration(tag, stage)
    typer.echo(f"saved {tag} as {STAGE_LABEL}={stage}")


@app.command("evaluate")
def evaluate_command(
    data: DataOption = None,
    horizon: Annotated[int | None, typer.Option(min=1, help="Days ahead.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help=f"Only this one of {', '.join(sorted(STRATEGIES))} (default: all)."),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write report.md and report.png into this directory.")
    ] = None,
    chart_horizons: Annotated[
        str, typer.Option(help="Horizons of the report's error-by-horizon chart.")
    ] = "1,7,14,28",
) -> None:
    """Rolling-origin backtest of each strategy against the naive forecast."""
    import shlex
    import sys
    import time

    from model.features import price_panel
    from model.report import compare, write_report

    started = time.perf_counter()
    settings = _settings()
    model_settings = settings.model.model_copy(
        update={"horizon": horizon or settings.model.horizon}
    )
    chosen = [strategy] if strategy else sorted(STRATEGIES)
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown:
        typer.echo(f"error: unknown strategy {unknown[0]!r}; one of {sorted(STRATEGIES)}", err=True)
        raise typer.Exit(2)
    panel = price_panel(_prices(data, settings))
    comparison = compare(panel, model_settings, chosen)
    typer.echo(comparison.text())
    if report is None:
        return
    by_horizon = {model_settings.horizon: comparison}
    for text in chart_horizons.split(","):
        days = int(text)
        if days not in by_horizon:
            other = model_settings.model_copy(update={"horizon": days})
            by_horizon[days] = compare(panel, other, chosen)
    command = shlex.join(["pokewatch", *sys.argv[1:]])
    for path in write_report(
        report, panel, comparison, by_horizon, command, time.perf_counter() - started
    ):
        typer.echo(f"wrote {path}")


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


SOURCE_NAMES = (TCGPLAYER_SOURCE, PPT_SOURCE)


def _tcgcsv_source(settings: PipelineSettings) -> TcgcsvSource:
    tcgcsv = settings.sources.tcgcsv
    return TcgcsvSource(
        TcgcsvClient(tcgcsv, settings.sources.retry),
        settings.tracked_items.effective().tcgcsv,
        tcgcsv.category_id,
        settings.collector.resolve(settings.collector.archive_dir),
    )


def _sources(settings: PipelineSettings, only: str | None) -> list[PriceSource]:
    """The sources with tracked items (or just `only`)."""
    tracked = settings.tracked_items.effective()
    sources: list[PriceSource] = []
    if only in (None, TCGPLAYER_SOURCE) and tracked.tcgcsv:
        sources.append(_tcgcsv_source(settings))
    if only in (None, PPT_SOURCE) and tracked.pokemonpricetracker:
        client = PokemonPriceTrackerClient(
            settings.sources.pokemonpricetracker, settings.sources.retry
        )
        sources.append(PokemonPriceTrackerSource(client, tracked.pokemonpricetracker))
    return sources


def _print_reports(reports: list[CollectionReport]) -> None:
    for report in reports:
        typer.echo(report.summary())


@app.command("collect")
def collect_command(
    day: Annotated[
        str | None, typer.Option("--date", help="YYYY-MM-DD (default: today, UTC).")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help=f"Only this source: {', '.join(SOURCE_NAMES)}.")
    ] = None,
) -> None:
    """Fetch the tracked items' prices for a day into that day's partition.

    Exits 1 when a source failed or nothing valid was collected.
    """
    if source is not None and source not in SOURCE_NAMES:
        typer.echo(f"error: unknown source {source!r}; one of {list(SOURCE_NAMES)}", err=True)
        raise typer.Exit(2)
    settings = _pipeline_settings()
    when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    try:
        sources = _sources(settings, source)
    except SourceError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if not sources:
        typer.echo("error: no tracked items configured (tracked_items)", err=True)
        raise typer.Exit(2)
    collector = settings.collector
    raw_dir = collector.resolve(collector.raw_dir)
    quarantine_dir = collector.resolve(collector.quarantine_dir)
    failed = False
    valid = 0
    for price_source in sources:
        try:
            (report,) = collect([price_source], when, raw_dir, quarantine_dir)
        except SourceError as error:
            typer.echo(f"error: {price_source.name}: {error}", err=True)
            failed = True
            continue
        _print_reports([report])
        valid += report.valid
    if failed or valid == 0:
        if valid == 0:
            typer.echo(f"error: nothing valid was collected for {when}", err=True)
        raise typer.Exit(1)


@app.command("backfill")
def backfill_command(
    archive: Annotated[
        list[Path] | None,
        typer.Option(help="A TCGCSV prices-YYYY-MM-DD.ppmd.7z archive (repeatable)."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Download archives from this day (YYYY-MM-DD).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="... up to this day (default: --from).")
    ] = None,
) -> None:
    """Import the tracked TCGCSV items from daily archives, one partition per day."""
    if not archive and not start:
        typer.echo("error: give --archive files or a --from date", err=True)
        raise typer.Exit(2)
    settings = _pipeline_settings()
    source = _tcgcsv_source(settings)
    collector = settings.collector
    archives = list(archive or [])
    try:
        if start:
            first = date.fromisoformat(start)
            last = date.fromisoformat(end) if end else first
            archives += download_archives(
                source.client, first, last, collector.resolve(collector.archive_dir)
            )
        reports = import_archives(
            archives,
            source,
            settings.sources.tcgcsv.category_id,
            collector.resolve(collector.raw_dir),
            collector.resolve(collector.quarantine_dir),
        )
    except SourceError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    _print_reports(reports)
    if sum(report.valid for report in reports) == 0:
        typer.echo("error: the archives held no valid rows of tracked items", err=True)
        raise typer.Exit(1)


pipeline_app = typer.Typer(help="The ZenML training pipeline.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command("run")
def pipeline_run_command(
    config: Annotated[
        Path | None,
        typer.Option(help="ZenML run config (default pipelines/configs/training.yaml)."),
    ] = None,
) -> None:
    """Run the training pipeline on ZenML's active (by default local) stack."""
    # Imported here: ZenML takes seconds to import and sets itself up on first use.
    from pipelines.training import DEFAULT_RUN_CONFIG, run_training

    try:
        run = run_training(config or DEFAULT_RUN_CONFIG)
    except RuntimeError as error:
        typer.echo(f"error: pipeline run failed: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"pipeline run {run.name}: {run.status.value}")


@app.command("promote")
def promote_command(
    tag: Annotated[str, typer.Argument(help="A stored version, e.g. pokewatch-fair-price:abc.")],
) -> None:
    """Make a stored version the production model (e.g. a rollback)."""
    try:
        promoted = promote(tag)
    except NotFound as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{promoted} ({STAGE_LABEL}={PRODUCTION_STAGE}) is a copy of {tag}")


schedule_app = typer.Typer(help="The daily crontab entry.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("install")
def schedule_install_command(
    hour: Annotated[int, typer.Option(min=0, max=23)] = 3,
    minute: Annotated[int, typer.Option(min=0, max=59)] = 0,
) -> None:
    """Run collect + pipeline daily (default 03:00), logging to data/logs/."""
    typer.echo(scheduling.install(scheduling.Schedule(hour=hour, minute=minute)))


@schedule_app.command("remove")
def schedule_remove_command() -> None:
    """Remove the entry (other crontab lines stay)."""
    removed = scheduling.remove()
    typer.echo("removed the PokeWatch entry" if removed else "no PokeWatch entry installed")


@schedule_app.command("status")
def schedule_status_command() -> None:
    """Show the installed entry; exit 1 when there is none."""
    block = scheduling.installed_block(scheduling.read_crontab())
    if block is None:
        typer.echo("no PokeWatch entry installed")
        raise typer.Exit(1)
    typer.echo(block)
