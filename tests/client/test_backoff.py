"""The Python client's reconnection backoff: exponential, capped, jittered, for any number of attempts."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client import client as client_module
from client.client import FIRST_BACKOFF, Client, backoff_delay


def ceiling(attempt: int, max_backoff: float) -> float:
    return min(max_backoff, FIRST_BACKOFF * 2 ** min(attempt, 64))


@given(
    attempt=st.integers(min_value=1, max_value=100_000),
    max_backoff=st.floats(min_value=0.01, max_value=600.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_every_delay_is_within_half_and_all_of_the_capped_exponential(
    attempt: int, max_backoff: float, seed: int
) -> None:
    delay = backoff_delay(attempt, max_backoff, random.Random(seed))
    assert 0.5 * ceiling(attempt, max_backoff) <= delay <= ceiling(attempt, max_backoff) <= max_backoff


def test_delays_double_until_the_cap() -> None:
    upper = [backoff_delay(a, 5.0, _Fixed(1.0)) for a in range(1, 12)]
    assert upper == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0, 5.0]
    lower = [backoff_delay(a, 5.0, _Fixed(0.5)) for a in (1, 7, 5000)]
    assert lower == [0.05, 2.5, 2.5]


def test_a_long_outage_stays_at_the_cap() -> None:
    rng = random.Random(7)
    assert all(2.5 <= backoff_delay(attempt, 5.0, rng) <= 5.0 for attempt in (1023, 1024, 1100, 10**6))


def test_jitter_spreads_clients_dropped_together() -> None:
    """1000 clients at the same attempt do not come back at the same moment: the delays fill
    [0.5, 1] x the ceiling (every tenth of it), and one seed gives one sequence."""
    rng = random.Random(20261128)
    delays = [backoff_delay(6, 5.0, rng) for _ in range(1000)]
    top = ceiling(6, 5.0)
    assert len(set(delays)) == 1000
    buckets = {int((d / top - 0.5) * 20) for d in delays}  # tenths of the jitter range
    assert buckets >= set(range(10))
    again = random.Random(20261128)
    assert [backoff_delay(6, 5.0, again) for _ in range(1000)] == delays


async def test_the_reconnect_loop_waits_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against a closed port, the client retries with its own generator's delays, reset by nothing."""
    client = Client("ws://127.0.0.1:1/ws/x", None, reconnect=True, max_backoff=1.0)  # port 1: refused
    client.rng = _Fixed(1.0)
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 6:
            client._stopping = True
        await real_sleep(0)

    monkeypatch.setattr(client_module.asyncio, "sleep", record)
    await asyncio.wait_for(client._run(), 10)
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


class _Fixed(random.Random):
    """A generator whose `uniform` always returns a fraction `at` of the way (0.5: the low end)."""

    def __init__(self, at: float) -> None:
        super().__init__(0)
        self.at = at

    def uniform(self, a: float, b: float) -> float:
        return self.at if (a, b) == (0.5, 1.0) else super().uniform(a, b)
