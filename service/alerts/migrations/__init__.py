"""Alembic's migrations of the alerts database (`service.alerts.store.AlertStore.migrate`)."""
