"""Per-document compaction lease in Redis: one holder at a time, renewed while held, expiring if it dies."""

from __future__ import annotations

from redis.asyncio import Redis

# Take the lease when free, renew it when ours: one round trip, atomic.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Compare-and-delete: never release a lease another node took after ours expired.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

LEASE_PREFIX = "cocreate:lease:"


class Leases:
    """`hold` takes or renews the lease of a document for `token`; `release` gives it back."""

    def __init__(self, redis: Redis, ttl: float) -> None:
        self.redis = redis
        self.ttl_ms = max(1, int(ttl * 1000))
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)

    async def hold(self, document_id: str, token: str) -> bool:
        """True when `token` holds the lease for the next ttl seconds (measured from the call)."""
        return bool(await self._hold(keys=[LEASE_PREFIX + document_id], args=[token, self.ttl_ms]))

    async def release(self, document_id: str, token: str) -> bool:
        return bool(await self._release(keys=[LEASE_PREFIX + document_id], args=[token]))

    async def holder(self, document_id: str) -> str | None:
        value = await self.redis.get(LEASE_PREFIX + document_id)
        return None if value is None else value.decode() if isinstance(value, bytes) else str(value)
