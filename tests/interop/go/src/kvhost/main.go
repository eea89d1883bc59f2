// kvhost: a go-plugin host that launches any KV plugin, checks it the
// way Terraform-style hosts use a plugin, and measures it.
//
//	kvhost [-mtls] [-multiplex] [-launches L] [-calls N] [-json] -- PLUGIN [ARGS...]
//
// Each launch: start, connect (go-plugin's handshake), health ping, then
// Put/Get, NOT_FOUND for a missing key, a 1 MiB value, N timed Put+Get
// pairs, and Kill. Kill must end the plugin by itself (well inside
// go-plugin's 2 s grace) and leave no unix socket behind. Prints CHECK
// lines and ends with "RESULT: PASS" (exit 0) or "RESULT: FAIL" (exit 1).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"interop/hostmux"
	kvproto "interop/kvproto"
	"interop/kvshared"
)

type report struct {
	Launches      int       `json:"launches"`
	FirstReplyMs  []float64 `json:"first_reply_ms"`
	PutUs         []float64 `json:"put_us"`
	GetUs         []float64 `json:"get_us"`
	KillMs        []float64 `json:"kill_ms"`
	Network       string    `json:"network"`
	Failures      []string  `json:"failures"`
	PluginPeakRss int64     `json:"plugin_peak_rss_kib"`
}

var rep report

func fail(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	rep.Failures = append(rep.Failures, msg)
	fmt.Printf("CHECK FAIL: %s\n", msg)
}

func ok(format string, args ...interface{}) {
	fmt.Printf("CHECK ok: %s\n", fmt.Sprintf(format, args...))
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func launch(cmdArgs []string, mtls bool, calls int, first bool) {
	logger := hclog.New(&hclog.LoggerOptions{Name: "kvhost", Output: os.Stderr, Level: hclog.Info})
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  kvshared.Handshake,
		Plugins:          map[string]plugin.Plugin{"kv": &kvshared.KVPlugin{}},
		Cmd:              exec.Command(cmdArgs[0], cmdArgs[1:]...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         mtls,
		Logger:           logger,
	}
	hostmux.Apply(cfg)
	client := plugin.NewClient(cfg)
	defer client.Kill()

	start := time.Now()
	rpc, err := client.Client()
	if err != nil {
		fail("start and connect: %v", err)
		return
	}
	raw, err := rpc.Dispense("kv")
	if err != nil {
		fail("dispense: %v", err)
		return
	}
	kv := raw.(kvproto.KVClient)
	ctx := context.Background()
	if _, err := kv.Put(ctx, &kvproto.PutRequest{Key: "hello", Value: []byte("world")}); err != nil {
		fail("Put(hello): %v", err)
		return
	}
	rep.FirstReplyMs = append(rep.FirstReplyMs, ms(time.Since(start)))
	addr := client.ReattachConfig().Addr
	rep.Network = addr.Network()

	if first {
		ok("handshake: %s %s, protocol %s, mtls=%v", addr.Network(), addr.String(), client.Protocol(), mtls)
		if err := rpc.Ping(); err != nil {
			fail("health ping: %v", err)
		} else {
			ok("health ping (grpc.health.v1 \"plugin\")")
		}
		if resp, err := kv.Get(ctx, &kvproto.GetRequest{Key: "hello"}); err != nil || string(resp.Value) != "world" {
			fail("Get(hello) = %v, %v", resp, err)
		} else {
			ok("Put then Get(hello) = world")
		}
		_, err := kv.Get(ctx, &kvproto.GetRequest{Key: "missing"})
		if status.Code(err) != codes.NotFound {
			fail("Get(missing): want NotFound, got %v", err)
		} else {
			ok("Get(missing) is NOT_FOUND")
		}
		big := bytes.Repeat([]byte{0xab}, 1<<20)
		if _, err := kv.Put(ctx, &kvproto.PutRequest{Key: "big", Value: big}); err != nil {
			fail("Put 1 MiB: %v", err)
		} else if resp, err := kv.Get(ctx, &kvproto.GetRequest{Key: "big"}); err != nil || !bytes.Equal(resp.Value, big) {
			fail("Get 1 MiB: %v", err)
		} else {
			ok("1 MiB value round trip")
		}
	}
	for i := 0; i < calls; i++ {
		t := time.Now()
		if _, err := kv.Put(ctx, &kvproto.PutRequest{Key: "k", Value: []byte("v")}); err != nil {
			fail("timed Put: %v", err)
			return
		}
		rep.PutUs = append(rep.PutUs, us(time.Since(t)))
		t = time.Now()
		if _, err := kv.Get(ctx, &kvproto.GetRequest{Key: "k"}); err != nil {
			fail("timed Get: %v", err)
			return
		}
		rep.GetUs = append(rep.GetUs, us(time.Since(t)))
	}

	if rss := peakRSS(client.ReattachConfig().Pid); rss > rep.PluginPeakRss {
		rep.PluginPeakRss = rss
	}
	t := time.Now()
	client.Kill()
	killed := time.Since(t)
	rep.KillMs = append(rep.KillMs, ms(killed))
	if !client.Exited() {
		fail("plugin still running after Kill")
	}
	// go-plugin force-kills only after waiting 2 s: a shorter Kill means the
	// plugin exited by itself.
	if killed >= 1900*time.Millisecond {
		fail("Kill took %v: the plugin did not exit by itself after Shutdown", killed)
	} else if first {
		ok("Kill: plugin exited by itself in %.1f ms", ms(killed))
	}
	if addr.Network() == "unix" {
		if _, err := os.Stat(addr.String()); !os.IsNotExist(err) && *leftoverSocketOK {
			// go-plugin 1.8.0's plugins leave their socket when multiplexing
			// (the muxer's Close does not unlink it): remove it, as a host
			// must.
			os.Remove(addr.String())
			if first {
				fmt.Printf("NOTE: socket %s left behind by the plugin; removed\n", addr.String())
			}
		} else if !os.IsNotExist(err) {
			fail("socket %s still exists after Kill (%v)", addr.String(), err)
		} else if first {
			ok("socket %s removed", addr.String())
		}
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in KiB.
func peakRSS(pid int) int64 {
	data, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kib)
			return kib
		}
	}
	return 0
}

