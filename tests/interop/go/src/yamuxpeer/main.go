// yamuxpeer is the Go side of tests/yamux_wire.rs: hashicorp/yamux (the
// version go-plugin 1.8.0 uses) over a unix socket, against rust-yamux.
//
//	yamuxpeer server SOCKET  listen, accept one connection, serve a yamux
//	                         server session: every stream is echoed until
//	                         its peer half-closes it, then closed; exits
//	                         when the client closes the session.
//	yamuxpeer client SOCKET  dial, open a yamux client session and run the
//	                         echo exchanges (see exchange), then close it.
//
// Prints "RESULT: PASS" on success, "FAIL: ..." lines otherwise.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL: "+format+"\n", args...)
	os.Exit(1)
}

// pattern returns n bytes that differ per stream and position.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + seed*13 + i/251) % 256)
	}
	return b
}

// exchange writes each message on the stream while reading the echo
// concurrently, half-closes the stream, and checks that the echo is the
// concatenation of the messages followed by EOF.
func exchange(s net.Conn, msgs [][]byte) error {
	var want []byte
	for _, m := range msgs {
		want = append(want, m...)
	}
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if _, err := s.Write(m); err != nil {
				errc <- fmt.Errorf("write: %v", err)
				return
			}
		}
		// yamux Stream.Close is a half close (FIN): reading goes on.
		errc <- s.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read after %d bytes: %v", len(got), err)
	}
	if werr := <-errc; werr != nil {
		return werr
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo differs: got %d bytes, want %d", len(got), len(want))
	}
	return nil
}

func config() *yamux.Config {
	c := yamux.DefaultConfig()
	c.LogOutput = os.Stderr
	return c
}

func server(path string) {
	l, err := net.Listen("unix", path)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Println("READY")
	conn, err := l.Accept()
	l.Close()
	if err != nil {
		fail("accept: %v", err)
	}
	sess, err := yamux.Server(conn, config())
	if err != nil {
		fail("yamux.Server: %v", err)
	}
	var wg sync.WaitGroup
	streams := 0
	var echoed sync.Map
	for {
		s, err := sess.AcceptStream()
		if err != nil {
			// The client closed the session (GoAway, then EOF).
			break
		}
		streams++
		wg.Add(1)
		go func(s *yamux.Stream) {
			defer wg.Done()
			n, err := io.Copy(s, s)
			if err != nil {
				fmt.Printf("FAIL: stream %d: echo after %d bytes: %v\n", s.StreamID(), n, err)
			}
			echoed.Store(s.StreamID(), n)
			if err := s.Close(); err != nil {
				fmt.Printf("FAIL: stream %d: close: %v\n", s.StreamID(), err)
			}
		}(s)
	}
	wg.Wait()
	total := int64(0)
	echoed.Range(func(_, v interface{}) bool { total += v.(int64); return true })
	fmt.Printf("streams %d, bytes echoed %d\n", streams, total)
	if !sess.IsClosed() {
		fail("session not closed after accept failed")
	}
	fmt.Println("RESULT: PASS")
}

func client(path string) {
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		fail("dial: %v", err)
	}
	sess, err := yamux.Client(conn, config())
	if err != nil {
		fail("yamux.Client: %v", err)
	}
	if _, err := sess.Ping(); err != nil {
		fail("ping: %v", err)
	}
	// Four streams of small messages and one of 4 MiB (16 times the
	// initial 256 KiB window), all at once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 5; i++ {
		var msgs [][]byte
		if i == 4 {
			msgs = [][]byte{pattern(i, 4<<20)}
		} else {
			for j := 0; j < 5; j++ {
				msgs = append(msgs, pattern(i*10+j, 1+j*100))
			}
		}
		s, err := sess.OpenStream()
		if err != nil {
			fail("open stream %d: %v", i, err)
		}
		wg.Add(1)
		go func(i int, s *yamux.Stream) {
			defer wg.Done()
			if err := exchange(s, msgs); err != nil {
				errs <- fmt.Errorf("stream %d (id %d): %v", i, s.StreamID(), err)
			}
		}(i, s)
	}
	wg.Wait()
	close(errs)
	failed := false
	for err := range errs {
		fmt.Printf("FAIL: %v\n", err)
		failed = true
	}
	if n := sess.NumStreams(); n != 0 {
		fmt.Printf("FAIL: %d streams still open\n", n)
		failed = true
	}
	if err := sess.Close(); err != nil {
		fmt.Printf("FAIL: session close: %v\n", err)
		failed = true
	}
	if failed {
		os.Exit(1)
	}
	fmt.Println("RESULT: PASS")
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: yamuxpeer server|client SOCKET")
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2])
	case "client":
		client(os.Args[2])
	default:
		fail("unknown mode %q", os.Args[1])
	}
}
