"""API keys: format, hashing, the keys file, and verification.

A key reads `pw_<env>_<keyid>_<secret>`: `env` says where it belongs (dev, live...),
`keyid` is public and names the record, `secret` is 192 random bits in hex. Only a hash
of the secret is stored: HMAC-SHA256 with the server pepper (`POKEWATCH_KEY_PEPPER`)
when one is set, plain SHA-256 otherwise. Every record says which it used, so setting a
pepper later does not lock out existing keys.

The keys file is JSON, written atomically (temp file, fsync, rename) under an exclusive
lock so concurrent CLI calls never lose a record. Services re-read it when it changes,
so creating, revoking or rotating a key reaches every worker without a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service.files import atomic_write
from service.metrics import service_metrics

logger = logging.getLogger("pokewatch.keys")

KEY_PATTERN = re.compile(r"^pw_([a-z0-9]{1,16})_([0-9a-f]{12})_([0-9a-f]{48})$")
PEPPER_VARIABLE = "POKEWATCH_KEY_PEPPER"


class Scope(StrEnum):
    PREDICT = "predict"
    BATCH = "batch"
    ADMIN = "admin"


class HashScheme(StrEnum):
    SHA256 = "sha256"
    HMAC_SHA256 = "hmac-sha256"


class KeyRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    name: str = Field(min_length=1, max_length=200)
    env: str = Field(pattern=r"^[a-z0-9]{1,16}$")
    scheme: HashScheme
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: frozenset[Scope]
    created: datetime
    expires: datetime | None = None
    revoked: datetime | None = None

    def usable_at(self, now: datetime) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyRecord] = []


class KeyManagementError(ValueError):
    """A key-management request that cannot be done (unknown key id, bad arguments)."""


def hash_secret(secret: str, scheme: HashScheme, pepper: bytes | None) -> str:
    if scheme is HashScheme.HMAC_SHA256:
        if not pepper:
            raise KeyManagementError(f"this key was hashed with a pepper: set {PEPPER_VARIABLE}")
        return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(secret.encode()).hexdigest()


def server_pepper() -> bytes | None:
    pepper = os.environ.get(PEPPER_VARIABLE)
    return pepper.encode() if pepper else None


def new_key(
    name: str,
    scopes: frozenset[Scope],
    env: str,
    expires_in: timedelta | None = None,
    pepper: bytes | None = None,
    now: datetime | None = None,
) -> tuple[str, KeyRecord]:
    """A fresh raw key (shown once) and the record that stores only its hash."""
    created = now or datetime.now(UTC)
    key_id = secrets.token_hex(6)
    secret = secrets.token_hex(24)
    scheme = HashScheme.HMAC_SHA256 if pepper else HashScheme.SHA256
    record = KeyRecord(
        key_id=key_id,
        name=name,
        env=env,
        scheme=scheme,
        hash=hash_secret(secret, scheme, pepper),
        scopes=scopes,
        created=created,
        expires=created + expires_in if expires_in else None,
    )
    return f"pw_{env}_{key_id}_{secret}", record


class KeysFile:
    """Read-modify-write access to the keys file for the CLI (locked, atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> KeyFile:
        if not self.path.exists():
            return KeyFile()
        return KeyFile.model_validate_json(self.path.read_bytes())

    @contextmanager
    def editing(self) -> Iterator[KeyFile]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            content = self.read()
            yield content
            self._write(content)

    def _write(self, content: KeyFile) -> None:
        atomic_write(self.path, content.model_dump_json(indent=2).encode(), mode=0o600)

    def create(
        self,
        name: str,
        scopes: frozenset[Scope],
        env: str,
        expires_in: timedelta | None = None,
    ) -> tuple[str, KeyRecord]:
        raw, record = new_key(name, scopes, env, expires_in, server_pepper())
        with self.editing() as content:
            content.keys.append(record)
        return raw, record

    def revoke(self, key_id: str) -> KeyRecord:
        with self.editing() as content:
            index = _index_of(content, key_id)
            revoked = content.keys[index].model_copy(update={"revoked": datetime.now(UTC)})
            content.keys[index] = revoked
        return revoked

    def rotate(self, key_id: str, overlap: timedelta) -> tuple[str, KeyRecord, KeyRecord]:
        """A new key with the same name and scopes; the old one expires after `overlap`."""
        with self.editing() as content:
            index = _index_of(content, key_id)
            old = content.keys[index]
            if not old.usable_at(datetime.now(UTC)):
                raise KeyManagementError(
                    f"key {key_id} is revoked or expired: create a new key instead"
                )
            remaining = old.expires - datetime.now(UTC) if old.expires else None
            raw, fresh = new_key(old.name, old.scopes, old.env, remaining, server_pepper())
            ends = datetime.now(UTC) + overlap
            retiring = old.model_copy(
                update={"expires": min(ends, old.expires) if old.expires else ends}
            )
            content.keys[index] = retiring
            content.keys.append(fresh)
        return raw, fresh, retiring


def _index_of(content: KeyFile, key_id: str) -> int:
    for index, record in enumerate(content.keys):
        if record.key_id == key_id:
            return index
    raise KeyManagementError(f"no key with id {key_id!r}")


class KeyStore:
    """Verifies presented keys against the keys file, re-reading it when it changes.

    A keys file that cannot be used (half-written, garbled, unreadable, or gone after one
    was loaded) leaves the last good keys in force: the worker logs it once per version of
    the file, `pokewatch_keys_file_unusable` says 1, and the next good version is picked up
    as soon as it appears. With no file at all from the start there are no keys.
    """

    def __init__(self, path: Path, reload_seconds: float = 1.0) -> None:
        self.path = path
        self.reload_seconds = reload_seconds
        self.pepper = server_pepper()
        self._records: dict[str, KeyRecord] = {}
        self._signature: tuple[int, int, int] | None = None
        self._loaded = False
        # Why the file on disk is not what is in force (None: it is).
        self.unusable: str | None = None
        self._reported: tuple[str | None] | None = None  # what the gauge last said
        self._checked_at = float("-inf")
        # A fixed record to compare against when the key id is unknown, so that unknown
        # and wrong keys take the same path and about the same time.
        self._decoy = new_key("decoy", frozenset(), "x")[1]
        self.refresh()

    def refresh(self) -> None:
        """Re-read the file if its identity, size or modification time changed."""
        self._checked_at = time.monotonic()
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._loaded:
                self._keep_last_good(None, "the keys file is gone")
            return
        except OSError as error:
            self._keep_last_good(None, f"the keys file cannot be read: {error}")
            return
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._signature:
            return
        try:
            content = KeysFile(self.path).read()
        except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            self._keep_last_good(signature, f"the keys file is not valid: {error}")
            return
        self._records = {record.key_id: record for record in content.keys}
        self._signature, self._loaded = signature, True
        if self.unusable is not None:
            logger.warning("keys file %s is valid again: %d keys", self.path, len(self._records))
        self.unusable = None

    def _keep_last_good(self, signature: tuple[int, int, int] | None, reason: str) -> None:
        """Keep the keys in force; say so once for this version of the file (which is
        not parsed again until it changes)."""
        self._signature = signature
        if reason != self.unusable:
            logger.error(
                "%s; keeping the last good keys (%d) until a valid file appears",
                reason.splitlines()[0],
                len(self._records),
            )
        self.unusable = reason

    def report(self) -> None:
        """Publish the file's state (`pokewatch_keys_file_unusable`); from a worker only
        (metrics made before the worker sets up its registry would be lost)."""
        if self._reported != (self.unusable,):
            service_metrics().keys_file_unusable.set(0 if self.unusable is None else 1)
            self._reported = (self.unusable,)

    def verify(self, presented: str, now: datetime | None = None) -> KeyRecord | None:
        """The record of a valid, unexpired, unrevoked key; None for anything else."""
        if time.monotonic() - self._checked_at >= self.reload_seconds:
            self.refresh()
            self.report()
        match = KEY_PATTERN.fullmatch(presented)
        env, key_id, secret = match.groups() if match else ("", "", "")
        record = self._records.get(key_id)
        expected = record or self._decoy
        try:
            digest = hash_secret(secret, expected.scheme, self.pepper)
        except KeyManagementError:
            digest = ""
        matches = hmac.compare_digest(digest, expected.hash)
        if record is None or not matches or record.env != env:
            return None
        return record if record.usable_at(now or datetime.now(UTC)) else None
