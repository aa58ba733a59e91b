"""Which URLs a webhook may call (server-side request forgery).

A webhook URL is https (unless `alerts.require_https` is off), names a host and carries no
credentials or fragment. Every address its host resolves to must be public: private,
loopback, link-local, shared, reserved, multicast and unspecified addresses are refused
unless they lie in `alerts.allowed_networks`. The check runs when the webhook is made and
again before every delivery, and a delivery connects to an address the check passed (the
host is not resolved twice: a name that changes its answer in between cannot slip past).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class TargetError(ValueError):
    """A webhook URL that may not be called (the message says why)."""


@dataclass(frozen=True)
class Target:
    url: SplitResult
    host: str
    port: int
    addresses: list[Address]

    def pinned_url(self) -> str:
        """The URL with the host replaced by the first checked address (the request sends
        `Host` and, for https, the SNI name of the original host)."""
        address = self.addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        return self.url._replace(netloc=f"{literal}:{self.port}").geturl()

    @property
    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def parse(url: str, require_https: bool) -> tuple[SplitResult, str, int]:
    """The URL's parts, host and port; raises `TargetError` for a URL a webhook may not use."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetError(f"url: at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetError(f"url: not a URL ({error})") from None
    allowed = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise TargetError(f"url: the scheme must be {' or '.join(allowed)}")
    if not parts.hostname:
        raise TargetError("url: names no host")
    if parts.username is not None or parts.password is not None:
        raise TargetError("url: credentials in the URL are refused (the signature authenticates)")
    if parts.fragment:
        raise TargetError("url: a fragment is never sent; remove it")
    if any(character.isspace() or ord(character) < 32 for character in url):
        raise TargetError("url: contains spaces or control characters")
    return parts, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def allowed(address: Address, networks: Sequence[Network]) -> bool:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in networks):
        return True
    return address.is_global and not address.is_multicast


def check(url: str, require_https: bool, networks: Sequence[Network]) -> Target:
    """The URL resolved to addresses it may be called on; raises `TargetError`."""
    parts, host, port = parse(url, require_https)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise TargetError(f"url: {host!r} does not resolve ({error})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(entry[4][0]) for entry in found))
    refused = [str(address) for address in addresses if not allowed(address, networks)]
    if refused or not addresses:
        raise TargetError(
            f"url: {host!r} resolves to a private, loopback or otherwise non-public address "
            f"({', '.join(refused) or 'none'}); alerts.allowed_networks can allow it"
        )
    return Target(parts, host, port, addresses)


__all__ = ["MAX_URL_LENGTH", "Target", "TargetError", "allowed", "check", "parse"]
