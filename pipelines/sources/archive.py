"""TCGCSV daily dumps, read offline: `prices-YYYY-MM-DD.ppmd.7z` archives and their extracted
directories.

Inside both, `YYYY-MM-DD/<categoryId>/<groupId>/prices` holds the same JSON as the live
`/prices` endpoint. Dumps cover every TCGplayer category; only ours is read.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import py7zr
from py7zr.io import BytesIOFactory

from pipelines.sources import SourceError

# One group's prices file is well under a megabyte; the limit only guards against a bomb.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
ARCHIVE_NAME = re.compile(r"prices-(\d{4}-\d{2}-\d{2})\.ppmd\.7z$")
DAY_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def archive_file_name(day: date) -> str:
    return f"prices-{day.isoformat()}.ppmd.7z"


def archive_day(path: Path) -> date:
    match = ARCHIVE_NAME.search(path.name)
    if not match:
        raise SourceError(f"{path.name}: expected an archive named prices-YYYY-MM-DD.ppmd.7z")
    return date.fromisoformat(match.group(1))


def _decode(raw: bytes, where: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as error:
        raise SourceError(f"{where}: malformed JSON: {error}") from None


def read_category_prices(path: Path, category_id: int) -> dict[int, Any]:
    """The decoded JSON of every group's prices file of `category_id` in an archive."""
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            members = {
                name: int(parts[2])
                for name in archive.getnames()
                if len(parts := name.split("/")) == 4
                and parts[1] == str(category_id)
                and parts[3] == "prices"
                and parts[2].isdigit()
            }
            factory = BytesIOFactory(MAX_MEMBER_BYTES)
            archive.extract(targets=list(members), factory=factory)
    except (py7zr.Bad7zFile, OSError, EOFError) as error:
        raise SourceError(f"{path}: not a readable 7z archive: {error}") from None
    decoded = {}
    for name, group_id in members.items():
        buffer = factory.products[name]
        buffer.seek(0)
        decoded[group_id] = _decode(buffer.read(), f"{path}:{name}")
    return decoded


def dump_days(directory: Path) -> dict[date, Path]:
    """The day directories of an extracted dump: `directory` itself when it is named
    YYYY-MM-DD, else its children that are."""
    if DAY_NAME.match(directory.name):
        return {date.fromisoformat(directory.name): directory}
    if not directory.is_dir():
        raise SourceError(f"{directory}: not a directory")
    found = {
        date.fromisoformat(child.name): child
        for child in directory.iterdir()
        if child.is_dir() and DAY_NAME.match(child.name)
    }
    if not found:
        raise SourceError(
            f"{directory}: no YYYY-MM-DD directories "
            "(expected YYYY-MM-DD/<category>/<group>/prices)"
        )
    return found


def read_dump_prices(day_directory: Path, category_id: int) -> dict[int, Any]:
    """The decoded JSON of every group's prices file of `category_id` in a dump's day."""
    category = day_directory / str(category_id)
    decoded = {}
    for group in sorted(category.iterdir()) if category.is_dir() else []:
        prices = group / "prices"
        if group.name.isdigit() and prices.is_file():
            decoded[int(group.name)] = _decode(prices.read_bytes(), str(prices))
    return decoded
