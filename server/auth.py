"""Who is asking and what they may do: roles, identities, and the authenticator interface.

Without a secret the authenticator is `LocalAuthenticator`: everyone is a local user with full
rights, and the server says so loudly at start-up. With one, `server.access.TokenAuthenticator`
verifies signed tokens (`server.tokens`) and adds the per-document access list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class Role(IntEnum):
    """Ordered: each role can do everything the ones below it can."""

    NONE = 0
    VIEWER = 1  # read, presence
    COMMENTER = 2  # + comments
    EDITOR = 3  # + edit
    OWNER = 4  # + manage access, sessions, restore, rename, delete


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    name: str
    grants: tuple[tuple[str, Role], ...] = ()  # from the token: (document pattern, role)
    expires_at: float | None = None  # when the token expires; None: never (local mode)
    document: str | None = None  # an invite token is valid on this document only
    invite: str | None = None  # the invite it was redeemed from (revoking it revokes the token)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request carried: a token from `?token=`, `Authorization: Bearer`, or the cookie."""

    token: str | None

    @classmethod
    def from_request(
        cls, query: Mapping[str, str], headers: Mapping[str, str], cookies: Mapping[str, str]
    ) -> Credentials:
        token = query.get("token")
        authorization = headers.get("authorization", "")
        if not token and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        if not token:
            token = cookies.get("cocreate_token")
        return cls(token or None)


class AuthError(Exception):
    """Refused: 401 (who are you?) or 403 (not allowed). `code` is the websocket close code."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    @property
    def close_code(self) -> int:
        return 4401 if self.status == 401 else 4403


class Authenticator(Protocol):
    def identify(self, credentials: Credentials, now: float) -> Identity:
        """The identity behind the credentials, or `AuthError(401)`."""

    async def role(self, identity: Identity, document: str) -> Role:
        """The role `identity` has on `document` (NONE if nothing)."""


class LocalAuthenticator:
    """No secret configured: single-team local mode, everyone may do everything."""

    local = True

    def identify(self, credentials: Credentials, now: float) -> Identity:
        return Identity("local", "Local user")

    async def role(self, identity: Identity, document: str) -> Role:
        return Role.OWNER


async def authorize(
    authenticator: Authenticator, credentials: Credentials, document: str, needed: Role, now: float
) -> tuple[Identity, Role]:
    """Identify and check `needed` on `document`; raise `AuthError` (401/403) otherwise."""
    identity = authenticator.identify(credentials, now)
    role = await authenticator.role(identity, document)
    if role < needed:
        if role == Role.NONE:
            raise AuthError(403, "forbidden", f"no access to {document!r}")
        raise AuthError(403, "forbidden", f"needs the {needed.name.lower()} role on {document!r}")
    return identity, role
