// Package kvshared is the go-plugin glue for the KV example service, as a
// go-plugin host and plugin use it. The gRPC stubs (package kvproto)
// are generated from demo-proto/proto/kv.proto when the interop suite builds.
package kvshared

import (
	"context"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	kvproto "interop/kvproto"
)

// Handshake is go-plugin's basic example handshake.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// KVPlugin serves or dispenses the KV service over gRPC.
type KVPlugin struct {
	plugin.Plugin
	Impl kvproto.KVServer
}

func (p *KVPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	kvproto.RegisterKVServer(s, p.Impl)
	return nil
}

func (p *KVPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return kvproto.NewKVClient(c), nil
}
