"""Who the client is: the socket's peer, or what a trusted proxy in front says about it.

Per-address rate limits (the token endpoint, the admin sign-in) are only as good as the address they count,
and a header is only as good as whoever wrote it. So neither ASGI server reads proxy headers itself
(`notifyhub/web.py` runs daphne without `--proxy-headers` and uvicorn with `--no-proxy-headers`): this ASGI
middleware, around the whole application, decides it once, the same way under both servers and for HTTP
requests and WebSocket handshakes alike.

- The client is the socket's peer, unless the peer is in `TRUSTED_PROXIES` (addresses and CIDR networks; none by
  default, not even loopback).
- From a trusted peer, `X-Forwarded-For` is read from the right: each trusted hop is skipped and the first address
  that is not trusted is the client. Whatever stands to its left was written by the client (or by proxies that
  are not ours) and is never believed. When every hop is trusted, the leftmost is the client; an unreadable hop
  ends the walk at the last readable one. Without `X-Forwarded-For`, `X-Real-IP` names the client.
- From a trusted peer, `X-Forwarded-Proto` (its last value: what the peer itself says) sets the scheme, so Django
  knows a request came over HTTPS (`ws`/`wss` for WebSockets).
- `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Real-IP` are then removed, trusted or not: nothing below
  (REST framework's throttles, Django, the hub) can read a client address anywhere but `scope["client"]`, which
  Django serves as `REMOTE_ADDR`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings

from notifyhub.env import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FORWARDED_FOR = b"x-forwarded-for"
FORWARDED_PROTO = b"x-forwarded-proto"
REAL_IP = b"x-real-ip"
PROXY_HEADERS = frozenset({FORWARDED_FOR, FORWARDED_PROTO, REAL_IP})
# X-Forwarded-Proto -> the scope's scheme, by scope type.
SCHEMES = {
    "http": {"http": "http", "https": "https", "ws": "http", "wss": "https"},
    "websocket": {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"},
}


class ClientFromTrustedProxies:
    """ASGI middleware: `scope["client"]` and `scope["scheme"]` as the module docstring says; proxy headers removed."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in SCHEMES:
            scope = resolve_client(scope, settings.TRUSTED_PROXIES)
        await self.application(scope, receive, send)


def resolve_client(scope: dict[str, Any], trusted: Sequence[IPNetwork]) -> dict[str, Any]:
    """The scope with the client and scheme a trusted peer vouches for, and without proxy headers."""
    headers = scope.get("headers", ())
    if not any(name in PROXY_HEADERS for name, _ in headers):
        return scope
    resolved = dict(scope, headers=[(name, value) for name, value in headers if name not in PROXY_HEADERS])
    peer = parse_address(scope["client"][0]) if scope.get("client") else None
    if peer is None or not is_trusted(peer, trusted):
        return resolved
    forwarded_for = [value.decode("latin-1") for name, value in headers if name == FORWARDED_FOR]
    real_ip = next((value.decode("latin-1") for name, value in headers if name == REAL_IP), None)
    client = forwarded_client(peer, forwarded_for, real_ip, trusted)
    if client != peer:
        resolved["client"] = (str(client), 0)  # the client's port is not forwarded
    protos = [value.decode("latin-1") for name, value in headers if name == FORWARDED_PROTO]
    if protos:
        scheme = SCHEMES[scope["type"]].get(protos[-1].rsplit(",", 1)[-1].strip().lower())
        if scheme:
            resolved["scheme"] = scheme
    return resolved


def forwarded_client(
    peer: IPAddress, forwarded_for: Iterable[str], real_ip: str | None, trusted: Sequence[IPNetwork]
) -> IPAddress:
    """The client behind the trusted `peer`: X-Forwarded-For walked from the right past trusted hops, else X-Real-IP."""
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    if not hops:
        return (parse_address(real_ip) if real_ip else None) or peer
    client = peer
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return client
        client = address
        if not is_trusted(address, trusted):
            return address
    return client


def is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def parse_address(text: str) -> IPAddress | None:
    """An IP address as peers and proxies write it (`1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`), or None.

    An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`, a dual-stack socket's peer) is the IPv4 address.
    """
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
