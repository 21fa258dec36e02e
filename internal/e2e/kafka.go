package e2e

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/proc"
)

// BuildKafka builds the test broker (testenv/kafka under the repository
// root) into dir and returns the executable's path.
func BuildKafka(root, dir string) (string, error) {
	exe := filepath.Join(dir, "kafka-testenv")
	cmd := exec.Command("go", "build", "-o", exe, "./kafka")
	cmd.Dir = filepath.Join(root, "testenv")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./kafka in %s: %v\n%s", cmd.Dir, err, out)
	}
	return exe, nil
}

// Broker is a test broker started by StartKafka.
type Broker struct {
	Addrs []string // host:port of its listeners
	Pid   int
	// Stop asks it to stop (SIGTERM, then SIGKILL after 30s) and waits.
	Stop func()
}

// StartKafka starts the test broker exe (see BuildKafka) with extra flags,
// writing its address file in dir; it dies with this process. It returns
// once the broker has written its address.
func StartKafka(exe, dir string, flags ...string) (*Broker, error) {
	addrFile, err := os.CreateTemp(dir, "kafka-*.addr")
	if err != nil {
		return nil, err
	}
	addrFile.Close()
	os.Remove(addrFile.Name()) // the broker writes it when it listens
	cmd := exec.Command(exe, append([]string{"-exit-with-parent", "-addr-file", addrFile.Name()}, flags...)...)
	cmd.Stdout = io.Discard
	var stderr strings.Builder
	cmd.Stderr = &stderr
	proc.KillWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile.Name()); err == nil && len(b) > 0 {
			line := strings.TrimSpace(string(b))
			addrs := strings.Split(strings.TrimPrefix(line, "KAFKA_BROKERS="), ",")
			return &Broker{Addrs: addrs, Pid: cmd.Process.Pid, Stop: stop}, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("testenv kafka exited at start: %s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("testenv kafka did not start in 30s: %s", stderr.String())
		}
	}
}

// KafkaBrokers returns $KAFKA_BROKERS, or builds and starts a test broker
// (partitions of new topics: 2) that t's cleanup stops. root is the
// repository root.
func KafkaBrokers(t testing.TB, root string) []string {
	t.Helper()
	if env := os.Getenv("KAFKA_BROKERS"); env != "" {
		return strings.Split(env, ",")
	}
	dir := t.TempDir()
	exe, err := BuildKafka(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartKafka(exe, dir, "-default-partitions", "2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	return b.Addrs
}
