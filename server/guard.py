"""Live access control: re-check open connections when access changes, close them when tokens expire.

Rules:
- Every channel peer registers (`track`) once admitted and leaves (`untrack`) when closed; the
  guard indexes them by document.
- A change to a document's access (access-list entry written or removed, invite revoked) is
  reported with `await changed(document)` *after* the store committed it: every tracked connection
  of that document is re-checked with the authenticator, and then either keeps its role, is
  upgraded in place (`change_role`), or - revoked (no role) or downgraded (a role below the one it
  holds) - is refused (`deny(4403)`, with the new role in the reason; 44xx is final for clients, so
  the application reconnects them, admitted with the new role). The caller awaits it, so the HTTP
  response of the change returns once live connections follow it.
- Admission reads the store before the peer is tracked. To close that gap each document has a
  generation, bumped by `changed`; admission records it before reading (`generation`) and
  `track` re-checks a peer whose document changed in between.
- A connection whose token expires is refused (`deny(4401)`) by a timer set at `track`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from persistence.base import StorageError
from server.auth import Authenticator, Identity, Role

log = logging.getLogger("cocreate.access")

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


class Guarded(Protocol):
    """What the guard needs from a connection to one document."""

    document: str
    identity: Identity
    role: Role

    def change_role(self, role: Role) -> None:
        """Keep the connection with a higher role (an upgrade: writable from EDITOR on)."""

    def deny(self, code: int, reason: str) -> None:
        """Tell the client permission is denied, then close with `code`."""


class AccessGuard:
    """The index of live connections by document, their expiry timers and their re-checks."""

    def __init__(self, authenticator: Authenticator, clock: Callable[[], float]) -> None:
        self.authenticator = authenticator
        self.clock = clock
        self._peers: dict[str, set[Guarded]] = {}
        self._timers: dict[Guarded, asyncio.TimerHandle] = {}
        self._generations: dict[str, int] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.relay: Callable[[str], None] | None = None  # cluster mode: tell the other nodes

    def generation(self, document: str) -> int:
        """Read before an admission's access check; handed back to `track`."""
        return self._generations.get(document, 0)

    def peers_of(self, document: str) -> list[Guarded]:
        return list(self._peers.get(document, ()))

    def __len__(self) -> int:
        return sum(len(peers) for peers in self._peers.values())

    def track(self, peer: Guarded, generation: int) -> None:
        self._peers.setdefault(peer.document, set()).add(peer)
        expires_at = peer.identity.expires_at
        if expires_at is not None:
            self._schedule_expiry(peer, expires_at)
        if generation != self.generation(peer.document):
            self._spawn(self.recheck([peer]))

    def untrack(self, peer: Guarded) -> None:
        peers = self._peers.get(peer.document)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._peers[peer.document]
        timer = self._timers.pop(peer, None)
        if timer is not None:
            timer.cancel()

    def tracked(self, peer: Guarded) -> bool:
        return peer in self._peers.get(peer.document, ())

    async def changed(self, document: str, *, relayed: bool = False) -> None:
        """Access to `document` changed (committed): re-check its live connections now (and on the
        other nodes of a cluster, unless the change came `relayed` from one)."""
        if self.relay is not None and not relayed:
            self.relay(document)
        self._generations[document] = self.generation(document) + 1
        await self.recheck(self.peers_of(document))

    async def recheck(self, peers: list[Guarded]) -> None:
        """Ask the authenticator again for each peer (once per distinct identity and document)."""
        roles: dict[tuple[Identity, str], Role] = {}
        for peer in peers:
            if not self.tracked(peer):
                continue
            if self._expired(peer):
                continue
            key = (peer.identity, peer.document)
            if key not in roles:
                try:
                    roles[key] = await self.authenticator.role(peer.identity, peer.document)
                except StorageError as exc:  # keep the connection as it is; admission will decide later
                    log.warning("could not re-check access to %r: %s", peer.document, exc)
                    return
            if self.tracked(peer):
                self._apply(peer, roles[key])

    def _apply(self, peer: Guarded, role: Role) -> None:
        if role < Role.VIEWER:
            log.info("access to %r revoked for %s: closing", peer.document, peer.identity.user_id)
            self.untrack(peer)
            peer.deny(CLOSE_FORBIDDEN, "your access to this document was revoked")
        elif role != peer.role:
            lowered = role < peer.role
            log.info(
                "role of %s on %r: %s -> %s%s",
                peer.identity.user_id,
                peer.document,
                peer.role.name.lower(),
                role.name.lower(),
                ": closing" if lowered else "",
            )
            if lowered:
                self.untrack(peer)
                peer.deny(CLOSE_FORBIDDEN, downgrade_reason(role))
            else:
                peer.change_role(role)

    # -- expiry --------------------------------------------------------------------------------------
    def _schedule_expiry(self, peer: Guarded, expires_at: float) -> None:
        delay = max(0.0, expires_at - self.clock())
        loop = asyncio.get_running_loop()
        self._timers[peer] = loop.call_later(delay, self._on_timer, peer, expires_at)

    def _on_timer(self, peer: Guarded, expires_at: float) -> None:
        self._timers.pop(peer, None)
        if not self.tracked(peer):
            return
        if self.clock() < expires_at:  # the event loop's clock ran ahead of the wall clock
            self._schedule_expiry(peer, expires_at)
            return
        self._expired(peer)

    def _expired(self, peer: Guarded) -> bool:
        expires_at = peer.identity.expires_at
        if expires_at is None or self.clock() < expires_at:
            return False
        log.info("token of %s expired: closing its connection to %r", peer.identity.user_id, peer.document)
        self.untrack(peer)
        peer.deny(CLOSE_UNAUTHORIZED, "your token expired; reconnect with a new one")
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def downgrade_reason(role: Role) -> str:
    """The close reason of a downgraded connection: what its role is now, and what to do."""
    return f"your role on this document changed to {role.name.lower()}; reconnect"
