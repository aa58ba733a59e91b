"""Payloads in the sources' real wire formats (see ../shared/data/README.md)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import py7zr

GROUP = 23237  # a TCGplayer group (set) id
OTHER_GROUP = 3170


def envelope(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": True, "errors": [], "results": results}


def product(product_id: int, name: str, number: str, rarity: str) -> dict[str, Any]:
    return {
        "productId": product_id,
        "name": name,
        "cleanName": name,
        "imageUrl": f"https://tcgplayer-cdn.tcgplayer.com/product/{product_id}_200w.jpg",
        "categoryId": 3,
        "groupId": GROUP,
        "url": f"https://www.tcgplayer.com/product/{product_id}",
        "modifiedOn": "2025-11-20T20:03:47.503",
        "extendedData": [
            {"name": "Number", "displayName": "Card Number", "value": number},
            {"name": "Rarity", "displayName": "Rarity", "value": rarity},
        ],
    }


PRODUCTS = [
    product(654594, "Charizard ex", "199/165", "Special Illustration Rare"),
    product(654595, "Pikachu", "173/165", "Illustration Rare"),
    product(654596, "Bulbasaur", "001/165", "Common"),
]


def price(
    product_id: int, market: float | None, sub_type: str = "Normal", low: float | None = 1.0
) -> dict[str, Any]:
    return {
        "productId": product_id,
        "lowPrice": low,
        "midPrice": None if market is None else market * 1.1,
        "highPrice": None if market is None else market * 2,
        "marketPrice": market,
        "directLowPrice": None,
        "subTypeName": sub_type,
    }


PRICES = [
    price(654594, 250.0),
    price(654595, 60.0),
    price(654595, 80.0, "Reverse Holofoil"),
    price(654596, 0.25),
    price(654596, None, "Reverse Holofoil"),
]


def write_archive(directory: Path, day: date, groups: dict[int, list[dict[str, Any]]]) -> Path:
    """A TCGCSV daily archive (PPMd, like the real ones) with one other category mixed in."""
    path = directory / f"prices-{day.isoformat()}.ppmd.7z"
    directory.mkdir(parents=True, exist_ok=True)
    with py7zr.SevenZipFile(path, "w", filters=[{"id": py7zr.FILTER_PPMD}]) as archive:
        for group_id, prices in groups.items():
            archive.writestr(json.dumps(envelope(prices)), f"{day.isoformat()}/3/{group_id}/prices")
        archive.writestr(json.dumps(envelope([price(1, 5.0)])), f"{day.isoformat()}/1/99/prices")
    return path


def ppt_card(
    name: str, number: str, market: float | None, tcgplayer_id: int, history: Any = None
) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": f"card-{tcgplayer_id}",
        "tcgPlayerId": tcgplayer_id,
        "name": f"{name} - {number}",
        "cardNumber": number,
        "rarity": "Special Art Rare",
        "set": "SV2a: Pokemon Card 151",
        "prices": {"market": market, "mid": 1.0},
    }
    if history is not None:
        card["priceHistory"] = history
    return card
