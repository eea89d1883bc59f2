// counterplugin: the counter example (demo-proto/proto/counter.proto) as a
// go-plugin plugin. Put dials the host's AddHelper through the
// GRPCBroker on the id the host sent (add_server) and stores Sum(current,
// value); Get returns the stored value (0 for a key never put); ServeAdder
// serves an AddHelper through the broker for the host to dial.
package main

import (
	"context"
	"fmt"
	"sync"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	counterproto "interop/counterproto"
	"interop/countershared"
)

type counter struct {
	broker *plugin.GRPCBroker
	mu     sync.Mutex
	m      map[string]int64
}

func (c *counter) Put(ctx context.Context, req *counterproto.PutRequest) (*counterproto.Empty, error) {
	conn, err := c.broker.Dial(req.AddServer)
	if err != nil {
		return nil, fmt.Errorf("dial AddHelper on broker id %d: %v", req.AddServer, err)
	}
	defer conn.Close()
	helper := counterproto.NewAddHelperClient(conn)

	// Held across the call so that concurrent Puts on a key add up.
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := helper.Sum(ctx, &counterproto.SumRequest{A: c.m[req.Key], B: req.Value})
	if err != nil {
		return nil, fmt.Errorf("AddHelper.Sum on broker id %d: %v", req.AddServer, err)
	}
	c.m[req.Key] = resp.R
	return &counterproto.Empty{}, nil
}

// ServeAdder serves an AddHelper of the plugin's own on a new broker id,
// for the host to dial, until the plugin exits.
func (c *counter) ServeAdder(ctx context.Context, _ *counterproto.Empty) (*counterproto.AdderId, error) {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		counterproto.RegisterAddHelperServer(s, countershared.AdderServer{})
		return s
	})
	return &counterproto.AdderId{Id: id}, nil
}

func (c *counter) Get(ctx context.Context, req *counterproto.GetRequest) (*counterproto.GetResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &counterproto.GetResponse{Value: c.m[req.Key]}, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: countershared.Handshake,
		Plugins: map[string]plugin.Plugin{
			"counter": &countershared.CounterPlugin{
				Impl: func(b *plugin.GRPCBroker) counterproto.CounterServer {
					return &counter{broker: b, m: map[string]int64{}}
				},
			},
		},
		GRPCServer: plugin.DefaultGRPCServer,
	})
}
