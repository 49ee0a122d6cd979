"""Token + access-list authentication (secret set), the effective-role rule, and presence stamping.

Effective role of a user on a document = max(what the token grants, the document's access-list
entry for the user id):

- the token grant is the most specific matching pattern of its `grants` (see `server.tokens`);
  an invite token grants only on its own document, and nothing once its invite is revoked
  (or deleted);
- the access list can only add rights on top of the token, never take rights the token grants:
  to take those away, issue shorter-lived tokens (or rotate the secret).

Presence: with a secret, the awareness states a connection publishes are stamped with its
authenticated identity (`user.name` = the token's `name`, `user.id` = its `sub`), so nobody can
show up in other people's cursors under another name. Non-object states are relayed unchanged.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from typing import Any

from crdt.awareness import NULL_STATE, AwarenessEntry, AwarenessLimits, decode_awareness, encode_awareness
from persistence.access import AccessStore
from server.auth import AuthError, Credentials, Identity, Role
from server.tokens import TokenError, decode, role_named, token_role

TOKEN_REQUIRED = "a token is required (?token=, 'Authorization: Bearer ...' or the cocreate_token cookie)"
MIN_SECRET_BYTES = 32


class TokenAuthenticator:
    """The authenticator when a secret is configured: signed tokens, plus per-document access lists."""

    local = False

    def __init__(self, secret: str, store: AccessStore) -> None:
        if not secret:
            raise ValueError("TokenAuthenticator needs a non-empty secret")
        self._secret = secret
        self.store = store

    def __repr__(self) -> str:  # never show the secret
        return "TokenAuthenticator(secret=***)"

    def identify(self, credentials: Credentials, now: float) -> Identity:
        if not credentials.token:
            raise AuthError(401, "unauthorized", TOKEN_REQUIRED)
        try:
            return decode(credentials.token, self._secret, now).identity()
        except TokenError as exc:
            raise AuthError(401, f"token_{exc.reason}", exc.detail) from None

    async def role(self, identity: Identity, document: str) -> Role:
        return await effective_role(self.store, identity, document)

    def sign(self, user: str, name: str, grants: Mapping[str, Role], **options: Any) -> str:
        """A token signed with this server's secret (invites); see `server.tokens.issue`."""
        from server.tokens import issue

        return issue(user, name, dict(grants), secret=self._secret, **options)


async def effective_role(store: AccessStore, identity: Identity, document: str) -> Role:
    """max(token grant, access-list entry) for `identity` on `document` (module docstring)."""
    granted = token_role(identity, document)
    if granted > Role.NONE and identity.invite is not None:
        invite = await store.get_invite(identity.invite)
        if invite is None or invite.revoked_at is not None or invite.document != identity.document:
            granted = Role.NONE
    if granted == Role.OWNER:
        return granted
    entry = await store.get_entry(document, identity.user_id)
    listed = Role.NONE if entry is None else role_named(entry.role)
    return max(granted, listed)


# -- invite codes ----------------------------------------------------------------------------------
def new_invite_code() -> tuple[str, str]:
    """(a fresh invite code to hand out, the hash the store keeps)."""
    code = secrets.token_urlsafe(24)
    return code, hash_invite_code(code)


def hash_invite_code(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


# -- presence --------------------------------------------------------------------------------------
def stamp_presence(payload: bytes, identity: Identity, limits: AwarenessLimits | None = None) -> bytes:
    """Re-encode an awareness update with `user.name`/`user.id` set from `identity` in object states.

    Raises `crdt.errors.DecodeError` on a malformed update (as the room would).
    """
    entries = decode_awareness(payload, limits)
    stamped = [_stamp(entry, identity) for entry in entries]
    return encode_awareness(stamped)


def _stamp(entry: AwarenessEntry, identity: Identity) -> AwarenessEntry:
    if entry.state == NULL_STATE:
        return entry
    state = json.loads(entry.state)
    if not isinstance(state, dict):
        return entry
    user = state.get("user")
    user = dict(user) if isinstance(user, dict) else {}
    if user.get("name") == identity.name and user.get("id") == identity.user_id:
        return entry
    user["name"] = identity.name
    user["id"] = identity.user_id
    state["user"] = user
    text = json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    return AwarenessEntry(entry.client_id, entry.clock, text)


def describe_identity(identity: Identity) -> dict[str, Any]:
    """`GET /api/me` material: who, until when, what the token grants."""
    return {
        "user": identity.user_id,
        "name": identity.name,
        "expires_at": identity.expires_at,
        "grants": {pattern: role.name.lower() for pattern, role in identity.grants},
        "document": identity.document,
        "invite": identity.invite,
    }
