"""Signed access tokens: compact JWT, HS256 only (stdlib `hmac`), grants by document pattern, pure checks.

Format: `base64url(header) "." base64url(payload) "." base64url(HMAC-SHA256(secret, first two parts))`,
header `{"alg": "HS256", "typ": "JWT"}`. Payload claims:

- `sub` user id (the log's author), `name` display name (presence), both non-empty text;
- `grants` {pattern: role}: a pattern is an exact document name, `prefix*` (every name starting with
  `prefix`, e.g. `team/*`) or `*`; roles `none|viewer|commenter|editor|owner`. For a document the
  most specific matching pattern decides: the exact name, else the longest prefix;
- `exp` (required), `nbf`, `iat`: seconds since the epoch; valid while `nbf <= now < exp`;
- invite tokens only: `doc` (valid on that document alone) and `inv` (the invite, revocable).

`decode` is a pure function of (token, secret, now): no I/O, no clock, every refusal a `TokenError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

from server.auth import Identity, Role
from server.names import InvalidName, normalize_name

ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 8 * 1024
MAX_GRANTS = 256
MAX_TEXT_CHARS = 256
MAX_PATTERN_BYTES = 600
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TokenError(Exception):
    """A refused token. `reason` is a stable code (`expired`, `bad_signature`, ...), `detail` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    name: str
    grants: tuple[tuple[str, Role], ...]
    exp: float
    iat: float | None = None
    nbf: float | None = None
    doc: str | None = None
    inv: str | None = None

    def identity(self) -> Identity:
        return Identity(self.sub, self.name, self.grants, self.exp, self.doc, self.inv)


# -- grants ------------------------------------------------------------------------------------------
def role_named(text: str) -> Role:
    """`"editor"` -> `Role.EDITOR`; `ValueError` for anything else."""
    try:
        return Role[text.strip().upper()]
    except KeyError:
        names = "|".join(r.name.lower() for r in Role)
        raise ValueError(f"unknown role {text!r} (expected {names})") from None


def check_pattern(pattern: str) -> str:
    """The canonical form of a grant pattern; `ValueError` if it is not one."""
    if len(pattern.encode("utf-8", "surrogatepass")) > MAX_PATTERN_BYTES:
        raise ValueError("grant pattern too long")
    if pattern == "*":
        return pattern
    star = pattern.find("*")
    if star == -1:
        try:
            return normalize_name(pattern)
        except InvalidName as exc:
            raise ValueError(f"grant {pattern!r}: {exc}") from None
    if star != len(pattern) - 1:
        raise ValueError(f"grant pattern {pattern!r}: '*' may only end a pattern")
    return pattern


def grant_role(grants: tuple[tuple[str, Role], ...], document: str) -> Role:
    """The role the most specific matching pattern gives on `document` (NONE if none matches)."""
    best: tuple[int, Role] | None = None
    for pattern, role in grants:
        if pattern == document:
            return role
        if pattern.endswith("*") and document.startswith(pattern[:-1]):
            rank = len(pattern) - 1
            if best is None or rank > best[0]:
                best = (rank, role)
    return Role.NONE if best is None else best[1]


def parse_grant(text: str) -> tuple[str, Role]:
    """`'team/*=editor'` -> `('team/*', Role.EDITOR)` (the CLI's `--grant`)."""
    pattern, sep, role = text.rpartition("=")
    if not sep or not pattern:
        raise ValueError(f"grant {text!r} is not PATTERN=ROLE (e.g. 'team/*=editor')")
    return check_pattern(pattern), role_named(role)


