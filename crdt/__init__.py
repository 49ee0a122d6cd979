"""Sans-I/O core of cocreate: Yjs wire codec, sync state machine, document wrapper."""
