"""pycrdt-websocket peer for cocreate's benchmarks: `python pycrdt_server.py PORT [DB_PATH]` (own venv).

WebsocketServer + ASGIServer on uvicorn (asyncio loop, `websockets` implementation). With DB_PATH,
each room gets a SQLiteYStore and is loaded from it before its first client is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import uvicorn
from anyio import Event
from pycrdt import Doc
from pycrdt.store import SQLiteYStore, YDocNotFound
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom


class PersistentServer(WebsocketServer):
    def __init__(self, db_path: str) -> None:
        # Rooms stay loaded: with the default auto_clean_rooms=True, closing the last client cancels
        # the room's task group and with it the SQLiteYStore writes still queued (updates lost).
        super().__init__(auto_clean_rooms=os.environ.get("BENCH_PYCRDT_AUTO_CLEAN") == "1")
        self.db_path = db_path
        self.loaded: dict[str, Event] = {}

    async def get_room(self, name: str) -> YRoom:
        if name in self.rooms:
            await self.loaded[name].wait()
            return self.rooms[name]
        self.loaded[name] = loaded = Event()
        store_class = type("Store", (SQLiteYStore,), {"db_path": self.db_path})
        ystore = store_class(path=name)
        room = YRoom(ready=False, ystore=ystore, ydoc=Doc(), log=self.log)
        self.rooms[name] = room
        assert self._task_group is not None
        await self._task_group.start(ystore.start)
        with contextlib.suppress(YDocNotFound):  # a new document
            await ystore.apply_updates(room.ydoc)
        room.ready = True
        await self.start_room(room)
        loaded.set()
        return room


async def main(port: int, db_path: str) -> None:
    websocket_server = PersistentServer(db_path) if db_path else WebsocketServer()
    async with websocket_server:
        config = uvicorn.Config(
            ASGIServer(websocket_server), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""))
