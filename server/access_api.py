"""HTTP routes for access: who am I, a document's access list, guest invites (create, list, revoke, redeem).

Every change to a document's access is committed first, then the live connections of that
document are re-checked (`AccessGuard.changed`) before the response is sent.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from persistence.access import AccessEntry, Invite, InviteRefused
from server.access import TokenAuthenticator, describe_identity, hash_invite_code, new_invite_code
from server.auth import AuthError, Credentials, Identity, Role
from server.http import HTTPError, JSONResponse, document_name, read_json, require
from server.hub import Hub
from server.tokens import parse_duration, role_named

MAX_USER_ID_CHARS = 256
MAX_GUEST_NAME_CHARS = 100
DEFAULT_INVITE_SECONDS = 7 * 86400
MAX_INVITE_SECONDS = 90 * 86400
MAX_INVITE_USES = 10_000
INVITE_ROLES = (Role.VIEWER, Role.COMMENTER, Role.EDITOR)  # guests never manage access
REDEEM_PATH = "/api/invites/redeem"


def routes(hub: Hub) -> list[Route]:
    def identify(request: Request) -> Identity:
        credentials = Credentials.from_request(request.query_params, request.headers, request.cookies)
        try:
            return hub.authenticator.identify(credentials, hub.clock())
        except AuthError as exc:
            raise HTTPError(exc.status, exc.error, exc.detail) from None

    def signer() -> TokenAuthenticator:
        if not isinstance(hub.authenticator, TokenAuthenticator):
            raise HTTPError(409, "no_secret", "invites need a server secret (local mode has no tokens)")
        return hub.authenticator

    async def me(request: Request) -> JSONResponse:
        identity = identify(request)
        entries = await hub.access.user_entries(identity.user_id)
        return JSONResponse(
            {
                **describe_identity(identity),
                "local": not isinstance(hub.authenticator, TokenAuthenticator),
                "access": [{"document": e.document, "role": e.role} for e in entries],
            }
        )

    # -- access list ---------------------------------------------------------------------------------
    async def list_access(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.OWNER)
        entries = await hub.access.list_entries(name)
        return JSONResponse({"document": name, "entries": [_entry_json(e) for e in entries]})

    async def grant(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        user_id = _user_id(request.path_params["user"])
        identity, _ = await require(hub, request, name, Role.OWNER)
        body = await read_json(request)
        role = _role(body.get("role"), tuple(r for r in Role if r > Role.NONE))
        entry = AccessEntry(name, user_id, role.name.lower(), identity.user_id, hub.clock())
        await hub.access.put_entry(entry)
        await hub.guard.changed(name)
        return JSONResponse(_entry_json(entry))

    async def revoke(request: Request) -> Response:
        name = document_name(request.path_params["name"])
        user_id = _user_id(request.path_params["user"])
        await require(hub, request, name, Role.OWNER)
        if not await hub.access.remove_entry(name, user_id):
            raise HTTPError(404, "entry_not_found", f"{user_id!r} has no entry on {name!r}")
        await hub.guard.changed(name)
        return Response(status_code=204)

    # -- invites -------------------------------------------------------------------------------------
    async def create_invite(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        identity, _ = await require(hub, request, name, Role.OWNER)
        body = await read_json(request)
        signer()
        role = _role(body.get("role", "viewer"), INVITE_ROLES)
        seconds = _duration(body.get("expires_in", DEFAULT_INVITE_SECONDS))
        max_uses = _max_uses(body.get("max_uses"))
        now = hub.clock()
        code, code_hash = new_invite_code()
        invite = Invite(
            uuid.uuid4().hex, name, role.name.lower(), identity.user_id, now, now + seconds, max_uses
        )
        await hub.access.create_invite(invite, code_hash)
        redeem = {
            "method": "POST",
            "url": str(request.base_url).rstrip("/") + REDEEM_PATH,
            "body": {"code": code},
        }
        return JSONResponse({**_invite_json(invite, now), "code": code, "redeem": redeem}, status_code=201)

    async def list_invites(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.OWNER)
        now = hub.clock()
        invites = await hub.access.list_invites(name)
        return JSONResponse({"document": name, "invites": [_invite_json(i, now) for i in invites]})

    async def revoke_invite(request: Request) -> JSONResponse:
        name = document_name(request.path_params["name"])
        await require(hub, request, name, Role.OWNER)
        invite_id = request.path_params["invite"]
        found = await hub.access.get_invite(invite_id)
        if found is None or found.document != name:
            raise HTTPError(404, "invite_not_found", f"no invite {invite_id!r} on {name!r}")
        now = hub.clock()
        revoked = await hub.access.revoke_invite(invite_id, now)
        await hub.guard.changed(name)
        return JSONResponse(_invite_json(revoked or found, now))

    async def redeem(request: Request) -> JSONResponse:
        """Public: the invite code is the credential. Yields a token for the invite's document only."""
        body = await read_json(request)
        code = body.get("code")
        if not isinstance(code, str) or not 8 <= len(code) <= 128:
            raise HTTPError(422, "invalid_field", "'code' must be the invite code", field="code")
        guest_name = _guest_name(body.get("name", "Guest"))
        authenticator = signer()
        now = hub.clock()
        try:
            invite = await hub.access.redeem_invite(hash_invite_code(code), now)
        except InviteRefused as exc:
            status = 404 if exc.reason == "unknown" else 410
            raise HTTPError(status, f"invite_{exc.reason}", f"this invite is {exc.reason}") from None
        role = role_named(invite.role)
        user = f"guest:{uuid.uuid4().hex[:16]}"
        token = authenticator.sign(
            user,
            guest_name,
            {invite.document: role},
            now=now,
            ttl=invite.expires_at - now,
            document=invite.document,
            invite=invite.id,
        )
        return JSONResponse(
            {
                "token": token,
                "user": user,
                "name": guest_name,
                "document": invite.document,
                "role": invite.role,
                "expires_at": invite.expires_at,
            }
        )

    return [
        Route("/api/me", me, methods=["GET"]),
        Route("/api/documents/{name:path}/-/access", list_access, methods=["GET"]),
        Route("/api/documents/{name:path}/-/access/{user}", grant, methods=["PUT"]),
        Route("/api/documents/{name:path}/-/access/{user}", revoke, methods=["DELETE"]),
        Route("/api/documents/{name:path}/-/invites", create_invite, methods=["POST"]),
        Route("/api/documents/{name:path}/-/invites", list_invites, methods=["GET"]),
        Route("/api/documents/{name:path}/-/invites/{invite}", revoke_invite, methods=["DELETE"]),
        Route(REDEEM_PATH, redeem, methods=["POST"]),
    ]


