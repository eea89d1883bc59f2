#!/usr/bin/env python3
"""The id-echo side of the echo_peers benchmark: echo's own Python Server
with its TcpTransport (id-echo), receiving uint8[SIZE] samples and consuming
them as fast as it can.

    python id_echo_server.py SIZE BATCH EXPECTED

Listens on a port the OS picks and prints "PORT <port>". A consumer thread
calls Server.sample() in a loop (each call hands over one batch of BATCH
samples and frees the previous one; nothing is copied or inspected) and
prints "RECEIVED <count> <samples_inserted_total>" once EXPECTED samples (a
multiple of BATCH) have arrived. The server keeps running (exiting at once
could cut off acknowledgements still being written, and echo's TcpClient
then waits forever) until a line on stdin, or its end: then it prints the
RECEIVED line if it has not yet (with what arrived so far, in whole batches)
and exits. Exits with os._exit: echo 0.2.1's Rust core panics when its
runtime is torn down.
"""

import os
import sys
import threading

import numpy as np
from echo import Server, TcpTransport


def main() -> None:
    size, batch, expected = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    server = Server(np.zeros(size, np.uint8), batch_size=batch, transport=TcpTransport(0))
    server.start()
    print(f"PORT {server.port}", flush=True)
    lock = threading.Lock()
    state = {"received": 0, "inserted": 0, "reported": False}

    def report() -> None:
        # Called with the lock held.
        if not state["reported"]:
            state["reported"] = True
            print(f"RECEIVED {state['received']} {state['inserted']}", flush=True)

    def consume() -> None:
        while True:
            sample = server.sample()
            if sample is None:
                return
            with lock:
                state["received"] += batch
                state["inserted"] = sample.info.samples_inserted_total
                if state["received"] >= expected:
                    report()

    threading.Thread(target=consume, daemon=True).start()
    sys.stdin.readline()
    with lock:
        report()
        os._exit(0)


if __name__ == "__main__":
    main()
