"""cocreate benchmarks: merge core in-process, and servers (ours and peers) over loopback websockets."""
