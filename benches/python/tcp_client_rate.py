#!/usr/bin/env python3
"""One client of the echo_peers benchmark: streams uint8[SIZE] samples with
echo's own TcpClient (id-echo, default max_inflight_msgs=32) to a server.

    python tcp_client_rate.py HOST PORT SIZE COUNT

Connects (the spec check included), prints "READY" and waits for a line on
stdin, so that imports and connection set-up stay out of the measurement and
several clients start together. Then sends COUNT samples, waits for every
acknowledgement and prints "DONE <start> <end> <count>", the start and end
as time.time() seconds (one clock for all processes on the machine).
"""

import sys
import time

import numpy as np
from echo import TcpClient


def main() -> int:
    host, port, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sample = np.full(size, 7, dtype=np.uint8)
    client = TcpClient(host, port, sample)
    print("READY", flush=True)
    if not sys.stdin.readline():
        return 1  # the benchmark went away
    start = time.time()
    for _ in range(count):
        client.send(sample)
    client.wait()
    end = time.time()
    client.close()
    print(f"DONE {start:.6f} {end:.6f} {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
