"""Unit tests of the cluster modules share the cluster tests' redis-server fixture."""

from __future__ import annotations

from tests.cluster.conftest import redis_server

__all__ = ["redis_server"]
