"""The scale workload (`make bench BENCH_ARGS="--scale 31M"`): a published table of that
many rows, served, measured.

The table repeats the benchmark model's real series: synthetic item `<id>~<n>` takes the
rows of real item `n mod items`, its own observations cycled over `days` consecutive days
ending on the real table's last day (two years by default: about 42,000 items for 31 M
rows, as many as there are Pokémon single printings). It is published for the benchmark's
production model, so the service serves it as it would a daily publication.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.artifact import PREDICTION_COLUMNS, TrainedModel
from model.lookup import ROWS_FILE

DAYS = 730
SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMG]?)$", re.IGNORECASE)
UNITS = {"": 1, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_rows(text: str) -> int:
    """`31M`, `1.5M`, `300K` or a plain number of rows."""
    found = SIZE.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"--scale: {text!r} is not a row count like 31M")
    return int(float(found[1]) * UNITS[found[2].upper()])


@dataclass(frozen=True)
class Repeated:
    frame: pd.DataFrame  # the rows of every synthetic item, by item then date
    ids: list[str]  # the synthetic items, `<real id>~<n>`
    sources: list[str]  # the real item each one repeats


def repeat_series(frame: pd.DataFrame, rows: int, days: int = DAYS) -> Repeated:
    """`rows` rows (rounded down to whole items of `days` days) of `frame`'s series (rows
    with `item_id` and `date`; every other column is copied along with its row)."""
    real = frame.sort_values(["item_id", "date"], ignore_index=True)
    codes, uniques = pd.factorize(real["item_id"], sort=True)
    originals = [str(item_id) for item_id in uniques]
    starts = np.searchsorted(codes, np.arange(len(originals)))
    lengths = np.diff(np.append(starts, len(codes)))
    count = max(1, rows // days)
    source = np.arange(count) % len(originals)
    # Row r of synthetic item j is real row starts[s] + (r mod lengths[s]), s = source[j].
    offsets = np.tile(np.arange(days), count) % np.repeat(lengths[source], days)
    picked = np.repeat(starts[source], days) + offsets
    dates = pd.date_range(end=real["date"].max(), periods=days, freq="D")
    ids = [f"{originals[s]}~{j}" for j, s in enumerate(source)]
    repeated = pd.DataFrame(
        {
            "item_id": pd.Categorical.from_codes(np.repeat(np.arange(count), days), pd.Index(ids)),
            "date": np.tile(dates.to_numpy(), count),
            **{
                column: real[column].take(picked).reset_index(drop=True)
                for column in real.columns
                if column not in ("item_id", "date")
            },
        }
    )
    return Repeated(repeated, ids, [originals[s] for s in source])


def synthesize(trained: TrainedModel, rows: int, days: int = DAYS) -> TrainedModel:
    """`rows` priced rows (rounded down to whole items of `days` days) from `trained`."""
    columns = [column for column in PREDICTION_COLUMNS if column in trained.predictions]
    repeated = repeat_series(trained.predictions[columns], rows, days)
    items = trained.items.set_index("item_id").loc[repeated.sources].reset_index()
    items["item_id"] = repeated.ids
    return TrainedModel(trained.model, items, repeated.frame, dict(trained.info))


@dataclass(frozen=True)
class Footprint:
    rss_mb: float  # resident set, shared file pages included
    pss_mb: float  # proportional share: shared pages divided among the processes mapping them


def footprint(pid: int) -> Footprint:
    """A process's memory from /proc (`smaps_rollup`)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) / 1024
    return Footprint(fields.get("Rss", 0.0), fields.get("Pss", 0.0))


@dataclass(frozen=True)
class Published:
    rows: int
    seconds: float  # to synthesize and publish
    table_mb: float  # the served layout's row file (`model.lookup.ROWS_FILE`)
    queries: list[bytes]  # /fair_price bodies over the whole table, shuffled


def publish_scaled(rows: int, store_path: Path, queries: int = 200_000) -> Published:
    """Copy the production model of this process's store (BENTOML_HOME) into a store of
    its own at `store_path`, publish a `rows`-row table for it there (a service on the
    first store keeps serving the small table), and make `queries` random queries of it."""
    from model.settings import load_settings
    from service.settings import ServiceSettings, StoreSettings
    from service.store import Store, store_root

    started = time.monotonic()
    settings = load_settings(ServiceSettings).store
    shutil.copytree(store_root(settings) / "models", store_path / "models")
    store = Store.from_settings(StoreSettings(path=store_path, keep_published=1))
    selection = store.select()
    if selection is None:
        raise SystemExit("no production model to publish the scale table for")
    scaled = synthesize(store.load(selection), rows)
    publication = store.publications.publish(selection.model.tag, scaled)
    seconds = time.monotonic() - started
    table_mb = (publication.path / ROWS_FILE).stat().st_size / 2**20
    chooser = np.random.default_rng(6)
    ids = scaled.items["item_id"].to_numpy()
    days = pd.date_range(end=scaled.predictions["date"].max(), periods=DAYS, freq="D")
    bodies = [
        json.dumps({"card_id": str(ids[item]), "date": days[day].date().isoformat()}).encode()
        for item, day in zip(
            chooser.integers(0, len(ids), queries),
            chooser.integers(0, DAYS, queries),
            strict=True,
        )
    ]
    return Published(len(scaled.predictions), seconds, table_mb, bodies)


__all__ = [
    "Footprint",
    "Published",
    "Repeated",
    "footprint",
    "parse_rows",
    "publish_scaled",
    "repeat_series",
    "synthesize",
]
