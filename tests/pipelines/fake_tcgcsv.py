"""A local TCGCSV speaking the real wire format, one day at a time, with injectable faults.

It serves `/last-updated.txt` (an ISO timestamp, like `2025-09-02T20:10:03+0000`),
`/tcgplayer/3/groups`, `/tcgplayer/3/<group>/products` and `/tcgplayer/3/<group>/prices`
(`{"success": true, "errors": [], "results": [...]}`), and answers 403 for the archive of
past days, as tcgcsv.com does since 2026-09-16. Prices are real: the rows of
`tests/fixtures/tcgcsv/singles.parquet` (two groups, six days, cut from the shared TCGCSV
singles by `scripts/build_tcgcsv_fixtures.py`), served under whatever day a test publishes.
Product names are not in the price files; the fake names products `<group name> #<id>`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from scripts.build_tcgcsv_fixtures import GROUPS, envelope, price_results

__all__ = [
    "FIXTURES",
    "GROUPS",
    "FakeTcgcsv",
    "envelope",
    "fixture_days",
    "fixture_rows",
    "json_response",
    "product_name",
    "slow",
    "status",
    "truncated",
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tcgcsv"


def fixture_rows() -> pd.DataFrame:
    return pd.read_parquet(FIXTURES / "singles.parquet")


def fixture_days() -> list[date]:
    return sorted(fixture_rows()["date"].unique())


def group_names() -> dict[int, str]:
    groups = pd.read_csv(FIXTURES / "groups.csv")
    return dict(zip(groups["group_id"], groups["name"], strict=True))


def product_name(group_id: int, product_id: int) -> str:
    return f"{group_names()[group_id]} #{product_id}"


def product_results(group_id: int, product_ids: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "productId": product_id,
            "name": product_name(group_id, product_id),
            "cleanName": product_name(group_id, product_id),
            "imageUrl": f"https://tcgplayer-cdn.tcgplayer.com/product/{product_id}_200w.jpg",
            "categoryId": 3,
            "groupId": group_id,
            "url": f"https://www.tcgplayer.com/product/{product_id}",
            "modifiedOn": "2025-09-20T20:03:47.503",
            "extendedData": [
                {
                    "name": "Number",
                    "displayName": "Card Number",
                    "value": f"{product_id % 200}/200",
                },
                {"name": "Rarity", "displayName": "Rarity", "value": "Rare"},
            ],
        }
        for product_id in product_ids
    ]


Fault = Callable[[Request], Response]


class FakeTcgcsv:
    """Install on a pytest-httpserver; `publish` a day; `fail` a path for the next requests."""

    def __init__(self, server: HTTPServer, day: date | None = None) -> None:
        self.server = server
        self.requests: Counter[str] = Counter()
        self.faults: dict[str, deque[Fault]] = {}
        self.lock = threading.Lock()
        self.day: date | None = None
        self.updated: datetime | None = None
        self.rows = pd.DataFrame()
        self.extra: dict[int, list[dict[str, Any]]] = {}
        # Seconds every answer takes (a slow source, so a job can be killed mid-way).
        self.delay_seconds = 0.0
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)
        if day is not None:
            self.publish(day)

    @property
    def url(self) -> str:
        return self.server.url_for("").rstrip("/")

    def publish(
        self,
        day: date,
        source_day: date | None = None,
        extra: dict[int, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Serve `source_day`'s fixture prices (default: the first fixture day) as `day`,
        updated at 20:05 UTC that day; `extra` adds price rows (wire format) per group."""
        rows = fixture_rows()
        chosen = source_day or fixture_days()[0]
        with self.lock:
            self.day = day
            self.updated = datetime(day.year, day.month, day.day, 20, 5, 3, tzinfo=UTC)
            self.rows = rows[rows["date"] == chosen]
            self.extra = extra or {}

    def fail(self, path: str, *faults: Fault) -> None:
        with self.lock:
            self.faults.setdefault(path, deque()).extend(faults)

    def prices_of(self, group_id: int) -> list[dict[str, Any]]:
        return price_results(self.rows[self.rows["group_id"] == group_id]) + self.extra.get(
            group_id, []
        )

    def handle(self, request: Request) -> Response:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        path = request.path
        with self.lock:
            self.requests[path] += 1
            queued = self.faults.get(path)
            fault = queued.popleft() if queued else None
        if fault is not None:
            return fault(request)
        if path.startswith("/archive/"):
            return Response("<html>403 Forbidden</html>", status=403, content_type="text/html")
        if self.updated is None:
            return Response("not published", status=503)
        if path == "/last-updated.txt":
            return Response(self.updated.strftime("%Y-%m-%dT%H:%M:%S%z"), content_type="text/plain")
        parts = path.strip("/").split("/")
        if parts[:2] != ["tcgplayer", "3"]:
            return Response("not found", status=404)
        if parts[2:] == ["groups"]:
            names = group_names()
            results = [
                {"groupId": group, "name": names[group], "categoryId": 3} for group in GROUPS
            ]
            return json_response(envelope(results))
        if len(parts) == 4 and parts[2].isdigit() and int(parts[2]) in GROUPS:
            group = int(parts[2])
            prices = self.prices_of(group)
            if parts[3] == "prices":
                return json_response(envelope(prices))
            if parts[3] == "products":
                ids = sorted({price["productId"] for price in prices})
                return json_response(envelope(product_results(group, ids)))
        return Response("not found", status=404)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, content_type="application/json")


def status(code: int, retry_after: str | None = None) -> Fault:
    def respond(_: Request) -> Response:
        headers = {"Retry-After": retry_after} if retry_after else {}
        return Response("error", status=code, headers=headers)

    return respond


def slow(seconds: float) -> Fault:
    """An answer that comes after the client's timeout."""

    def respond(_: Request) -> Response:
        time.sleep(seconds)
        return Response("{}", content_type="application/json")

    return respond


def truncated() -> Fault:
    """A body cut off mid-way: fewer bytes than Content-Length, then the connection closes."""

    def respond(_: Request) -> Response:
        body = b'{"success": true, "errors": [], "results": [{"productId": 1'
        # An iterable body: werkzeug keeps the declared length instead of measuring it.
        return Response(
            iter([body]),
            content_type="application/json",
            headers={"Content-Length": str(len(body) + 500), "Connection": "close"},
        )

    return respond
