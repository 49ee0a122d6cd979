"""A latency canary in its own OS process: a writer and a reader of one room, reporting the worst delay."""

# The writer inserts one character every `--interval` seconds and sends it as a y-websocket
# SyncUpdate; the reader, a second connection to the same room, receives the broadcast. Both
# live in this process, so one clock times each update from send to receive. The room has no
# other writer, so broadcasts arrive in send order and are matched first-in, first-out.
#
# Control, one line each way (the test drives it through `Canary`):
#   stdout `ready`                 both connections are open and a first update made the trip
#   stdin  `mark`  -> stdout JSON  the report of the window since the previous mark, after two
#                                  updates sent after the mark made the trip (so a stall that
#                                  outlives the attack is seen); a new window starts
#   stdin  `stop` (or EOF)         close both connections and exit
# A report: {"max_ms": the worst send->receive delay in the window (updates still in flight count
# by their age); "stall_ms": the same, less the time the server's main thread and this process
# waited for a CPU while that update was in flight (/proc/PID/schedstat run delay: on a busy
# machine other processes, the test's own clients included, preempt the server; that is not the
# server stalling its rooms; equal to max_ms on an idle machine); "cpu_wait_ms": what was
# subtracted for the worst update; "sent", "received": counts in the window; "pending": in flight
# at the report; "closed": why a connection ended, or null}. Without `--server-pid` only this
# process's own wait is subtracted.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class CanaryReport:
    max_ms: float  # worst raw send->receive delay
    stall_ms: float  # worst delay less the CPU waits (of the server and the canary) during it
    cpu_wait_ms: float
    sent: int
    received: int
    pending: int
    closed: str | None


