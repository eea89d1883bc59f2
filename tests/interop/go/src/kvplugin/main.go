// kvplugin: the KV example service as a go-plugin plugin, the Go
// baseline that rpcplugin's kv_plugin is measured beside.
package main

import (
	"context"
	"sync"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kvproto "interop/kvproto"
	"interop/kvshared"
)

type memoryKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (kv *memoryKV) Get(ctx context.Context, req *kvproto.GetRequest) (*kvproto.GetResponse, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	v, ok := kv.m[req.Key]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no value for key %q", req.Key)
	}
	return &kvproto.GetResponse{Value: v}, nil
}

func (kv *memoryKV) Put(ctx context.Context, req *kvproto.PutRequest) (*kvproto.Empty, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.m[req.Key] = req.Value
	return &kvproto.Empty{}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: kvshared.Handshake,
		Plugins: map[string]plugin.Plugin{
			"kv": &kvshared.KVPlugin{Impl: &memoryKV{m: map[string][]byte{}}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
