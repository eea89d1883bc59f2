#!/usr/bin/env python3
"""Host side of the KV interop test, driven by pyvider-rpcplugin 0.5.5.

    python kv_host_pyvider.py [--tls] [--calls N] [--proto KV_PROTO] -- PLUGIN [ARGS...]

Launches PLUGIN through pyvider's host (`RPCPluginClient`), with go-plugin's
KV example handshake (cookie BASIC_PLUGIN=hello, app protocol version 1), and
exercises `proto.KV` over the channel pyvider opens. Without --tls, pyvider's
AutoMTLS is turned off and the channel is plain; with --tls, pyvider generates
a client certificate, passes it in PLUGIN_CLIENT_CERT, and pins the server
certificate from field 6 of the handshake line for an mTLS channel.

The stubs for kv.proto are generated at run time into a temporary directory.
One line per check goes to stdout, `CHECK ok: ...` or `CHECK FAIL: ...`, then
`RESULT: PASS` (exit 0) or `RESULT: FAIL` (exit 1); pyvider's own logging goes
to stderr. The plugin process is never left running.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

COOKIE_KEY = "BASIC_PLUGIN"
COOKIE_VALUE = "hello"
APP_PROTOCOL_VERSION = 1
RPC_TIMEOUT = 10.0
EXIT_DEADLINE = 2.0
BIG_VALUE_SIZE = 1024 * 1024

DEFAULT_PROTO = Path(__file__).resolve().parents[3] / "demo-proto" / "proto" / "kv.proto"


def parse_args(argv: list[str]) -> argparse.Namespace:
    if "--" not in argv:
        print("usage: kv_host_pyvider.py [--tls] [--calls N] [--proto KV_PROTO] -- PLUGIN [ARGS...]",
              file=sys.stderr)
        sys.exit(2)
    split = argv.index("--")
    own, plugin = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        usage="kv_host_pyvider.py [--tls] [--calls N] [--proto KV_PROTO] -- PLUGIN [ARGS...]")
    parser.add_argument("--tls", action="store_true", help="AutoMTLS: send PLUGIN_CLIENT_CERT, pin the server cert")
    parser.add_argument("--calls", type=int, default=100, help="number of timed Put/Get pairs")
    parser.add_argument("--proto", type=Path, default=DEFAULT_PROTO, help="path to kv.proto")
    args = parser.parse_args(own)
    if not plugin:
        parser.error("no plugin command after --")
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    args.plugin = plugin
    return args


class Checks:
    def __init__(self) -> None:
        self.failed = 0
        self.passed = 0

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"CHECK {'ok' if ok else 'FAIL'}: {what}", flush=True)
        return ok

    def info(self, text: str) -> None:
        print(f"INFO {text}", flush=True)


def generate_stubs(proto: Path, out_dir: str):
    """Compile kv.proto with grpc_tools into out_dir and import the modules."""
    from grpc_tools import protoc  # grpcio-tools
    import grpc_tools

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto.parent}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto),
    ])
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed on {proto} with exit code {rc}")
    sys.path.insert(0, out_dir)
    stem = proto.stem
    return importlib.import_module(f"{stem}_pb2"), importlib.import_module(f"{stem}_pb2_grpc")


def configure_pyvider(tls: bool):
    """Configure pyvider's process-wide config (equivalent to the env vars
    PLUGIN_MAGIC_COOKIE_KEY, PLUGIN_MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS,
    PLUGIN_AUTO_MTLS, PLUGIN_CLIENT_RETRY_ENABLED read when pyvider is imported).
    Set on the config object rather than in os.environ, because pyvider's
    launcher passes its whole environment on to the plugin."""
    from pyvider.rpcplugin.config import configure, rpcplugin_config

    configure(
        magic_cookie=COOKIE_VALUE,
        # configure() also sets plugin_core_version (the go-plugin core
        # protocol, field 1 of the handshake) to this; both are 1 here.
        protocol_version=APP_PROTOCOL_VERSION,
        auto_mtls=tls,
        handshake_timeout=10.0,
    )
    rpcplugin_config.plugin_magic_cookie_key = COOKIE_KEY
    rpcplugin_config.plugin_protocol_version = APP_PROTOCOL_VERSION
    # One launch per run: a failure should be a failure, not a relaunch.
    rpcplugin_config.plugin_client_retry_enabled = False
    return rpcplugin_config


def describe_cert(b64: str) -> str:
    """Decode the handshake's certificate field for the report."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec

        der = base64.b64decode(b64 + "=" * (-len(b64) % 4))
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        alg = f"EC {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            san = ",".join(str(n.value) for n in sans)
        except x509.ExtensionNotFound:
            san = "none"
        return f"{alg}, subject {cert.subject.rfc4514_string()}, SAN {san}"
    except Exception as e:  # report only
        return f"undecodable ({e})"


