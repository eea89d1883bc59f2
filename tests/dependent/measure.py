#!/usr/bin/env python3
"""Time from spawn to the handshake line, AutoMTLS on, of plugin binaries.

    measure.py [-n LAUNCHES] [--at-most A/B=FACTOR]... LABEL=BINARY...

Launches the binaries in turn (interleaved, so that a noisy machine weighs
on each alike) with go-plugin's KV cookie, protocol version 1 and a client
certificate in PLUGIN_CLIENT_CERT, and prints each binary's median and
quartiles in milliseconds. With --at-most, it exits 1 when the median of
A exceeds FACTOR times the median of B (`.ci/run` uses it against gross
regressions, such as the CPU-jitter entropy seeding that once made a
dependent's launch 8 times slower than ours). Build the dependent crate from OUTSIDE the
repository, so that its .cargo/config.toml does not apply:

    cd / && cargo build --release \\
        --manifest-path /path/to/rpcplugin/tests/dependent/Cargo.toml
"""

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time


def client_cert(directory):
    """A P-256 self-signed certificate, as a host would send."""
    key, cert = os.path.join(directory, "k.pem"), os.path.join(directory, "c.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
         "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
        check=True, capture_output=True)
    with open(cert) as f:
        return f.read()


def launch(binary, env):
    """Seconds from spawn to the first stdout line; checks it is AutoMTLS."""
    start = time.perf_counter()
    child = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 10)
        if not ready:
            raise RuntimeError(f"{binary}: no handshake line in 10 s")
        line = child.stdout.readline()
        elapsed = time.perf_counter() - start
    finally:
        child.kill()
        child.wait()
    fields = line.decode().strip().split("|")
    if len(fields) < 6 or not fields[5]:
        raise RuntimeError(f"{binary}: not an AutoMTLS handshake line: {line!r}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=21, help="launches of each")
    parser.add_argument("--at-most", action="append", default=[],
                        metavar="A/B=FACTOR",
                        help="fail when median(A) > FACTOR * median(B)")
    parser.add_argument("binaries", nargs="+", metavar="LABEL=BINARY")
    args = parser.parse_args()
    runs = [b.split("=", 1) for b in args.binaries]
    labels = {label for label, _ in runs}
    bounds = []
    for bound in args.at_most:
        pair, _, factor = bound.partition("=")
        a, _, b = pair.partition("/")
        if a not in labels or b not in labels or not factor:
            parser.error(f"--at-most {bound!r}: want A/B=FACTOR with A and B "
                         f"among the labels {sorted(labels)}")
        bounds.append((a, b, float(factor)))
    with tempfile.TemporaryDirectory() as directory:
        env = dict(os.environ, BASIC_PLUGIN="hello", PLUGIN_PROTOCOL_VERSIONS="1",
                   PLUGIN_CLIENT_CERT=client_cert(directory))
        times = {label: [] for label, _ in runs}
        for label, binary in runs:  # warm the page cache, not counted
            launch(binary, env)
        for _ in range(args.n):
            for label, binary in runs:
                times[label].append(launch(binary, env) * 1000)
    medians = {label: statistics.median(times[label]) for label, _ in runs}
    for label, _ in runs:
        q = statistics.quantiles(times[label], n=4)
        print(f"{label:24} median {medians[label]:6.1f} ms"
              f"  (quartiles {q[0]:.1f}-{q[2]:.1f}, n={len(times[label])})")
    failed = False
    for a, b, factor in bounds:
        ratio = medians[a] / medians[b]
        verdict = "ok" if ratio <= factor else "FAIL"
        failed |= ratio > factor
        print(f"{verdict}: {a} / {b} = {ratio:.2f} (at most {factor})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
