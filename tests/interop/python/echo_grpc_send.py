#!/usr/bin/env python3
"""Streams samples to an echo server with our Python GrpcClient and/or echo's TcpClient.

    python echo_grpc_send.py HOST TCP_PORT GRPC_PORT COUNT KIND [--transport grpc|tcp|both]
                             [--max-inflight N] [--progress-timeout S]

KIND picks the sample, and so the spec the server must be started with:

    test      {"obs": float32[4], "reward": float32[1], "t": float64[]}
              spec "float32[4],float32[1],float64[]"; sample i holds obs=[i, i+.25,
              i+.5, i+.75], reward=[-i], t=i/2 (as echo_tcp_client.py)
    small     {"obs": float32[256]}      1 KiB,  spec "float32[256]"
    large     {"obs": float32[16384]}    64 KiB, spec "float32[16384]"
    huge      {"obs": float32[262144]}   1 MiB,  spec "float32[262144]"
    mismatch  {"obs": float32[4], "reward": float64[1], "t": float64[]}
              against the "test" spec: the client must refuse it, naming leaf 1

For each transport: connects, sends COUNT samples, wait()s, close()s (twice,
idempotent) and prints

    <GRPC|TCP> samples/s=<rate> MB/s=<rate> seconds=<s>
    SENT <count>

(both lines per transport; MB = 10^6 bytes). Failures print one line
"ERROR <transport> <exception type>: <message>" and exit with status 1.
Special modes (GRPC only):

    --expect-closed   the server goes away mid-stream: send()/wait() must raise
                      ConnectionClosedError (not hang); prints "CLOSED <acked> <message>"
    --expect-stalled  the server never acknowledges a sample: send()/wait() must raise
                      StalledError within --progress-timeout (not hang); prints
                      "STALLED <outstanding> <seconds> <message>", then checks that
                      send() after it raises ConnectionClosedError
    --raw-spec SPEC   bypass GrpcClient and push a hand-made first message whose
                      spec is SPEC (e.g. "float32[4],float64[1],float64[]") plus one
                      sample of --raw-size bytes, then print the server's status as
                      "STATUS <code> <details>"
"""

import argparse
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, os.pardir, "python"))

from echo_grpc_client import ConnectionClosedError, GrpcClient, StalledError  # noqa: E402


def test_sample(i: int, reward_dtype=np.float32) -> dict:
    return {
        "obs": np.array([i, i + 0.25, i + 0.5, i + 0.75], dtype=np.float32),
        "reward": np.array([-i], dtype=reward_dtype),
        "t": np.array(i / 2, dtype=np.float64),
    }


def samples(kind: str):
    """(example sample, function i -> sample i)."""
    if kind == "test":
        return test_sample(0), test_sample
    if kind == "mismatch":
        return test_sample(0, np.float64), lambda i: test_sample(i, np.float64)
    n = {"small": 256, "large": 16384, "huge": 262144}[kind]
    # A handful of distinct arrays, reused: the measurement is of the
    # transport, not of numpy.
    pool = [{"obs": np.full(n, k, dtype=np.float32)} for k in range(8)]
    return pool[0], lambda i: pool[i % len(pool)]


def run(name: str, make_client, count: int, kind: str) -> None:
    example, sample = samples(kind)
    client = make_client(example)
    payload = sum(leaf.nbytes for leaf in example.values())
    start = time.perf_counter()
    for i in range(count):
        client.send(sample(i))
    client.wait()
    seconds = time.perf_counter() - start
    client.close()
    client.close()  # idempotent
    rate = count / seconds if seconds > 0 else float("inf")
    print(
        f"{name} samples/s={rate:.0f} MB/s={rate * payload / 1e6:.1f} seconds={seconds:.3f}",
        flush=True,
    )
    print(f"SENT {count}", flush=True)


