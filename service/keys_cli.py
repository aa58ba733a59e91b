"""`pokewatch keys ...`: create, list, revoke and rotate API keys in the keys file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from model.settings import ConfigurationError, SettingsT, load_settings
from service.keys import KeyManagementError, KeyRecord, KeysFile, Scope
from service.settings import ServiceSettings

keys_app = typer.Typer(help="Manage API keys (only hashes are stored).", no_args_is_help=True)

ScopesOption = Annotated[
    list[Scope] | None,
    typer.Option("--scopes", help="Repeat for several (default: predict and batch)."),
]


def settings_or_exit(settings_class: type[SettingsT]) -> SettingsT:
    """The settings, or the configuration error on stderr and exit status 2."""
    try:
        return load_settings(settings_class)
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _settings() -> ServiceSettings:
    return settings_or_exit(ServiceSettings)


def _keys_file() -> KeysFile:
    return KeysFile(Path(_settings().security.keys_file))


def _describe(record: KeyRecord) -> str:
    now = datetime.now(UTC)
    status = (
        "revoked"
        if record.revoked
        else "expired"
        if not record.usable_at(now)
        else f"expires {record.expires:%Y-%m-%d %H:%M}Z"
        if record.expires
        else "active"
    )
    scopes = ",".join(sorted(scope.value for scope in record.scopes))
    return f"{record.key_id}  {record.env:<5} {scopes:<21} {status:<24} {record.name}"


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scopes: ScopesOption = None,
    expires_in: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
) -> None:
    """Create a key and print it once on stdout (nothing else goes to stdout)."""
    chosen = frozenset(scopes or (Scope.PREDICT, Scope.BATCH))
    keys = _keys_file()
    raw, record = keys.create(
        name,
        chosen,
        _settings().security.key_env,
        timedelta(days=expires_in) if expires_in else None,
    )
    typer.echo(f"created key {record.key_id} in {keys.path}", err=True)
    typer.echo(raw)


@keys_app.command("list")
def list_keys() -> None:
    """Key ids, scopes and status (never secrets)."""
    for record in _keys_file().read().keys:
        typer.echo(_describe(record))


@keys_app.command("revoke")
def revoke(key_id: str) -> None:
    """Revoke a key at once (every worker stops accepting it within a second)."""
    try:
        record = _keys_file().revoke(key_id)
    except KeyManagementError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_describe(record), err=True)


@keys_app.command("rotate")
def rotate(
    key_id: str,
    overlap_days: Annotated[float, typer.Option(min=0, help="Days the old key keeps working.")] = 7,
) -> None:
    """Print a new key with the same name and scopes; the old one expires after the overlap."""
    try:
        raw, fresh, old = _keys_file().rotate(key_id, timedelta(days=overlap_days))
    except KeyManagementError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"new key {fresh.key_id}; old key: {_describe(old)}", err=True)
    typer.echo(raw)


@keys_app.command("ensure-dev")
def ensure_dev(
    port: Annotated[int, typer.Option(help="Port for the curl example.")] = 3000,
) -> None:
    """Create a local development key unless the keys file already has a usable key."""
    keys = _keys_file()
    now = datetime.now(UTC)
    if any(record.usable_at(now) for record in keys.read().keys):
        typer.echo(f"API keys: {keys.path} (pokewatch keys list / create)", err=True)
        return
    raw, _ = keys.create("local development", frozenset(Scope), _settings().security.key_env)
    typer.echo(
        f"Created a local development API key (shown only now; stored hashed in {keys.path}):\n"
        f"  {raw}\n"
        f"Try:\n"
        f"  curl -s '127.0.0.1:{port}/v1/cards?q=charizard&limit=3' -H 'X-API-Key: {raw}'",
        err=True,
    )
