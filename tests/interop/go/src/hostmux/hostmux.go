// Package hostmux is the Go hosts' -multiplex flag: it asks for
// go-plugin's multiplexed gRPC (ClientConfig.GRPCBrokerMultiplex), through
// reflection because that field exists only from go-plugin 1.6 and these
// sources also build against 1.0.1 and 1.4.9.
package hostmux

import (
	"flag"
	"fmt"
	"os"
	"reflect"

	plugin "github.com/hashicorp/go-plugin"
)

var multiplex = flag.Bool("multiplex", false, "ask for multiplexed gRPC (GRPCBrokerMultiplex, go-plugin >= 1.6)")

// Apply sets GRPCBrokerMultiplex on cfg when -multiplex was given; with a
// go-plugin that has no such field, the host fails as its checks do.
func Apply(cfg *plugin.ClientConfig) {
	if !*multiplex {
		return
	}
	field := reflect.ValueOf(cfg).Elem().FieldByName("GRPCBrokerMultiplex")
	if !field.IsValid() {
		fmt.Println("FAIL: -multiplex: this go-plugin has no ClientConfig.GRPCBrokerMultiplex")
		fmt.Println("RESULT: FAIL")
		os.Exit(1)
	}
	field.SetBool(true)
}