func main() {
	mtls := flag.Bool("mtls", false, "use go-plugin's AutoMTLS")
	launches := flag.Int("launches", 1, "how many times to launch the plugin")
	calls := flag.Int("calls", 100, "timed Put+Get pairs per launch")
	asJSON := flag.Bool("json", false, "print the measurements as JSON")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: kvhost [-mtls] [-multiplex] [-launches L] [-calls N] [-json] -- PLUGIN [ARGS...]")
		os.Exit(2)
	}
	for i := 0; i < *launches; i++ {
		launch(flag.Args(), *mtls, *calls, i == 0)
	}
	rep.Launches = *launches
	fmt.Printf("launch->first reply p50 %.2f ms; Put p50 %.1f us p99 %.1f us; Get p50 %.1f us p99 %.1f us; Kill p50 %.1f ms\n",
		median(rep.FirstReplyMs), median(rep.PutUs), pct(rep.PutUs, 0.99), median(rep.GetUs), pct(rep.GetUs, 0.99), median(rep.KillMs))
	if *asJSON {
		out, _ := json.Marshal(rep)
		fmt.Printf("JSON: %s\n", out)
	}
	plugin.CleanupClients()
	if len(rep.Failures) > 0 {
		fmt.Println("RESULT: FAIL")
		os.Exit(1)
	}
	fmt.Println("RESULT: PASS")
}

var leftoverSocketOK = flag.Bool("leftover-socket-ok", false, "remove a socket the plugin left after Kill instead of failing (go-plugin 1.8.0 plugins, multiplexed)")
