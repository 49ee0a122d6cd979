"""Access routes in process: /api/me, access lists, invites; the effective-role rule; the live guard."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness
from crdt.errors import DecodeError
from persistence.access import AccessEntry
from persistence.memory import MemoryStorage
from server.access import stamp_presence
from server.app import build
from server.auth import Credentials, Identity, Role
from server.guard import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED, AccessGuard, downgrade_reason
from server.hub import Hub
from server.settings import Settings
from server.tokens import issue
from tests.support.asgi import Reply, call

SECRET = "api-test-secret-0123456789abcdefghij"
DOC = "team/plan"
BASE = f"/api/documents/{DOC}/-"


def tok(user: str, grants: dict[str, Role], ttl: float = 3600, name: str | None = None) -> str:
    return issue(user, name or user.title(), grants, now=time.time(), ttl=ttl, secret=SECRET)


OWNER = tok("olga", {"team/*": Role.OWNER})
EDITOR = tok("ed", {"team/*": Role.EDITOR})
NOBODY = tok("nobody", {})


@dataclass
class Server:
    app: Starlette
    hub: Hub

    async def __call__(self, method: str, path: str, token: str | None = None, **kw: object) -> Reply:
        return await call(self.app, method, path, token=token, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app, hub = build(Settings(secret=SECRET), MemoryStorage())
    yield Server(app, hub)


@pytest.fixture
async def local() -> AsyncIterator[Server]:
    app, hub = build(Settings(), MemoryStorage())
    yield Server(app, hub)


# -- /api/me ---------------------------------------------------------------------------------------------
async def test_me_describes_the_token_and_access_list(server: Server) -> None:
    assert (await server("GET", "/api/me")).status == 401
    bad = await server("GET", "/api/me", "not-a-token")
    assert (bad.status, bad.json()["error"]) == (401, "token_malformed")
    await server.hub.access.put_entry(_entry("misc/notes", "ed", "commenter"))
    me = (await server("GET", "/api/me", EDITOR)).json()
    assert (me["user"], me["name"], me["local"]) == ("ed", "Ed", False)
    assert me["grants"] == {"team/*": "editor"}
    assert me["access"] == [{"document": "misc/notes", "role": "commenter"}]
    via_query = await server("GET", f"/api/me?token={EDITOR}")
    via_cookie = await server("GET", "/api/me", headers={"cookie": f"cocreate_token={EDITOR}"})
    assert via_query.json()["user"] == via_cookie.json()["user"] == "ed"


async def test_local_mode_me_and_no_invites(local: Server) -> None:
    me = (await local("GET", "/api/me")).json()
    assert (me["user"], me["local"]) == ("local", True)
    reply = await local("POST", f"{BASE}/invites", json={"role": "viewer"})
    assert (reply.status, reply.json()["error"]) == (409, "no_secret")


# -- access lists ------------------------------------------------------------------------------------------
async def test_owner_manages_the_access_list(server: Server) -> None:
    granted = await server("PUT", f"{BASE}/access/bo", OWNER, json={"role": "editor"})
    assert granted.status == 200 and granted.json()["granted_by"] == "olga"
    listed = (await server("GET", f"{BASE}/access", OWNER)).json()
    assert [(e["user"], e["role"]) for e in listed["entries"]] == [("bo", "editor")]
    assert (await server("DELETE", f"{BASE}/access/bo", OWNER)).status == 204
    missing = await server("DELETE", f"{BASE}/access/bo", OWNER)
    assert (missing.status, missing.json()["error"]) == (404, "entry_not_found")


async def test_only_owners_manage_access(server: Server) -> None:
    for method, path in [("GET", "access"), ("PUT", "access/bo"), ("DELETE", "access/bo")]:
        assert (await server(method, f"{BASE}/{path}", json={"role": "viewer"})).status == 401
        assert (await server(method, f"{BASE}/{path}", EDITOR, json={"role": "viewer"})).status == 403


async def test_invalid_roles_and_users_are_422(server: Server) -> None:
    for role in ["none", "admin", 3, None]:
        reply = await server("PUT", f"{BASE}/access/bo", OWNER, json={"role": role})
        assert (reply.status, reply.json()["field"]) == (422, "role")
    assert (await server("PUT", f"{BASE}/access/a%01b", OWNER, json={"role": "viewer"})).status == 422


async def test_effective_role_is_the_max_of_token_and_access_list(server: Server) -> None:
    viewer = tok("vi", {"team/*": Role.VIEWER})
    assert (await server("GET", f"{BASE}/access", viewer)).status == 403
    await server("PUT", f"{BASE}/access/vi", OWNER, json={"role": "owner"})
    assert (await server("GET", f"{BASE}/access", viewer)).status == 200  # the list adds rights
    await server("PUT", f"{BASE}/access/olga", OWNER, json={"role": "viewer"})
    assert (await server("GET", f"{BASE}/access", OWNER)).status == 200  # but takes none away
    assert (await server("GET", f"{BASE}/access", NOBODY)).status == 403
    await server("PUT", f"{BASE}/access/nobody", OWNER, json={"role": "owner"})
    assert (await server("GET", f"{BASE}/access", NOBODY)).status == 200


async def test_a_renamed_document_keeps_its_access_list(server: Server) -> None:
    assert (await server("POST", "/api/documents", OWNER, json={"name": DOC})).status == 201
    await server("PUT", f"{BASE}/access/bo", OWNER, json={"role": "editor"})
    renamed = await server("PATCH", f"/api/documents/{DOC}", OWNER, json={"name": "team/renamed"})
    assert renamed.status == 200, renamed.json()
    listed = (await server("GET", "/api/documents/team/renamed/-/access", OWNER)).json()
    assert [(e["user"], e["role"]) for e in listed["entries"]] == [("bo", "editor")]
    assert (await server("GET", f"{BASE}/access", OWNER)).json()["entries"] == []


# -- invites ----------------------------------------------------------------------------------------------
async def create_invite(server: Server, **body: object) -> dict[str, object]:
    reply = await server("POST", f"{BASE}/invites", OWNER, json={"role": "commenter", **body})
    assert reply.status == 201, reply.json()
    return dict(reply.json())


async def redeem(server: Server, code: object, name: str = "Dr. Guest") -> Reply:
    return await server("POST", "/api/invites/redeem", json={"code": code, "name": name})


async def test_invite_lifecycle(server: Server) -> None:
    invite = await create_invite(server, expires_in="2d", max_uses=2)
    assert invite["status"] == "active" and invite["uses"] == 0
    assert str(invite["redeem"]["url"]).endswith("/api/invites/redeem")  # type: ignore[index]
    first = await redeem(server, invite["code"])
    assert first.status == 200
    guest = first.json()
    assert (guest["document"], guest["role"], guest["name"]) == (DOC, "commenter", "Dr. Guest")
    assert guest["user"].startswith("guest:")
    me = (await server("GET", "/api/me", guest["token"])).json()
    assert (me["document"], me["invite"], me["user"]) == (DOC, invite["id"], guest["user"])
    second = (await redeem(server, invite["code"], "Other")).json()
    assert second["user"] != guest["user"]
    exhausted = await redeem(server, invite["code"])
    assert (exhausted.status, exhausted.json()["error"]) == (410, "invite_exhausted")
    listed = (await server("GET", f"{BASE}/invites", OWNER)).json()["invites"]
    assert [(i["id"], i["uses"], i["status"]) for i in listed] == [(invite["id"], 2, "exhausted")]
    assert "code" not in listed[0]


async def test_a_guest_token_works_on_its_document_only_and_dies_with_its_invite(server: Server) -> None:
    invite = await create_invite(server, role="editor")
    token = (await redeem(server, invite["code"])).json()["token"]
    hub = server.hub
    identity = hub.authenticator.identify(_credentials(token), time.time())
    assert await hub.authenticator.role(identity, DOC) == Role.EDITOR
    assert await hub.authenticator.role(identity, "team/other") == Role.NONE
    assert (await server("GET", f"{BASE}/invites", token)).status == 403  # guests never own
    revoked = await server("DELETE", f"{BASE}/invites/{invite['id']}", OWNER)
    assert revoked.json()["status"] == "revoked"
    assert await hub.authenticator.role(identity, DOC) == Role.NONE
    again = await redeem(server, invite["code"])
    assert (again.status, again.json()["error"]) == (410, "invite_revoked")


async def test_invite_validation(server: Server) -> None:
    for body in [
        {"role": "owner"},
        {"role": "viewer", "expires_in": "365d"},
        {"role": "viewer", "expires_in": -1},
        {"role": "viewer", "max_uses": 0},
        {"role": "viewer", "max_uses": "3"},
    ]:
        assert (await server("POST", f"{BASE}/invites", OWNER, json=body)).status == 422, body
    assert (await redeem(server, "x" * 20)).status == 404
    assert (await redeem(server, 12345)).status == 422
    invite = await create_invite(server)
    assert (await redeem(server, invite["code"], name="")).status == 422
    other = await server("DELETE", f"/api/documents/team/other/-/invites/{invite['id']}", OWNER)
    assert other.status == 404


async def test_expired_invites_cannot_be_redeemed(server: Server) -> None:
    invite = await create_invite(server, expires_in=60)
    server.hub.clock = lambda: time.time() + 61
    reply = await redeem(server, invite["code"])
    assert (reply.status, reply.json()["error"]) == (410, "invite_expired")


# -- the live guard, with stand-in connections ---------------------------------------------------------------
@dataclass(eq=False)
class FakePeer:
    document: str
    identity: Identity
    role: Role
    denied: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def change_role(self, role: Role) -> None:
        self.role = role

    def deny(self, code: int, reason: str) -> None:
        self.denied.append(code)
        self.reasons.append(reason)
        self.closed.set()


async def test_guard_closes_downgraded_and_revoked_connections_and_upgrades_in_place(server: Server) -> None:
    hub = server.hub
    await hub.access.put_entry(_entry(DOC, "vi", "editor"))
    viewer = hub.authenticator.identify(_credentials(tok("vi", {"team/*": Role.VIEWER})), time.time())
    stranger = hub.authenticator.identify(_credentials(NOBODY), time.time())
    await hub.access.put_entry(_entry(DOC, "nobody", "viewer"))
    a, b = FakePeer(DOC, viewer, Role.EDITOR), FakePeer(DOC, stranger, Role.VIEWER)
    hub.guard.track(a, hub.guard.generation(DOC))
    hub.guard.track(b, hub.guard.generation(DOC))
    await server("PUT", f"{BASE}/access/vi", OWNER, json={"role": "commenter"})
    assert a.denied == [CLOSE_FORBIDDEN] and a.reasons == [downgrade_reason(Role.COMMENTER)]
    assert not hub.guard.tracked(a) and len(hub.guard) == 1  # closed, not re-roled in place
    await server("DELETE", f"{BASE}/access/nobody", OWNER)
    assert b.denied == [CLOSE_FORBIDDEN] and len(hub.guard) == 0
    c = FakePeer(DOC, viewer, Role.COMMENTER)  # reconnected with the commenter role
    hub.guard.track(c, hub.guard.generation(DOC))
    await server("PUT", f"{BASE}/access/vi", OWNER, json={"role": "owner"})
    assert (c.role, c.denied) == (Role.OWNER, [])  # upgrades apply live, in place
    await server("DELETE", f"{BASE}/access/vi", OWNER)
    assert c.denied == [CLOSE_FORBIDDEN]  # down to the token's viewer grant: closed
    assert c.reasons == [downgrade_reason(Role.VIEWER)]


async def test_guard_closes_when_the_token_expires() -> None:
    guard = AccessGuard(_AlwaysEditor(), time.time)
    peer = FakePeer(DOC, Identity("ana", "Ana", expires_at=time.time() + 0.2), Role.EDITOR)
    guard.track(peer, 0)
    await asyncio.wait_for(peer.closed.wait(), 2)
    assert peer.denied == [CLOSE_UNAUTHORIZED]
    late = FakePeer(DOC, Identity("bo", "Bo", expires_at=time.time() + 60), Role.EDITOR)
    guard.track(late, 0)
    guard.untrack(late)  # closing a connection cancels its timer
    assert len(guard) == 0


async def test_guard_rechecks_a_peer_admitted_during_a_change() -> None:
    guard = AccessGuard(_NoAccess(), time.time)
    generation = guard.generation(DOC)  # admission starts here ...
    await guard.changed(DOC)  # ... a revocation commits and is applied before the peer exists ...
    peer = FakePeer(DOC, Identity("ana", "Ana"), Role.EDITOR)
    guard.track(peer, generation)  # ... so tracking it re-checks it
    await asyncio.wait_for(peer.closed.wait(), 2)
    assert peer.denied == [CLOSE_FORBIDDEN]


class _AlwaysEditor:
    def identify(self, credentials: object, now: float) -> Identity:
        raise NotImplementedError

    async def role(self, identity: Identity, document: str) -> Role:
        return Role.EDITOR


class _NoAccess(_AlwaysEditor):
    async def role(self, identity: Identity, document: str) -> Role:
        return Role.NONE


def _credentials(token: str) -> Credentials:
    return Credentials(token)


def _entry(document: str, user: str, role: str) -> AccessEntry:
    return AccessEntry(document, user, role, "test", time.time())


# -- presence stamping --------------------------------------------------------------------------------------
def test_stamp_presence_sets_the_authenticated_name_and_keeps_the_rest() -> None:
    who = Identity("vic", "Vic", expires_at=1.0)
    entries = [
        AwarenessEntry(1, 3, json.dumps({"user": {"name": "Olga", "color": "#f00"}, "cursor": 4})),
        AwarenessEntry(2, 1, json.dumps({"cursor": 1})),
        AwarenessEntry(3, 7, "null"),
        AwarenessEntry(4, 1, "42"),
    ]
    stamped = {e.client_id: e for e in decode_awareness(stamp_presence(encode_awareness(entries), who))}
    assert json.loads(stamped[1].state) == {
        "user": {"name": "Vic", "color": "#f00", "id": "vic"},
        "cursor": 4,
    }
    assert json.loads(stamped[2].state) == {"cursor": 1, "user": {"name": "Vic", "id": "vic"}}
    assert (stamped[3].state, stamped[4].state, stamped[1].clock) == ("null", "42", 3)


def test_stamp_presence_refuses_malformed_or_deeply_nested_states() -> None:
    who = Identity("vic", "Vic", expires_at=1.0)
    deep = AwarenessEntry(1, 1, "[" * 5000 + "]" * 5000)
    for payload in (b"\x05\x01", encode_awareness([deep])):
        with pytest.raises(DecodeError):
            stamp_presence(payload, who)


async def test_listing_shows_only_documents_the_caller_may_view(server: Server) -> None:
    for name in ("team/a", "team/abc", "zeta/x"):
        assert (await server("POST", "/api/documents", OWNER if name.startswith("team") else None,
                             json={"name": name})).status in (201, 401)  # fmt: skip
    narrow = tok("nina", {"team/a": Role.VIEWER})
    listed = (await server("GET", "/api/documents?prefix=team/a", narrow)).json()
    assert [d["name"] for d in listed["documents"]] == ["team/a"]  # not team/abc
    assert (await server("GET", "/api/documents", NOBODY)).json()["documents"] == []
    assert (await server("GET", "/api/documents")).status == 401
    wide = (await server("GET", "/api/documents?limit=1", OWNER)).json()
    assert [d["name"] for d in wide["documents"]] == ["team/a"] and wide["next"] == "team/a"