def parse_duration(text: str) -> float:
    """`'90s'`, `'15m'`, `'8h'`, `'7d'`, `'2w'` or plain seconds -> seconds (> 0)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"duration {text!r} is not like 90s, 15m, 8h, 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


# -- encoding ----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(segment: str, what: str) -> bytes:
    if len(segment) % 4 == 1 or _SEGMENT.fullmatch(segment) is None:
        raise TokenError("malformed", f"token {what} is not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _sign(signing_input: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()


def encode(claims: Claims, secret: str) -> str:
    """Sign `claims` into a token string."""
    if not secret:
        raise ValueError("signing needs a non-empty secret")
    payload: dict[str, Any] = {
        "sub": claims.sub,
        "name": claims.name,
        "grants": {pattern: role.name.lower() for pattern, role in claims.grants},
        "exp": claims.exp,
    }
    for key in ("iat", "nbf", "doc", "inv"):
        if getattr(claims, key) is not None:
            payload[key] = getattr(claims, key)
    header = _b64(orjson.dumps({"alg": ALGORITHM, "typ": "JWT"}))
    signing_input = f"{header}.{_b64(orjson.dumps(payload))}"
    token = f"{signing_input}.{_b64(_sign(signing_input.encode('ascii'), secret))}"
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(f"token would be {len(token)} bytes, over the {MAX_TOKEN_BYTES}-byte cap")
    return token


def issue(
    user: str,
    name: str,
    grants: dict[str, Role],
    *,
    now: float,
    ttl: float,
    secret: str,
    document: str | None = None,
    invite: str | None = None,
) -> str:
    """A token for `user`, valid from `now` for `ttl` seconds."""
    checked = tuple((check_pattern(p), r) for p, r in grants.items())
    claims = Claims(
        _text(user, "sub"), _text(name or user, "name"), checked, now + ttl, iat=now, doc=document, inv=invite
    )
    return encode(claims, secret)


# -- decoding ----------------------------------------------------------------------------------------
def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise TokenError("malformed", f"token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenError("malformed", f"token {what} is not a JSON object")
    return value


def _text(value: Any, claim: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT_CHARS:
        raise TokenError("bad_claims", f"claim {claim!r} must be text of 1-{MAX_TEXT_CHARS} characters")
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise TokenError("bad_claims", f"claim {claim!r} contains control characters")
    return value


def _time(payload: dict[str, Any], claim: str, required: bool = False) -> float | None:
    value = payload.get(claim)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError("bad_claims", f"claim {claim!r} must be a number of seconds since the epoch")
    return float(value)


def _grants(value: Any) -> tuple[tuple[str, Role], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or len(value) > MAX_GRANTS:
        raise TokenError("bad_claims", f"claim 'grants' must be an object of at most {MAX_GRANTS} patterns")
    grants = []
    for pattern, role in value.items():
        try:
            grants.append((check_pattern(pattern), role_named(role if isinstance(role, str) else "?")))
        except ValueError as exc:
            raise TokenError("bad_claims", f"claim 'grants': {exc}") from None
    return tuple(grants)


def decode(token: str, secret: str, now: float) -> Claims:
    """The claims of a well-formed, correctly signed, currently valid token; `TokenError` otherwise."""
    if not isinstance(token, str) or not token:
        raise TokenError("missing", "no token")
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError("too_large", f"token longer than {MAX_TOKEN_BYTES} bytes")
    if not token.isascii() or token.count(".") != 2:
        raise TokenError("malformed", "token is not a JWT (three base64url parts separated by '.')")
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = _json_object(_unb64(header_b64, "header"), "header")
    if header.get("alg") != ALGORITHM:
        raise TokenError("bad_algorithm", f"token algorithm must be {ALGORITHM}, not {header.get('alg')!r}")
    if header.get("typ", "JWT") != "JWT" or "crit" in header:
        raise TokenError("malformed", "unsupported token header (typ must be JWT, no crit)")
    signature = _unb64(signature_b64, "signature")
    expected = _sign(f"{header_b64}.{payload_b64}".encode("ascii"), secret)
    if not hmac.compare_digest(signature, expected):
        raise TokenError("bad_signature", "token signature does not match (wrong secret or altered token)")
    payload = _json_object(_unb64(payload_b64, "payload"), "payload")
    exp = _time(payload, "exp", required=True)
    assert exp is not None
    nbf = _time(payload, "nbf")
    claims = Claims(
        sub=_text(payload.get("sub"), "sub"),
        name=_text(payload.get("name", payload.get("sub")), "name"),
        grants=_grants(payload.get("grants")),
        exp=exp,
        iat=_time(payload, "iat"),
        nbf=nbf,
        doc=None if payload.get("doc") is None else _document(payload["doc"]),
        inv=None if payload.get("inv") is None else _text(payload["inv"], "inv"),
    )
    if nbf is not None and now < nbf:
        raise TokenError("not_yet_valid", f"token not valid before {nbf:.0f} (now {now:.0f})")
    if now >= exp:
        raise TokenError("expired", f"token expired at {exp:.0f} (now {now:.0f})")
    return claims


def _document(value: Any) -> str:
    try:
        return normalize_name(_text(value, "doc"))
    except InvalidName as exc:
        raise TokenError("bad_claims", f"claim 'doc': {exc}") from None


def token_role(identity: Identity, document: str) -> Role:
    """What the token alone grants on `document` (an invite token: only on its own document)."""
    if identity.document is not None and identity.document != document:
        return Role.NONE
    return grant_role(identity.grants, document)


def verify(token: str, document: str, now: float, secret: str) -> tuple[Identity, Role]:
    """Pure check of `token` for `document` at `now`: (who, the role its grants give). `TokenError`."""
    identity = decode(token, secret, now).identity()
    return identity, token_role(identity, document)
