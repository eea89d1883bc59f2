#!/usr/bin/env python3
"""Streams samples with echo's own TcpClient (id-echo from PyPI) to a server.

    python echo_tcp_client.py HOST PORT COUNT

The sample is {"obs": float32[4], "reward": float32[1], "t": float64[]}
(spec "float32[4],float32[1],float64[]" in optree's order). Sample i holds
obs = [i, i+0.25, i+0.5, i+0.75], reward = [-i], t = i / 2, so the server
side can check every byte. Prints "SENT <count>" after wait() returned.
"""

import sys

import numpy as np
from echo import TcpClient


def sample(i: int) -> dict:
    return {
        "obs": np.array([i, i + 0.25, i + 0.5, i + 0.75], dtype=np.float32),
        "reward": np.array([-i], dtype=np.float32),
        "t": np.array(i / 2, dtype=np.float64),  # a 0-d array: a scalar leaf
    }


def main() -> int:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = TcpClient(host, port, sample(0), max_inflight_msgs=32)
    for i in range(count):
        client.send(sample(i))
    client.wait()
    client.close()
    client.close()  # idempotent
    print(f"SENT {count}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
