package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/protocol"
	"github.com/connectd/connectd/plugins/discard"
	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// The loader's tests start this test binary as a third-party plugin: with
// serveEnv set, TestMain serves the plugin it names instead of running tests.
const serveEnv = "CONNECTD_LOADER_TEST_SERVE"

// Re-executed as `<test binary> __plugin <name>` by a Loader whose Exe is the
// test binary, it serves testPlugins[name], as connectd serves its bundled
// plugins.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == ServeArg {
		if p, ok := testPlugins[os.Args[2]]; ok {
			sdk.Serve(p)
		}
		os.Exit(2)
	}
	switch os.Getenv(serveEnv) {
	case "":
	case "discard": // a sink only
		sdk.Serve(discard.Plugin)
	case "generator": // a source only
		sdk.Serve(generator.Plugin)
	case "liar": // a processor and a sink without the sdk, breaking their contracts
		serveLiar()
		os.Exit(0)
	case "tcp", "plain", "cert": // transport tests: see serveTransport
		serveTransport(os.Getenv(serveEnv))
		os.Exit(0)
	case "none": // shakes hands, serves no role
		goplugin.Serve(&goplugin.ServeConfig{HandshakeConfig: protocol.Handshake, Plugins: goplugin.PluginSet{"none": noService{}}, GRPCServer: goplugin.DefaultGRPCServer})
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "loader test: no plugin %q\n", os.Getenv(serveEnv))
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// noService is a go-plugin plugin that registers no gRPC service.
type noService struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (noService) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return nil }

func (noService) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}

// A plugin that offers one role is listed with that role; asking it for the
// other is ErrNoRole (from the plugin's Unimplemented Spec call), with a
// message that names the role, for Spec and for Start alike.
func TestOneRolePlugin(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		serve         string
		offers, lacks sdk.Kind
	}{
		{"discard", sdk.KindSink, sdk.KindSource},
		{"generator", sdk.KindSource, sdk.KindSink},
	} {
		t.Run(c.serve, func(t *testing.T) {
			t.Setenv(serveEnv, c.serve)
			l := &Loader{}
			specs, err := l.Specs(exe)
			if err != nil {
				t.Fatalf("Specs: %v", err)
			}
			if len(specs) != 1 || specs[0].Kind != c.offers || specs[0].Name != c.serve {
				t.Fatalf("Specs = %+v, want only the %s %q", specs, c.offers, c.serve)
			}
			if s, err := l.Spec(c.offers, exe); err != nil || s.Name != c.serve {
				t.Errorf("Spec(%s) = %q, %v", c.offers, s.Name, err)
			}
			_, err = l.Spec(c.lacks, exe)
			if !errors.Is(err, ErrNoRole) || !strings.Contains(err.Error(), "offers no "+string(c.lacks)) {
				t.Errorf("Spec(%s) error = %v, want ErrNoRole saying it offers no %s", c.lacks, err, c.lacks)
			}
			ctx := context.Background()
			p, err := l.Start(ctx, c.lacks, exe, os.Environ())
			if !errors.Is(err, ErrNoRole) {
				if p != nil {
					p.Kill()
				}
				t.Errorf("Start(%s) error = %v, want ErrNoRole", c.lacks, err)
			}
			p, err = l.Start(ctx, c.offers, exe, os.Environ())
			if err != nil {
				t.Fatalf("Start(%s): %v", c.offers, err)
			}
			defer p.Kill()
			if p.Spec.Name != c.serve || (c.offers == sdk.KindSink) != (p.Sink != nil) || (c.offers == sdk.KindSource) != (p.Source != nil) {
				t.Errorf("Start(%s) = spec %q, source %v, sink %v", c.offers, p.Spec.Name, p.Source != nil, p.Sink != nil)
			}
		})
	}
}

// A plugin that offers neither role, or dies at start, is an error, not an
// empty list; the message of one that dies quotes its stderr.
func TestPluginWithoutRoles(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for serve, want := range map[string]string{
		"none":    "offers no source, sink or processor",
		"nothing": `loader test: no plugin "nothing"`, // TestMain exits 3 before the handshake
	} {
		t.Run(serve, func(t *testing.T) {
			t.Setenv(serveEnv, serve)
			specs, err := (&Loader{}).Specs(exe)
			if err == nil || errors.Is(err, ErrNoRole) {
				t.Fatalf("Specs = %v, %v; want a start-up error", specs, err)
			}
			if !strings.Contains(err.Error(), "start plugin") || !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say the plugin could not start and %q", err, want)
			}
		})
	}
}
