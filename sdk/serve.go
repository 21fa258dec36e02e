package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/protocol"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Serve runs the plugin p for a connectd host and never returns. Call it from
// main and do nothing else there: the host starts the program, shakes hands
// over go-plugin (a program started by hand prints that it must be started by
// connectd and exits 1), and talks connector.v1 gRPC. The plugin listens on a
// unix socket in the directory the host names (PLUGIN_UNIX_SOCKET_DIR, which
// only the host's user can enter), without TLS unless the host asks for
// go-plugin's automatic mTLS by setting PLUGIN_CLIENT_CERT (it does with
// CONNECTD_PLUGIN_TLS=1, and always where plugins listen on TCP, as on
// Windows). docs/protocol.md, "Transport", has the rules.
//
// Serve makes the plugin exit within a second of its host's death, even after
// kill -9, so an orphan never writes while a restarted host replays its batch.
// It also arms the fault points named in CONNECTD_FAULT (docs/fault-points.md).
func Serve(p Plugin) {
	if err := check(p); err != nil {
		fmt.Fprintf(os.Stderr, "connectd plugin: %v\n", err)
		os.Exit(1)
	}
	if err := fault.Init(); err != nil {
		fmt.Fprintf(os.Stderr, "connectd plugin %q: %v\n", p.Name(), err)
		os.Exit(1)
	}
	if os.Getenv(protocol.Handshake.MagicCookieKey) == protocol.Handshake.MagicCookieValue {
		dieWithParent()
	}
	stopProfile := cpuProfile(p)
	set := plugin.PluginSet{}
	if p.Source != nil {
		set[protocol.RoleSource] = &grpcPlugin{source: p.Source}
	}
	if p.Sink != nil {
		set[protocol.RoleSink] = &grpcPlugin{sink: p.Sink}
	}
	if p.Processor != nil {
		set[protocol.RoleProcessor] = &grpcPlugin{processor: p.Processor}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: protocol.Handshake,
		Plugins:         set,
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, protocol.ServerOptions()...)
			return grpc.NewServer(append(opts, grpc.ForceServerCodecV2(newServerCodec()))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr}),
	})
	stopProfile()
	os.Exit(0)
}

// ProfileEnv names a directory where each plugin process writes a CPU profile,
// <dir>/<role>-<pid>.pprof (role source, sink, processor, or plugin for
// several), from start
// until the host stops it (not when it is killed). For benchmarks; see
// docs/benchmarks.md.
const ProfileEnv = "CONNECTD_CPUPROFILE"

// cpuProfile starts the CPU profile ProfileEnv asks for and returns what
// stops it.
func cpuProfile(p Plugin) (stop func()) {
	dir := os.Getenv(ProfileEnv)
	if dir == "" {
		return func() {}
	}
	role := "plugin"
	switch {
	case p.Sink == nil && p.Processor == nil:
		role = "source"
	case p.Source == nil && p.Processor == nil:
		role = "sink"
	case p.Source == nil && p.Sink == nil:
		role = "processor"
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "connectd plugin %q: %s: %v\n", p.Name(), ProfileEnv, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

func check(p Plugin) error {
	if p.Source == nil && p.Sink == nil && p.Processor == nil {
		return errors.New("plugin has no source, sink or processor")
	}
	if p.Source != nil {
		if err := p.Source.Spec.Check(); err != nil {
			return err
		}
		if p.Source.Spec.Kind != KindSource || p.Source.New == nil {
			return fmt.Errorf("plugin %q: Source needs a spec of kind source and a New function", p.Source.Spec.Name)
		}
	}
	if p.Sink != nil {
		if err := p.Sink.Spec.Check(); err != nil {
			return err
		}
		if p.Sink.Spec.Kind != KindSink || p.Sink.New == nil {
			return fmt.Errorf("plugin %q: Sink needs a spec of kind sink and a New function", p.Sink.Spec.Name)
		}
	}
	if p.Processor != nil {
		if err := p.Processor.Spec.Check(); err != nil {
			return err
		}
		if p.Processor.Spec.Kind != KindProcessor || p.Processor.New == nil {
			return fmt.Errorf("plugin %q: Processor needs a spec of kind processor and a New function", p.Processor.Spec.Name)
		}
	}
	return nil
}

// grpcPlugin is the go-plugin glue for one role; only the server half is used
// in a plugin process.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	source    *SourcePlugin
	sink      *SinkPlugin
	processor *ProcessorPlugin
}

func (g *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if g.source != nil {
		registerSource(s, g.source)
	}
	if g.sink != nil {
		registerSink(s, g.sink)
	}
	if g.processor != nil {
		registerProcessor(s, g.processor)
	}
	return nil
}

func (g *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("the sdk serves plugins; the host has the client")
}
