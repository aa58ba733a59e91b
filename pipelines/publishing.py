"""Score the production model on the price history and publish the answers.

Run by the daily job after collecting, by the training flow after registering (a newly
promoted model is scored on the full history and swapped in the same way), and on its own
by `pokewatch score`. Publishing an unchanged table again is a no-op, so any of them may
run twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.scoring import score
from pipelines.history import load_history
from pipelines.settings import PipelineSettings
from service.store import Publication, Store, StoreError


@dataclass(frozen=True)
class Published:
    model_tag: str
    publication: Publication
    new: bool  # False: the table was unchanged, the newest publication stands
    rows: int
    scored_rows: int

    def summary(self) -> str:
        what = "published" if self.new else "unchanged, still serving"
        return (
            f"{what} {self.publication.id}: data as of {self.publication.data_as_of}, "
            f"{self.rows} rows ({self.scored_rows} priced by the model's last fit)"
        )


def score_and_publish(
    settings: PipelineSettings, store: Store, model_tag: str | None = None
) -> Published:
    """Score `model_tag` (default: the production model) on the history and publish it."""
    registry = store.registry
    model = registry.get(model_tag) if model_tag else registry.newest_production()
    if model is None:
        raise StoreError(f"no usable production model in {registry.root}: train one first")
    if problems := registry.problems(model):
        raise StoreError(f"{model.tag} is not usable: {'; '.join(problems)}")
    table = score(registry.load(model, with_state=True), load_history(settings).valid)
    before = store.publications.newest(model.tag)
    publication = store.publications.publish(model.tag, table)
    production = registry.newest_production()
    store.publications.prune(
        production.tag if production else model.tag, settings.store.keep_published
    )
    return Published(
        model.tag,
        publication,
        before is None or before.id != publication.id,
        len(table.predictions),
        int(table.info["scored_rows"]),
    )
