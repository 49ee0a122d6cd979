"""Durable state of cocreate behind small interfaces: documents, the append-only update log, snapshots."""
