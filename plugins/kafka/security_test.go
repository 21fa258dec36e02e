package kafka

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
)

// These tests start brokers of their own (testenv/kafka with SASL/PLAIN or
// TLS), so they run the same whatever KAFKA_BROKERS says.

// roundTrip creates a topic on brokers with a client configured like the
// plugin, writes a batch with the sink and reads it back with the source.
func roundTrip(t *testing.T, addrs []string, conn map[string]any, admin *kafkago.Client) error {
	t.Helper()
	topic := "secure"
	resp, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create topic: %v", err)
	}
	sinkCfg := map[string]any{"brokers": addrs, "topic": topic, "request_timeout": "5s"}
	srcCfg := map[string]any{"brokers": addrs, "topics": []string{topic}, "starting_offsets": "earliest", "request_timeout": "5s"}
	for k, v := range conn {
		sinkCfg[k], srcCfg[k] = v, v
	}
	sk := sdktest.Sink(t, Plugin, "p", sinkCfg)
	if err := sk.Write(ctx, batch(1, "s", 3, false)); err != nil {
		return err
	}
	src := sdktest.Source(t, Plugin, "p", srcCfg)
	rd, err := src.Read(ctx, sdk.Offsets{}, lim(10))
	if err != nil {
		return err
	}
	if len(rd.Records) < 3 {
		t.Fatalf("read back %d records, want 3", len(rd.Records))
	}
	return nil
}

// TestSASLPlain: the right password works; a wrong one fails without the
// password showing in the error.
func TestSASLPlain(t *testing.T) {
	const user, pass = "connectd", "s3cret-Pa55"
	addrs, stop, err := startBroker(t.TempDir(), "-sasl-plain", user+":"+pass)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	admin := &kafkago.Client{Addr: kafkago.TCP(addrs...), Transport: &kafkago.Transport{SASL: saslPlain(user, pass)}}
	good := map[string]any{"sasl_mechanism": "PLAIN", "sasl_username": user, "sasl_password": pass}
	if err := roundTrip(t, addrs, good, admin); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	bad := map[string]any{"sasl_mechanism": "PLAIN", "sasl_username": user, "sasl_password": "wrong-Pa55word"}
	err = roundTrip(t, addrs, bad, admin)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if strings.Contains(err.Error(), "wrong-Pa55word") || strings.Contains(err.Error(), pass) {
		t.Fatalf("the error shows a password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}

// TestTLS: with the broker's CA the plugin connects; with only the system's
// CAs it does not.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	addrs, stop, err := startBroker(dir, "-tls-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ca := filepath.Join(dir, "ca.pem")
	cfg, err := sdk.NewConfig(SourceSpec, "p", map[string]any{"brokers": addrs, "topics": []string{"x"}, "tls_ca_file": ca})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := &kafkago.Client{Addr: kafkago.TCP(addrs...), Transport: &kafkago.Transport{TLS: tc}}
	if err := roundTrip(t, addrs, map[string]any{"tls_ca_file": ca}, admin); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	err = roundTrip(t, addrs, map[string]any{"tls": true, "request_timeout": "2s"}, admin)
	if err == nil {
		t.Fatal("connected without trusting the broker's CA")
	}
	t.Logf("without the CA: %v", err)
}

func saslPlain(user, pass string) plain.Mechanism {
	return plain.Mechanism{Username: user, Password: pass}
}