# -- validation and rendering ----------------------------------------------------------------------
def _user_id(raw: str) -> str:
    if (
        not raw
        or len(raw) > MAX_USER_ID_CHARS
        or any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in raw)
    ):
        raise HTTPError(422, "invalid_user", f"user ids are 1-{MAX_USER_ID_CHARS} printable characters")
    return raw


def _guest_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_GUEST_NAME_CHARS:
        raise HTTPError(
            422, "invalid_field", f"'name' must be 1-{MAX_GUEST_NAME_CHARS} characters", field="name"
        )
    if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in raw):
        raise HTTPError(422, "invalid_field", "'name' contains control characters", field="name")
    return raw.strip()


def _role(raw: Any, allowed: tuple[Role, ...]) -> Role:
    names = "|".join(r.name.lower() for r in allowed)
    try:
        role = role_named(raw) if isinstance(raw, str) else None
    except ValueError:
        role = None
    if role not in allowed:
        raise HTTPError(422, "invalid_field", f"'role' must be one of {names}", field="role")
    assert role is not None
    return role


def _duration(raw: Any) -> float:
    try:
        if isinstance(raw, str):
            seconds = parse_duration(raw)
        elif isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
            seconds = float(raw)
        else:
            raise ValueError
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= MAX_INVITE_SECONDS:
        raise HTTPError(
            422,
            "invalid_field",
            f"'expires_in' must be 1s-{MAX_INVITE_SECONDS // 86400}d",
            field="expires_in",
        )
    return seconds


def _max_uses(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_INVITE_USES:
        raise HTTPError(
            422, "invalid_field", f"'max_uses' must be 1-{MAX_INVITE_USES} or null", field="max_uses"
        )
    return raw


def _entry_json(entry: AccessEntry) -> dict[str, Any]:
    return {
        "user": entry.user_id,
        "role": entry.role,
        "granted_by": entry.granted_by,
        "updated_at": entry.updated_at,
    }


def _invite_json(invite: Invite, now: float) -> dict[str, Any]:
    return {
        "id": invite.id,
        "document": invite.document,
        "role": invite.role,
        "created_by": invite.created_by,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "revoked_at": invite.revoked_at,
        "status": invite.refusal(now) or "active",
    }
