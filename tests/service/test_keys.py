"""API key format, hashing, expiry, rotation and the keys file."""

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.keys import (
    KEY_PATTERN,
    HashScheme,
    KeyManagementError,
    KeysFile,
    KeyStore,
    Scope,
    hash_secret,
    new_key,
)

ALL = frozenset(Scope)


def test_key_format_and_entropy() -> None:
    raw, record = new_key("a", ALL, "live")
    match = KEY_PATTERN.fullmatch(raw)
    assert match is not None
    env, key_id, secret = match.groups()
    assert (env, key_id) == ("live", record.key_id)
    assert len(secret) * 4 >= 128
    assert secret not in record.model_dump_json()
    assert record.hash == hash_secret(secret, HashScheme.SHA256, None)


def test_pepper_gives_hmac_and_is_needed_to_verify() -> None:
    raw, record = new_key("a", ALL, "dev", pepper=b"pepper")
    secret = raw.rsplit("_", 1)[1]
    assert record.scheme is HashScheme.HMAC_SHA256
    assert record.hash != hash_secret(secret, HashScheme.SHA256, None)
    with pytest.raises(KeyManagementError):
        hash_secret(secret, HashScheme.HMAC_SHA256, None)


def test_store_verifies_valid_keys_only(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    raw, record = keys.create("a", frozenset({Scope.PREDICT}), "dev")
    store = KeyStore(keys.path, reload_seconds=0)
    assert store.verify(raw) == record
    tampered = raw[:-1] + ("0" if raw[-1] != "0" else "1")
    wrong_env = raw.replace("pw_dev_", "pw_live_")
    for presented in (tampered, wrong_env, "", "pw_dev", raw + "0", raw.upper()):
        assert store.verify(presented) is None


def test_expiry_and_revocation(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    raw, record = keys.create("a", ALL, "dev", expires_in=timedelta(days=1))
    store = KeyStore(keys.path, reload_seconds=0)
    assert record.expires is not None
    assert store.verify(raw, now=record.expires - timedelta(seconds=1)) == record
    assert store.verify(raw, now=record.expires) is None
    keys.revoke(record.key_id)
    assert store.verify(raw) is None


def test_rotation_overlap(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    old_raw, old = keys.create("svc", frozenset({Scope.BATCH}), "dev")
    new_raw, fresh, retiring = keys.rotate(old.key_id, timedelta(days=2))
    store = KeyStore(keys.path, reload_seconds=0)
    now = datetime.now(UTC)
    assert (fresh.scopes, fresh.name) == (old.scopes, old.name)
    assert store.verify(new_raw) is not None
    assert store.verify(old_raw, now=now + timedelta(days=1)) is not None
    assert store.verify(old_raw, now=now + timedelta(days=2, seconds=5)) is None
    assert retiring.expires is not None
    with pytest.raises(KeyManagementError, match="no key"):
        keys.rotate("000000000000", timedelta(days=1))


def test_store_sees_changes_without_restart(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    store = KeyStore(keys.path, reload_seconds=0)
    raw, record = keys.create("late", ALL, "dev")
    assert store.verify(raw) == record
    keys.revoke(record.key_id)
    assert store.verify(raw) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),  # torn
        lambda path: path.write_text("not json at all"),
        lambda path: path.write_text('{"keys": [{"key_id": "nothex"}]}'),  # valid JSON, bad record
        lambda path: path.write_bytes(b"\x00" * 300),
        lambda path: path.unlink(),
    ],
    ids=["half-written", "garbage", "bad-record", "zeros", "deleted"],
)
def test_an_unusable_keys_file_keeps_the_last_good_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], object]
) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    raw, record = keys.create("kept", ALL, "dev")
    store = KeyStore(keys.path, reload_seconds=0)
    assert store.verify(raw) == record
    with caplog.at_level(logging.ERROR, "pokewatch.keys"):
        damage(keys.path)
        for _ in range(5):
            assert store.verify(raw) == record
    assert store.unusable is not None
    assert len([r for r in caplog.records if "keeping the last good keys" in r.message]) == 1
    # The next good version is picked up.
    keys.path.unlink(missing_ok=True)
    fresh, fresh_record = keys.create("next", ALL, "dev")
    assert store.verify(fresh) == fresh_record
    assert store.verify(raw) is None  # the new file does not hold the old key
    assert store.unusable is None


def test_a_corrupt_keys_file_at_start_means_no_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text("{")
    store = KeyStore(path, reload_seconds=0)
    raw, _ = new_key("x", ALL, "dev")
    assert store.verify(raw) is None
    assert store.unusable is not None


def test_keys_file_holds_no_secret_and_is_private(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    raw, _ = keys.create("a", ALL, "dev")
    text = keys.path.read_text()
    assert raw.rsplit("_", 1)[1] not in text
    assert keys.path.stat().st_mode & 0o077 == 0
    assert [entry["name"] for entry in json.loads(text)["keys"]] == ["a"]


def test_unknown_key_id_is_rejected_like_a_wrong_secret(tmp_path: Path) -> None:
    keys = KeysFile(tmp_path / "keys.json")
    keys.create("a", ALL, "dev")
    store = KeyStore(keys.path, reload_seconds=0)
    unknown = "pw_dev_ffffffffffff_" + "0" * 48
    assert re.fullmatch(KEY_PATTERN, unknown)
    assert store.verify(unknown) is None
