package sdk

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/connectd/connectd/internal/suggest"
)

// Kind is the role a plugin plays in a pipeline.
type Kind string

// The three kinds.
const (
	KindSource Kind = "source"
	KindSink   Kind = "sink"
	// KindProcessor transforms a batch's records between the source and
	// the sink (a `transform "name"` block that names a plugin).
	KindProcessor Kind = "processor"
)

// Capability is something a plugin promises and the conformance suite checks.
type Capability string

// The capabilities a delivery guarantee may need.
const (
	// CapReplayable: the source returns the same records, in the same order, when
	// it reads a range again (it implements Replayer).
	CapReplayable Capability = "replayable"
	// CapIdempotent: writing the same batch to the sink again changes nothing.
	CapIdempotent Capability = "idempotent"
	// CapTransactional: the sink stores a batch's until offsets atomically with its
	// output and can say which batch it committed last (it implements Transactional).
	CapTransactional Capability = "transactional"
	// CapDeterministic: the processor turns the same batch into the same
	// records (and rejections) every time, so a replayed batch is written
	// with the same records. Exactly-once needs it of every processor.
	CapDeterministic Capability = "deterministic"
	// CapSplittable: the source can run as several tasks of one pipeline
	// (the pipeline's parallelism): opened with Config.Tasks > 1, it reads
	// only the partitions that belong to Config.Task, by a rule that depends
	// only on the partition and Config.Tasks, so that the tasks together read
	// every partition (including partitions that appear later) and no two
	// tasks read the same one. The host refuses parallelism > 1 for a source
	// without it.
	CapSplittable Capability = "splittable"
)

// Type is the type of a configuration parameter.
type Type string

// Parameter types. Values arrive in Config already converted and checked.
const (
	TypeString   Type = "string"
	TypeInt      Type = "int"
	TypeFloat    Type = "float"
	TypeBool     Type = "bool"
	TypeDuration Type = "duration" // written as a string such as "250ms" or "1m"
	TypeStrings  Type = "list(string)"
)

// Param describes one configuration parameter of a plugin.
//
// Enum, Min, Max and Pattern are rules on its value. They are data: NewConfig
// checks them (so the sdk's server, sdktest and the host's `connectd validate`
// and `run` refuse a bad value before any Open), the host reads them from the
// spec of a plugin in any language, and `connectd plugins` prints them. A
// value that breaks one is a *ParamError; Open never sees it.
type Param struct {
	Name     string
	Type     Type
	Default  any // nil: no default; otherwise a value of the parameter's Go type
	Required bool
	Secret   bool // never logged or printed; give it with env("NAME")
	Doc      string
	// Enum lists the values a string parameter may take, or that every
	// element of a list(string) parameter may take, compared exactly (case
	// included). Empty: any value.
	Enum []string
	// Min and Max bound an int, float or duration parameter, both included;
	// nil: no bound. Each is a value of the parameter's type, as Default is
	// (a duration as a time.Duration or a string such as "1s").
	Min, Max any
	// Pattern is a regular expression (Go's regexp, RE2 syntax) that the
	// whole value of a string parameter, or every element of a list(string)
	// parameter, must match: "[a-z]+" refuses "ab1". Empty: any value.
	Pattern string
}

// Spec is what a plugin says about one of its roles: the host reads it before
// starting anything, validates pipeline configuration against it, and prints it
// in `connectd plugins`.
type Spec struct {
	Name         string
	Version      string
	Kind         Kind
	Summary      string
	Capabilities []Capability
	// When lists capabilities the plugin has only in some configurations
	// (a file sink is idempotent in "batch" mode, not in "append" mode).
	When   []Conditional
	Params []Param
}

// Conditional is a capability that holds when parameter Param has one of Values
// (compared as text: "batch", "true", "3").
type Conditional struct {
	Capability Capability
	Param      string
	Values     []string
}

// CapabilitiesFor returns the capabilities the plugin has with the given
// configuration values (as NewConfig accepts them; missing ones take defaults).
func (s Spec) CapabilitiesFor(values map[string]any) []Capability {
	caps := append([]Capability(nil), s.Capabilities...)
	for _, c := range s.When {
		v, ok := values[c.Param]
		if !ok {
			if p, found := s.Param(c.Param); found {
				v = p.Default
			}
		}
		for _, want := range c.Values {
			if v != nil && fmt.Sprint(v) == want {
				caps = append(caps, c.Capability)
				break
			}
		}
	}
	return caps
}

