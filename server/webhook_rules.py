"""Sans-I/O rules of webhooks: target URL validation, the SSRF address rule, signing, payloads, backoff."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_URL_CHARS = 2048
SIGNATURE_HEADER = "X-Cocreate-Signature"
EVENT_HEADER = "X-Cocreate-Event"
DELIVERY_HEADER = "X-Cocreate-Delivery"
DOCUMENT_CHANGED = "document.changed"
#: Event kinds of the EventBus that webhooks carry (their group is the part before the first dot).
FORWARDED_PREFIXES = ("comment.", "session.")


class TargetRefused(ValueError):
    """A webhook URL or the address it resolves to may not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed webhook URL: where to connect and what to ask for."""

    scheme: str  # "http" or "https"
    host: str  # a name or an IP literal (no brackets)
    port: int
    target: str  # path and query, the HTTP request-target

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Check a webhook URL (http/https, a host, no credentials, at most MAX_URL_CHARS)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise TargetRefused(f"'url' must be an http(s) URL of at most {MAX_URL_CHARS} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or not url.isascii():
        raise TargetRefused("'url' must be ASCII without spaces or control characters (percent-encode)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("'url' must use http or https")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("'url' must not carry credentials; verify the signature instead")
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("'url' has an invalid port") from None
    host = parts.hostname or ""
    if not host or port == 0:
        raise TargetRefused("'url' needs a host (and a non-zero port)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, target)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_address(address: str, allow_private: bool) -> None:
    """SSRF rule: only public unicast addresses, unless private targets are allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        raise TargetRefused(f"{ip} is not a unicast address")
    if not allow_private and not ip.is_global:
        raise TargetRefused(
            f"{ip} is a loopback, private or reserved address (SSRF protection; see --webhook-allow-private)"
        )


def check_target(url: str, allow_private: bool) -> Target:
    """`parse_target`, plus the address rule when the host is an IP literal (names are checked
    again, on every connection, against what they resolve to)."""
    target = parse_target(url)
    literal = literal_address(target.host)
    if literal is not None:
        check_address(str(literal), allow_private)
    elif not allow_private and (target.host == "localhost" or target.host.endswith(".localhost")):
        raise TargetRefused("localhost is a loopback address (SSRF protection; see --webhook-allow-private)")
    return target


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(
    delivery_id: str, webhook_id: str, event: str, document: str, timestamp: float, data: dict[str, Any]
) -> str:
    """The JSON body of a delivery; the timestamp is inside the signed bytes (receivers reject old ones)."""
    body = {
        "id": delivery_id,
        "webhook": webhook_id,
        "event": event,
        "document": document,
        "timestamp": round(timestamp, 3),
        "data": data,
    }
    return orjson.dumps(body).decode()


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: base x 2^(attempts-1), capped, with
    "equal jitter" (half fixed, half random) so receivers that come back are not hit all at once."""
    delay: float = min(cap, base * 2.0 ** max(0, attempts - 1))
    jitter: float = (rng or random).uniform(0, delay / 2)
    return delay / 2 + jitter


def is_forwarded(kind: str) -> bool:
    return kind.startswith(FORWARDED_PREFIXES)
