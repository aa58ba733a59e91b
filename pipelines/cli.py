"""The `pokewatch` command.

It starts with the serving packages alone (pyproject.toml's dependencies, all the API image
has): the train and pipelines extras (ZenML, MLflow, the HTTP sources, scikit-learn, ...)
are imported inside the commands that need them, so `pokewatch keys` and `--help` run in the
API image and start quickly, and a command whose extra is missing says so in one line
(`main`). tests/pipelines/test_serving_only.py runs the CLI with the extras unimportable.
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from model.report import Breakdown, format_number, json_ready
from model.strategies import STRATEGIES
from pipelines import scheduling
from pipelines.progress import Steps, track
from pipelines.settings import PipelineSettings
from service.keys_cli import keys_app, settings_or_exit

if TYPE_CHECKING:
    import pandas as pd

    from model.evaluation import Evaluation
    from pipelines.collector import CollectionReport
    from service.store import Store

# The extras' packages, by the name a missing one fails to import as (tests/test_packaging.py
# keeps this in step with pyproject.toml's optional dependencies).
EXTRA_MODULES = {
    "httpx": "pipelines",
    "mlflow": "pipelines",
    "py7zr": "pipelines",
    "rich": "pipelines",
    "tenacity": "pipelines",
    "zenml": "pipelines",
    "matplotlib": "train",
    "sklearn": "train",
    "skops": "train",
}

app = typer.Typer(help="PokeWatch: Pokémon TCG fair prices.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Price rows (.parquet, .csv, or a parquet directory) instead of the configured "
        "history (data.prices or the bundled sample, plus the collected days).",
    ),
]
DayOption = Annotated[
    str | None,
    typer.Option("--date", help="YYYY-MM-DD (default: the newest day each source has)."),
]


def _settings() -> PipelineSettings:
    return settings_or_exit(PipelineSettings)


def _store(settings: PipelineSettings) -> Store:
    # Imported here: the store needs BentoML, which `pokewatch keys` does not.
    from service.store import Store

    return Store.from_settings(settings.store)


def _needs(*modules: str) -> None:
    """Import the extras' packages a command needs before it starts working: a missing one
    fails at once (`main` names the extra), not after minutes of fitting or backtesting."""
    for module in modules:
        importlib.import_module(module)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"--date {text!r} is not a YYYY-MM-DD date", 2) from None


def _history(settings: PipelineSettings, data: Path | None) -> pd.DataFrame:
    from model.schema import SchemaError
    from pipelines.history import history_sources, load_history

    try:
        checked = load_history(settings, data)
    except (FileNotFoundError, SchemaError, ValueError) as error:
        raise _fail(str(error), 2) from None
    sources = [str(data)] if data else [str(path) for path in history_sources(settings)]
    typer.echo(f"{' + '.join(sources)}: {checked.summary()}", err=True)
    if checked.valid.empty:
        raise _fail("no valid price rows")
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
    """Fit, evaluate out of sample (an MLflow run), gate, compare with the production model,
    save, and publish the production model's answers: the training pipeline's steps,
    without ZenML.

    A model that passes the gate and is not worse than the production model (by more than
    `promotion.margin`) becomes production; otherwise it is saved as a rejected challenger.
    A model failing the gate is not saved (exit 1).
    """
    from pipelines.training_flow import GateFailedError, train_and_register
    from service.store import STAGE_LABEL, Stage

    settings = _settings()
    store = _store(settings)
    if skip_if_present and store.registry.newest_production() is not None:
        typer.echo(f"{store.registry.root} already has a production model; not training", err=True)
        return
    _needs("sklearn", "skops", "mlflow")
    try:
        with Steps("train", 6) as steps:
            trained = train_and_register(settings, store, data, steps)
    except GateFailedError as error:
        for failure in str(error).split("; "):
            typer.echo(f"gate failed: {failure}", err=True)
        raise typer.Exit(1) from None
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error), 2) from None
    _print_evaluation(trained.result.evaluation, settings.model.strategy)
    typer.echo(trained.decision.summary())
    stage = Stage.PRODUCTION if trained.decision.promote else Stage.REJECTED
    typer.echo(f"saved {trained.tag} as {STAGE_LABEL}={stage.value}")
    if trained.published is not None:
        typer.echo(trained.published.summary())


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
    min_history_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days before the first scored origin (model.backtest)."),
    ] = None,
    refit_every_days: Annotated[
        int | None, typer.Option(min=1, help="Days between refits (model.backtest).")
    ] = None,
    held_out_sets: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.9,
            help="Share of the sets no fit learns from; only their items are scored.",
        ),
    ] = 0.0,
    by: Annotated[
        Breakdown | None, typer.Option(help="Also the metrics per set or per price bucket.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the metrics and signal tables as JSON.")
    ] = False,
) -> None:
    """Rolling-origin backtest of each strategy against the naive forecast."""
    import shlex
    import time

    from model.features import price_panels
    from model.report import compare, write_report

    if report is not None:
        _needs("matplotlib")
    started = time.perf_counter()
    settings = _settings()
    backtest = settings.model.backtest.model_copy(
        update={
            name: value
            for name, value in (
                ("min_history_days", min_history_days),
                ("refit_every_days", refit_every_days),
            )
            if value is not None
        }
    )
    model_settings = settings.model.model_copy(
        update={"horizon": horizon or settings.model.horizon, "backtest": backtest}
    )
    chosen = [strategy] if strategy else sorted(STRATEGIES)
    unknown = [name for name in chosen if name not in STRATEGIES]
    if unknown:
        raise _fail(f"unknown strategy {unknown[0]!r}; one of {sorted(STRATEGIES)}", 2)
    prices = _history(settings, data)
    panels = price_panels(prices, held_out_sets)
    comparison = compare(panels, model_settings, chosen)
    if as_json:
        typer.echo(json.dumps(comparison.as_json(), indent=2))
    else:
        typer.echo(comparison.text())
    if by is not None:
        sets = prices.drop_duplicates("item_id", keep="last").set_index("item_id")["set_code"]
        table = comparison.breakdown(by, sets, model_settings)
        if as_json:
            records = table.reset_index().to_dict(orient="records")
            typer.echo(json.dumps(json_ready(records), indent=2))
        else:
            typer.echo(f"\nby {by.value}:\n{table.to_string(float_format=format_number)}")
    if report is None:
        return
    panel = panels.market
    by_horizon = {model_settings.horizon: comparison}
    for text in chart_horizons.split(","):
        days = int(text)
        if days not in by_horizon:
            other = model_settings.model_copy(update={"horizon": days})
            by_horizon[days] = compare(panels, other, chosen)
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
    """Fair price and signal of one item, as the service answers it (the production model's
    newest published day)."""
    from model.predictor import Predictor, QueryError

    settings = _settings()
    store = _store(settings)
    selection = store.select()
    if selection is None:
        raise _fail(f"no usable production model in {store.registry.root}: pokewatch train")
    predictor = Predictor(
        store.table(selection),
        selection.model.tag,
        settings.model.thresholds,
        settings.model.min_observed_days,
    )
    try:
        typer.echo(json.dumps(predictor.fair_price(item_id, date), indent=2))
    except QueryError as error:
        raise _fail(error.detail) from None


def _print_reports(reports: list[CollectionReport]) -> None:
    for report in reports:
        typer.echo(report.summary())


@app.command("collect")
def collect_command(
    day: DayOption = None,
    source: Annotated[
        str | None, typer.Option(help="Only this source: tcgcsv, pokemonpricetracker.")
    ] = None,
) -> None:
    """Fetch the tracked items' prices into that day's partitions (no scoring).

    Exits 1 when a source failed or nothing valid was collected.
    """
    from pipelines.daily import DailyRun, collect_sources
    from pipelines.sources import SourceError
    from pipelines.sources.tracked import SOURCE_NAMES, tracked_sources

    if source is not None and source not in SOURCE_NAMES:
        raise _fail(f"unknown source {source!r}; one of {list(SOURCE_NAMES)}", 2)
    settings = _settings()
    wanted = _day(day)
    try:
        sources = tracked_sources(settings, source)
    except SourceError as error:
        raise _fail(str(error)) from None
    if not sources:
        raise _fail("no tracked items configured (tracked_items)", 2)
    run = DailyRun()
    collect_sources(list(track(sources, "collect")), wanted, settings, run)
    _print_reports(run.reports)
    for problem in run.errors:
        typer.echo(f"error: {problem}", err=True)
    if run.collected == 0:
        raise _fail("nothing valid was collected")
    if run.errors:
        raise typer.Exit(1)


@app.command("daily")
def daily_command(day: DayOption = None) -> None:
    """The daily job: collect the tracked items, then score the production model on the
    updated history and publish its answers (the service picks them up within
    `service.reload_seconds`). On a store without a production model, trains one first.

    Exits 1 when nothing could be collected or scored; a failed source is reported (and
    recorded in the store's jobs.json) while the rest is published.
    """
    from pipelines.daily import run_daily
    from pipelines.sources import SourceError
    from pipelines.sources.tracked import tracked_sources

    settings = _settings()
    wanted = _day(day)
    store = _store(settings)
    try:
        sources = tracked_sources(settings)
    except SourceError as error:
        store.jobs.record("daily", False, str(error))
        raise _fail(str(error)) from None
    if not sources:
        raise _fail("no tracked items configured (tracked_items)", 2)
    with Steps("daily", 4) as steps:
        run = run_daily(settings, store, sources, wanted, steps)
    _print_reports(run.reports)
    if run.trained:
        typer.echo(f"trained a first production model: {run.trained}")
    if run.published:
        typer.echo(run.published.summary())
    if run.alerts:
        typer.echo(run.alerts.summary())
    for problem in run.errors:
        typer.echo(f"error: {problem}", err=True)
    if not run.ok:
        raise _fail("nothing was collected" if run.collected == 0 else "nothing was scored")


@app.command("score")
def score_command(
    model: Annotated[
        str | None, typer.Option(help="A stored version (default: the production model).")
    ] = None,
) -> None:
    """Score a model on the history and publish its answers (what `daily` does after
    collecting)."""
    from model.scoring import ScoringError
    from pipelines.publishing import score_and_publish
    from service.store import StoreError

    settings = _settings()
    store = _store(settings)
    try:
        with Steps("score", 1) as steps:
            steps.step("scoring and publishing")
            published = score_and_publish(settings, store, model)
    except (StoreError, ScoringError) as error:
        store.jobs.record("score", False, str(error))
        raise _fail(str(error)) from None
    store.jobs.record("score", True, published.summary())
    typer.echo(published.summary())


@app.command("backfill")
def backfill_command(
    archive: Annotated[
        list[Path] | None,
        typer.Option(help="A TCGCSV prices-YYYY-MM-DD.ppmd.7z archive (repeatable)."),
    ] = None,
    dump: Annotated[
        list[Path] | None,
        typer.Option(
            help="An extracted dump: a YYYY-MM-DD directory, or one holding several "
            "(YYYY-MM-DD/<category>/<group>/prices; repeatable)."
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Download archives from this day (a server that has them)."),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="... up to this day (default: --from).")
    ] = None,
) -> None:
    """Import the tracked TCGCSV items from local dumps, one partition per day, offline.

    Names come from the local catalogue (placeholders until the next collect knows them).
    """
    from pipelines.backfill import download_archives, dump_tasks, import_day
    from pipelines.sources import SourceError
    from pipelines.sources.tracked import tcgcsv_source

    if not archive and not dump and not start:
        raise _fail("give --archive files, --dump directories or a --from date", 2)
    settings = _settings()
    source = tcgcsv_source(settings)
    collector = settings.collector
    archives = list(archive or [])
    reports = []
    try:
        if start:
            first = date.fromisoformat(start)
            last = date.fromisoformat(end) if end else first
            archives += download_archives(
                source.client, first, last, collector.resolve(collector.archive_dir)
            )
        tasks = dump_tasks(archives, list(dump or []), settings.sources.tcgcsv.category_id)
        for task in track(tasks, "backfill"):
            reports.append(
                import_day(
                    task,
                    source,
                    collector.resolve(collector.raw_dir),
                    collector.resolve(collector.quarantine_dir),
                )
            )
    except SourceError as error:
        _print_reports(reports)
        raise _fail(str(error)) from None
    except ValueError as error:
        raise _fail(f"--from/--to: {error}", 2) from None
    _print_reports(reports)
    if sum(report.valid for report in reports) == 0:
        raise _fail("the dumps held no valid rows of tracked items")


alerts_app = typer.Typer(help="Watchlist alerts and their webhooks.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait-seconds",
        min=0,
        help="How long to wait for retries that come due (default: alerts.delivery.run_seconds).",
    ),
]


@alerts_app.command("run")
def alerts_run_command(
    day: Annotated[
        str | None,
        typer.Option("--date", help="YYYY-MM-DD (default: the newest published day)."),
    ] = None,
    wait_seconds: WaitOption = None,
) -> None:
    """Evaluate every watchlist rule on a published day and deliver the alerts it fires
    (the daily job runs this after publishing). Running a day again sends nothing new."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipelines.alerts import run_alerts
    from service.alerts.signing import SecretsError
    from service.store import StoreError

    settings = _settings()
    store = _store(settings)
    try:
        run = run_alerts(settings, store, _day(day), wait_seconds)
    except (SQLAlchemyError, StoreError, SecretsError) as error:
        store.jobs.record("alerts", False, str(error))
        raise _fail(str(error)) from None
    store.jobs.record("alerts", True, run.summary())
    typer.echo(run.summary())


@alerts_app.command("deliver")
def alerts_deliver_command(wait_seconds: WaitOption = None) -> None:
    """Deliver the pending deliveries that are due (retries, redeliveries) without
    evaluating any rule."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipelines.alerts import Deliverer
    from service.alerts.signing import SecretsError
    from service.alerts.store import open_alerts

    settings = _settings()
    try:
        alert_store, box = open_alerts(settings.alerts, settings.store)
        deliverer = Deliverer(alert_store, box, settings)
        try:
            counts = deliverer.deliver(wait_seconds)
        finally:
            deliverer.close()
            alert_store.close()
    except (SQLAlchemyError, SecretsError) as error:
        raise _fail(str(error)) from None
    typer.echo(counts.summary())


@alerts_app.command("test")
def alerts_test_command(
    webhook_id: Annotated[str, typer.Argument(help="The webhook's id (wh_...).")],
    wait_seconds: WaitOption = None,
) -> None:
    """Send a signed `webhook.test` event to one webhook now; exits 1 unless delivered."""
    from sqlalchemy.exc import SQLAlchemyError

    from pipelines.alerts import send_test
    from service.alerts.signing import SecretsError

    settings = _settings()
    try:
        counts = send_test(settings, webhook_id, wait_seconds)
    except (SQLAlchemyError, SecretsError) as error:
        raise _fail(str(error)) from None
    if counts is None:
        raise _fail(f"no webhook {webhook_id!r}", 2)
    typer.echo(counts.summary())
    if counts.delivered == 0:
        raise typer.Exit(1)


@alerts_app.command("new-key")
def alerts_new_key_command() -> None:
    """Print a new alerts key for POKEWATCH_ALERTS_KEY (it encrypts the webhook secrets; the
    service and the jobs need the same one)."""
    from service.alerts.signing import new_key

    typer.echo(new_key())


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

    store = _store(_settings())
    try:
        run = run_training(config or DEFAULT_RUN_CONFIG)
    except RuntimeError as error:
        store.jobs.record("retrain", False, str(error))
        raise _fail(f"pipeline run failed: {error}") from None
    store.jobs.record("retrain", True, f"pipeline run {run.name}")
    typer.echo(f"pipeline run {run.name}: {run.status.value}")


@app.command("promote")
def promote_command(
    tag: Annotated[str, typer.Argument(help="A stored version, e.g. pokewatch-fair-price:abc.")],
) -> None:
    """Make a stored version the production model (e.g. a rollback) and publish its answers."""
    from model.scoring import ScoringError
    from pipelines.publishing import score_and_publish
    from service.store import STAGE_LABEL, Stage, StoreError

    settings = _settings()
    store = _store(settings)
    try:
        promoted = store.registry.promote(tag)
    except StoreError as error:
        raise _fail(str(error)) from None
    typer.echo(f"{promoted} ({STAGE_LABEL}={Stage.PRODUCTION.value}) is a copy of {tag}")
    try:
        typer.echo(score_and_publish(settings, store).summary())
    except (StoreError, ScoringError) as error:
        typer.echo(f"not published (the service serves the model's own table): {error}", err=True)


store_app = typer.Typer(help="The model store and published answers.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("list")
def store_list_command() -> None:
    """Every stored model (newest first): stage, whether its files verify, and its newest
    publication. Exits 1 when the production model the service would pick is not the
    newest production model (a corrupt or half-saved one is being skipped)."""
    from service.store import Stage

    store = _store(_settings())
    skipped = False
    chosen = store.registry.newest_production()
    for model in store.registry.models():
        problems = store.registry.problems(model)
        newest = store.publications.newest(model.tag)
        state = "ok" if not problems else "UNUSABLE: " + "; ".join(problems)
        mark = "*" if chosen is not None and model.tag == chosen.tag else " "
        typer.echo(
            f"{mark} {model.tag}  {model.stage or '-':<20} {model.created:%Y-%m-%d %H:%M}  "
            f"{state}  published: {newest.id if newest else '-'}"
        )
        skipped |= model.stage == Stage.PRODUCTION and bool(problems) and chosen is not None
    if skipped:
        raise typer.Exit(1)


schedule_app = typer.Typer(help="When the jobs run.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("install")
def schedule_install_command() -> None:
    """Install the daily and the weekly retrain jobs in the crontab (`schedule` settings,
    UTC), logging to data/logs/pokewatch-jobs.log; installing again replaces them."""
    block = scheduling.install(scheduling.CronInstall(_settings().schedule))
    typer.echo(block)
    offset = datetime.now().astimezone().utcoffset()
    if offset:
        typer.echo(
            f"note: this machine's time zone is UTC{offset}; cron daemons that ignore "
            "CRON_TZ (Debian's) run these times in it",
            err=True,
        )


@schedule_app.command("remove")
def schedule_remove_command() -> None:
    """Remove the entries (other crontab lines stay)."""
    removed = scheduling.remove()
    typer.echo("removed the PokeWatch entries" if removed else "no PokeWatch entries installed")


@schedule_app.command("status")
def schedule_status_command() -> None:
    """Show the installed entries; exit 1 when there are none."""
    block = scheduling.installed_block(scheduling.read_crontab())
    if block is None:
        typer.echo("no PokeWatch entries installed")
        raise typer.Exit(1)
    typer.echo(block)


@schedule_app.command("run")
def schedule_run_command(
    now: Annotated[bool, typer.Option("--now", help="Run the daily job once at start.")] = False,
) -> None:
    """Run the jobs on schedule in the foreground (containers: compose), each as its own
    process."""
    schedule = _settings().schedule
    typer.echo(
        f"daily: {schedule.daily}, retrain: {schedule.retrain} (UTC); next: "
        f"{scheduling.next_run(schedule, datetime.now(UTC))}",
        err=True,
    )
    scheduling.run_schedule(
        schedule, scheduling.job_commands(scheduling.pokewatch_executable()), run_daily_now=now
    )


def _command_name(args: list[str]) -> str:
    """`pokewatch` and the (sub)command words that start `args`."""
    words = ["pokewatch"]
    command = typer.main.get_command(app)
    for arg in args:
        commands = getattr(command, "commands", {})
        if arg not in commands:
            break
        words.append(arg)
        command = commands[arg]
    return " ".join(words)


def main() -> None:
    """The `pokewatch` console script: the commands, with a storage failure (a full disk, a
    file size limit, an I/O error) said in one line, not a traceback. The writes are
    crash-safe (`service.files`, the store's staged publications), so what was there before
    is intact; exit 1 like any failed run. A command whose extra is not installed (the API
    image has the serving packages only) says which one, also in one line, and exits 1."""
    try:
        app(prog_name="pokewatch")
    except ModuleNotFoundError as error:
        extra = EXTRA_MODULES.get((error.name or "").partition(".")[0])
        if extra is None:
            raise
        typer.echo(
            f"error: `{_command_name(sys.argv[1:])}` needs the {extra} extra "
            f"(no module {error.name!r}): pip install 'pokewatch[{extra}]'",
            err=True,
        )
        raise SystemExit(1) from None
    except OSError as error:
        typer.echo(f"error: {error}", err=True)
        typer.echo("error: the previous data is intact; free space and run it again", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":  # `python -m pipelines.cli`: the API image's `pokewatch`
    main()
