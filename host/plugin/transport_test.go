package plugin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/sdk"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// The "env" test plugin, a sink, tells in its spec's summary what the
// plugin process was given: whether PLUGIN_CLIENT_CERT was set (the host
// asks for mTLS) and go-plugin's socket directory. The summary is made in the
// plugin process (the host reads it from the Spec call).
func init() {
	summary := fmt.Sprintf("cert=%t dir=%s", os.Getenv("PLUGIN_CLIENT_CERT") != "", os.Getenv(goplugin.EnvUnixSocketDir))
	testPlugins["env"] = sdk.Plugin{Sink: &sdk.SinkPlugin{
		Spec: sdk.Spec{Name: "env", Version: "1", Kind: sdk.KindSink, Summary: summary},
		New:  func() sdk.Sink { return rulesSink{} },
	}}
}

// channel asks p's sink for its spec and returns the summary, how the call
// reached the plugin (the peer's address) and whether it had TLS (gRPC's
// AuthInfo of the connection).
func channel(t *testing.T, p *Process) (summary string, addr net.Addr, withTLS bool) {
	t.Helper()
	var pr peer.Peer
	sp, err := pb.NewSinkClient(p.conn).Spec(context.Background(), &pb.Empty{}, grpc.Peer(&pr))
	if err != nil {
		t.Fatal(err)
	}
	_, withTLS = pr.AuthInfo.(credentials.TLSInfo)
	return sp.Summary, pr.Addr, withTLS
}

// The plugin channel is a unix socket in a directory of mode 0700 without
// TLS by default, with mTLS when Loader.TLS or CONNECTD_PLUGIN_TLS asks for
// it (seen by both ends: the host's connection has TLS, the plugin was given
// PLUGIN_CLIENT_CERT). The directory is the Loader's, shared by its
// processes; a process's socket lives there and goes when it stops (also
// after a SIGKILL), and the directory goes with the last process.
func TestPluginChannel(t *testing.T) {
	for _, c := range []struct {
		name     string
		field    bool
		env      string
		wantTLS  bool
		wantKind string
	}{
		{"default", false, "", false, "unix"},
		{"env 0", false, "0", false, "unix"},
		{"Loader.TLS", true, "", true, "unix+mtls"},
		{"env 1", false, "1", true, "unix+mtls"},
		{"env true", false, "true", true, "unix+mtls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if overTCP {
				t.Skip("plugins are reached over TCP on this OS")
			}
			t.Setenv(TLSEnv, c.env)
			l := &Loader{Exe: os.Args[0], Bundled: testPlugins, TLS: c.field}
			ctx := context.Background()
			a, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Kill()
			b, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Kill()

			dir := l.SocketDir()
			if dir == "" || filepath.Dir(dir) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(dir), "connectd-") {
				t.Fatalf("SocketDir() = %q, want a connectd-* directory in %s", dir, os.TempDir())
			}
			checkPrivate(t, dir)
			var sockets []string
			for _, p := range []*Process{a, b} {
				summary, addr, withTLS := channel(t, p)
				if want := fmt.Sprintf("cert=%t dir=%s", c.wantTLS, dir); summary != want {
					t.Errorf("the plugin process says %q, want %q", summary, want)
				}
				if withTLS != c.wantTLS {
					t.Errorf("the connection has TLS: %t, want %t", withTLS, c.wantTLS)
				}
				if got := p.Transport(); got != c.wantKind {
					t.Errorf("Transport() = %q, want %q", got, c.wantKind)
				}
				if addr.Network() != "unix" || filepath.Dir(addr.String()) != dir {
					t.Fatalf("the plugin is reached at %s %s, want a unix socket in %s", addr.Network(), addr, dir)
				}
				if st, err := os.Stat(addr.String()); err != nil || st.Mode()&os.ModeSocket == 0 {
					t.Errorf("socket %s: %v, %v", addr, st, err)
				}
				sockets = append(sockets, addr.String())
			}
			if sockets[0] == sockets[1] {
				t.Errorf("both processes listen on %s", sockets[0])
			}

			// A plugin killed by SIGKILL leaves its socket file; stopping
			// its Process removes it, and the directory stays for the other.
			a.Abort()
			if _, err := os.Stat(sockets[0]); !os.IsNotExist(err) {
				t.Errorf("socket of the killed plugin: %v, want it removed", err)
			}
			if _, err := os.Stat(sockets[1]); err != nil {
				t.Errorf("socket of the live plugin: %v", err)
			}
			if l.SocketDir() != dir {
				t.Errorf("SocketDir() = %q while a plugin runs, want %q", l.SocketDir(), dir)
			}
			// A plugin started now shares the directory.
			d, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			if _, addr, _ := channel(t, d); filepath.Dir(addr.String()) != dir {
				t.Errorf("a restarted plugin listens at %s, want in %s", addr, dir)
			}
			d.Kill()
			b.Kill()
			b.Kill() // twice: releases once
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("socket directory after the last plugin stopped: %v, want it removed", err)
			}
			if l.SocketDir() != "" {
				t.Errorf("SocketDir() = %q with no plugin running", l.SocketDir())
			}
		})
	}
}

