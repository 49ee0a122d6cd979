"""Cluster mode: several server processes share one database and relay through Redis Streams."""
