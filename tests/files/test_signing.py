"""Download-URL signatures (`UrlSigner`) and the secret key behind them."""

from __future__ import annotations

import stat
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gql import clock
from gql.settings import Settings
from gql.signing import (
    KEY_FILE,
    SecretKeyError,
    UrlSigner,
    _create_key_file,
    load_secret_key,
    stable_expiry,
)

DIGEST = "ab" * 32


def signer(data_dir: Path, secret: str | None = None) -> UrlSigner:
    return UrlSigner.from_settings(Settings(data_dir=data_dir, secret_key=secret))


def sign(data_dir: Path, expires: int, secret: str | None = None) -> str:
    return signer(data_dir, secret).sign("evidence", 7, DIGEST, expires)


def test_a_key_is_generated_once_into_the_data_dir(data_dir: Path) -> None:
    key = load_secret_key(None, data_dir)

    path = data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    assert load_secret_key(None, data_dir) == key  # as a restart or another worker sees it
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


def test_the_configured_secret_wins_and_writes_no_file(data_dir: Path) -> None:
    configured = sign(data_dir, 10**10, secret="x" * 40)
    assert not data_dir.exists()

    assert sign(data_dir, 10**10) != configured  # the generated key
    assert sign(data_dir, 10**10, secret="y" * 40) != configured
    assert sign(data_dir, 10**10, secret="x" * 40) == configured


def test_building_a_signer_writes_nothing(data_dir: Path) -> None:
    signer(data_dir)
    assert not data_dir.exists()
    with pytest.raises(SecretKeyError):
        UrlSigner()


def test_an_unusable_key_file_is_an_error_not_a_new_key(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / KEY_FILE).write_text("short\n")
    with pytest.raises(SecretKeyError):
        sign(data_dir, 10**10)


def test_signatures_cover_every_part(data_dir: Path, frozen_now: datetime) -> None:
    expires = int(frozen_now.timestamp()) + 300
    signature = sign(data_dir, expires)
    verify = signer(data_dir).verify

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
    signature = sign(data_dir, expires)
    verify = signer(data_dir).verify

    clock.advance(timedelta(seconds=299))
    assert verify("evidence", 7, DIGEST, expires, signature)
    clock.advance(timedelta(seconds=1))
    assert not verify("evidence", 7, DIGEST, expires, signature)


def test_another_key_makes_other_signatures(data_dir: Path, frozen_now: datetime) -> None:
    expires = int(frozen_now.timestamp()) + 300
    signature = sign(data_dir, expires)
    other = signer(data_dir, secret="z" * 40)
    assert not other.verify("evidence", 7, DIGEST, expires, signature)


def test_urls_carry_the_lifetimes_of_the_settings(data_dir: Path, frozen_now: datetime) -> None:
    now = int(frozen_now.timestamp())
    urls = UrlSigner.from_settings(
        Settings(data_dir=data_dir, evidence_url_ttl_seconds=60, badge_url_ttl_seconds=3600)
    )
    assert urls.evidence_url(7, DIGEST).startswith(f"/files/evidence/7?exp={now + 60}&sig=")
    badge = urls.badge_url(3, DIGEST)
    assert badge is not None and badge.startswith(f"/files/badge/3?exp={stable_expiry(3600)}&")
    assert urls.badge_url(3, None) is None


def test_stable_expiries_hold_still_then_move(frozen_now: datetime) -> None:
    day = 86400
    first = stable_expiry(day)
    assert first - int(frozen_now.timestamp()) >= day

    clock.advance(timedelta(hours=1))
    assert stable_expiry(day) == first
    clock.advance(timedelta(days=1))
    assert stable_expiry(day) == first + day
