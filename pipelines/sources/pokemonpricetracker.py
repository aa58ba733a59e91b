"""PokemonPriceTracker API v2 (Bearer key): set-wide and per-card requests, price history.

The key comes from the environment variable named in `sources.pokemonpricetracker`. The
free tier allows about 100 calls a UTC day, so all runs of a day together spend at most
`max_calls_per_day` requests (retries count; the count is kept in a file of the collector's
state directory) and stop with a clear error past it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.schema import PPT_SOURCE
from pipelines.settings import (
    PokemonPriceTrackerSettings,
    RetrySettings,
    TrackedPokemonPriceTrackerSettings,
)
from pipelines.sources import Snapshot, SourceError
from pipelines.sources.http import JsonClient
from service.files import atomic_write


class BudgetExhaustedError(SourceError):
    """The day's call budget is spent; the rest waits for tomorrow."""


def utc_today() -> date:
    return datetime.now(UTC).date()


class CallBudget:
    """Calls per UTC day across runs and processes, counted in `state_file` (locked)."""

    def __init__(self, limit: int, state_file: Path, today: Callable[[], date] = utc_today) -> None:
        self.limit = limit
        self.state_file = state_file
        self._today = today

    def spent(self) -> int:
        """Calls spent today so far."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return 0
        if not isinstance(state, dict) or state.get("day") != self._today().isoformat():
            return 0
        spent = state.get("spent", 0)
        return spent if isinstance(spent, int) else 0

    def spend(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with (self.state_file.parent / f".{self.state_file.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            spent = self.spent()
            if spent >= self.limit:
                raise BudgetExhaustedError(
                    f"PokemonPriceTracker call budget of {self.limit} per UTC day is spent "
                    f"({self.state_file}); the rest waits for tomorrow"
                )
            state = {"day": self._today().isoformat(), "spent": spent + 1}
            atomic_write(self.state_file, json.dumps(state).encode())


class CardPrices(BaseModel):
    model_config = ConfigDict(extra="ignore")

    market: float | None = None
    mid: float | None = None


class Card(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = None
    tcgplayer_id: str | None = Field(default=None, alias="tcgPlayerId")
    name: str
    card_number: str | None = Field(default=None, alias="cardNumber")
    number: str | None = None
    rarity: str | None = None
    prices: CardPrices | None = None
    price_history: Any = Field(default=None, alias="priceHistory")

    @property
    def market_price(self) -> float | None:
        if self.prices is None:
            return None
        return self.prices.market if self.prices.market is not None else self.prices.mid

    @property
    def display_number(self) -> str | None:
        return self.card_number or self.number

    def item_id(self, set_slug: str) -> str:
        """`<set_slug>_<name with number>`, every non-alphanumeric as `_` (our card slugs)."""
        label = self.name
        if self.display_number and self.display_number not in label:
            label = f"{label} - {self.display_number}"
        return f"{set_slug}_{re.sub(r'[^a-z0-9]', '_', label.lower())}"


def _tcgplayer_id_as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) else value


def parse_card(payload: Any, where: str) -> Card:
    if not isinstance(payload, dict):
        raise SourceError(f"{where}: expected a card object, got {type(payload).__name__}")
    fields = {**payload, "tcgPlayerId": _tcgplayer_id_as_text(payload.get("tcgPlayerId"))}
    try:
        return Card.model_validate(fields)
    except ValidationError as error:
        raise SourceError(f"{where}: unexpected card: {error}") from None


def parse_price_history(history: Any, where: str) -> dict[date, float]:
    """Both observed shapes: a mapping date -> price, or a list of `{date, price}` objects."""
    if history is None:
        return {}
    if isinstance(history, dict):
        pairs = list(history.items())
    elif isinstance(history, list) and all(
        isinstance(entry, dict) and {"date", "price"} <= entry.keys() for entry in history
    ):
        pairs = [(entry["date"], entry["price"]) for entry in history]
    else:
        raise SourceError(
            f"{where}: priceHistory is neither a mapping date -> price nor a list of "
            f"{{date, price}} objects: {str(history)[:200]}"
        )
    parsed = {}
    for when, price in pairs:
        if price is not None and not isinstance(price, int | float):
            raise SourceError(
                f"{where}: priceHistory price for {when!r} is not a number: {price!r}"
            )
        try:
            day = datetime.fromisoformat(str(when).replace("Z", "+00:00")).date()
        except ValueError:
            raise SourceError(f"{where}: priceHistory date {when!r} is not a date") from None
        if price is not None:
            parsed[day] = float(price)
    return parsed


class PokemonPriceTrackerClient:
    def __init__(
        self,
        settings: PokemonPriceTrackerSettings,
        retry: RetrySettings,
        budget: CallBudget,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = api_key or os.environ.get(settings.api_key_env)
        if not key:
            raise SourceError(
                f"PokemonPriceTracker needs an API key in the environment variable "
                f"{settings.api_key_env}"
            )
        self.budget = budget
        self._http = JsonClient(
            settings.base_url,
            retry,
            settings.timeout_seconds,
            headers={"Authorization": f"Bearer {key}"},
            sleep=sleep,
            before_request=self.budget.spend,
        )

    def close(self) -> None:
        self._http.close()

    def set_cards(self, set_id: str, language: str, history_days: int | None) -> list[Card]:
        """Every card of a set, with `history_days` of history when given (one call)."""
        where = f"/cards?setId={set_id}"
        query = {"setId": set_id, "language": language, "fetchAllInSet": "true"}
        data = self._cards(query, history_days)
        if not isinstance(data, list):
            raise SourceError(f"{where}: expected `data` to be a list of cards, got {_kind(data)}")
        return [parse_card(card, where) for card in data]

    def card(self, tcgplayer_id: str, history_days: int | None) -> Card:
        """One card by TCGplayer id (the API answers an object here, not a list)."""
        where = f"/cards?tcgPlayerId={tcgplayer_id}"
        data = self._cards({"tcgPlayerId": tcgplayer_id}, history_days)
        if not isinstance(data, dict):
            raise SourceError(f"{where}: expected `data` to be a card object, got {_kind(data)}")
        return parse_card(data, where)

    def _cards(self, query: dict[str, str], history_days: int | None) -> Any:
        """The `data` member of a /cards answer (None when the answer has none)."""
        params: dict[str, str | int] = {
            **query,
            "includeHistory": "true" if history_days else "false",
        }
        if history_days:
            params["days"] = history_days
        payload = self._http.get_json("/cards", params)
        return payload.get("data") if isinstance(payload, dict) else None


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


class PokemonPriceTrackerSource:
    """Tracked cards on one day: current prices for today, the price history before."""

    name = PPT_SOURCE

    def __init__(
        self,
        client: PokemonPriceTrackerClient,
        selections: list[TrackedPokemonPriceTrackerSettings],
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._client = client
        self._selections = selections
        self._today = today

    def fetch(self, day: date | None) -> Snapshot:
        """Current prices for today (or `day` None), the price history for a past day.

        A failed request (or the day's budget running out) does not lose the cards already
        fetched: they are returned, and the snapshot lists what failed."""
        today = self._today()
        wanted = day or today
        # History depth reaching back to `day`; today's price needs no history.
        days_back = (today - wanted).days
        history_days = days_back + 1 if days_back > 0 else None
        records: list[dict[str, Any]] = []
        failures: list[str] = []
        for selection in self._selections:
            try:
                for card in self._cards(selection, history_days, failures):
                    price = self._price_on(card, wanted, history_days)
                    records.append(self._row(card, selection, wanted, price))
            except BudgetExhaustedError as error:
                failures.append(str(error))
                break
            except SourceError as error:
                failures.append(f"set {selection.set_id}: {error}")
        budget = self._client.budget
        note = f"{budget.spent()} of {budget.limit} calls spent today"
        return Snapshot(wanted, pd.DataFrame.from_records(records), note, tuple(failures))

    def _cards(
        self,
        selection: TrackedPokemonPriceTrackerSettings,
        history_days: int | None,
        failures: list[str],
    ) -> Iterator[Card]:
        if selection.tcgplayer_ids:
            for tcgplayer_id in selection.tcgplayer_ids:
                try:
                    card = self._client.card(tcgplayer_id, history_days)
                except BudgetExhaustedError:
                    raise
                except SourceError as error:
                    failures.append(f"card {tcgplayer_id}: {error}")
                    continue
                yield card
            return
        cards = self._client.set_cards(selection.set_id, selection.language, history_days)
        priced = [card for card in cards if card.market_price is not None]
        priced.sort(key=lambda card: card.market_price or 0.0, reverse=True)
        yield from priced[: selection.top]

    @staticmethod
    def _price_on(card: Card, day: date, history_days: int | None) -> float | None:
        if history_days is None:
            return card.market_price
        return parse_price_history(card.price_history, f"card {card.name!r}").get(day)

    @staticmethod
    def _row(
        card: Card, selection: TrackedPokemonPriceTrackerSettings, day: date, price: float | None
    ) -> dict[str, Any]:
        return {
            "item_id": card.item_id(selection.set_slug),
            "date": pd.Timestamp(day),
            "market_price": price,
            "name": card.name,
            "source": PPT_SOURCE,
            # As model.schema.normalize_ppt_cards: the slug's first part (sv2a of sv2a_151).
            "set_code": selection.set_slug.split("_", 1)[0],
            "number": card.display_number,
            "rarity": card.rarity,
            "tcgplayer_id": card.tcgplayer_id,
        }
