// counterhost: a go-plugin host for the counter example
// (demo-proto/proto/counter.proto), checking the GRPCBroker both ways the
// way go-plugin's "bidirectional" example uses it.
//
//	counterhost [-mtls] [-multiplex] [-calls N] -- PLUGIN [ARGS...]
//
// Launches the plugin (gRPC only, AutoMTLS with -mtls), dispenses
// "counter", then: N Puts of 1 on "hits", each serving an AddHelper on a
// new broker id that the plugin must dial back; Get(hits) = N; Puts of 2
// and 3 on "x", Get(x) = 5; Get of a key never put = 0; the plugin's own
// AddHelper (ServeAdder) dialled through the broker sums 2 and 3; and Kill, which
// must end the plugin by itself and leave no unix socket behind. Prints
// CHECK lines, the brokered Puts' median and 99th percentile ("TIMING:
// brokered Put p50 X us p99 Y us"), and ends with "RESULT: PASS" (exit 0)
// or "RESULT: FAIL" (exit 1).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync/atomic"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"

	"interop/countershared"
	"interop/hostmux"
)

var failed bool

func fail(format string, args ...interface{}) {
	failed = true
	fmt.Printf("CHECK FAIL: %s\n", fmt.Sprintf(format, args...))
}

func ok(format string, args ...interface{}) {
	fmt.Printf("CHECK ok: %s\n", fmt.Sprintf(format, args...))
}

// adder is the host's AddHelper; it counts the calls the plugin makes.
type adder struct {
	calls int64
}

func (a *adder) Sum(x, y int64) (int64, error) {
	atomic.AddInt64(&a.calls, 1)
	return x + y, nil
}

// exercise runs the Put/Get checks; it stops at the first failed Put.
func exercise(counter countershared.Counter, calls int) {
	helper := &adder{}

	took := make([]float64, 0, calls)
	for i := 0; i < calls; i++ {
		start := time.Now()
		if err := counter.Put("hits", 1, helper); err != nil {
			fail("Put(hits, 1) #%d: %v", i+1, err)
			return
		}
		took = append(took, float64(time.Since(start).Nanoseconds())/1e3)
	}
	if len(took) > 0 {
		sort.Float64s(took)
		fmt.Printf("TIMING: brokered Put p50 %.1f us p99 %.1f us\n",
			took[len(took)/2], took[(len(took)-1)*99/100])
	}
	if n := atomic.LoadInt64(&helper.calls); n != int64(calls) {
		fail("Put x%d: the plugin called AddHelper.Sum %d times", calls, n)
	} else {
		ok("Put x%d through the broker (AddHelper.Sum called %d times)", calls, n)
	}
	if v, err := counter.Get("hits"); err != nil || v != int64(calls) {
		fail("Get(hits) = %d, %v; want %d", v, err, calls)
	} else {
		ok("Get(hits) = %d", v)
	}

	for _, v := range []int64{2, 3} {
		if err := counter.Put("x", v, helper); err != nil {
			fail("Put(x, %d): %v", v, err)
			return
		}
	}
	if v, err := counter.Get("x"); err != nil || v != 5 {
		fail("Get(x) = %d, %v; want 5", v, err)
	} else {
		ok("Get(x) = 5")
	}
	if v, err := counter.Get("never"); err != nil || v != 0 {
		fail("Get(never) = %d, %v; want 0", v, err)
	} else {
		ok("Get(never) = 0")
	}
	if v, err := counter.PluginSum(2, 3); err != nil || v != 5 {
		fail("the plugin's AddHelper through the broker: Sum(2, 3) = %d, %v; want 5", v, err)
	} else {
		ok("the plugin's AddHelper through the broker: Sum(2, 3) = 5")
	}
}

func check(cmdArgs []string, mtls bool, calls int) {
	logger := hclog.New(&hclog.LoggerOptions{Name: "counterhost", Output: os.Stderr, Level: hclog.Info})
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  countershared.Handshake,
		Plugins:          map[string]plugin.Plugin{"counter": &countershared.CounterPlugin{}},
		Cmd:              exec.Command(cmdArgs[0], cmdArgs[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         mtls,
		Logger:           logger,
	}
	hostmux.Apply(cfg)
	client := plugin.NewClient(cfg)
	defer client.Kill()

	rpc, err := client.Client()
	if err != nil {
		fail("start and connect: %v", err)
		return
	}
	addr := client.ReattachConfig().Addr
	ok("handshake: %s %s, protocol %s, mtls=%v", addr.Network(), addr.String(), client.Protocol(), mtls)
	raw, err := rpc.Dispense("counter")
	if err != nil {
		fail("dispense counter: %v", err)
		return
	}
	exercise(raw.(countershared.Counter), calls)

	t := time.Now()
	client.Kill()
	killed := time.Since(t)
	if !client.Exited() {
		fail("plugin still running after Kill")
	}
	// go-plugin force-kills only after waiting 2 s: a shorter Kill means the
	// plugin exited by itself.
	if killed >= 1900*time.Millisecond {
		fail("Kill took %v: the plugin did not exit by itself after Shutdown", killed)
	} else {
		ok("Kill: plugin exited by itself in %.1f ms", float64(killed.Nanoseconds())/1e6)
	}
	if addr.Network() == "unix" {
		if _, err := os.Stat(addr.String()); !os.IsNotExist(err) {
			fail("socket %s still exists after Kill (%v)", addr.String(), err)
		} else {
			ok("socket %s removed", addr.String())
		}
	}
}

func main() {
	mtls := flag.Bool("mtls", false, "use go-plugin's AutoMTLS")
	calls := flag.Int("calls", 5, "how many Puts of 1 on key \"hits\"")
	flag.Parse()
	if flag.NArg() < 1 || *calls < 0 {
		fmt.Fprintln(os.Stderr, "usage: counterhost [-mtls] [-multiplex] [-calls N] -- PLUGIN [ARGS...]")
		os.Exit(2)
	}
	check(flag.Args(), *mtls, *calls)
	plugin.CleanupClients()
	if failed {
		fmt.Println("RESULT: FAIL")
		os.Exit(1)
	}
	fmt.Println("RESULT: PASS")
}