// Close removes the socket directory while plugins still run (a host that
// exits without stopping them); a plugin started afterwards gets a new one,
// and stopping the old process does not remove the new directory.
func TestLoaderClose(t *testing.T) {
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	ctx := context.Background()
	a, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Kill()
	old := l.SocketDir()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("socket directory after Close: %v, want it removed", err)
	}
	b, err := l.Start(ctx, sdk.KindSink, "env", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Kill()
	now := l.SocketDir()
	if now == "" || now == old {
		t.Fatalf("SocketDir() after Close and a start = %q (was %q), want a new directory", now, old)
	}
	a.Kill()
	if _, err := os.Stat(now); err != nil {
		t.Errorf("stopping a process of the closed directory removed the new one: %v", err)
	}
	b.Kill()
	if _, err := os.Stat(now); !os.IsNotExist(err) {
		t.Errorf("socket directory after the last plugin stopped: %v, want it removed", err)
	}
}

// A CONNECTD_PLUGIN_TLS that is neither on nor off is an error naming the
// variable and its values, from TLSFromEnv and from Start, which starts no
// process.
func TestTLSEnvInvalid(t *testing.T) {
	t.Setenv(TLSEnv, "yes")
	if _, err := TLSFromEnv(); err == nil || !strings.Contains(err.Error(), TLSEnv+`="yes"`) || !strings.Contains(err.Error(), "want 1 or true") {
		t.Errorf("TLSFromEnv() error = %v, want one naming %s and its values", err, TLSEnv)
	}
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	p, err := l.Start(context.Background(), sdk.KindSink, "env", os.Environ())
	if err == nil {
		p.Kill()
		t.Fatal("Start succeeded with an invalid " + TLSEnv)
	}
	if !strings.Contains(err.Error(), TLSEnv) || l.SocketDir() != "" {
		t.Errorf("Start error = %v (socket directory %q), want one naming %s and no directory", err, l.SocketDir(), TLSEnv)
	}
}

// The go-plugin variables the host sets are never inherited from its own
// environment: a host started by another go-plugin host does not pass that
// host's certificate or socket directory on to its plugins.
func TestInheritedPluginEnv(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := &Loader{Exe: exe, Bundled: testPlugins}
	env := append(os.Environ(), "PLUGIN_CLIENT_CERT=not a certificate", goplugin.EnvUnixSocketDir+"=/nonexistent")
	p, err := l.Start(context.Background(), sdk.KindSink, "env", env)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	summary, _, withTLS := channel(t, p)
	if want := "cert=false dir=" + l.SocketDir(); summary != want || withTLS {
		t.Errorf("the plugin says %q (TLS %t), want %q without TLS", summary, withTLS, want)
	}
}

