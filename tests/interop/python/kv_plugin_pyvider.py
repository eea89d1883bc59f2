#!/usr/bin/env python3
"""Plugin side of the KV interop test, served by pyvider-rpcplugin 0.5.5.

    python kv_plugin_pyvider.py [--transport unix|tcp] [--proto KV_PROTO]

A go-plugin gRPC plugin for go-plugin's KV example (`proto.KV`, see
demo-proto/proto/kv.proto), kept in memory: `Put` stores, `Get` returns the
stored bytes or fails with NOT_FOUND. The handshake is the KV example's:
magic cookie BASIC_PLUGIN=hello, app protocol version 1.

It is meant to be launched by a go-plugin host, which sets BASIC_PLUGIN,
PLUGIN_PROTOCOL_VERSIONS and, for AutoMTLS, PLUGIN_CLIENT_CERT. pyvider does
the rest: it answers a client certificate with a generated server certificate
(field 6 of the handshake line), registers grpc.health.v1 ("plugin" is
SERVING), plugin.GRPCController (Shutdown) and plugin.GRPCStdio, and ends the
process after Shutdown or SIGTERM.

What pyvider 0.5.5 does not do by itself, and this script does:
  * PLUGIN_MIN_PORT / PLUGIN_MAX_PORT: pyvider binds an ephemeral TCP port; here
    the first free port in the host's range is chosen, as go-plugin does.
  * PLUGIN_UNIX_SOCKET_DIR: pyvider puts its socket in the temp directory;
    here the socket goes into the host's directory when it names one.

The stubs for kv.proto are generated at start-up with grpc_tools.protoc into a
temporary directory, which is removed as soon as they are imported. Nothing
but pyvider's handshake line is written to stdout: pyvider logs to stderr, and
this script never prints.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
from pathlib import Path
import secrets
import shutil
import socket
import sys
import tempfile
from types import ModuleType

COOKIE_KEY = "BASIC_PLUGIN"
COOKIE_VALUE = "hello"
APP_PROTOCOL_VERSION = 1
SERVICE_NAME = "proto.KV"
BIND_HOST = "127.0.0.1"

DEFAULT_PROTO = Path(__file__).resolve().parents[3] / "demo-proto" / "proto" / "kv.proto"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("unix", "tcp"), default="unix",
                        help="network to listen on (default: unix)")
    parser.add_argument("--proto", type=Path, default=DEFAULT_PROTO, help="path to kv.proto")
    parser.add_argument("--require-client-cert", action="store_true",
                        help="under AutoMTLS, require and verify the host's PLUGIN_CLIENT_CERT "
                             "(go-plugin's behaviour; pyvider's default accepts any client)")
    return parser.parse_args(argv)


def load_stubs(proto: Path) -> tuple[ModuleType, ModuleType]:
    """Generate kv_pb2 / kv_pb2_grpc into a temporary directory and import them."""
    from grpc_tools import protoc

    proto = proto.resolve()
    out_dir = tempfile.mkdtemp(prefix="kv-plugin-stubs-")
    try:
        rc = protoc.main([
            "grpc_tools.protoc",
            f"-I{proto.parent}",
            f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto),
        ])
        if rc != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {proto} (exit {rc})")
        sys.path.insert(0, out_dir)
        try:
            pb2 = importlib.import_module(f"{proto.stem}_pb2")
            pb2_grpc = importlib.import_module(f"{proto.stem}_pb2_grpc")
        finally:
            sys.path.remove(out_dir)
    finally:
        # The modules are in memory now; nothing generated stays on disk.
        shutil.rmtree(out_dir, ignore_errors=True)
    return pb2, pb2_grpc


def host_port_range() -> tuple[int, int] | None:
    """PLUGIN_MIN_PORT..PLUGIN_MAX_PORT as the host set them, if it set both."""
    try:
        lo = int(os.environ["PLUGIN_MIN_PORT"])
        hi = int(os.environ["PLUGIN_MAX_PORT"])
    except (KeyError, ValueError):
        return None
    if lo <= 0 or hi < lo or hi > 65535:
        return None
    return lo, hi


def pick_tcp_port() -> int:
    """The first free port in the host's range, like go-plugin; 0 (any) without one.

    pyvider 0.5.5 ignores PLUGIN_MIN_PORT/PLUGIN_MAX_PORT. It takes a fixed
    port and hands it to gRPC, which binds it again, so there is a short window
    between this probe and gRPC's bind; a port lost in it fails the start-up.
    """
    span = host_port_range()
    if span is None:
        return 0
    lo, hi = span
    for port in range(lo, hi + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As gRPC's own bind (and Go's net.Listen) do, so a port whose last
            # connections sit in TIME_WAIT still counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((BIND_HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free TCP port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT = {lo}..{hi}")


def unix_socket_path() -> str | None:
    """A socket path in PLUGIN_UNIX_SOCKET_DIR when the host names one; else pyvider's default."""
    directory = os.environ.get("PLUGIN_UNIX_SOCKET_DIR")
    if not directory:
        return None  # pyvider: <tempdir>/pyvider-<hex>.sock
    return str(Path(directory) / f"plugin{secrets.token_hex(6)}.sock")


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    kv_pb2, kv_pb2_grpc = load_stubs(args.proto)

    import grpc
    from pyvider.rpcplugin import RPCPluginProtocol, plugin_server

    class KVServicer(kv_pb2_grpc.KVServicer):
        """go-plugin's KV example, in memory."""

        def __init__(self) -> None:
            self._store: dict[str, bytes] = {}

        async def Get(self, request, context):
            try:
                value = self._store[request.key]
            except KeyError:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"key {request.key!r} not found")
            return kv_pb2.GetResponse(value=value)

        async def Put(self, request, context):
            self._store[request.key] = bytes(request.value)
            return kv_pb2.Empty()

    class KVProtocol(RPCPluginProtocol):
        """Registers proto.KV; declares app protocol version 1 for the handshake."""

        service_name = SERVICE_NAME
        supported_protocol_versions = [APP_PROTOCOL_VERSION]

        async def get_grpc_descriptors(self):
            return kv_pb2.DESCRIPTOR, SERVICE_NAME

        async def add_to_server(self, server, handler) -> None:
            kv_pb2_grpc.add_KVServicer_to_server(handler, server)

    if args.transport == "tcp":
        transport_kwargs = {"transport": "tcp", "host": BIND_HOST, "port": pick_tcp_port()}
    else:
        transport_kwargs = {"transport": "unix", "transport_path": unix_socket_path()}

    config = {
        # Instance overrides of pyvider's configuration: the KV example's
        # cookie. What the host decides comes from the environment
        # (PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CLIENT_CERT), read by pyvider.
        "PLUGIN_MAGIC_COOKIE_KEY": COOKIE_KEY,
        "PLUGIN_MAGIC_COOKIE_VALUE": COOKIE_VALUE,
    }
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "").strip()
    if args.require_client_cert and client_cert:
        # pyvider serves AutoMTLS without asking for a client certificate
        # unless PLUGIN_CLIENT_ROOT_CERTS names a CA; the host's own
        # certificate as that CA is what go-plugin does (ClientCAs = the host
        # cert, RequireAndVerifyClientCert). pyvider leaves it off because
        # BoringSSL will not verify go-plugin's P-521 client certificate.
        config["PLUGIN_CLIENT_ROOT_CERTS"] = client_cert

    async def serve() -> None:
        # Built inside the running loop: the server creates its asyncio
        # futures and events when it is constructed.
        server = plugin_server(
            protocol=KVProtocol(),
            handler=KVServicer(),
            config=config,
            **transport_kwargs,
        )
        # serve() ends the process itself: exit 0 after Shutdown or SIGTERM,
        # exit 1 on a start-up fault such as a missing or wrong magic cookie.
        await server.serve()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1:])
