"""The address policy itself: which addresses webhooks may reach, and the create-time check."""

from __future__ import annotations

import ipaddress

import pytest

from gql.webhooks.addresses import (
    AddressPolicy,
    AddressRefused,
    WebhookUrlError,
    check_destination,
    refusal,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("239.1.2.3", "multicast"),
        ("255.255.255.255", "private"),
        ("240.0.0.1", "private"),
        ("100.64.0.1", "non-global"),
        ("198.18.0.1", "private"),
        ("192.0.2.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fec0::1", "site-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


async def test_the_create_time_check_resolves_the_name() -> None:
    strict = AddressPolicy(allow_private=False, resolve_timeout_seconds=5)
    with pytest.raises(AddressRefused, match=r"localhost resolves to .*loopback"):
        await check_destination("http://localhost:8080/hook", strict)
    assert (
        await check_destination(" https://93.184.215.14/hook ", strict)
        == "https://93.184.215.14/hook"
    )
    lenient = AddressPolicy(allow_private=True)
    assert await check_destination("http://localhost:8080/hook", lenient) == (
        "http://localhost:8080/hook"
    )


async def test_a_host_that_does_not_resolve_is_not_a_url_to_send_to() -> None:
    with pytest.raises(WebhookUrlError, match=r"host nowhere\.invalid d(oes|id) not resolve"):
        await check_destination(
            "https://nowhere.invalid/hook", AddressPolicy(resolve_timeout_seconds=3)
        )
