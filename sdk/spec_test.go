package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
)

func TestConvert(t *testing.T) {
	tests := []struct {
		name    string
		typ     Type
		in      any
		want    any
		wantErr string
	}{
		{"string", TypeString, "x", "x", ""},
		{"empty string", TypeString, "", "", ""},
		{"string from int", TypeString, 1, nil, "got int, want string"},
		{"string from bytes", TypeString, []byte("x"), nil, "got []uint8, want string"},
		{"string from nil", TypeString, nil, nil, "got <nil>, want string"},

		{"int from int", TypeInt, 3, int64(3), ""},
		{"int from int64", TypeInt, int64(-7), int64(-7), ""},
		{"int from whole float", TypeInt, float64(42), int64(42), ""},
		{"int from negative whole float", TypeInt, float64(-2), int64(-2), ""},
		{"int from zero float", TypeInt, float64(0), int64(0), ""},
		{"int from fractional float", TypeInt, 2.5, nil, "2.5 is not a whole number"},
		{"int from tiny fraction", TypeInt, 0.001, nil, "not a whole number"},
		{"int from huge float", TypeInt, 1e19, nil, "not a whole number"},
		{"int from NaN", TypeInt, math.NaN(), nil, "not a whole number"},
		{"int from string", TypeInt, "3", nil, "got string, want int"},
		{"int from bool", TypeInt, true, nil, "got bool, want int"},
		{"int from int32", TypeInt, int32(3), nil, "got int32, want int"},

		{"float from float", TypeFloat, 1.5, 1.5, ""},
		{"float from int", TypeFloat, 2, float64(2), ""},
		{"float from int64", TypeFloat, int64(-4), float64(-4), ""},
		{"float from string", TypeFloat, "1.5", nil, "got string, want float"},
		{"float from bool", TypeFloat, false, nil, "got bool, want float"},

		{"bool true", TypeBool, true, true, ""},
		{"bool false", TypeBool, false, false, ""},
		{"bool from string", TypeBool, "true", nil, "got string, want bool"},
		{"bool from int", TypeBool, 1, nil, "got int, want bool"},

		{"duration value", TypeDuration, 3 * time.Second, 3 * time.Second, ""},
		{"duration string", TypeDuration, "250ms", 250 * time.Millisecond, ""},
		{"duration compound", TypeDuration, "1m30s", 90 * time.Second, ""},
		{"duration empty", TypeDuration, "", time.Duration(0), ""},
		{"duration bad string", TypeDuration, "soon", nil, `"soon" is not a duration`},
		{"duration unitless", TypeDuration, "5", nil, `"5" is not a duration`},
		{"duration from int", TypeDuration, 5, nil, "got int, want duration"},
		{"duration from float", TypeDuration, 5.0, nil, "got float64, want duration"},

		{"strings", TypeStrings, []string{"a", "b"}, []string{"a", "b"}, ""},
		{"strings empty", TypeStrings, []string{}, []string{}, ""},
		{"strings from any", TypeStrings, []any{"a", "b"}, []string{"a", "b"}, ""},
		{"strings from empty any", TypeStrings, []any{}, []string{}, ""},
		{"strings with a number", TypeStrings, []any{"a", 1.0}, nil, "element 1 is float64, want string"},
		{"strings from string", TypeStrings, "a", nil, "got string, want list(string)"},
		{"strings from ints", TypeStrings, []int{1}, nil, "got []int, want list(string)"},

		{"unknown type", Type("map"), "x", nil, `unknown parameter type "map"`},
		{"empty type", Type(""), "x", nil, `unknown parameter type ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Convert(tt.typ, tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Convert(%s, %#v) = %#v, want error containing %q", tt.typ, tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Convert(%s, %#v) error %q, want it to contain %q", tt.typ, tt.in, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("Convert returned %#v with its error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Convert(%s, %#v): %v", tt.typ, tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Convert(%s, %#v) = %#v (%T), want %#v (%T)", tt.typ, tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}

// testSpec is a valid sink spec used by several tests.
func testSpec() Spec {
	return Spec{
		Name:         "files",
		Version:      "1.0.0",
		Kind:         KindSink,
		Capabilities: []Capability{CapTransactional},
		When: []Conditional{
			{Capability: CapIdempotent, Param: "mode", Values: []string{"batch", "replace"}},
		},
		Params: []Param{
			{Name: "path", Type: TypeString, Required: true},
			{Name: "mode", Type: TypeString, Default: "append"},
			{Name: "count", Type: TypeInt, Default: int64(10)},
			{Name: "ratio", Type: TypeFloat},
			{Name: "sync", Type: TypeBool, Default: true},
			{Name: "every", Type: TypeDuration, Default: "250ms"},
			{Name: "timeout", Type: TypeDuration},
			{Name: "tags", Type: TypeStrings},
		},
	}
}

func TestSpecCheck(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Spec)
		wantErr string
	}{
		{"valid sink", func(*Spec) {}, ""},
		{"valid source", func(s *Spec) {
			s.Kind = KindSource
			s.Capabilities = []Capability{CapReplayable}
			s.When = []Conditional{{Capability: CapReplayable, Param: "sync", Values: []string{"true"}}}
		}, ""},
		{"no capabilities", func(s *Spec) { s.Capabilities, s.When = nil, nil }, ""},
		{"duration default as value", func(s *Spec) { s.Params[5].Default = time.Second }, ""},
		{"int default as int", func(s *Spec) { s.Params[2].Default = 3 }, ""},
		{"no name", func(s *Spec) { s.Name = "" }, "spec has no name"},
		{"bad kind", func(s *Spec) { s.Kind = "filter" }, `kind "filter" is none of "source", "sink" and "processor"`},
		{"empty kind", func(s *Spec) { s.Kind = "" }, `kind "" is none of`},
		{"deterministic processor", func(s *Spec) {
			s.Kind = KindProcessor
			s.Capabilities = []Capability{CapDeterministic}
			s.When = []Conditional{{Capability: CapDeterministic, Param: "sync", Values: []string{"true"}}}
		}, ""},
		{"deterministic sink", func(s *Spec) { s.Capabilities = []Capability{CapDeterministic} },
			`capability "deterministic" does not apply to a sink`},
		{"deterministic source", func(s *Spec) {
			s.Kind = KindSource
			s.Capabilities = []Capability{CapDeterministic}
			s.When = nil
		}, `capability "deterministic" does not apply to a source`},
		{"idempotent processor", func(s *Spec) {
			s.Kind = KindProcessor
			s.Capabilities = []Capability{CapIdempotent}
			s.When = nil
		}, `capability "idempotent" does not apply to a processor`},
		{"replayable processor", func(s *Spec) {
			s.Kind = KindProcessor
			s.Capabilities = nil
			s.When = []Conditional{{Capability: CapReplayable, Param: "sync", Values: []string{"true"}}}
		}, `capability "replayable" does not apply to a processor`},
		{"replayable sink", func(s *Spec) { s.Capabilities = []Capability{CapReplayable} },
			`capability "replayable" does not apply to a sink`},
		{"idempotent source", func(s *Spec) {
			s.Kind = KindSource
			s.Capabilities = []Capability{CapIdempotent}
			s.When = nil
		}, `capability "idempotent" does not apply to a source`},
		{"transactional source", func(s *Spec) {
			s.Kind = KindSource
			s.Capabilities = []Capability{CapTransactional}
			s.When = nil
		}, `capability "transactional" does not apply to a source`},
		{"unknown capability", func(s *Spec) { s.Capabilities = []Capability{"magic"} },
			`capability "magic" does not apply to a sink`},
		{"conditional capability on wrong kind", func(s *Spec) {
			s.When = []Conditional{{Capability: CapReplayable, Param: "mode", Values: []string{"x"}}}
		}, `capability "replayable" does not apply to a sink`},
		{"conditional on undeclared parameter", func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "nope", Values: []string{"x"}}}
		}, `capability "idempotent" depends on undeclared parameter "nope"`},
		{"duplicate parameter", func(s *Spec) { s.Params = append(s.Params, Param{Name: "path", Type: TypeString}) },
			`parameter name "path" is empty or repeated`},
		{"empty parameter name", func(s *Spec) { s.Params = append(s.Params, Param{Type: TypeString}) },
			`parameter name "" is empty or repeated`},
		{"int default given as string", func(s *Spec) { s.Params[2].Default = "10" },
			`default of "count": got string, want int`},
		{"int default fractional", func(s *Spec) { s.Params[2].Default = 1.5 },
			`default of "count": 1.5 is not a whole number`},
		{"bool default given as string", func(s *Spec) { s.Params[4].Default = "true" },
			`default of "sync": got string, want bool`},
		{"bad duration default", func(s *Spec) { s.Params[5].Default = "later" },
			`default of "every": "later" is not a duration`},
		{"strings default as string", func(s *Spec) { s.Params[7].Default = "a" },
			`default of "tags": got string, want list(string)`},
		{"unknown type without default", func(s *Spec) { s.Params = append(s.Params, Param{Name: "m", Type: "map"}) },
			`parameter "m": unknown parameter type "map"`},
		{"unknown type with default", func(s *Spec) { s.Params = append(s.Params, Param{Name: "m", Type: "map", Default: "x"}) },
			`default of "m": unknown parameter type "map"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			tt.mod(&s)
			err := s.Check()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecHasAndParam(t *testing.T) {
	s := testSpec()
	if !s.Has(CapTransactional) {
		t.Error("Has(transactional) = false")
	}
	if s.Has(CapIdempotent) {
		t.Error("Has(idempotent) = true; conditional capabilities are not declared outright")
	}
	p, ok := s.Param("count")
	if !ok || p.Type != TypeInt || p.Default != int64(10) {
		t.Errorf("Param(count) = %+v, %v", p, ok)
	}
	if p, ok := s.Param("nope"); ok || p.Name != "" {
		t.Errorf("Param(nope) = %+v, %v; want zero, false", p, ok)
	}
}

func TestCapabilitiesFor(t *testing.T) {
	conditional := func(mod func(*Spec)) Spec {
		s := testSpec()
		mod(&s)
		return s
	}
	tests := []struct {
		name   string
		spec   Spec
		values map[string]any
		want   []Capability
	}{
		{"default does not match", testSpec(), nil, []Capability{CapTransactional}},
		{"value matches", testSpec(), map[string]any{"mode": "batch"}, []Capability{CapTransactional, CapIdempotent}},
		{"second value matches", testSpec(), map[string]any{"mode": "replace"}, []Capability{CapTransactional, CapIdempotent}},
		{"value does not match", testSpec(), map[string]any{"mode": "append"}, []Capability{CapTransactional}},
		{"other params do not matter", testSpec(), map[string]any{"path": "batch"}, []Capability{CapTransactional}},
		{"default matches", conditional(func(s *Spec) { s.Params[1].Default = "batch" }), nil,
			[]Capability{CapTransactional, CapIdempotent}},
		{"value overrides matching default", conditional(func(s *Spec) { s.Params[1].Default = "batch" }),
			map[string]any{"mode": "append"}, []Capability{CapTransactional}},
		{"no default, no value", conditional(func(s *Spec) { s.Params[1].Default = nil }), nil,
			[]Capability{CapTransactional}},
		{"bool compared as text", conditional(func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "sync", Values: []string{"true"}}}
		}), map[string]any{"sync": true}, []Capability{CapTransactional, CapIdempotent}},
		{"bool default compared as text", conditional(func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "sync", Values: []string{"true"}}}
		}), nil, []Capability{CapTransactional, CapIdempotent}},
		{"bool false", conditional(func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "sync", Values: []string{"true"}}}
		}), map[string]any{"sync": false}, []Capability{CapTransactional}},
		{"JSON number compared as text", conditional(func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "count", Values: []string{"3"}}}
		}), map[string]any{"count": float64(3)}, []Capability{CapTransactional, CapIdempotent}},
		{"int default compared as text", conditional(func(s *Spec) {
			s.When = []Conditional{{Capability: CapIdempotent, Param: "count", Values: []string{"10"}}}
		}), nil, []Capability{CapTransactional, CapIdempotent}},
		{"several conditionals", conditional(func(s *Spec) {
			s.Capabilities = nil
			s.When = []Conditional{
				{Capability: CapIdempotent, Param: "mode", Values: []string{"batch"}},
				{Capability: CapTransactional, Param: "sync", Values: []string{"true"}},
			}
		}), map[string]any{"mode": "batch", "sync": true}, []Capability{CapIdempotent, CapTransactional}},
		{"nothing declared", Spec{Name: "x", Kind: KindSink}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spec.Check(); err != nil {
				t.Fatalf("test spec is invalid: %v", err)
			}
			got := tt.spec.CapabilitiesFor(tt.values)
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("CapabilitiesFor(%v) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func TestCapabilitiesForDoesNotAlias(t *testing.T) {
	s := testSpec()
	caps := make([]Capability, 1, 8)
	caps[0] = CapTransactional
	s.Capabilities = caps
	got := s.CapabilitiesFor(map[string]any{"mode": "batch"})
	if len(got) != 2 {
		t.Fatalf("CapabilitiesFor = %v", got)
	}
	got[0] = "changed"
	if s.Capabilities[0] != CapTransactional || len(s.Capabilities) != 1 {
		t.Errorf("CapabilitiesFor aliases or changes the spec's capabilities: %v", s.Capabilities)
	}
	if extra := caps[:2][1]; extra != "" {
		t.Errorf("CapabilitiesFor wrote into the spec's spare capacity: %q", extra)
	}
}

func TestNewConfig(t *testing.T) {
	tests := []struct {
		name    string
		raw     map[string]any
		want    map[string]any // expected values (all of them when wantErr is empty)
		wantErr []string
	}{
		{
			name: "defaults and zero values",
			raw:  map[string]any{"path": "/tmp/x"},
			want: map[string]any{
				"path": "/tmp/x", "mode": "append", "count": int64(10), "ratio": float64(0), "sync": true,
				"every": 250 * time.Millisecond, "timeout": time.Duration(0), "tags": []string{},
			},
		},
		{
			name: "values given",
			raw: map[string]any{
				"path": "p", "mode": "batch", "count": 3, "ratio": 0.5, "sync": false,
				"every": "1m30s", "timeout": 2 * time.Second, "tags": []string{"a", "b"},
			},
			want: map[string]any{
				"path": "p", "mode": "batch", "count": int64(3), "ratio": 0.5, "sync": false,
				"every": 90 * time.Second, "timeout": 2 * time.Second, "tags": []string{"a", "b"},
			},
		},
		{
			name: "JSON shapes",
			raw:  map[string]any{"path": "p", "count": float64(7), "ratio": float64(2), "tags": []any{"x"}, "timeout": "1h"},
			want: map[string]any{
				"path": "p", "mode": "append", "count": int64(7), "ratio": float64(2), "sync": true,
				"every": 250 * time.Millisecond, "timeout": time.Hour, "tags": []string{"x"},
			},
		},
		{
			name:    "unknown parameter lists the valid names",
			raw:     map[string]any{"path": "p", "pth": "q"},
			wantErr: []string{`parameter "pth": not a parameter of sink "files" (it takes: path, mode, count, ratio, sync, every, timeout, tags); did you mean "path"?`},
		},
		{
			name:    "missing required",
			raw:     map[string]any{},
			wantErr: []string{`parameter "path": required, but not given`},
		},
		{
			name:    "mistyped",
			raw:     map[string]any{"path": "p", "count": "ten"},
			wantErr: []string{`parameter "count": got string, want int`},
		},
		{
			name:    "fractional int",
			raw:     map[string]any{"path": "p", "count": 1.5},
			wantErr: []string{`parameter "count": 1.5 is not a whole number`},
		},
		{
			name:    "bad duration",
			raw:     map[string]any{"path": "p", "every": "fast"},
			wantErr: []string{`parameter "every": "fast" is not a duration`},
		},
		{
			name:    "mistyped required is not also reported missing",
			raw:     map[string]any{"path": 5},
			wantErr: []string{`parameter "path": got int, want string`},
		},
		{
			name: "every problem named",
			raw:  map[string]any{"bogus": 1, "count": true, "tags": []any{1}},
			wantErr: []string{`parameter "bogus": not a parameter`, `parameter "count": got bool, want int`,
				`parameter "tags": element 0 is int, want string`, `parameter "path": required, but not given`},
		},
	}
	spec := testSpec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := NewConfig(spec, "demo", tt.raw)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("NewConfig(%v) = %+v, want an error", tt.raw, cfg.Raw())
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("NewConfig error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), `parameter "path": required, but not given`) {
					if _, given := tt.raw["path"]; given {
						t.Errorf("error reports a given (mistyped) parameter as missing: %q", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NewConfig(%v): %v", tt.raw, err)
			}
			if cfg.Pipeline != "demo" {
				t.Errorf("Pipeline = %q", cfg.Pipeline)
			}
			if !reflect.DeepEqual(cfg.values, tt.want) {
				t.Errorf("values = %#v\nwant     %#v", cfg.values, tt.want)
			}
			// The accessors return the same values.
			got := map[string]any{
				"path": cfg.String("path"), "mode": cfg.String("mode"), "count": cfg.Int("count"),
				"ratio": cfg.Float("ratio"), "sync": cfg.Bool("sync"), "every": cfg.Duration("every"),
				"timeout": cfg.Duration("timeout"), "tags": cfg.Strings("tags"),
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("accessors = %#v\nwant        %#v", got, tt.want)
			}
		})
	}
}

