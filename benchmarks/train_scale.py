"""Training at scale: `python -m benchmarks.train_scale 31M` trains the configured strategy
(`quantile_gbm` by default) on that many price rows and reports the time and peak memory.

The rows repeat the bundled sample's real series under new ids (`benchmarks.scale`), each
cycled over two years of consecutive days: about 42,000 items for 31 M rows. The run stops
itself when its resident memory passes `--max-gb` (this machine has 24 GB and CI beside it),
and says so: an honest "does not fit" rather than a machine brought down.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time
from pathlib import Path

import pandas as pd

from benchmarks.scale import DAYS, parse_rows, repeat_series
from model.data import load_prices
from model.settings import ModelSettings
from model.training import train

TEXT_KINDS = ("O", "U")


def rss_gb() -> float:
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def watch(limit_gb: float, started: float, peak: list[float]) -> None:
    """Record the peak RSS; end the process (exit 3) when it passes `limit_gb`."""
    while True:
        current = rss_gb()
        peak[0] = max(peak[0], current)
        if current > limit_gb:
            print(
                f"stopped: RSS {current:.1f} GB passed --max-gb {limit_gb} after "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            os._exit(3)
        time.sleep(0.2)


def scaled_prices(rows: int) -> pd.DataFrame:
    """The bundled prices repeated to `rows` rows; text columns as categories (one code
    per row, as a collector's parquet partitions hold them compressed)."""
    prices = load_prices().valid
    text = [
        column
        for column in prices.columns
        if column not in ("item_id", "date")
        and (
            prices[column].dtype.kind in TEXT_KINDS or pd.api.types.is_string_dtype(prices[column])
        )
    ]
    return repeat_series(prices.astype(dict.fromkeys(text, "category")), rows).frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=parse_rows, help="price rows, e.g. 31M")
    parser.add_argument("--max-gb", type=float, default=20.0)
    options = parser.parse_args()
    started = time.monotonic()
    peak = [0.0]
    threading.Thread(target=watch, args=(options.max_gb, started, peak), daemon=True).start()
    prices = scaled_prices(options.rows)
    built = time.monotonic()
    settings = ModelSettings()
    print(
        f"{len(prices):,} price rows ({prices['item_id'].nunique():,} items x {DAYS} days) "
        f"built in {built - started:.0f} s, RSS {rss_gb():.1f} GB; training "
        f"{settings.strategy}",
        flush=True,
    )
    result = train(prices, settings)
    done = time.monotonic()
    peak_gb = max(peak[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    print(
        f"trained in {done - built:.0f} s ({(done - built) / 60:.1f} min), peak RSS "
        f"{peak_gb:.1f} GB; {len(result.trained.predictions):,} priced rows; metrics "
        + ", ".join(f"{name} {value:.4g}" for name, value in result.evaluation.metrics.items())
    )


if __name__ == "__main__":
    main()
