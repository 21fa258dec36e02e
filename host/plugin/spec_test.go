package plugin

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
)

// rulesSpec declares every field of a Param, in the Go types a spec coming
// back from the wire holds (int64, float64, time.Duration, []string).
var rulesSpec = sdk.Spec{
	Name: "rules", Version: "1.2.3", Kind: sdk.KindSink, Summary: "A sink with rules.",
	Params: []sdk.Param{
		{Name: "mode", Type: sdk.TypeString, Default: "batch", Doc: "The mode.", Enum: []string{"batch", "append"}},
		{Name: "codecs", Type: sdk.TypeStrings, Default: []string{"zstd"}, Enum: []string{"gzip", "zstd"}, Pattern: `[a-z]+`},
		{Name: "size", Type: sdk.TypeInt, Default: int64(10), Min: int64(1), Max: int64(1) << 40},
		{Name: "ratio", Type: sdk.TypeFloat, Default: 0.25, Min: 0.0, Max: 0.5},
		{Name: "wait", Type: sdk.TypeDuration, Default: time.Second, Min: time.Millisecond, Max: 90 * time.Second},
		{Name: "topic", Type: sdk.TypeString, Required: true, Pattern: `[a-z][a-z0-9.-]*`},
		{Name: "secret", Type: sdk.TypeString, Default: "", Secret: true},
		{Name: "flag", Type: sdk.TypeBool, Default: true},
	},
}

// rulesSink refuses topic "refused" at Open with an sdk.ConfigError.
type rulesSink struct{}

func (rulesSink) Open(_ context.Context, cfg sdk.Config) error {
	if cfg.String("topic") == "refused" {
		return sdk.Configf("topic %q is refused when mode is %q", "refused", cfg.String("mode"))
	}
	if cfg.String("topic") == "broken" {
		return errors.New("the system is down")
	}
	return nil
}
func (rulesSink) Write(context.Context, sdk.Batch) error { return nil }
func (rulesSink) Close(context.Context) error            { return nil }

var testPlugins = map[string]sdk.Plugin{
	"rules": {Sink: &sdk.SinkPlugin{Spec: rulesSpec, New: func() sdk.Sink { return rulesSink{} }}},
}

func startRules(t *testing.T) *Process {
	t.Helper()
	l := &Loader{Exe: os.Args[0], Bundled: testPlugins}
	p, err := l.Start(context.Background(), sdk.KindSink, "rules", os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// TestSpecRoundTrip: a spec, its parameters' rules included, reaches the
// host over the wire exactly as the plugin declared it.
func TestSpecRoundTrip(t *testing.T) {
	p := startRules(t)
	if !reflect.DeepEqual(p.Spec, rulesSpec) {
		t.Errorf("spec over the wire:\n%#v\nwant\n%#v", p.Spec, rulesSpec)
	}
}

// TestOpenConfigError: a configuration the plugin refuses at Open, by its
// spec's rules or by an sdk.ConfigError, is a *ConfigError whose message
// reads once; another Open error is not.
func TestOpenConfigError(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		config bool   // a *ConfigError
		want   string // the whole message
	}{
		{"rule broken (the host skipped validation)", map[string]any{"topic": "t", "mode": "apend"}, true,
			`sink "rules": parameter "mode": "apend" is not one of "batch", "append"; did you mean "append"?`},
		{"refused by Open", map[string]any{"topic": "refused"}, true,
			`sink "rules": topic "refused" is refused when mode is "batch"`},
		{"other error", map[string]any{"topic": "broken"}, false,
			`sink "rules": open: the system is down`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startRules(t)
			err := p.Sink.Open(context.Background(), "demo", tt.values)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			var cerr *ConfigError
			if errors.As(err, &cerr) != tt.config {
				t.Errorf("Open error %T %v: is a *ConfigError = %t, want %t", err, err, !tt.config, tt.config)
			}
			if err.Error() != tt.want {
				t.Errorf("Open error = %q\nwant          %q", err, tt.want)
			}
			if strings.Count(err.Error(), "open") > 1 {
				t.Errorf("Open error stutters: %q", err)
			}
		})
	}
	p := startRules(t)
	if err := p.Sink.Open(context.Background(), "demo", map[string]any{"topic": "fine"}); err != nil {
		t.Errorf("Open with a good configuration: %v", err)
	}
}
