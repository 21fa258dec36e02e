package sdk

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// ruleSpec declares one parameter of every kind of rule.
func ruleSpec() Spec {
	return Spec{Name: "rules", Version: "1", Kind: KindSink, Params: []Param{
		{Name: "mode", Type: TypeString, Default: "batch", Enum: []string{"batch", "append", "transactional"}},
		{Name: "codecs", Type: TypeStrings, Default: []string{}, Enum: []string{"gzip", "zstd"}},
		{Name: "size", Type: TypeInt, Default: int64(10), Min: 1, Max: int64(64)},
		{Name: "low", Type: TypeInt, Default: int64(0), Min: -1},
		{Name: "ratio", Type: TypeFloat, Default: 0.5, Min: 0.0, Max: 1},
		{Name: "wait", Type: TypeDuration, Default: "1s", Min: "1ms", Max: time.Minute},
		{Name: "topic", Type: TypeString, Default: "t", Pattern: `[a-z]+`},
		{Name: "hosts", Type: TypeStrings, Default: []string{}, Pattern: `[a-z]+:[0-9]+`},
		{Name: "token", Type: TypeString, Default: "a", Secret: true, Enum: []string{"a", "b"}},
	}}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		raw     map[string]any
		param   string // "" = accepted
		message string
		suggest string
	}{
		{"defaults pass their rules", map[string]any{}, "", "", ""},
		{"enum value", map[string]any{"mode": "append"}, "", "", ""},
		{"enum miss with a near value", map[string]any{"mode": "apend"}, "mode", `"apend" is not one of "batch", "append", "transactional"`, "append"},
		{"enum miss, nothing near", map[string]any{"mode": "sideways"}, "mode", `"sideways" is not one of "batch", "append", "transactional"`, ""},
		{"enum is case-sensitive", map[string]any{"mode": "Batch"}, "mode", `"Batch" is not one of`, "batch"},
		{"enum of a list: every element", map[string]any{"codecs": []any{"zstd", "gzip"}}, "", "", ""},
		{"enum of a list: bad element", map[string]any{"codecs": []any{"zstd", "gzp"}}, "codecs", `element 1: "gzp" is not one of "gzip", "zstd"`, "gzip"},
		{"int at min", map[string]any{"size": 1}, "", "", ""},
		{"int at max", map[string]any{"size": 64}, "", "", ""},
		{"int below range", map[string]any{"size": 0}, "size", "0 is outside the range 1 to 64", ""},
		{"int above range", map[string]any{"size": float64(65)}, "size", "65 is outside the range 1 to 64", ""},
		{"int below min only", map[string]any{"low": -2}, "low", "-2 is less than the minimum -1", ""},
		{"float in range", map[string]any{"ratio": 1.0}, "", "", ""},
		{"float out of range", map[string]any{"ratio": 1.5}, "ratio", "1.5 is outside the range 0 to 1", ""},
		{"duration in range", map[string]any{"wait": "30s"}, "", "", ""},
		{"duration too short", map[string]any{"wait": "0s"}, "wait", "0s is outside the range 1ms to 1m0s", ""},
		{"duration too long", map[string]any{"wait": 2 * time.Minute}, "wait", "2m0s is outside the range 1ms to 1m0s", ""},
		{"pattern match", map[string]any{"topic": "orders"}, "", "", ""},
		{"pattern matches the whole value", map[string]any{"topic": "orders2"}, "topic", "\"orders2\" does not match the pattern `[a-z]+`", ""},
		{"pattern of a list", map[string]any{"hosts": []any{"a:1", "b"}}, "hosts", "element 1: \"b\" does not match the pattern `[a-z]+:[0-9]+`", ""},
		{"secret value never shown", map[string]any{"token": "c"}, "token", `the value is not one of "a", "b"`, ""},
	}
	spec := ruleSpec()
	if err := spec.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConfig(spec, "p", tt.raw)
			if tt.param == "" {
				if err != nil {
					t.Fatalf("NewConfig(%v): %v", tt.raw, err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("NewConfig(%v) error = %v, want a *ConfigError", tt.raw, err)
			}
			if len(ce.Params) != 1 {
				t.Fatalf("problems = %v, want one", ce.Params)
			}
			pe := ce.Params[0]
			if pe.Param != tt.param || !strings.HasPrefix(pe.Message, tt.message) || pe.Suggestion != tt.suggest {
				t.Errorf("ParamError = {%q, %q, %q}, want {%q, %q…, %q}", pe.Param, pe.Message, pe.Suggestion, tt.param, tt.message, tt.suggest)
			}
			if tt.suggest != "" && !strings.HasSuffix(err.Error(), fmt.Sprintf("; did you mean %q?", tt.suggest)) {
				t.Errorf("Error() = %q, want it to end with the suggestion", err)
			}
			if spec.Params[len(spec.Params)-1].Secret && strings.Contains(err.Error(), `"c"`) {
				t.Errorf("Error() = %q shows a secret value", err)
			}
		})
	}
}

