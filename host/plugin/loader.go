package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/internal/proc"
	"github.com/connectd/connectd/internal/protocol"
	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Prefix is how third-party plugin executables are named: connectd-plugin-<name>.
const Prefix = "connectd-plugin-"

// ServeArg is the hidden argument with which the connectd binary, re-executed
// as a child, serves one of its bundled plugins: `connectd __plugin <name>`.
const ServeArg = "__plugin"

// Loader finds plugins and starts their processes. Bundled plugins are served
// by Exe itself re-executed as a child; any other name is an executable
// connectd-plugin-<name> in Dir, or a path to an executable when the name
// contains a slash.
type Loader struct {
	Exe     string                // the connectd binary
	Dir     string                // the plugin directory ("" = none)
	Bundled map[string]sdk.Plugin // plugins linked into Exe
	Stderr  io.Writer             // where plugin stderr goes (nil: discarded)

	mu    sync.Mutex
	specs map[string]sdk.Spec
}

func roleName(kind sdk.Kind, name string) string { return fmt.Sprintf("%s %q", kind, name) }

// BundledSpecs returns the specs of every bundled plugin role, sorted by name and kind.
func (l *Loader) BundledSpecs() []sdk.Spec {
	var out []sdk.Spec
	for _, p := range l.Bundled {
		if p.Source != nil {
			out = append(out, p.Source.Spec)
		}
		if p.Sink != nil {
			out = append(out, p.Sink.Spec)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind > out[j].Kind
	})
	return out
}

// ThirdParty lists the executables in Dir that look like plugins.
func (l *Loader) ThirdParty() []string {
	if l.Dir == "" {
		return nil
	}
	m, _ := filepath.Glob(filepath.Join(l.Dir, Prefix+"*"))
	sort.Strings(m)
	return m
}

