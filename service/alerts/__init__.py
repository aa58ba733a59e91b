"""Watchlists and webhook alerts (docs/alerts.md).

`store` keeps watchlists, webhooks, events and deliveries in SQLite (the default) or
PostgreSQL, with Alembic migrations; `signing` makes webhook secrets, encrypts them at
rest and signs deliveries; `targets` decides which URLs a webhook may call; `routes` are
the `/v1/watchlist` and `/v1/webhooks` routes. The jobs evaluate rules and deliver events
(`pipelines.alerts`).
"""
