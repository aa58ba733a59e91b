"""Every v1 route with a valid request, for the checks that each route must pass (auth,
scopes, rate limits) in-process and over a real server."""

from __future__ import annotations

SEALED = "tcg-133777"
CHARIZARD = "sv2a_151_charizard_ex___201_165"
# (method, path, JSON body)
V1_ROUTES: list[tuple[str, str, object]] = [
    ("GET", "/v1/cards?limit=2", None),
    ("GET", f"/v1/cards/{SEALED}", None),
    ("GET", f"/v1/cards/{SEALED}/fair-price", None),
    ("GET", f"/v1/cards/{SEALED}/history", None),
    ("GET", "/v1/sets", None),
    ("GET", "/v1/signals", None),
    ("POST", "/v1/portfolio/valuate", [{"card_id": SEALED, "quantity": 1}]),
    ("GET", "/v1/export/latest.parquet", None),
    ("GET", "/v1/watchlist", None),
    ("POST", "/v1/watchlist", {"items": [{"card_id": SEALED}]}),
    ("GET", "/v1/webhooks", None),
]
# A key's own watchlist and webhooks change with its writes: answered `no-store`, no ETag.
UNCACHED_PREFIXES = ("/v1/watchlist", "/v1/webhooks")
# The routes that need the batch scope.
BATCH_ROUTES = frozenset({"/v1/portfolio/valuate", "/v1/export/latest.parquet"})
