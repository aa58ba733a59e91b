"""Which URLs a webhook may call: https, public addresses, no credentials (SSRF)."""

from __future__ import annotations

import socket
from ipaddress import ip_network

import pytest

from service.alerts.targets import TargetError, check

LOOPBACK = [ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.5/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://100.64.0.1/hook",  # shared address space
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
    ],
)
def test_non_public_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(TargetError, match="non-public"):
        check(url, require_https=True, networks=[])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://8.8.8.8/hook", "scheme must be https"),
        ("ftp://8.8.8.8/hook", "scheme must be https"),
        ("https://user:pw@8.8.8.8/hook", "credentials"),  # pragma: allowlist secret
        ("https:///hook", "names no host"),
        ("https://8.8.8.8/hook#frag", "fragment"),
        ("https://8.8.8.8:99999/hook", "not a URL"),
        ("https://8.8.8.8/" + "a" * 2100, "at most 2048"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_malformed_or_insecure_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        check(url, require_https=True, networks=[])


def test_allowed_networks_and_plain_http_only_by_configuration() -> None:
    target = check("http://127.0.0.1:8080/hook?x=1", require_https=False, networks=LOOPBACK)
    assert target.pinned_url() == "http://127.0.0.1:8080/hook?x=1"
    assert target.host_header == "127.0.0.1:8080"
    with pytest.raises(TargetError):
        check("http://[::1]:8080/hook", require_https=False, networks=LOOPBACK)


def test_a_public_address_passes_and_is_pinned() -> None:
    target = check("https://8.8.8.8/hook", require_https=True, networks=[])
    assert target.pinned_url() == "https://8.8.8.8:443/hook"
    assert target.host_header == "8.8.8.8"
    v6 = check("https://[2001:4860:4860::8888]:8443/x", require_https=True, networks=[])
    assert v6.pinned_url() == "https://[2001:4860:4860::8888]:8443/x"


def test_a_name_resolving_to_a_zoned_link_local_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # getaddrinfo gives link-local IPv6 with its zone ("fe80::1%eth0"), kept: it is how to reach it.
    answer = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", 443, 0, 2))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)
    with pytest.raises(TargetError, match="non-public"):
        check("https://hooks.example.com/hook", require_https=True, networks=[])