class Canary:
    """Test-side handle: starts `python -m tests.support.canary URL` and asks it for reports."""

    def __init__(self, url: str, server_pid: int | None = None, interval: float = 0.02) -> None:
        self.url = url
        self.server_pid = server_pid
        self.interval = interval
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self.worst_ms = 0.0

    def start(self, timeout: float = 20.0) -> Canary:
        argv = [sys.executable, "-m", "tests.support.canary", self.url, "--interval", str(self.interval)]
        if self.server_pid is not None:
            argv += ["--server-pid", str(self.server_pid)]
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        line = self._next_line(timeout)
        if line != "ready":
            self.stop()
            raise RuntimeError(f"canary did not start: {line!r}")
        return self

    def _pump(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("")  # EOF

    def _next_line(self, timeout: float) -> str:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return "<no answer>"

    def report(self, timeout: float = 10.0) -> CanaryReport:
        """Close the current window and return what happened in it (blocks ~2 intervals)."""
        process = self.process
        if process is None or process.poll() is not None or process.stdin is None:
            return CanaryReport(float("inf"), float("inf"), 0.0, 0, 0, 0, "canary process is not running")
        process.stdin.write("mark\n")
        process.stdin.flush()
        line = self._next_line(timeout)
        try:
            data = json.loads(line)
        except ValueError:
            return CanaryReport(float("inf"), float("inf"), 0.0, 0, 0, 0, f"bad canary answer {line!r}")
        report = CanaryReport(**data)
        self.worst_ms = max(self.worst_ms, report.stall_ms)
        return report

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.write("stop\n")
                process.stdin.flush()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None


# -- the canary process ------------------------------------------------------------------------
def _run_delay(path: str) -> float:
    """Seconds a thread has waited on a run queue, in total (0 when /proc does not tell)."""
    try:
        with open(path) as schedstat:
            return int(schedstat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class _Probe:
    """State shared by the writer, the reader and the control loop of the canary process."""

    def __init__(self, server_pid: int | None) -> None:
        self.paths = ["/proc/self/schedstat"]
        if server_pid is not None:
            self.paths.append(f"/proc/{server_pid}/schedstat")  # the main thread: the event loop
        self.in_flight: deque[tuple[int, float, float]] = deque()  # (seq, sent at, cpu waits then)
        self.sent = 0  # sequence number of the last update sent
        self.received_seq = 0  # sequence number of the last update received
        self.window: list[float] = [0.0, 0.0, 0.0]  # worst raw, worst corrected, its cpu wait
        self.window_sent = 0
        self.window_received = 0
        self.closed: str | None = None
        self.arrived = asyncio.Event()

    def waits(self) -> float:
        return sum(_run_delay(path) for path in self.paths)

    def on_sent(self, now: float) -> None:
        self.sent += 1
        self.window_sent += 1
        self.in_flight.append((self.sent, now, self.waits()))

    def _account(self, sent_at: float, waits_then: float, now: float) -> None:
        raw = now - sent_at
        waited = min(raw, max(0.0, self.waits() - waits_then))
        self.window[0] = max(self.window[0], raw)
        if raw - waited > self.window[1]:
            self.window[1], self.window[2] = raw - waited, waited

    def on_received(self, now: float) -> None:
        if not self.in_flight:
            self.closed = self.closed or "received an update that was never sent"
            return
        seq, sent_at, waits_then = self.in_flight.popleft()
        self.received_seq = seq
        self.window_received += 1
        self._account(sent_at, waits_then, now)
        self.arrived.set()

    async def report(self, settle_timeout: float = 5.0) -> dict[str, Any]:
        target = self.sent + 2
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle_timeout):
                while self.received_seq < target and self.closed is None:
                    self.arrived.clear()
                    await self.arrived.wait()
        if self.in_flight:
            _, sent_at, waits_then = self.in_flight[0]
            self._account(sent_at, waits_then, time.monotonic())
        raw, stall, waited = self.window
        data = {
            "max_ms": round(raw * 1000, 2),
            "stall_ms": round(stall * 1000, 2),
            "cpu_wait_ms": round(waited * 1000, 2),
            "sent": self.window_sent,
            "received": self.window_received,
            "pending": len(self.in_flight),
            "closed": self.closed,
        }
        self.window = [0.0, 0.0, 0.0]
        self.window_sent = self.window_received = 0
        return data


async def _run(url: str, interval: float, server_pid: int | None) -> None:
    from pycrdt import Doc, Text
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from crdt.messages import SyncUpdate, decode_message, encode_message

    probe = _Probe(server_pid)
    doc: Doc[Any] = Doc()
    text = doc.get("canary", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    stop = asyncio.Event()

    async def read(ws: Any, name: str, count_updates: bool) -> None:
        try:
            async for frame in ws:
                if count_updates and isinstance(frame, bytes) and frame[:2] == b"\x00\x02":
                    decode_message(frame)
                    probe.on_received(time.monotonic())
        except ConnectionClosed:
            pass
        if not stop.is_set():
            probe.closed = f"{name} closed by the server: {ws.close_code} {ws.close_reason}"
            probe.arrived.set()

    async def write(ws: Any) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            updates.clear()
            with doc.transaction():
                if len(text) > 200:
                    del text[0:100]  # keep the canary document small
                text.insert(len(text), "x")
            frame = encode_message(SyncUpdate(updates[-1]))
            probe.on_sent(time.monotonic())
            try:
                await ws.send(frame)
            except ConnectionClosed:
                return
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())

    options: dict[str, Any] = {"compression": None, "max_size": None, "open_timeout": 10}
    async with connect(url, **options) as reader, connect(url, **options) as writer:
        tasks = [
            asyncio.create_task(read(reader, "reader", True)),
            asyncio.create_task(read(writer, "writer", False)),
            asyncio.create_task(write(writer)),
        ]
        await probe.report()  # the first updates made the trip
        if probe.received_seq == 0:
            print(json.dumps({"error": probe.closed or "no update came back"}), flush=True)
            return
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if command == "mark":
                print(json.dumps(await probe.report()), flush=True)
            elif command in ("stop", ""):
                break
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="room latency canary (see module comment)")
    parser.add_argument("url", help="websocket URL of the canary room")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between updates")
    parser.add_argument("--server-pid", type=int, default=None, help="subtract its CPU waits")
    args = parser.parse_args(argv)
    asyncio.run(_run(args.url, args.interval, args.server_pid))


if __name__ == "__main__":
    main()
