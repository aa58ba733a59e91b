"""Webhook secrets: signed the documented way, encrypted at rest with the alerts key."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from service.alerts.signing import (
    KEY_VARIABLE,
    SecretBox,
    SecretsError,
    new_secret,
    signature,
)
from tests.alerts_receiver import verify


def test_the_signature_verifies_as_docs_say_and_not_when_tampered() -> None:
    secret = new_secret()
    body = b'{"id":"evt_1"}'
    header = signature(secret, 1_764_000_000, body)
    assert header.startswith("t=1764000000,v1=")
    assert verify(secret, header, body, now=1_764_000_100)
    assert not verify(secret, header, body + b" ", now=1_764_000_100)
    assert not verify(new_secret(), header, body, now=1_764_000_100)
    assert not verify(secret, header, body, now=1_764_000_000 + 301)  # a replay, too late


def test_secrets_are_sealed_with_a_key_file_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    boxes: list[SecretBox] = []
    threads = [
        threading.Thread(target=lambda: boxes.append(SecretBox.from_environment(tmp_path)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    secret = new_secret()
    sealed = boxes[0].seal(secret)
    assert secret not in sealed
    assert {box.open(sealed) for box in boxes} == {secret}  # every racer uses one key
    assert stat.S_IMODE((tmp_path / "alerts.key").stat().st_mode) == 0o600


def test_the_environment_key_wins_and_a_wrong_key_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, Fernet.generate_key().decode())
    sealed = SecretBox.from_environment(tmp_path).seal("whsec_x")
    assert not (tmp_path / "alerts.key").exists()
    monkeypatch.setenv(KEY_VARIABLE, Fernet.generate_key().decode())
    with pytest.raises(SecretsError, match="does not open"):
        SecretBox.from_environment(tmp_path).open(sealed)
    monkeypatch.setenv(KEY_VARIABLE, "not-a-key")
    with pytest.raises(SecretsError, match="not a Fernet key"):
        SecretBox.from_environment(tmp_path)
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(SecretsError, match="pokewatch alerts new-key"):
        SecretBox.from_environment(None)  # a database server: the key must be given
