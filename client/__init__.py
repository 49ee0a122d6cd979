"""cocreate's Python client: keeps a pycrdt document in sync with a cocreate (or any y-websocket) server."""

from client.client import Client, connect

__all__ = ["Client", "connect"]
