// Command kafka runs a Kafka-protocol broker on 127.0.0.1 for connectd's
// tests: github.com/twmb/franz-go/pkg/kfake, a broker written for testing
// Kafka clients, in a process of its own.
//
// It prints KAFKA_BROKERS=<host:port>[,<host:port>…] on stdout once the
// broker accepts connections (also into -addr-file when given), and runs
// until SIGINT or SIGTERM, when it saves its state to -data-dir (if given)
// and exits 0. With -data-dir, topics, records and committed group offsets
// survive a restart; give the same -port to keep the address.
//
//	kafka [-port 0] [-brokers 1] [-data-dir DIR] [-addr-file FILE]
//	      [-sasl-plain USER:PASS] [-tls-dir DIR] [-exit-with-parent]
//
// -sasl-plain makes the broker demand SASL/PLAIN with that user.
// -tls-dir makes it speak TLS with a certificate for 127.0.0.1 that it writes,
// with its CA, as ca.pem into that directory.
// -exit-with-parent makes it exit when the process that started it dies (tests
// start it this way so that a killed test leaves no broker behind).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port of the first broker on 127.0.0.1 (0: a free port); more brokers take the next ports")
	brokers := flag.Int("brokers", 1, "number of brokers")
	dataDir := flag.String("data-dir", "", "directory that keeps the broker's state across restarts (empty: in memory)")
	addrFile := flag.String("addr-file", "", "file to write KAFKA_BROKERS=... into once the broker listens")
	saslPlain := flag.String("sasl-plain", "", "USER:PASS: require SASL/PLAIN with this user")
	tlsDir := flag.String("tls-dir", "", "speak TLS; write the CA certificate to DIR/ca.pem")
	withParent := flag.Bool("exit-with-parent", false, "exit when the parent process dies")
	partitions := flag.Int("default-partitions", 1, "partitions of auto-created topics")
	advertise := flag.Int("advertise-port", 0, "with one broker: tell clients the broker is at 127.0.0.1:PORT, where a TCP proxy in front of it listens (0: its own address)")
	flag.Parse()
	if *brokers < 1 {
		fail("-brokers must be 1 or more")
	}
	if *withParent {
		watchParent()
	}

	opts := []kfake.Opt{
		kfake.DefaultNumPartitions(*partitions),
		// A standalone commit (generation -1) is what connectd's Kafka
		// source uses; short session bounds keep group tests quick.
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if *port != 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	} else {
		opts = append(opts, kfake.NumBrokers(*brokers))
	}
	if *advertise != 0 {
		if *brokers != 1 {
			fail("-advertise-port needs -brokers 1")
		}
		at := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *advertise}
		opts = append(opts, kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return advertised{Listener: ln, at: at}, nil
		}))
	}
	if *dataDir != "" {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			fail(err.Error())
		}
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *saslPlain != "" {
		user, pass, ok := strings.Cut(*saslPlain, ":")
		if !ok || user == "" {
			fail("-sasl-plain wants USER:PASS")
		}
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("PLAIN", user, pass))
	}
	if *tlsDir != "" {
		cfg, err := selfSigned(*tlsDir)
		if err != nil {
			fail("tls: " + err.Error())
		}
		opts = append(opts, kfake.TLS(cfg))
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fail("starting kfake: " + err.Error())
	}
	addrs := c.ListenAddrs()
	for _, a := range addrs {
		if err := waitListening(a); err != nil {
			c.Close()
			fail(err.Error())
		}
	}
	line := "KAFKA_BROKERS=" + strings.Join(addrs, ",")
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(line+"\n"), 0o644); err == nil {
			err = os.Rename(tmp, *addrFile)
		}
		if err != nil {
			c.Close()
			fail("writing -addr-file: " + err.Error())
		}
	}
	fmt.Println(line)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	<-sigs
	done := make(chan struct{})
	go func() {
		c.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-sigs:
		fail("second signal: exiting without saving")
	case <-time.After(30 * time.Second):
		fail("saving the broker's state took more than 30s")
	}
}

// advertised is a broker's listener that reports another address, which
// the broker gives its clients in metadata: a proxy's.
type advertised struct {
	net.Listener
	at net.Addr
}

// Addr returns the advertised address.
func (a advertised) Addr() net.Addr { return a.at }

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testenv kafka:", msg)
	os.Exit(1)
}

// waitListening returns once addr accepts a TCP connection.
func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker at %s does not accept connections: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchParent exits the process when its parent dies: the kernel's
// parent-death signal, and a watch on the parent pid in case it was missed.
func watchParent() {
	parent := os.Getppid()
	_ = setPdeathsig()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
}

// selfSigned makes a CA and a certificate for 127.0.0.1 signed by it, writes
// the CA to dir/ca.pem and returns the server's TLS configuration.
func selfSigned(dir string) (*tls.Config, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "connectd testenv CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), caPEM, 0o644); err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}