// Has reports whether the spec declares capability c.
func (s Spec) Has(c Capability) bool {
	for _, x := range s.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// Param returns the parameter named name.
func (s Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Check reports what is wrong with a spec itself: empty names, unknown types or
// capabilities, duplicate parameters, defaults of the wrong type, rules that
// do not apply to their parameter's type, a Pattern that does not compile,
// Min above Max, a default that breaks its own rules (for a parameter that
// is not Required and has no Default, the zero value is its default), and a
// When value outside its parameter's Enum.
func (s Spec) Check() error {
	if s.Name == "" {
		return fmt.Errorf("spec has no name")
	}
	if s.Kind != KindSource && s.Kind != KindSink && s.Kind != KindProcessor {
		return fmt.Errorf("spec %q: kind %q is none of %q, %q and %q", s.Name, s.Kind, KindSource, KindSink, KindProcessor)
	}
	all := append([]Capability(nil), s.Capabilities...)
	for _, c := range s.When {
		p, ok := s.Param(c.Param)
		if !ok {
			return fmt.Errorf("spec %q: capability %q depends on undeclared parameter %q", s.Name, c.Capability, c.Param)
		}
		for _, v := range c.Values {
			if len(p.Enum) > 0 && !slices.Contains(p.Enum, v) {
				return fmt.Errorf("spec %q: capability %q depends on %s = %q, which is not in its enum", s.Name, c.Capability, c.Param, v)
			}
		}
		all = append(all, c.Capability)
	}
	for _, c := range all {
		switch {
		case (c == CapReplayable || c == CapSplittable) && s.Kind == KindSource:
		case (c == CapIdempotent || c == CapTransactional) && s.Kind == KindSink:
		case c == CapDeterministic && s.Kind == KindProcessor:
		default:
			return fmt.Errorf("spec %q: capability %q does not apply to a %s", s.Name, c, s.Kind)
		}
	}
	seen := map[string]bool{}
	for _, p := range s.Params {
		if p.Name == "" || seen[p.Name] {
			return fmt.Errorf("spec %q: parameter name %q is empty or repeated", s.Name, p.Name)
		}
		seen[p.Name] = true
		var def any
		if p.Default != nil {
			c, err := Convert(p.Type, p.Default)
			if err != nil {
				return fmt.Errorf("spec %q: default of %q: %w", s.Name, p.Name, err)
			}
			def = c
		} else {
			c, err := Convert(p.Type, zero(p.Type))
			if err != nil {
				return fmt.Errorf("spec %q: parameter %q: %w", s.Name, p.Name, err)
			}
			if !p.Required {
				def = c
			}
		}
		if err := p.checkRules(); err != nil {
			return fmt.Errorf("spec %q: parameter %q: %w", s.Name, p.Name, err)
		}
		if def != nil {
			if e := p.checkValue(def); e != nil {
				return fmt.Errorf("spec %q: the default of parameter %q breaks its rules: %s", s.Name, p.Name, e.Message)
			}
		}
	}
	return nil
}

func zero(t Type) any {
	switch t {
	case TypeString, TypeDuration:
		return ""
	case TypeInt:
		return int64(0)
	case TypeFloat:
		return float64(0)
	case TypeBool:
		return false
	case TypeStrings:
		return []string{}
	}
	return nil
}

// Convert turns v into the Go value Config holds for type t: string, int64,
// float64, bool, time.Duration or []string. It accepts the shapes JSON decoding
// produces (float64 for numbers, []any for lists).
func Convert(t Type, v any) (any, error) {
	switch t {
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeInt:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int64:
			return n, nil
		case float64:
			if n == float64(int64(n)) {
				return int64(n), nil
			}
			return nil, fmt.Errorf("%v is not a whole number", n)
		}
	case TypeFloat:
		switch n := v.(type) {
		case float64:
			return n, nil
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		}
	case TypeBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeDuration:
		switch d := v.(type) {
		case time.Duration:
			return d, nil
		case string:
			if d == "" {
				return time.Duration(0), nil
			}
			x, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("%q is not a duration such as \"500ms\" or \"2m\"", d)
			}
			return x, nil
		}
	case TypeStrings:
		switch l := v.(type) {
		case []string:
			return l, nil
		case []any:
			out := make([]string, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("element %d is %T, want string", i, e)
				}
				out[i] = s
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("unknown parameter type %q", t)
	}
	return nil, fmt.Errorf("got %T, want %s", v, t)
}

// Config is a plugin's configuration for one pipeline, validated against its
// Spec: every value has its parameter's type and keeps its parameter's rules
// (Enum, Min, Max, Pattern), defaults are filled in, and required parameters
// are present. Accessors panic only on a name the spec does not declare,
// which is a bug in the plugin.
type Config struct {
	// Pipeline is the name of the pipeline the plugin runs in: for a
	// pipeline that runs as several tasks (parallelism > 1), the task's own
	// name, unique among the host's pipelines and tasks, under which a
	// transactional sink keeps the task's offsets.
	Pipeline string
	// Task is the index, in [0, Tasks), of the task the plugin runs for;
	// Tasks is how many tasks the pipeline runs as (>= 1; 1 unless the
	// pipeline sets parallelism, which the host allows only with a
	// CapSplittable source). NewConfig sets 0 and 1; the sdk's server sets
	// what the host sent (an older host, which sends neither, means 0 and 1).
	Task, Tasks int
	spec        Spec
	values      map[string]any
}

// NewConfig checks raw values (as decoded from JSON or given by a test)
// against spec and returns the Config a plugin sees. Its error is a
// *ConfigError with a *ParamError for every unknown, missing or mistyped
// parameter and every value that breaks its Param's rules (Enum, Min, Max,
// Pattern). It is the one place those rules are checked: the sdk's server
// before Open, sdktest, and the host's validate and run all call it.
func NewConfig(spec Spec, pipeline string, raw map[string]any) (Config, error) {
	vals := map[string]any{}
	var problems []*ParamError
	for name, v := range raw {
		p, ok := spec.Param(name)
		if !ok {
			names := paramNameList(spec)
			problems = append(problems, &ParamError{Param: name,
				Message:    fmt.Sprintf("not a parameter of %s %q (it takes: %s)", spec.Kind, spec.Name, paramNames(spec)),
				Suggestion: suggest.Closest(name, names)})
			continue
		}
		c, err := Convert(p.Type, v)
		if err != nil {
			problems = append(problems, &ParamError{Param: name, Message: err.Error()})
			continue
		}
		if e := p.checkValue(c); e != nil {
			problems = append(problems, e)
			continue
		}
		vals[name] = c
	}
	for _, p := range spec.Params {
		if _, ok := vals[p.Name]; ok {
			continue
		}
		if _, bad := raw[p.Name]; bad {
			continue
		}
		if p.Required {
			problems = append(problems, &ParamError{Param: p.Name, Message: "required, but not given"})
			continue
		}
		d := p.Default
		if d == nil {
			d = zero(p.Type)
		}
		c, err := Convert(p.Type, d)
		if err != nil {
			problems = append(problems, &ParamError{Param: p.Name, Message: "default: " + err.Error()})
			continue
		}
		vals[p.Name] = c
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Param < problems[j].Param })
		return Config{}, &ConfigError{Params: problems}
	}
	return Config{Pipeline: pipeline, Tasks: 1, spec: spec, values: vals}, nil
}

