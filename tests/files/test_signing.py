"""Download-URL signatures and the secret key behind them."""

from __future__ import annotations

import stat
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gql import clock
from gql.settings import get_settings
from gql.signing import (
    KEY_FILE,
    SecretKeyError,
    _create_key_file,
    secret_key,
    sign,
    stable_expiry,
    verify,
)

DIGEST = "ab" * 32


def test_a_key_is_generated_once_into_the_data_dir(data_dir: Path) -> None:
    key = secret_key()

    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    get_settings.cache_clear()  # as a restart or another worker would see it
    assert secret_key() == key
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temp file left


def test_workers_starting_together_agree_on_one_key(data_dir: Path) -> None:
    barrier = threading.Barrier(8)
    keys: list[str] = []

    def start_worker() -> None:
        barrier.wait()
        keys.append(_create_key_file(data_dir))

    threads = [threading.Thread(target=start_worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8 and len(set(keys)) == 1
    assert keys[0] == (data_dir / KEY_FILE).read_text().strip()
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]


def test_the_configured_secret_wins_and_writes_no_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = secret_key()
    monkeypatch.setenv("CERTGRAPH_SECRET_KEY", "x" * 40)
    get_settings.cache_clear()

    configured = secret_key()

    assert configured != generated
    monkeypatch.setenv("CERTGRAPH_SECRET_KEY", "y" * 40)
    get_settings.cache_clear()
    assert secret_key() != configured


def test_an_unusable_key_file_is_an_error_not_a_new_key(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / KEY_FILE).write_text("short\n")
    with pytest.raises(SecretKeyError):
        secret_key()


def test_signatures_cover_every_part(data_dir: Path, frozen_now: datetime) -> None:
    expires = int(frozen_now.timestamp()) + 300
    signature = sign("evidence", 7, DIGEST, expires)

    assert verify("evidence", 7, DIGEST, expires, signature)
    assert not verify("badge", 7, DIGEST, expires, signature)
    assert not verify("evidence", 8, DIGEST, expires, signature)
    assert not verify("evidence", 7, "cd" * 32, expires, signature)
    assert not verify("evidence", 7, DIGEST, expires + 1, signature)
    altered = signature[:-1] + ("B" if signature.endswith("A") else "A")
    assert not verify("evidence", 7, DIGEST, expires, altered)
    assert not verify("evidence", 7, DIGEST, expires, signature + "=")
    assert not verify("evidence", 7, DIGEST, expires, "é" * 43)
    assert not verify("evidence", 7, DIGEST, expires, "")


def test_signatures_expire(data_dir: Path, frozen_now: datetime) -> None:
    expires = int(frozen_now.timestamp()) + 300
    signature = sign("evidence", 7, DIGEST, expires)

    clock.advance(timedelta(seconds=299))
    assert verify("evidence", 7, DIGEST, expires, signature)
    clock.advance(timedelta(seconds=1))
    assert not verify("evidence", 7, DIGEST, expires, signature)


def test_another_key_makes_other_signatures(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, frozen_now: datetime
) -> None:
    expires = int(frozen_now.timestamp()) + 300
    signature = sign("evidence", 7, DIGEST, expires)
    monkeypatch.setenv("CERTGRAPH_SECRET_KEY", "z" * 40)
    get_settings.cache_clear()
    assert not verify("evidence", 7, DIGEST, expires, signature)


def test_stable_expiries_hold_still_then_move(frozen_now: datetime) -> None:
    day = 86400
    first = stable_expiry(day)
    assert first - int(frozen_now.timestamp()) >= day

    clock.advance(timedelta(hours=1))
    assert stable_expiry(day) == first
    clock.advance(timedelta(days=1))
    assert stable_expiry(day) == first + day
