"""The per-connection awareness rate cap: over it, updates are coalesced (never lost) and relayed later."""

# A connection may send `rate` awareness updates per second (a burst of `burst`). What comes over
# the rate is not relayed at once: its entries are held, the newest one per client id (an older
# clock never replaces a newer one), and go out as one merged update when a token returns - with
# the connection's next update that finds a token, or when the connection's timer fires, whichever
# is first. So a flood of cursor moves costs its room a few relays a second, and the last state of
# every client id still reaches everyone. Entries for ids another connection owns are echoes the
# room would ignore: they are not held. At most `AwarenessLimits.max_entries` ids are held.
#
# `AwarenessThrottle` is the logic (injected clock); `AwarenessPacer` adds the connection's timer.

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable

from crdt.awareness import AwarenessEntry, AwarenessLimits, decode_awareness, encode_awareness
from server.limits import LimitCounters, TokenBucket, awareness_limits
from server.settings import Settings

OwnerOf = Callable[[int], Hashable | None]


class AwarenessThrottle:
    """Decides, per awareness update of one connection, whether it goes now or is held (coalesced)."""

    def __init__(
        self, rate: float, burst: float, limits: AwarenessLimits, owner_of: OwnerOf, me: Hashable
    ) -> None:
        self.bucket = TokenBucket(rate, max(burst, 1.0))
        self.limits = limits
        self.owner_of = owner_of
        self.me = me
        self.held: dict[int, AwarenessEntry] = {}
        self.dropped = 0  # updates not relayed as sent (held, merged into a later one)

    def offer(self, payload: bytes, now: float) -> tuple[bytes | None, float]:
        """(what to relay now or None, seconds until the held entries may go; 0: nothing held).

        Raises `crdt.errors.DecodeError` for a malformed or oversized update (as the room would).
        """
        entries = decode_awareness(payload, self.limits)  # the configured caps, checked at the edge
        if not self.held:
            wait = self.bucket.try_take(1, now)
            if wait == 0:
                return payload, 0.0  # the common case: relayed as sent
        else:
            wait = 0.0
        self._hold(entries)
        self.dropped += 1
        if wait == 0:  # something is held: only a token that is free now lets it go
            wait = self.bucket.try_take(1, now)
            if wait == 0:
                return self._merged(), 0.0
        return None, wait

    def release(self, now: float) -> tuple[bytes | None, float]:
        """The timer fired: the merged held entries if a token is free, else the wait."""
        if not self.held:
            return None, 0.0
        wait = self.bucket.try_take(1, now)
        if wait > 0:
            return None, wait
        return self._merged(), 0.0

    def _hold(self, entries: list[AwarenessEntry]) -> None:
        for entry in entries:
            owner = self.owner_of(entry.client_id)
            if owner is not None and owner != self.me:
                continue  # an echo of another connection's client: the room ignores it anyway
            current = self.held.get(entry.client_id)
            if current is not None:
                if entry.clock >= current.clock:
                    self.held[entry.client_id] = entry
            elif len(self.held) < self.limits.max_entries:
                self.held[entry.client_id] = entry

    def _merged(self) -> bytes:
        payload = encode_awareness(self.held.values())
        self.held.clear()
        return payload


class AwarenessPacer:
    """An `AwarenessThrottle` plus the timer that relays held entries once a token returns."""

    def __init__(
        self,
        throttle: AwarenessThrottle,
        relay: Callable[[bytes], None],
        clock: Callable[[], float],
        on_drop: Callable[[int], None],
    ) -> None:
        self.throttle = throttle
        self.relay = relay
        self.clock = clock
        self.on_drop = on_drop  # told the running count of dropped updates (log once, count each)
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    def offer(self, payload: bytes) -> None:
        """Relay `payload` now, or hold it (raises `DecodeError` for a malformed or oversized one)."""
        if self._closed:
            return
        dropped = self.throttle.dropped
        relayed, wait = self.throttle.offer(payload, self.clock())
        if self.throttle.dropped != dropped:
            self.on_drop(self.throttle.dropped)
        if relayed is not None:
            self._cancel()
            self.relay(relayed)
        if wait > 0 and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def close(self) -> None:
        """The connection is gone: held entries are moot (the room clears its states)."""
        self._closed = True
        self._cancel()
        self.throttle.held.clear()

    def _fire(self) -> None:
        self._timer = None
        if self._closed:
            return
        relayed, wait = self.throttle.release(self.clock())
        if relayed is not None:
            self.relay(relayed)
        elif wait > 0:
            self._timer = asyncio.get_running_loop().call_later(wait, self._fire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def connection_pacer(
    settings: Settings,
    counters: LimitCounters,
    label: str,
    owner_of: OwnerOf,
    me: Hashable,
    relay: Callable[[bytes], None],
) -> AwarenessPacer:
    """The pacer of one connection (`label` names it in the log line written when it starts dropping)."""
    limits = awareness_limits(settings)
    throttle = AwarenessThrottle(settings.awareness_rate, settings.awareness_burst, limits, owner_of, me)

    def dropped(count: int) -> None:
        detail = f"{label} over {settings.awareness_rate:g}/s, coalescing"
        counters.hit("awareness_rate", detail, quiet=count > 1)

    return AwarenessPacer(throttle, relay, time.monotonic, dropped)
