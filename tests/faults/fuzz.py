"""Coverage-guided fuzzing with atheris: `python -m tests.faults.fuzz <target> -runs=N`.

Each target feeds arbitrary bytes to an importer (the sources' wire parsers, the TCGCSV
archive reader) or a query parser (what the API parses from a request) and accepts only
the error that code promises (`SourceError`, `QueryError`): anything else it raises is a
finding, and the run exits non-zero with the input that caused it.
`tests/faults/test_fuzz.py` runs every target for a bounded number of inputs.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris
import orjson

# Only PokeWatch's own code is instrumented (instrumenting pandas, pydantic and BentoML
# on import took over a minute per run).
with atheris.instrument_imports(include=["model", "pipelines", "service"]):
    from model.catalog import Cursor, Sort, parse_holdings
    from model.predictor import QueryError, parse_day, parse_query
    from pipelines.sources import SourceError
    from pipelines.sources.archive import read_category_prices
    from pipelines.sources.pokemonpricetracker import parse_card, parse_price_history
    from pipelines.sources.tcgcsv import (
        TcgcsvGroup,
        TcgcsvPrice,
        TcgcsvProduct,
        parse_last_updated,
        parse_results,
    )
    from service.v1 import best_match


def json_or_text(data: bytes) -> Any:
    """The input as JSON when it is JSON (most of the parsers' inputs), else as text."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")


def tcgcsv_wire(data: bytes) -> None:
    payload = json_or_text(data)
    for row_type in (TcgcsvPrice, TcgcsvProduct, TcgcsvGroup):
        with contextlib.suppress(SourceError):
            parse_results(payload, row_type, "fuzz")
    with contextlib.suppress(SourceError):
        parse_last_updated(data.decode("utf-8", "replace"))


def pokemonpricetracker_wire(data: bytes) -> None:
    payload = json_or_text(data)
    for parse in (parse_card, parse_price_history):
        with contextlib.suppress(SourceError):
            parse(payload, "fuzz")


ARCHIVE = Path(tempfile.mkdtemp(prefix="pokewatch-fuzz-")) / "prices.7z"


def tcgcsv_archive(data: bytes) -> None:
    ARCHIVE.write_bytes(b"7z\xbc\xaf\x27\x1c" + data)  # the signature, then anything
    with contextlib.suppress(SourceError):
        read_category_prices(ARCHIVE, 3)


def query_parsers(data: bytes) -> None:
    payload = json_or_text(data)
    text = data.decode("utf-8", "replace")
    checks: list[Callable[[], object]] = [
        lambda: parse_query(payload),
        lambda: parse_day(text),
        lambda: Cursor.decode(text),
        lambda: Sort.parse(text),
        lambda: parse_holdings(payload),
    ]
    for check in checks:
        with contextlib.suppress(QueryError):
            check()
    best_match(text, ("application/json", "text/csv"))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "tcgcsv-wire": tcgcsv_wire,
    "pokemonpricetracker-wire": pokemonpricetracker_wire,
    "tcgcsv-archive": tcgcsv_archive,
    "query-parsers": query_parsers,
}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