func TestNewConfigNoParameters(t *testing.T) {
	spec := Spec{Name: "bare", Kind: KindSource}
	if _, err := NewConfig(spec, "p", nil); err != nil {
		t.Fatalf("NewConfig with no values: %v", err)
	}
	_, err := NewConfig(spec, "p", map[string]any{"x": 1})
	if err == nil || !strings.Contains(err.Error(), `parameter "x": not a parameter of source "bare" (it takes: no parameters)`) {
		t.Fatalf("NewConfig error = %v", err)
	}
}

func TestNewConfigErrorIsSorted(t *testing.T) {
	// The problems come from a map; the message must not depend on its order.
	raw := map[string]any{"a": 1, "b": 2, "c": 3, "d": 4, "path": "p"}
	first := ""
	for i := 0; i < 20; i++ {
		_, err := NewConfig(testSpec(), "p", raw)
		if err == nil {
			t.Fatal("want error")
		}
		if i == 0 {
			first = err.Error()
			continue
		}
		if err.Error() != first {
			t.Fatalf("error changes between calls:\n%s\n%s", first, err)
		}
	}
	ia, id := strings.Index(first, `"a"`), strings.Index(first, `"d"`)
	if ia < 0 || id < 0 || ia > id {
		t.Errorf("problems not sorted: %s", first)
	}
}

