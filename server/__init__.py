"""The async shell of cocreate: rooms, fan-out, HTTP routes, websocket transport, wiring and CLI."""