// withTask returns c for task task of tasks as the host sent them in its
// OpenRequest: 0 and 0 (a host that predates tasks) mean one task. Any
// other pair must have 0 <= task < tasks.
func (c Config) withTask(task, tasks int32) (Config, error) {
	if task == 0 && tasks == 0 {
		tasks = 1
	}
	if tasks < 1 || task < 0 || task >= tasks {
		return Config{}, fmt.Errorf("host sent task %d of %d tasks; want 0 <= task < tasks", task, tasks)
	}
	c.Task, c.Tasks = int(task), int(tasks)
	return c, nil
}

func paramNameList(s Spec) []string {
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return names
}

func paramNames(s Spec) string {
	names := paramNameList(s)
	if len(names) == 0 {
		return "no parameters"
	}
	return strings.Join(names, ", ")
}

func (c Config) get(name string, t Type) any {
	p, ok := c.spec.Param(name)
	if !ok || p.Type != t {
		panic(fmt.Sprintf("sdk: plugin %q reads parameter %q as %s, but its spec declares it %v", c.spec.Name, name, t, p.Type))
	}
	return c.values[name]
}

// String returns a string parameter.
func (c Config) String(name string) string { return c.get(name, TypeString).(string) }

// Int returns an int parameter.
func (c Config) Int(name string) int64 { return c.get(name, TypeInt).(int64) }

// Float returns a float parameter.
func (c Config) Float(name string) float64 { return c.get(name, TypeFloat).(float64) }

// Bool returns a bool parameter.
func (c Config) Bool(name string) bool { return c.get(name, TypeBool).(bool) }

// Duration returns a duration parameter.
func (c Config) Duration(name string) time.Duration {
	return c.get(name, TypeDuration).(time.Duration)
}

// Strings returns a list(string) parameter.
func (c Config) Strings(name string) []string { return c.get(name, TypeStrings).([]string) }

// Raw returns the values in the shapes JSON encoding accepts, durations as
// strings: what travels to a plugin process.
func (c Config) Raw() map[string]any {
	out := make(map[string]any, len(c.values))
	for k, v := range c.values {
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		out[k] = v
	}
	return out
}
