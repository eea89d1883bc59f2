#!/usr/bin/env python3
"""Runs echo's own Python Server (id-echo) with its TcpTransport, for a
client of ours to stream into.

    python echo_tcp_server.py COUNT

The sample is {"obs": float32[4], "reward": float32[1], "t": float64[]}
(spec "float32[4],float32[1],float64[]"), batches of 10. Prints "PORT <port>",
receives up to COUNT samples (a multiple of 10), checks that every sample's
bytes are zero (what `rpcplugin echo send` sends), prints "RECEIVED <count>"
once it has COUNT or nothing new came for QUIET seconds, and waits to be
killed: exiting at once could cut the acknowledgements of the last batch
before they reach the client, and echo 0.2.1's Rust core panics when its
runtime is torn down.

The quiet period exists because echo drops a connection's queued samples,
already acknowledged, when the client disconnects (its documented fault:
../shared/spec/echo-protocol.md); `sample()` then waits forever for a batch
that cannot fill.
"""

import os
import sys
import threading
import time

import numpy as np
from echo import Server, TcpTransport

BATCH = 10
QUIET = 5.0


def main() -> None:
    count = int(sys.argv[1])
    example = {
        "obs": np.zeros(4, np.float32),
        "reward": np.zeros(1, np.float32),
        "t": np.array(0.0),
    }
    server = Server(example, batch_size=BATCH, transport=TcpTransport(0))
    server.start()
    print(f"PORT {server.port}", flush=True)
    received = [0, time.monotonic()]

    def consume() -> None:
        while received[0] < count:
            sample = server.sample()
            if sample is None:
                break
            batch = sample.batch
            if not all(np.all(batch[k] == 0) for k in ("obs", "reward", "t")):
                print("BAD sample contents", flush=True)
                os._exit(1)
            received[0] += BATCH
            received[1] = time.monotonic()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    while consumer.is_alive() and time.monotonic() - received[1] < QUIET:
        consumer.join(0.1)
    print(f"RECEIVED {received[0]}", flush=True)
    time.sleep(120)
    os._exit(0)


if __name__ == "__main__":
    main()
