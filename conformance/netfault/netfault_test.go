package netfault

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/conformance"
)

// echoServer starts a TCP server that sends back every line it gets.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// echo sends a line through addr and reads it back.
func echo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// TestFaults: the proxy forwards; while its schedule runs, connections
// through it fail (a refusing partition refuses dials); the schedule names
// every fault it applied, and afterwards the proxy forwards again.
func TestFaults(t *testing.T) {
	px, err := Start("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	if err := echo(px.Addr()); err != nil {
		t.Fatalf("through the clean proxy: %v", err)
	}
	faults := px.Faults(Schedule{RequestTimeout: 200 * time.Millisecond, Latency: 300 * time.Millisecond,
		Reset: 300 * time.Millisecond, Stall: 300 * time.Millisecond, Gap: 100 * time.Millisecond, Refuse: true})
	done := make(chan string)
	go func() {
		desc, err := faults(context.Background(), conformance.Pipeline{})
		if err != nil {
			t.Error(err)
		}
		done <- desc
	}()
	failed, refused := 0, 0
	var desc string
	for desc == "" {
		select {
		case desc = <-done:
		case <-time.After(20 * time.Millisecond):
			if err := echo(px.Addr()); err != nil {
				failed++
				if strings.Contains(err.Error(), "refused") {
					refused++
				}
			}
		}
	}
	for _, want := range []string{"latency", "resets", "stalls", "partition (connections refused and cut) for 1.3s"} {
		if !strings.Contains(desc, want) {
			t.Errorf("the schedule says %q; want %q in it", desc, want)
		}
	}
	if failed == 0 || refused == 0 {
		t.Errorf("%d echoes failed, %d dials refused during the faults; want some of both", failed, refused)
	}
	if err := echo(px.Addr()); err != nil {
		t.Errorf("through the proxy after the faults: %v", err)
	}

	// A schedule cut short by its context stops at once and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	desc, err = px.Faults(Schedule{})(ctx, conformance.Pipeline{})
	if err != nil || !strings.Contains(desc, "cut short") {
		t.Errorf("cut short: %q, %v", desc, err)
	}
	if err := echo(px.Addr()); err != nil {
		t.Errorf("through the proxy after a schedule cut short: %v", err)
	}
}
