"""Who is asking: the client's address, as the audit log, the key-guessing
throttle and the photo-search cap see it.

Without a reverse proxy it is the connection's address. Behind one, the
proxy's address is every client's, so the proxy's header
(``service.proxy_header``: ``X-Forwarded-For`` or ``X-Real-IP``) is read,
but only on a connection from one of ``service.trusted_proxies``: anyone
else could write any address there and escape the throttle. Of an
``X-Forwarded-For`` chain the rightmost address that is not a trusted proxy
is the client (the ones left of it were written by the client itself).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping


def client_address(peer: str | None, headers: Mapping[str, str], proxy_header: str,
                   trusted_proxies: Iterable[str]) -> str:
    """The client's address; ``peer`` is the connection's (``"unknown"``
    when the server gives none)."""
    peer = peer or "unknown"
    if not proxy_header:
        return peer
    trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
    if not _within(peer, trusted):
        return peer
    chain = [part.strip() for part in headers.get(proxy_header, "").split(",") if part.strip()]
    for address in reversed(chain):
        if not _within(address, trusted):
            return address if _is_address(address) else peer
    return chain[0] if chain and _is_address(chain[0]) else peer


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
