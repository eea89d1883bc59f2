// Package countershared is the go-plugin glue for the counter example
// (demo-proto/proto/counter.proto), in the style of go-plugin's
// "bidirectional" example: the plugin serves Counter, and for every Put the
// host serves an AddHelper through the GRPCBroker, on a fresh broker id
// that it sends in PutRequest.add_server; ServeAdder brokers the other way
// (the plugin serves, the host dials). The gRPC stubs (package
// counterproto) are generated from demo-proto/proto/counter.proto when the
// interop suite builds.
package countershared

import (
	"context"
	"fmt"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	counterproto "interop/counterproto"
)

// callTimeout bounds each host-side call, so that a hung plugin fails a
// check instead of hanging the host.
const callTimeout = 30 * time.Second

// Handshake is go-plugin's basic example handshake (the same as kvshared's).
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "BASIC_PLUGIN",
	MagicCookieValue: "hello",
}

// AddHelper is what the host lends the plugin for one Put.
type AddHelper interface {
	Sum(a, b int64) (int64, error)
}

// Counter is the host's view of the plugin.
type Counter interface {
	Put(key string, value int64, a AddHelper) error
	Get(key string) (int64, error)
	// PluginSum has the plugin serve its own AddHelper through the broker
	// (ServeAdder), dials it and asks it for a + b.
	PluginSum(a, b int64) (int64, error)
}

// CounterPlugin serves (plugin side) or dispenses (host side) the counter.
type CounterPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	// Impl builds the plugin side's Counter server; it is handed the
	// broker so that Put can dial the host's AddHelper. Unused by hosts.
	Impl func(broker *plugin.GRPCBroker) counterproto.CounterServer
}

func (p *CounterPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	counterproto.RegisterCounterServer(s, p.Impl(b))
	return nil
}

func (p *CounterPlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &CounterClient{broker: b, client: counterproto.NewCounterClient(c)}, nil
}

// CounterClient is the host side of Counter: each Put serves the given
// AddHelper on a new broker id for the duration of the call.
type CounterClient struct {
	broker *plugin.GRPCBroker
	client counterproto.CounterClient
}

func (c *CounterClient) Put(key string, value int64, a AddHelper) error {
	// The server AcceptAndServe builds, stopped once Put has returned.
	var mu sync.Mutex
	var server *grpc.Server
	done := false
	serve := func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		counterproto.RegisterAddHelperServer(s, &addHelperServer{impl: a})
		mu.Lock()
		defer mu.Unlock()
		server = s
		if done {
			// Put gave up before the server was built: Serve returns at once.
			s.Stop()
		}
		return s
	}
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, serve)

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := c.client.Put(ctx, &counterproto.PutRequest{
		AddServer: id,
		Key:       key,
		Value:     value,
	})

	mu.Lock()
	done = true
	if server != nil {
		server.Stop()
	}
	mu.Unlock()
	return err
}

func (c *CounterClient) Get(key string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := c.client.Get(ctx, &counterproto.GetRequest{Key: key})
	if err != nil {
		return 0, err
	}
	return resp.Value, nil
}

func (c *CounterClient) PluginSum(a, b int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	resp, err := c.client.ServeAdder(ctx, &counterproto.Empty{})
	if err != nil {
		return 0, fmt.Errorf("ServeAdder: %v", err)
	}
	conn, err := c.broker.Dial(resp.Id)
	if err != nil {
		return 0, fmt.Errorf("dial broker id %d: %v", resp.Id, err)
	}
	defer conn.Close()
	sum, err := counterproto.NewAddHelperClient(conn).Sum(ctx, &counterproto.SumRequest{A: a, B: b})
	if err != nil {
		return 0, fmt.Errorf("Sum on broker id %d: %v", resp.Id, err)
	}
	return sum.R, nil
}

// AdderServer is an AddHelper a plugin serves through the broker
// (ServeAdder): it sums.
type AdderServer struct{}

func (AdderServer) Sum(ctx context.Context, req *counterproto.SumRequest) (*counterproto.SumResponse, error) {
	return &counterproto.SumResponse{R: req.A + req.B}, nil
}

// addHelperServer serves an AddHelper over gRPC (host side, brokered).
type addHelperServer struct {
	impl AddHelper
}

func (s *addHelperServer) Sum(ctx context.Context, req *counterproto.SumRequest) (*counterproto.SumResponse, error) {
	r, err := s.impl.Sum(req.A, req.B)
	if err != nil {
		return nil, err
	}
	return &counterproto.SumResponse{R: r}, nil
}