func TestConfigAccessorPanics(t *testing.T) {
	cfg, err := NewConfig(testSpec(), "demo", map[string]any{"path": "p"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		read func()
		want string
	}{
		{"undeclared string", func() { cfg.String("nope") }, `reads parameter "nope" as string`},
		{"undeclared int", func() { cfg.Int("nope") }, `reads parameter "nope" as int`},
		{"string as int", func() { cfg.Int("path") }, `reads parameter "path" as int, but its spec declares it string`},
		{"int as string", func() { cfg.String("count") }, `parameter "count" as string, but its spec declares it int`},
		{"int as float", func() { cfg.Float("count") }, `parameter "count" as float`},
		{"string as bool", func() { cfg.Bool("mode") }, `parameter "mode" as bool`},
		{"string as duration", func() { cfg.Duration("mode") }, `parameter "mode" as duration`},
		{"duration as strings", func() { cfg.Strings("every") }, `parameter "every" as list(string)`},
		{"zero config", func() { Config{}.String("path") }, `reads parameter "path"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				msg := fmt.Sprint(r)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want it to contain %q", msg, tt.want)
				}
			}()
			tt.read()
		})
	}
}

func TestConfigRaw(t *testing.T) {
	spec := testSpec()
	cfg, err := NewConfig(spec, "demo", map[string]any{"path": "p", "every": "2m", "tags": []any{"a"}, "count": 4})
	if err != nil {
		t.Fatal(err)
	}
	raw := cfg.Raw()
	want := map[string]any{
		"path": "p", "mode": "append", "count": int64(4), "ratio": float64(0), "sync": true,
		"every": "2m0s", "timeout": "0s", "tags": []string{"a"},
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("Raw = %#v\nwant  %#v", raw, want)
	}
	raw["path"] = "changed"
	if cfg.String("path") != "p" {
		t.Error("changing Raw's map changed the config")
	}

	// What travels to a plugin process reads back to the same config.
	b, err := json.Marshal(cfg.Raw())
	if err != nil {
		t.Fatal(err)
	}
	back, err := openConfig(spec, &pb.OpenRequest{Pipeline: "demo", ConfigJson: string(b)})
	if err != nil {
		t.Fatalf("openConfig(%s): %v", b, err)
	}
	if back.Pipeline != "demo" || !reflect.DeepEqual(back.values, cfg.values) {
		t.Errorf("after JSON: %#v (%q), want %#v", back.values, back.Pipeline, cfg.values)
	}
}

func TestOpenConfig(t *testing.T) {
	spec := testSpec()
	tests := []struct {
		name    string
		req     *pb.OpenRequest
		wantErr string
	}{
		{"json", &pb.OpenRequest{Pipeline: "p", ConfigJson: `{"path":"x","count":2}`}, ""},
		{"empty config misses required", &pb.OpenRequest{Pipeline: "p"}, `parameter "path": required, but not given`},
		{"not json", &pb.OpenRequest{Pipeline: "p", ConfigJson: `{path:x}`}, "config from host is not JSON"},
		{"fraction for int", &pb.OpenRequest{Pipeline: "p", ConfigJson: `{"path":"x","count":2.5}`}, "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := openConfig(spec, tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Int("count") != 2 || cfg.String("path") != "x" || cfg.Pipeline != "p" {
				t.Errorf("openConfig = %#v", cfg.values)
			}
		})
	}
}
