"""Alembic's environment: migrations run on the connection `AlertStore.migrate` passes in
(no alembic.ini: the URL comes from `alerts.database_url`)."""

from __future__ import annotations

from alembic import context

from service.alerts.store import METADATA

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode does.
context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
