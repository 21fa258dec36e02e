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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	// TLS turns on go-plugin's automatic mTLS on every plugin channel, as
	// TLSEnv does. Without either, a plugin is reached over a unix socket in
	// a directory of mode 0700 (see SocketDir) without TLS; over TCP (on
	// Windows, or a plugin that answers with a TCP address) mTLS is always on.
	TLS bool

	mu        sync.Mutex
	specs     map[string][]sdk.Spec // by name, of third-party plugins
	sockDir   string                // where plugins put their sockets ("" until one starts)
	sockUsers int                   // processes started with sockDir and not yet stopped
	swept     bool                  // stale socket directories were removed (once per Loader)
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
		if p.Processor != nil {
			out = append(out, p.Processor.Spec)
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

// ErrNoRole is in the chain of the error that Spec and Start return when the
// plugin does not offer the role asked for (a sink-only plugin asked for a
// source): errors.Is(err, ErrNoRole). The error's message names the plugin and
// the role, as in `plugin "jsonl" offers no source`.
var ErrNoRole = errors.New("the plugin does not offer this role")

// noRole is the error for a role a plugin does not offer.
type noRole struct {
	name string
	kind sdk.Kind
}

func (e *noRole) Error() string        { return fmt.Sprintf("plugin %q offers no %s", e.name, e.kind) }
func (e *noRole) Is(target error) bool { return target == ErrNoRole }

// Spec returns the spec of the plugin role. A bundled plugin answers without a
// process; a third-party plugin is started once, asked for every role over one
// connection, and stopped (the answers are kept for the Loader's life). A
// role the plugin does not offer is an error for which errors.Is(err,
// ErrNoRole) holds.
func (l *Loader) Spec(kind sdk.Kind, name string) (sdk.Spec, error) {
	specs, err := l.Specs(name)
	if err != nil {
		return sdk.Spec{}, err
	}
	for _, s := range specs {
		if s.Kind == kind {
			return s, nil
		}
	}
	return sdk.Spec{}, &noRole{name: name, kind: kind}
}

// Specs returns the specs of the roles the plugin offers: its source's, its
// sink's, then its processor's. A bundled plugin answers without a process; a
// third-party plugin is started once and asked for every role over one
// connection (the answer is kept for the Loader's life). A plugin that offers
// no role, or cannot be started or asked, is an error that quotes the end of
// its stderr.
func (l *Loader) Specs(name string) ([]sdk.Spec, error) {
	if p, ok := l.Bundled[name]; ok && !strings.ContainsRune(name, '/') {
		var out []sdk.Spec
		if p.Source != nil {
			out = append(out, p.Source.Spec)
		}
		if p.Sink != nil {
			out = append(out, p.Sink.Spec)
		}
		if p.Processor != nil {
			out = append(out, p.Processor.Spec)
		}
		return out, nil
	}
	l.mu.Lock()
	specs, ok := l.specs[name]
	l.mu.Unlock()
	if ok {
		return specs, nil
	}
	label := fmt.Sprintf("plugin %q", name)
	p, err := l.connect(label, name, os.Environ())
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	for _, kind := range []sdk.Kind{sdk.KindSource, sdk.KindSink, sdk.KindProcessor} {
		s, _, err := p.spec(context.Background(), kind, name)
		if errors.Is(err, ErrNoRole) {
			continue
		}
		if err != nil {
			return nil, p.fail(label, fmt.Errorf("%s: %w", kind, err))
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 {
		return nil, p.fail(label, errors.New("it offers no source, sink or processor (its Spec calls of connector.v1.Source, connector.v1.Sink and connector.v1.Processor are all unimplemented)"))
	}
	l.mu.Lock()
	if l.specs == nil {
		l.specs = map[string][]sdk.Spec{}
	}
	l.specs[name] = specs
	l.mu.Unlock()
	return specs, nil
}

// Process is one running plugin process serving one role.
type Process struct {
	Spec      sdk.Spec
	Features  []protocol.Feature
	Source    *Source    // set for a source
	Sink      *Sink      // set for a sink
	Processor *Processor // set for a processor
	client    *goplugin.Client
	conn      *grpc.ClientConn
	stderr    *tail
	cmd       *exec.Cmd
	transport string    // see Transport
	release   func()    // gives back the socket directory, once
	released  sync.Once // for release
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// Kill stops the process (gracefully if it answers, then by force). It waits
// for a graceful stop as long as the process is alive, so a process that no
// longer answers (hung, or stopped by SIGSTOP) must be ended with Abort.
func (p *Process) Kill() {
	p.client.Kill()
	p.done()
}

// Abort ends the process at once, without asking it (SIGKILL on Unix, which
// ends a stopped process too), then releases what the client holds for it.
// It is for a process that did not answer a call in time.
func (p *Process) Abort() {
	if pid := p.Pid(); pid > 0 {
		_ = proc.Kill(pid) // already gone: Kill below finds it exited
	}
	p.Kill()
}

// done gives back what the process held of the Loader (its socket file and
// its share of the socket directory), once.
func (p *Process) done() {
	if p.release != nil {
		p.released.Do(p.release)
	}
}

// Transport says how the host reaches the process: "unix" (a unix socket in
// the Loader's socket directory, no TLS), "unix+mtls" (the same with
// go-plugin's automatic mTLS, as Loader.TLS asks) or "tcp+mtls".
func (p *Process) Transport() string { return p.transport }

// Pid is the process's id, or 0 when it was not started.
func (p *Process) Pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Has reports whether the plugin implements the optional interface feature
// (it listed it in its spec).
func (p *Process) Has(feature protocol.Feature) bool {
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
// returns it connected. A plugin that does not offer the role is an error for
// which errors.Is(err, ErrNoRole) holds; one that dies at start-up is an error
// that quotes the end of its stderr.
func (l *Loader) Start(ctx context.Context, kind sdk.Kind, name string, env []string) (*Process, error) {
	label := roleName(kind, name)
	p, err := l.connect(label, name, env)
	if err != nil {
		return nil, err
	}
	p.Spec, p.Features, err = p.spec(ctx, kind, name)
	if errors.Is(err, ErrNoRole) {
		p.Kill()
		return nil, err
	}
	if err != nil {
		return nil, p.fail(label, err)
	}
	switch kind {
	case sdk.KindSource:
		p.Source = &Source{name: label, client: pb.NewSourceClient(p.conn), conn: p.conn}
	case sdk.KindSink:
		p.Sink = &Sink{name: label, client: pb.NewSinkClient(p.conn), conn: p.conn}
	default:
		p.Processor = &Processor{name: label, client: pb.NewProcessorClient(p.conn), conn: p.conn}
	}
	return p, nil
}

// connect starts the plugin process called name with environment env and
// connects to it, without asking for a role yet: every role's service is
// reached over the one connection. label names it in errors. A plugin that
// answers with a TCP address when the host offered no TLS is started again
// with mTLS: a plugin channel over TCP always has it.
func (l *Loader) connect(label, name string, env []string) (*Process, error) {
	tls, err := TLSFromEnv()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	p, err := l.start(label, name, env, tls || l.TLS || overTCP)
	if errors.Is(err, errTCPWithoutTLS) {
		p, err = l.start(label, name, env, true)
	}
	return p, err
}

// start is connect with mTLS on or off.
func (l *Loader) start(label, name string, env []string, tls bool) (*Process, error) {
	cmd, err := l.command(name)
	if err != nil {
		return nil, err
	}
	dir, err := l.acquireDir()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	cmd.Env = append(pluginEnv(env),
		fmt.Sprintf("%s=%d", protocol.HostPIDEnv, os.Getpid()),
		// go-plugin's servers make their socket in this directory
		// (go-plugin sets it itself only with a RunnerFunc).
		goplugin.EnvUnixSocketDir+"="+dir)
	proc.KillWithParent(cmd)
	t := &tail{fwd: l.Stderr}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		Plugins:          roles, // the handshake checks the protocol version against a set
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         tls,
		SkipHostEnv:      true, // cmd.Env is the whole environment (Env strips fault points on restart)
		Stderr:           t,
		SyncStderr:       io.Discard,
		StartTimeout:     30 * time.Second,
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		GRPCDialOptions:  protocol.DialOptions(),
	}
	client := goplugin.NewClient(cfg)
	p := &Process{client: client, stderr: t, cmd: cmd}
	var socket string
	p.release = func() { l.releaseDir(dir, socket) }
	addr, err := startClient(client, tls)
	if errors.Is(err, errTCPWithoutTLS) {
		p.Abort() // not a single call on that channel, Shutdown included
		return nil, err
	}
	if err != nil {
		return nil, p.fail(label, err)
	}
	if addr.Network() == "unix" {
		socket = addr.String()
	}
	p.transport = addr.Network()
	if tls {
		// go-plugin takes the plugin's certificate from the handshake
		// line; without one it would dial TLS and fail on an unknown
		// authority at the first call.
		if cfg.TLSConfig == nil || cfg.TLSConfig.RootCAs == nil {
			if pid := p.Pid(); pid > 0 {
				_ = proc.Kill(pid) // no call on a channel that cannot be trusted, Shutdown included
			}
			return nil, p.fail(label, errors.New("the host asked for mTLS (it set PLUGIN_CLIENT_CERT) and the plugin's handshake line has no server certificate in its 6th field"))
		}
		p.transport += "+mtls"
	}
	rpc, err := client.Client()
	if err != nil {
		return nil, p.fail(label, err)
	}
	// One gRPC connection reaches every role's service; which roles the
	// plugin serves is learnt from their Spec calls (go-plugin's Dispense
	// would not ask the plugin).
	g, ok := rpc.(*goplugin.GRPCClient)
	if !ok {
		return nil, p.fail(label, fmt.Errorf("go-plugin connected with %T, not gRPC", rpc))
	}
	p.conn = g.Conn
	return p, nil
}

// spec asks the plugin for the spec of its kind role. A plugin that does not
// serve the role's service (the call is Unimplemented, as gRPC answers for a
// service that is not registered) does not offer it: the error is a noRole.
func (p *Process) spec(ctx context.Context, kind sdk.Kind, name string) (sdk.Spec, []protocol.Feature, error) {
	var sp *pb.PluginSpec
	var err error
	switch kind {
	case sdk.KindSource:
		sp, err = pb.NewSourceClient(p.conn).Spec(ctx, &pb.Empty{})
	case sdk.KindSink:
		sp, err = pb.NewSinkClient(p.conn).Spec(ctx, &pb.Empty{})
	case sdk.KindProcessor:
		sp, err = pb.NewProcessorClient(p.conn).Spec(ctx, &pb.Empty{})
	default:
		return sdk.Spec{}, nil, fmt.Errorf("no plugin role of kind %q", kind)
	}
	if status.Code(err) == codes.Unimplemented {
		return sdk.Spec{}, nil, &noRole{name: name, kind: kind}
	}
	if err != nil {
		return sdk.Spec{}, nil, fmt.Errorf("spec: %w", err)
	}
	s, features, err := specFromPB(sp)
	if err != nil {
		return sdk.Spec{}, nil, err
	}
	if s.Kind != kind {
		return sdk.Spec{}, nil, fmt.Errorf("it says its %s is of kind %q", kind, s.Kind)
	}
	return s, features, nil
}

// fail stops the process and returns err as a start-up failure of label,
// with the end of the plugin's stderr.
func (p *Process) fail(label string, err error) error {
	p.Kill()
	msg := fmt.Sprintf("start %s: %v", label, err)
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		msg += "; its stderr ends with:\n" + s
	}
	return errors.New(msg)
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

// roles is the host's go-plugin plugin set. go-plugin needs one to accept the
// handshake's protocol version; the host never dispenses from it (the
// connection is taken as is, and every role is reached over it).
var roles = goplugin.PluginSet{protocol.RoleSource: clientPlugin{}, protocol.RoleSink: clientPlugin{}, protocol.RoleProcessor: clientPlugin{}}

// clientPlugin is the go-plugin glue on the host side, for roles.
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