async def run(args: argparse.Namespace, checks: Checks, kv_pb2, kv_pb2_grpc) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from pyvider.rpcplugin.client import RPCPluginClient

    class RecordingClient(RPCPluginClient):
        """pyvider's host, keeping the raw handshake line for the report."""

        raw_handshake: str | None = None

        async def _read_raw_handshake_line_from_stdout(self) -> str:
            line = await super()._read_raw_handshake_line_from_stdout()
            self.raw_handshake = line
            return line

    client = RecordingClient(command=list(args.plugin))
    popen = None
    try:
        try:
            await client.start()
        except Exception as e:
            checks.check(False, f"pyvider started the plugin and connected: {type(e).__name__}: {e}")
            tail = "\n".join(client._stderr_tail)
            if tail:
                print(f"plugin stderr (tail):\n{tail}", file=sys.stderr)
            return
        popen = client._process.process if client._process else None
        checks.info(f"handshake line: {client.raw_handshake}")
        checks.check(True, f"pyvider started the plugin and connected to {client.target_endpoint} "
                           f"({client._transport_name}, {'mTLS' if client._server_cert else 'plaintext'})")
        checks.check(client._protocol_version == APP_PROTOCOL_VERSION,
                     f"handshake app protocol version {client._protocol_version} == {APP_PROTOCOL_VERSION}")
        if args.tls:
            if client._server_cert:
                checks.info(f"server certificate: {describe_cert(client._server_cert)}")
            checks.check(bool(client._server_cert),
                         "handshake carries a server certificate (AutoMTLS) and the channel is TLS")
        else:
            checks.check(not client._server_cert, "handshake carries no certificate (plaintext)")

        channel = client.grpc_channel

        # Health
        try:
            resp = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="plugin"), timeout=RPC_TIMEOUT)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            checks.check(resp.status == health_pb2.HealthCheckResponse.SERVING,
                         f"health check on service \"plugin\": {status}")
        except grpc.RpcError as e:
            checks.check(False, f"health check on service \"plugin\": {e.code().name} {e.details()}")
            if client._transport_name == "unix" and not client._server_cert and "RST_STREAM" in str(e.details()):
                print("note: grpcio (since 1.58) sends :authority = the percent-encoded socket path on a "
                      "plaintext unix channel (pyvider sets no grpc.default_authority); an HTTP/2 server "
                      "that validates :authority (Rust h2) resets such streams with PROTOCOL_ERROR",
                      file=sys.stderr)

        kv = kv_pb2_grpc.KVStub(channel)

        # Put/Get
        try:
            await kv.Put(kv_pb2.PutRequest(key="hello", value=b"world"), timeout=RPC_TIMEOUT)
            got = await kv.Get(kv_pb2.GetRequest(key="hello"), timeout=RPC_TIMEOUT)
            checks.check(got.value == b"world", f"Put(hello, world) then Get(hello) == {got.value!r}")
        except grpc.RpcError as e:
            checks.check(False, f"Put(hello, world) then Get(hello): {e.code().name} {e.details()}")

        # Missing key
        try:
            got = await kv.Get(kv_pb2.GetRequest(key="missing"), timeout=RPC_TIMEOUT)
            checks.check(False, f"Get(missing) returned {got.value!r} instead of NOT_FOUND")
        except grpc.RpcError as e:
            checks.check(e.code() == grpc.StatusCode.NOT_FOUND,
                         f"Get(missing) -> {e.code().name} ({e.details()})")

        # 1 MiB value
        big = bytes((i * 31 + 7) % 251 for i in range(BIG_VALUE_SIZE))
        try:
            await kv.Put(kv_pb2.PutRequest(key="big", value=big), timeout=RPC_TIMEOUT)
            got = await kv.Get(kv_pb2.GetRequest(key="big"), timeout=RPC_TIMEOUT)
            checks.check(got.value == big, f"1 MiB value round trip ({len(got.value)} bytes back, "
                                           f"{'equal' if got.value == big else 'DIFFERENT'})")
        except grpc.RpcError as e:
            checks.check(False, f"1 MiB value round trip: {e.code().name} {e.details()}")

        # Timed pairs
        times = []
        bad = None
        try:
            for i in range(args.calls):
                value = f"v{i}".encode()
                t0 = time.perf_counter()
                await kv.Put(kv_pb2.PutRequest(key=f"k{i}", value=value), timeout=RPC_TIMEOUT)
                got = await kv.Get(kv_pb2.GetRequest(key=f"k{i}"), timeout=RPC_TIMEOUT)
                times.append(time.perf_counter() - t0)
                if got.value != value and bad is None:
                    bad = f"k{i}: got {got.value!r}, want {value!r}"
        except grpc.RpcError as e:
            bad = f"pair {len(times)}: {e.code().name} {e.details()}"
        p50 = statistics.median(times) * 1000 if times else float("nan")
        checks.check(bad is None and len(times) == args.calls,
                     f"{len(times)}/{args.calls} timed Put/Get pairs, p50 {p50:.3f} ms per pair"
                     + (f" ({bad})" if bad else ""))

        # Shutdown, the way pyvider does it: GRPCController.Shutdown through
        # shutdown_plugin() (which swallows the RPC's outcome, so record it).
        unix_path = client._address if client._transport_name == "unix" else None
        outcome: dict[str, str] = {}
        stub = client._controller_stub
        if stub is not None:
            original = stub.Shutdown

            async def recording_shutdown(request, *a, **kw):
                try:
                    result = await original(request, *a, **kw)
                    outcome["rpc"] = "OK"
                    return result
                except grpc.RpcError as e:
                    outcome["rpc"] = f"{e.code().name} {e.details()}"
                    raise

            stub.Shutdown = recording_shutdown
        t0 = time.monotonic()
        await client.shutdown_plugin()
        # OK, or UNAVAILABLE when the plugin is gone before its reply is read
        # (go-plugin 1.0.1 stops its server at once); anything else failed.
        rpc = outcome.get("rpc", "not sent")
        checks.check(rpc == "OK" or rpc.startswith("UNAVAILABLE"),
                     f"pyvider shutdown_plugin() sent GRPCController.Shutdown: {rpc}")
        exited_after = None
        while popen is not None and time.monotonic() - t0 < EXIT_DEADLINE:
            if popen.poll() is not None:
                exited_after = time.monotonic() - t0
                break
            await asyncio.sleep(0.005)
        if exited_after is not None:
            checks.check(True, f"plugin exited by itself {exited_after * 1000:.0f} ms after Shutdown "
                               f"(exit status {popen.returncode})")
        else:
            checks.check(False, f"plugin exited by itself within {EXIT_DEADLINE:.0f} s of Shutdown "
                                f"(still running)")
        if unix_path is not None:
            checks.check(not os.path.exists(unix_path),
                         f"unix socket {unix_path} removed after exit"
                         + ("" if not os.path.exists(unix_path) else " (STILL PRESENT)"))
    finally:
        # pyvider's close(): cancels its tasks, closes the channel, SIGTERMs
        # the process if it is still running, closes the transport.
        try:
            await asyncio.wait_for(client.close(), timeout=15)
        except Exception as e:
            print(f"pyvider close() failed: {type(e).__name__}: {e}", file=sys.stderr)
        if popen is not None and popen.poll() is None:
            checks.check(False, "plugin process still running after pyvider close(); killing it")
            popen.kill()
            popen.wait()


def main() -> int:
    args = parse_args(sys.argv[1:])
    # Keep pyvider's (structlog) logging quiet unless asked for; it goes to
    # stderr either way, while checks go to stdout.
    os.environ.setdefault("PROVIDE_LOG_LEVEL", "WARNING")
    checks = Checks()

    with tempfile.TemporaryDirectory(prefix="kv-stubs-") as stub_dir:
        try:
            kv_pb2, kv_pb2_grpc = generate_stubs(args.proto, stub_dir)
        except Exception as e:
            checks.check(False, f"generate kv.proto stubs: {e}")
            print("RESULT: FAIL", flush=True)
            return 1
        configure_pyvider(args.tls)
        try:
            asyncio.run(run(args, checks, kv_pb2, kv_pb2_grpc))
        except Exception as e:
            checks.check(False, f"unexpected error: {type(e).__name__}: {e}")

    ok = checks.failed == 0 and checks.passed > 0
    print(f"RESULT: {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
