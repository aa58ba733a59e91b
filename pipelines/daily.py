"""The daily job (`pokewatch daily`): collect -> validate -> append -> score -> publish.

Scoring is not training: the day's prices reach the answers by applying the current
production model to the updated history (`pipelines.publishing`), and every worker of the
service swaps the new publication in within `service.reload_seconds`. Retraining is the
weekly job (the ZenML pipeline). On a store without a production model (a new deployment)
the first daily run trains one first.

After publishing, the run evaluates the watchlists' rules on the newest day and delivers
the alerts they fire (`pipelines.alerts`); an alerts failure (an unreachable database) is
recorded as a failed `alerts` job but does not undo the publication.

Each run records its outcome per job (`collect`, `score`, `alerts`, `daily`) in the store's
`jobs.json`, which `/health` and the service's metrics read. The run fails (exit 1) when
nothing could be collected or nothing scored; a source that failed while others collected
is reported and recorded as a failed `collect`, and the rest is still published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.exc import SQLAlchemyError

from model.schema import SchemaError
from pipelines.alerts import AlertsRun, run_alerts
from pipelines.collector import CollectionReport, collect
from pipelines.progress import Steps
from pipelines.publishing import Published, score_and_publish
from pipelines.settings import PipelineSettings
from pipelines.sources import PriceSource, SourceError
from pipelines.training_flow import train_and_register
from service.alerts.signing import SecretsError
from service.store import Store, StoreError


@dataclass
class DailyRun:
    reports: list[CollectionReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    trained: str | None = None  # a model trained first (empty store)
    published: Published | None = None
    alerts: AlertsRun | None = None

    @property
    def collected(self) -> int:
        return sum(report.valid for report in self.reports)

    @property
    def ok(self) -> bool:
        return self.collected > 0 and self.published is not None


def collect_sources(
    sources: list[PriceSource], day: date | None, settings: PipelineSettings, run: DailyRun
) -> None:
    """Collect each source into its partition; a failing source does not stop the others."""
    collector = settings.collector
    raw_dir, quarantine_dir = (
        collector.resolve(collector.raw_dir),
        collector.resolve(collector.quarantine_dir),
    )
    for source in sources:
        try:
            report = collect(source, day, raw_dir, quarantine_dir)
        except (SourceError, SchemaError) as error:
            run.errors.append(f"{source.name}: {error}")
            continue
        run.reports.append(report)
        run.errors += [f"{source.name}: {failure}" for failure in report.failures]


def run_daily(
    settings: PipelineSettings,
    store: Store,
    sources: list[PriceSource],
    day: date | None = None,
    steps: Steps | None = None,
) -> DailyRun:
    steps = steps or Steps.silent()
    run = DailyRun()
    steps.step("collecting")
    collect_sources(sources, day, settings, run)
    summary = "; ".join(report.summary().splitlines()[0] for report in run.reports)
    store.jobs.record(
        "collect", run.collected > 0 and not run.errors, "; ".join(run.errors) or summary
    )
    try:
        if store.registry.newest_production() is None:
            steps.step("training a first production model (it publishes its answers)")
            trained = train_and_register(settings, store)
            run.trained, run.published = trained.tag, trained.published
        if run.published is None:
            steps.step("scoring and publishing")
            run.published = score_and_publish(settings, store)
        store.jobs.record("score", True, run.published.summary())
    except (StoreError, SchemaError, ValueError, RuntimeError) as error:
        run.errors.append(f"score: {error}")
        store.jobs.record("score", False, str(error))
    if run.published is not None:
        steps.step("evaluating alerts and delivering them")
        try:
            run.alerts = run_alerts(settings, store)
            store.jobs.record("alerts", True, run.alerts.summary())
        except (SQLAlchemyError, StoreError, SecretsError, OSError) as error:
            run.errors.append(f"alerts: {error}")
            store.jobs.record("alerts", False, str(error))
    store.jobs.record("daily", run.ok, "; ".join(run.errors) or None)
    return run