def expect_closed(host: str, port: int, count: int, kind: str, inflight: int) -> int:
    example, sample = samples(kind)
    client = GrpcClient(host, port, example, max_inflight_msgs=inflight)
    try:
        for i in range(count):
            client.send(sample(i))
        client.wait()
    except ConnectionClosedError as e:
        print(f"CLOSED {client.acknowledged} {e}", flush=True)
        try:
            client.send(sample(0))
        except ConnectionClosedError:
            pass
        else:
            print("ERROR GRPC send() after the stream ended did not raise", flush=True)
            return 1
        client.close()
        client.close()
        return 0
    client.close()
    print(f"ERROR GRPC all {count} samples acknowledged; expected the stream to end", flush=True)
    return 1


def expect_stalled(host: str, port: int, count: int, kind: str, inflight: int, progress: float) -> int:
    example, sample = samples(kind)
    client = GrpcClient(host, port, example, max_inflight_msgs=inflight, progress_timeout=progress)
    start = time.perf_counter()
    try:
        for i in range(count):
            client.send(sample(i))
        client.wait()
    except StalledError as e:
        seconds = time.perf_counter() - start
        print(f"STALLED {e.outstanding} {seconds:.2f} {e}", flush=True)
        try:
            client.send(sample(0))
        except ConnectionClosedError as closed:
            print(f"THEN {type(closed).__name__}: {closed}", flush=True)
        else:
            print("ERROR GRPC send() after a stall did not raise", flush=True)
            return 1
        client.close()
        client.close()
        return 0
    client.close()
    print(f"ERROR GRPC all {count} samples acknowledged; expected a stall", flush=True)
    return 1


def raw_push(host: str, port: int, spec: str, size: int) -> int:
    import grpc

    from echo_grpc_client import echo_pb2, echo_pb2_grpc

    leaves = [
        echo_pb2.Leaf(dtype=dtype, shape=[int(d) for d in dims.split(",") if d.strip()])
        for dtype, dims in re.findall(r"(\w+)\[([^\]]*)\]", spec)
    ]
    first = echo_pb2.PushRequest(spec=echo_pb2.Spec(leaves=leaves))
    second = echo_pb2.PushRequest(samples=[bytes(size)])
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = echo_pb2_grpc.SampleStreamStub(channel)
        call = stub.Push(iter([first, second]), timeout=10)
        try:
            acks = [ack.delivered for ack in call]
            print(f"ACKS {acks}", flush=True)
            print(f"STATUS {call.code().name} {call.details()}", flush=True)
        except grpc.RpcError as e:
            print(f"STATUS {e.code().name} {e.details()}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("tcp_port", type=int)
    parser.add_argument("grpc_port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("kind", choices=["test", "small", "large", "huge", "mismatch"])
    parser.add_argument("--transport", choices=["grpc", "tcp", "both"], default="both")
    parser.add_argument("--max-inflight", type=int, default=32)
    parser.add_argument("--progress-timeout", type=float, default=60.0)
    parser.add_argument("--expect-closed", action="store_true")
    parser.add_argument("--expect-stalled", action="store_true")
    parser.add_argument("--raw-spec")
    parser.add_argument("--raw-size", type=int, default=28)
    args = parser.parse_args()
    host, inflight = args.host, args.max_inflight

    if args.raw_spec:
        return raw_push(host, args.grpc_port, args.raw_spec, args.raw_size)
    if args.expect_stalled:
        return expect_stalled(host, args.grpc_port, args.count, args.kind, inflight, args.progress_timeout)
    if args.expect_closed:
        return expect_closed(host, args.grpc_port, args.count, args.kind, inflight)

    transports = ["grpc", "tcp"] if args.transport == "both" else [args.transport]
    for transport in transports:
        try:
            if transport == "grpc":
                make = lambda ex: GrpcClient(host, args.grpc_port, ex, max_inflight_msgs=inflight)  # noqa: E731
                run("GRPC", make, args.count, args.kind)
            else:
                from echo import TcpClient

                make = lambda ex: TcpClient(host, args.tcp_port, ex, max_inflight_msgs=inflight)  # noqa: E731
                run("TCP", make, args.count, args.kind)
        except Exception as e:  # noqa: BLE001 - reported, with the exit status
            print(f"ERROR {transport.upper()} {type(e).__name__}: {e}", flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
