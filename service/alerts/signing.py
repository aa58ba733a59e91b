"""Webhook secrets and signatures.

Every delivery carries `PokeWatch-Signature: t=<unix seconds>,v1=<hex>`, where `<hex>` is
HMAC-SHA256 keyed with the webhook's secret over `"<t>." + body` (Stripe's scheme; GitHub's
`X-Hub-Signature-256` is the same HMAC without the timestamp). The timestamp lets a
receiver refuse replays of an old delivery (docs/alerts.md has the verification code).

A secret is shown once, when the webhook is made. Signing needs the secret itself, so it
cannot be stored as a hash: it is encrypted (Fernet: AES-128-CBC with HMAC-SHA256, from
`cryptography`) with the alerts key: `POKEWATCH_ALERTS_KEY` where set (deployments keep it
in a secret; required with PostgreSQL), else a key file made once beside the SQLite
database (mode 0600). A copy of the database alone does not reveal any secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from service.files import create_exclusively

KEY_VARIABLE = "POKEWATCH_ALERTS_KEY"
KEY_FILE = "alerts.key"
SECRET_PREFIX = "whsec_"  # noqa: S105  # pragma: allowlist secret (a prefix)
SIGNATURE_HEADER = "PokeWatch-Signature"


class SecretsError(RuntimeError):
    """The alerts key is missing or does not open a stored secret."""


def new_key() -> str:
    """A new alerts key for `POKEWATCH_ALERTS_KEY`."""
    return Fernet.generate_key().decode()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `PokeWatch-Signature` header value of `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class SecretBox:
    """Encrypts webhook secrets for the database and opens them to sign a delivery."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as error:
            raise SecretsError(f"{KEY_VARIABLE}: not a Fernet key ({error})") from None

    @classmethod
    def from_environment(cls, key_directory: Path | None) -> SecretBox:
        """The key of `POKEWATCH_ALERTS_KEY`, else of the key file in `key_directory`
        (made on first use); without either, a `SecretsError` saying what to set."""
        configured = os.environ.get(KEY_VARIABLE)
        if configured:
            return cls(configured.encode())
        if key_directory is None:
            raise SecretsError(
                f"{KEY_VARIABLE} is not set: with a database server, every process needs the "
                "same alerts key (`pokewatch alerts new-key` makes one)"
            )
        path = key_directory / KEY_FILE
        if not path.exists():
            # Another process may make it first: then theirs is used.
            create_exclusively(path, Fernet.generate_key(), mode=0o600)
        return cls(path.read_bytes().strip())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretsError(
                f"a webhook secret does not open with this alerts key ({KEY_VARIABLE} or "
                f"{KEY_FILE} changed?)"
            ) from None


__all__ = [
    "KEY_VARIABLE",
    "SIGNATURE_HEADER",
    "SecretBox",
    "SecretsError",
    "new_key",
    "new_secret",
    "signature",
]
