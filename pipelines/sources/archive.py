"""TCGCSV daily archives: `prices-YYYY-MM-DD.ppmd.7z`, one JSON file per category and group.

Inside, `YYYY-MM-DD/<categoryId>/<groupId>/prices` holds the same JSON as the live
`/prices` endpoint. Archives cover every TCGplayer category; we decompress only ours.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import py7zr
from py7zr.io import BytesIOFactory

from pipelines.sources import SourceError

# One group's prices file is well under a megabyte; the limit only guards against a bomb.
MAX_MEMBER_BYTES = 64 * 1024 * 1024


def archive_file_name(day: date) -> str:
    return f"prices-{day.isoformat()}.ppmd.7z"


def read_category_prices(path: Path, category_id: int) -> dict[int, Any]:
    """The decoded JSON of every group's prices file of `category_id`, by group id."""
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
    except (py7zr.Bad7zFile, OSError) as error:
        raise SourceError(f"{path}: not a readable 7z archive: {error}") from None
    decoded = {}
    for name, group_id in members.items():
        buffer = factory.products[name]
        buffer.seek(0)
        try:
            decoded[group_id] = json.loads(buffer.read())
        except ValueError as error:
            raise SourceError(f"{path}:{name}: malformed JSON: {error}") from None
    return decoded