func TestSpecCheckRules(t *testing.T) {
	tests := []struct {
		name string
		p    Param
		when string // a When value for p
		want string // "" = accepted
	}{
		{"enum with its default", Param{Name: "m", Type: TypeString, Default: "a", Enum: []string{"a", "b"}}, "", ""},
		{"default outside its enum", Param{Name: "m", Type: TypeString, Default: "c", Enum: []string{"a", "b"}}, "", `default of parameter "m" breaks its rules: "c" is not one of`},
		{"zero default outside its enum", Param{Name: "m", Type: TypeString, Enum: []string{"a", "b"}}, "", `"" is not one of`},
		{"required needs no default", Param{Name: "m", Type: TypeString, Required: true, Enum: []string{"a"}}, "", ""},
		{"empty string may be an enum value", Param{Name: "m", Type: TypeString, Enum: []string{"", "PLAIN"}}, "", ""},
		{"repeated enum value", Param{Name: "m", Type: TypeString, Default: "a", Enum: []string{"a", "a"}}, "", `enum value "a" is repeated`},
		{"enum on an int", Param{Name: "n", Type: TypeInt, Enum: []string{"1"}}, "", "enum and pattern apply to"},
		{"list default outside its enum", Param{Name: "l", Type: TypeStrings, Default: []string{"x"}, Enum: []string{"a"}}, "", `element 0: "x" is not one of`},
		{"default below min", Param{Name: "n", Type: TypeInt, Default: int64(0), Min: 1}, "", "0 is less than the minimum 1"},
		{"zero default below min", Param{Name: "n", Type: TypeInt, Min: 1}, "", "0 is less than the minimum 1"},
		{"min above max", Param{Name: "n", Type: TypeInt, Default: int64(5), Min: 10, Max: 1}, "", "min 10 is more than max 1"},
		{"duration min above max", Param{Name: "d", Type: TypeDuration, Default: "1s", Min: "1m", Max: "1s"}, "", "min 1m0s is more than max 1s"},
		{"bound of the wrong type", Param{Name: "n", Type: TypeInt, Default: int64(5), Min: "one"}, "", "min: got string, want int"},
		{"min on a string", Param{Name: "s", Type: TypeString, Min: 1}, "", "min and max apply to"},
		{"min on a bool", Param{Name: "b", Type: TypeBool, Max: 1}, "", "min and max apply to"},
		{"pattern compiles", Param{Name: "s", Type: TypeString, Default: "ab", Pattern: "[a-z]+"}, "", ""},
		{"pattern does not compile", Param{Name: "s", Type: TypeString, Default: "a", Pattern: "[a-"}, "", `pattern "[a-" does not compile`},
		{"default does not match its pattern", Param{Name: "s", Type: TypeString, Default: "a1", Pattern: "[a-z]+"}, "", `"a1" does not match the pattern`},
		{"When value in the enum", Param{Name: "m", Type: TypeString, Default: "a", Enum: []string{"a", "b"}}, "b", ""},
		{"When value outside the enum", Param{Name: "m", Type: TypeString, Default: "a", Enum: []string{"a", "b"}}, "batch", `depends on m = "batch", which is not in its enum`},
		{"pattern on a duration", Param{Name: "d", Type: TypeDuration, Pattern: "1s"}, "", "enum and pattern apply to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "x", Kind: KindSink, Params: []Param{tt.p}}
			if tt.when != "" {
				s.When = []Conditional{{Capability: CapIdempotent, Param: tt.p.Name, Values: []string{tt.when}}}
			}
			err := s.Check()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestConfigError(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Configf("mode %q needs key", "upsert"))
	if !IsConfigError(err) {
		t.Fatal("IsConfigError(Configf(...)) = false")
	}
	if got := err.Error(); got != `wrapped: mode "upsert" needs key` {
		t.Errorf("Error() = %q", got)
	}
	if IsConfigError(errors.New("disk full")) {
		t.Error("IsConfigError of a plain error = true")
	}
}
