// Command elasticsearch runs an Elasticsearch-compatible server on 127.0.0.1
// for connectd's tests: ZincSearch (github.com/zincsearch/zincsearch v0.4.10)
// used as a Go library for storage and search, behind an HTTP layer that
// speaks the parts of the Elasticsearch 8 REST API connectd's sink and its
// tests use, with Elasticsearch's semantics where ZincSearch's differ:
//
//   - _bulk answers per item, in request order, with Elasticsearch's statuses
//     and error types: 400 document_parsing_exception for a document that
//     does not fit the index's mapping (ZincSearch would stop the whole
//     request and report the failed document as created), 429 for an index
//     with the read_only_allow_delete block, 400 for invalid index names. A
//     delete waits until what the index acknowledged before is indexed, so
//     that it deletes a document indexed just before it (Elasticsearch
//     applies the operations on one id in order); a delete of a missing
//     document is 404 not_found.
//   - _refresh (and ?refresh=true|wait_for on _bulk) returns once every
//     document acknowledged before it is searchable: ZincSearch indexes its
//     write-ahead log asynchronously, every -refresh-interval.
//   - _search returns each document's _source as it was sent (ZincSearch adds
//     an @timestamp field) and total hits exactly; index expressions take *
//     anywhere; a missing concrete index is a 404 index_not_found_exception.
//   - point in time (POST /<index>/_pit, DELETE /_pit) with search_after
//     paging, _count, GET /<index>/_doc/<id> (after a refresh only), index
//     create/delete/exists, and every response carries X-Elastic-Product.
//   - basic authentication (and an API key with -api-key) as Elasticsearch 8
//     with security on; HTTPS with a generated CA with -tls-dir.
//
// Test knobs, not part of Elasticsearch: POST /_testenv/bulk_faults with
// {"status":429,"count":5} makes the next 5 bulk items fail with that status
// (429 or any 5xx), and GET /_testenv/stats reports what the server received.
// Tests that need them skip against a real Elasticsearch.
//
// Once it serves, it prints ES_URL=..., ES_USERNAME=... and ES_PASSWORD=...
// on stdout (also into -addr-file), and runs until SIGINT or SIGTERM.
//
//	elasticsearch [-port 0] [-username elastic] [-password connectd]
//	              [-api-key KEY] [-tls-dir DIR] [-data-dir DIR]
//	              [-refresh-interval 100ms] [-addr-file FILE]
//	              [-exit-with-parent] [-verbose] [-cpuprofile FILE]
//
// Without -data-dir the data lives in a temporary directory removed at exit.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	// zincenv must be imported (and initialised) before ZincSearch's packages.
	"github.com/connectd/connectd/testenv/elasticsearch/zincenv"

	"github.com/rs/zerolog"
	"github.com/zincsearch/zincsearch/pkg/config"
	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/metadata"
)

func main() {
	// A private flag set: glog, which ZincSearch brings in, claims -v and
	// other names on the global one.
	flag := flag.NewFlagSet("elasticsearch", flag.ExitOnError)
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: a free port)")
	username := flag.String("username", "elastic", "user for basic authentication")
	password := flag.String("password", "connectd", "password for basic authentication")
	apiKey := flag.String("api-key", "", "also accept `Authorization: ApiKey KEY` with this (encoded) key")
	tlsDir := flag.String("tls-dir", "", "speak HTTPS; write the CA certificate to DIR/ca.pem")
	flag.String("data-dir", "", "directory for the data (default: a temporary one, removed at exit)")
	flag.Duration("refresh-interval", zincenv.Interval, "how often new documents become searchable without an explicit refresh")
	addrFile := flag.String("addr-file", "", "file to write ES_URL=..., ES_USERNAME=..., ES_PASSWORD=... into once serving")
	withParent := flag.Bool("exit-with-parent", false, "exit when the parent process dies")
	verbose := flag.Bool("verbose", false, "log every request to stderr")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	_ = flag.Parse(os.Args[1:])
	if zincenv.Err != nil {
		fail(zincenv.Err.Error())
	}
	if config.Global.DataPath != zincenv.DataDir {
		fail(fmt.Sprintf("ZincSearch was configured before zincenv ran (data path %q, want %q)", config.Global.DataPath, zincenv.DataDir))
	}
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fail("-cpuprofile: " + err.Error())
		}
	}
	if *withParent {
		watchParent()
	}

	srv := newServer(*username, *password, *apiKey, *verbose)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fail(err.Error())
	}
	scheme := "http"
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	if *tlsDir != "" {
		cfg, err := selfSigned(*tlsDir)
		if err != nil {
			fail("tls: " + err.Error())
		}
		hs.TLSConfig = cfg
		ln = tls.NewListener(ln, cfg)
		scheme = "https"
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	lines := fmt.Sprintf("ES_URL=%s://%s\nES_USERNAME=%s\nES_PASSWORD=%s\n", scheme, ln.Addr(), *username, *password)
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(lines), 0o600); err == nil {
			err = os.Rename(tmp, *addrFile)
		}
		if err != nil {
			fail("writing -addr-file: " + err.Error())
		}
	}
	fmt.Print(lines)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sigs:
	case err := <-served:
		fail("serving: " + err.Error())
	}
	pprof.StopCPUProfile()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	// Closing an index waits for ZincSearch's indexer to pass by, once per
	// index: bounded, so that a stop never hangs.
	closed := make(chan error, 1)
	go func() { closed <- errors.Join(core.ZINC_INDEX_LIST.Close(), metadata.Close()) }()
	select {
	case err = <-closed:
	case <-ctx.Done():
		err = errors.New("ZincSearch did not close its indexes within 10s")
	}
	if zincenv.Temporary {
		err = errors.Join(err, os.RemoveAll(zincenv.DataDir))
	}
	if err != nil {
		fail("closing: " + err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testenv elasticsearch:", msg)
	if zincenv.Temporary {
		os.RemoveAll(zincenv.DataDir)
	}
	os.Exit(1)
}

// watchParent exits the process when its parent dies (a test binary killed
// with SIGKILL leaves no server behind).
func watchParent() {
	parent := os.Getppid()
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			if os.Getppid() != parent {
				if zincenv.Temporary {
					os.RemoveAll(zincenv.DataDir)
				}
				os.Exit(3)
			}
		}
	}()
}

// selfSigned makes a CA and a certificate for 127.0.0.1 and localhost signed
// by it, writes the CA to dir/ca.pem and returns the server's TLS configuration.
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
		NotAfter:              now.Add(7 * 24 * time.Hour),
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
		NotAfter:     now.Add(7 * 24 * time.Hour),
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
