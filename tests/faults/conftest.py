"""The fault suite: real processes on loopback, each probe bounded in time and count.

Tests marked `faults` are the slow part (`make faults`); the others also run in `make test`.
"""

import os
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import bentoml_serve

READ_SECONDS = 1.5
MAX_CONNECTIONS = 100
MAX_HEADER_BYTES = 16_384
# Slack for a loaded 2-core machine: a deadline fires within this of its time.
SLACK_SECONDS = 3.0
SEALED = "tcg-133777"


@pytest.fixture(scope="session")
def guarded(model_tag: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service with short read deadlines and small caps (service.connections)."""
    env = {
        # Its own BentoML home, as a deployment has (the shared store is store.path): every
        # `bentoml serve` empties its home's prometheus_multiproc_dir at start, and this
        # server lives through the other tests' servers.
        "BENTOML_HOME": str(tmp_path_factory.mktemp("guarded-home")),
        "POKEWATCH_STORE__PATH": os.environ["BENTOML_HOME"],
        "POKEWATCH_SECURITY__REQUEST_READ_SECONDS": str(READ_SECONDS),
        "POKEWATCH_SECURITY__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "POKEWATCH_SECURITY__MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    }
    with bentoml_serve("service:PokeWatch", env=env) as base:
        yield base


@dataclass(frozen=True)
class RawAnswer:
    """What a server sent back on a raw connection, and whether it then closed it."""

    data: bytes
    closed: bool
    seconds: float

    @property
    def status(self) -> int | None:
        line = self.data.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def open_raw(base: str, data: bytes = b"") -> socket.socket:
    connection = socket.create_connection(address(base), timeout=10)
    if data:
        connection.sendall(data)
    return connection


def complete(data: bytes) -> bool:
    """Whether `data` holds a whole response (its head and Content-Length bytes)."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def read_answer(connection: socket.socket, within: float, until_closed: bool = True) -> RawAnswer:
    """Read until the server closes the connection (or, unless `until_closed`, has sent a
    whole response) or `within` seconds pass."""
    started = time.monotonic()
    received = b""
    closed = False
    while (left := within - (time.monotonic() - started)) > 0:
        if not until_closed and complete(received):
            break
        connection.settimeout(left)
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        received += chunk
    return RawAnswer(received, closed, time.monotonic() - started)


def raw_request(
    base: str, data: bytes, within: float = 10, until_closed: bool = False
) -> RawAnswer:
    with open_raw(base, data) as connection:
        return read_answer(connection, within, until_closed)


def served(base: str, api_key: str) -> int:
    """The status of one ordinary request (the service still answers others)."""
    response = httpx.post(
        base + "/fair_price", json={"card_id": SEALED}, headers={"X-API-Key": api_key}, timeout=10
    )
    return response.status_code


# What the load of the Redis faults and the soak asks: a sealed product, a card, an unknown
# id; the latest day or a date.
LOAD_CARDS = ("tcg-133777", "sv2a_151_mew_ex___205_165", "missing-card")
LOAD_DATES = (None, "2024-06-01", "2025-01-15", "2025-10-01")


async def mixed_request(client: httpx.AsyncClient, base: str, rng: random.Random) -> httpx.Response:
    """Half `POST /fair_price`, half `GET /v1/cards/{id}/fair-price`, over `LOAD_CARDS` and
    `LOAD_DATES`."""
    card, day = rng.choice(LOAD_CARDS), rng.choice(LOAD_DATES)
    if rng.random() < 0.5:
        return await client.post(base + "/fair_price", json={"card_id": card, "date": day})
    query = f"?date={day}" if day else ""
    return await client.get(f"{base}/v1/cards/{card}/fair-price{query}")
