"""The configured sources with their tracked items (`tracked_items`)."""

from __future__ import annotations

from model.schema import PPT_SOURCE, TCGPLAYER_SOURCE
from pipelines.catalogue import Catalogue
from pipelines.settings import PipelineSettings
from pipelines.sources import PriceSource
from pipelines.sources.pokemonpricetracker import (
    CallBudget,
    PokemonPriceTrackerClient,
    PokemonPriceTrackerSource,
)
from pipelines.sources.tcgcsv import TcgcsvClient, TcgcsvSource

SOURCE_NAMES = (TCGPLAYER_SOURCE, PPT_SOURCE)


def tcgcsv_source(settings: PipelineSettings) -> TcgcsvSource:
    collector = settings.collector
    return TcgcsvSource(
        TcgcsvClient(settings.sources.tcgcsv, settings.sources.retry),
        settings.tracked_items.effective().tcgcsv,
        collector.resolve(collector.cache_dir),
        Catalogue(collector.resolve(collector.catalogue_file)),
    )


def pokemonpricetracker_source(settings: PipelineSettings) -> PokemonPriceTrackerSource:
    ppt = settings.sources.pokemonpricetracker
    budget_file = settings.collector.resolve(settings.collector.state_dir) / "ppt-budget.json"
    client = PokemonPriceTrackerClient(
        ppt, settings.sources.retry, CallBudget(ppt.max_calls_per_day, budget_file)
    )
    return PokemonPriceTrackerSource(client, settings.tracked_items.effective().pokemonpricetracker)


def tracked_sources(settings: PipelineSettings, only: str | None = None) -> list[PriceSource]:
    """The sources with tracked items (or just `only`); raises SourceError (a missing key)."""
    tracked = settings.tracked_items.effective()
    sources: list[PriceSource] = []
    if only in (None, TCGPLAYER_SOURCE) and tracked.tcgcsv:
        sources.append(tcgcsv_source(settings))
    if only in (None, PPT_SOURCE) and tracked.pokemonpricetracker:
        sources.append(pokemonpricetracker_source(settings))
    return sources