// command returns how to start the plugin called name, or an error that
// explains where it was looked for.
func (l *Loader) command(name string) (*exec.Cmd, error) {
	if strings.ContainsRune(name, '/') {
		if err := executable(name); err != nil {
			return nil, fmt.Errorf("plugin %s: %w", name, err)
		}
		return exec.Command(name), nil
	}
	if _, ok := l.Bundled[name]; ok {
		return exec.Command(l.Exe, ServeArg, name), nil
	}
	var names []string
	for n := range l.Bundled {
		names = append(names, n)
	}
	sort.Strings(names)
	if l.Dir == "" {
		return nil, fmt.Errorf("unknown plugin %q: not bundled (bundled: %s) and no plugin directory is set (--plugin-dir or plugin_dir)", name, strings.Join(names, ", "))
	}
	path := filepath.Join(l.Dir, Prefix+name)
	if err := executable(path); err != nil {
		return nil, fmt.Errorf("unknown plugin %q: not bundled (bundled: %s) and %v", name, strings.Join(names, ", "), err)
	}
	return exec.Command(path), nil
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("no executable %s", path)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

// Spec returns the spec of the plugin role. A bundled plugin answers without a
// process; a third-party plugin is started, asked, and stopped (the answer is
// kept for the Loader's life).
func (l *Loader) Spec(kind sdk.Kind, name string) (sdk.Spec, error) {
	if p, ok := l.Bundled[name]; ok && !strings.ContainsRune(name, '/') {
		switch {
		case kind == sdk.KindSource && p.Source != nil:
			return p.Source.Spec, nil
		case kind == sdk.KindSink && p.Sink != nil:
			return p.Sink.Spec, nil
		}
		return sdk.Spec{}, fmt.Errorf("plugin %q has no %s", name, kind)
	}
	key := string(kind) + "\x00" + name
	l.mu.Lock()
	s, ok := l.specs[key]
	l.mu.Unlock()
	if ok {
		return s, nil
	}
	p, err := l.Start(context.Background(), kind, name, os.Environ())
	if err != nil {
		return sdk.Spec{}, err
	}
	defer p.Kill()
	l.mu.Lock()
	if l.specs == nil {
		l.specs = map[string]sdk.Spec{}
	}
	l.specs[key] = p.Spec
	l.mu.Unlock()
	return p.Spec, nil
}

// Process is one running plugin process serving one role.
type Process struct {
	Spec     sdk.Spec
	Features []string
	Source   *Source // set for a source
	Sink     *Sink   // set for a sink
	client   *goplugin.Client
	stderr   *tail
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// Kill stops the process (gracefully if it answers, then by force).
func (p *Process) Kill() { p.client.Kill() }

// Has reports whether the plugin implements an optional interface
// ("replayer", "ender", "transactional", "lister").
func (p *Process) Has(feature string) bool {
	for _, f := range p.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// Stderr returns the last lines the plugin wrote to stderr.
func (p *Process) Stderr() string { return p.stderr.String() }

// Start starts the plugin process for a role with environment env and
// returns it connected. A plugin that dies at start-up is an error that
// quotes the end of its stderr.
func (l *Loader) Start(ctx context.Context, kind sdk.Kind, name string, env []string) (*Process, error) {
	cmd, err := l.command(name)
	if err != nil {
		return nil, err
	}
	cmd.Env = env
	proc.KillWithParent(cmd)
	t := &tail{fwd: l.Stderr}
	role := protocol.RoleSource
	if kind == sdk.KindSink {
		role = protocol.RoleSink
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		Plugins:          goplugin.PluginSet{role: &clientPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true, // cmd.Env is the whole environment (Env strips fault points on restart)
		Stderr:           t,
		SyncStderr:       io.Discard,
		StartTimeout:     30 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		GRPCDialOptions:  protocol.DialOptions(),
	})
	fail := func(err error) (*Process, error) {
		client.Kill()
		msg := fmt.Sprintf("start %s: %v", roleName(kind, name), err)
		if s := strings.TrimSpace(t.String()); s != "" {
			msg += "; its stderr ends with:\n" + s
		}
		return nil, errors.New(msg)
	}
	rpc, err := client.Client()
	if err != nil {
		return fail(err)
	}
	raw, err := rpc.Dispense(role)
	if err != nil {
		return fail(fmt.Errorf("it does not offer a %s: %w", kind, err))
	}
	conn := raw.(*grpc.ClientConn)
	p := &Process{client: client, stderr: t}
	var sp *pb.PluginSpec
	label := roleName(kind, name)
	if kind == sdk.KindSource {
		c := pb.NewSourceClient(conn)
		p.Source = &Source{name: label, client: c, conn: conn}
		sp, err = c.Spec(ctx, &pb.Empty{})
	} else {
		c := pb.NewSinkClient(conn)
		p.Sink = &Sink{name: label, client: c, conn: conn}
		sp, err = c.Spec(ctx, &pb.Empty{})
	}
	if err != nil {
		return fail(fmt.Errorf("spec: %w", err))
	}
	if p.Spec, p.Features, err = specFromPB(sp); err != nil {
		return fail(err)
	}
	if p.Spec.Kind != kind {
		return fail(fmt.Errorf("it says its %s is of kind %q", kind, p.Spec.Kind))
	}
	return p, nil
}

// Env returns the environment for a plugin process: the host's, without the
// fault points when restart is true (a fault fires once per run, not again in
// the process that replaces the one it killed).
func Env(restart bool) []string {
	env := os.Environ()
	if !restart {
		return env
	}
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, fault.Env+"=") {
			out = append(out, e)
		}
	}
	return out
}

// clientPlugin is the go-plugin glue on the host side: it hands back the
// gRPC connection, which the host wraps in Source or Sink.
type clientPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (clientPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host does not serve plugins")
}

func (clientPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// tail keeps the last few KiB written to it and forwards everything.
type tail struct {
	mu  sync.Mutex
	buf []byte
	fwd io.Writer
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	t.mu.Unlock()
	if t.fwd != nil {
		_, _ = t.fwd.Write(p)
	}
	return len(p), nil
}

func (t *tail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
