"""Readiness: named dependency checks (database, and whatever else registers one) run with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Check = Callable[[], Awaitable[None]]  # returns when the dependency answers, raises otherwise

SHUTTING_DOWN = "shutting down"


class Readiness:
    """Ready when not shutting down and every registered check passes within `timeout` seconds."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self.shutting_down = False
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Register (or replace) the check called `name`, e.g. "database" or "redis"."""
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def evaluate(self) -> tuple[bool, dict[str, str]]:
        """(ready, {check: "ok" | why it failed}); a "shutdown" entry while shutting down."""
        names = list(self._checks)
        outcomes = await asyncio.gather(*(self._run(self._checks[name]) for name in names))
        results = dict(zip(names, outcomes, strict=True))
        if self.shutting_down:
            results["shutdown"] = SHUTTING_DOWN
        ready = all(outcome == "ok" for outcome in results.values())
        return ready, results

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g}s"
        except Exception as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
        return "ok"