// A plugin reached over TCP always has mTLS: one that answers with a TCP
// address although the host offered no TLS is started again with it. A
// plugin that ignores PLUGIN_CLIENT_CERT (no certificate in its handshake
// line) is refused with a message that says so.
func TestTCPHasTLS(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("tcp", func(t *testing.T) {
		t.Setenv(serveEnv, "tcp")
		l := &Loader{}
		p, err := l.Start(context.Background(), sdk.KindSink, exe, os.Environ())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Abort() // it does not serve go-plugin's Shutdown
		summary, addr, withTLS := channel(t, p)
		if addr.Network() != "tcp" || !withTLS || p.Transport() != "tcp+mtls" || summary != "cert=true" {
			t.Errorf("reached at %s %s, TLS %t, Transport %q, plugin says %q; want tcp with mTLS", addr.Network(), addr, withTLS, p.Transport(), summary)
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		t.Setenv(serveEnv, "plain")
		l := &Loader{TLS: true}
		p, err := l.Start(context.Background(), sdk.KindSink, exe, os.Environ())
		if err == nil {
			p.Abort()
			t.Fatal("Start succeeded with a plugin that ignores PLUGIN_CLIENT_CERT")
		}
		if !strings.Contains(err.Error(), "no server certificate") {
			t.Errorf("Start error = %v, want one saying the handshake line has no server certificate", err)
		}
		if l.SocketDir() != "" {
			t.Errorf("socket directory %q left after a failed start", l.SocketDir())
		}
	})
	t.Run("unasked certificate", func(t *testing.T) {
		t.Setenv(serveEnv, "cert")
		l := &Loader{}
		p, err := l.Start(context.Background(), sdk.KindSink, exe, os.Environ())
		if err == nil {
			p.Abort()
			t.Fatal("Start succeeded with a plugin that sends a certificate unasked")
		}
		if !strings.Contains(err.Error(), "asked for no TLS") {
			t.Errorf("Start error = %v, want one saying the host asked for no TLS", err)
		}
	})
}

// serveTransport serves a sink without the sdk, as a plugin in another
// language would, to test the host's side of the transport: "tcp" listens on
// TCP with mTLS when PLUGIN_CLIENT_CERT is set and without otherwise;
// "plain" listens on a unix socket without TLS whatever the host asks;
// "cert" listens on a unix socket without TLS but sends a certificate in the
// handshake line whatever the host asks. Its spec's summary says whether it
// was given PLUGIN_CLIENT_CERT.
func serveTransport(mode string) {
	clientCert := os.Getenv("PLUGIN_CLIENT_CERT")
	var (
		l   net.Listener
		err error
	)
	if mode == "tcp" {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	} else {
		l, err = net.Listen("unix", filepath.Join(os.Getenv(goplugin.EnvUnixSocketDir), fmt.Sprintf("test-%d", os.Getpid())))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var opts []grpc.ServerOption
	certField := ""
	if mode == "cert" || (mode == "tcp" && clientCert != "") {
		cert, der, err := selfSigned()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		certField = base64.RawStdEncoding.EncodeToString(der)
		if mode == "tcp" {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM([]byte(clientCert))
			opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
				Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12})))
		}
	}
	s := grpc.NewServer(opts...)
	pb.RegisterSinkServer(s, transportSink{cert: clientCert != ""})
	fmt.Printf("1|%d|%s|%s|grpc|%s\n", protocol.Handshake.ProtocolVersion, l.Addr().Network(), l.Addr(), certField)
	_ = s.Serve(l)
}

type transportSink struct {
	pb.UnimplementedSinkServer
	cert bool
}

func (s transportSink) Spec(context.Context, *pb.Empty) (*pb.PluginSpec, error) {
	return &pb.PluginSpec{Name: "transport", Version: "1", Kind: "sink", Summary: fmt.Sprintf("cert=%t", s.cert)}, nil
}

// selfSigned makes a certificate for the name go-plugin's client checks,
// localhost, and returns it with its DER.
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der, nil
}

// TestPythonTransport: the Python example plugin (examples/python/test sets
// CONNECTD_TEST_PYJSONL) serves on a unix socket in the Loader's directory
// without TLS by default and with mTLS when asked, each end seeing the same.
func TestPythonTransport(t *testing.T) {
	exe := os.Getenv(pyjsonlEnv)
	if exe == "" {
		t.Skipf("%s is not set: examples/python/test sets it to the Python plugin it builds", pyjsonlEnv)
	}
	for _, withTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("TLS=%t", withTLS), func(t *testing.T) {
			l := &Loader{TLS: withTLS}
			ctx := context.Background()
			p, err := l.Start(ctx, sdk.KindSink, exe, os.Environ())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Kill()
			dir := l.SocketDir()
			checkPrivate(t, dir)
			_, addr, got := channel(t, p)
			if got != withTLS || addr.Network() != "unix" || filepath.Dir(addr.String()) != dir {
				t.Errorf("reached at %s %s with TLS %t (Transport %q); want a unix socket in %s, TLS %t", addr.Network(), addr, got, p.Transport(), dir, withTLS)
			}
			if err := p.Sink.Open(ctx, "demo", map[string]any{"dir": t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if err := p.Sink.Close(ctx); err != nil {
				t.Error(err)
			}
			p.Kill()
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("socket directory after the plugin stopped: %v, want it removed", err)
			}
		})
	}
}
