package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// Plugin is a source, sink, processor (transform) or dead-letter sink block
// of a pipeline.
//
// Values and Secret are filled by Load, not by Parse. Print a Plugin (String,
// %v) or its Redacted values, never Values directly: Values hold secrets in
// clear.
type Plugin struct {
	Kind sdk.Kind
	// Name is the block's label: the plugin's name.
	Name string
	// Spec is what Lookup returned for the plugin.
	Spec sdk.Spec
	// Values are the attributes written in the block, converted to the Go types
	// sdk.NewConfig accepts (string, int64, float64, bool, []string; a duration
	// is its validated string such as "250ms"), so they are also JSON-safe.
	// Parameters not written are absent: sdk.NewConfig fills their defaults.
	// sdk.NewConfig(Spec, pipeline name, Values) succeeds on them.
	Values map[string]any
	// Secret[name] is true for every parameter the spec declares Secret and for
	// every attribute whose value comes from env().
	Secret map[string]bool
	// Range is the block's definition range (`source "name"`).
	Range hcl.Range

	nameRange hcl.Range      // the block's label, for lookup errors
	attrs     hcl.Attributes // the block's body, kept by Parse for Load
}

// Redacted returns a copy of Values with every secret value replaced by
// "(secret)": what may be logged or printed.
func (p Plugin) Redacted() map[string]any {
	out := make(map[string]any, len(p.Values))
	for k, v := range p.Values {
		switch {
		case p.isSecret(k):
			out[k] = "(secret)"
		case v == nil:
			out[k] = nil
		default:
			if l, ok := v.([]string); ok {
				v = append([]string(nil), l...)
			}
			out[k] = v
		}
	}
	return out
}

// String renders the block as HCL-like text with secrets redacted, for example
// `sink "file" { dir = "out", password = "(secret)" }`.
func (p Plugin) String() string {
	r := p.Redacted()
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " = " + goValueText(r[k])
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s %q {}", p.Kind, p.Name)
	}
	return fmt.Sprintf("%s %q { %s }", p.Kind, p.Name, strings.Join(parts, ", "))
}

// GoString is String, so that %#v does not print secrets either.
func (p Plugin) GoString() string { return p.String() }

func (p Plugin) isSecret(name string) bool {
	if p.Secret[name] {
		return true
	}
	prm, ok := p.Spec.Param(name)
	return ok && prm.Secret
}

// parsePlugin reads a source or sink block's header and attributes, without
// a spec.
func parsePlugin(kind sdk.Kind, b *hcl.Block) (Plugin, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	p := Plugin{Kind: kind, Name: b.Labels[0], Range: b.DefRange, nameRange: b.LabelRanges[0]}
	if !validName.MatchString(p.Name) || strings.HasPrefix(p.Name, ".") {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid %s name", kind),
			Detail:   fmt.Sprintf("Plugin name %q may hold letters, digits, '_', '.' and '-' only, and must not start with '.'.", p.Name),
			Subject:  p.nameRange.Ptr(),
		})
	}
	if sb, ok := plainBody(b.Body); ok {
		for _, inner := range sb.Blocks {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Unexpected %q block", inner.Type),
				Detail:   fmt.Sprintf("A %s block holds parameters (name = value), not blocks. Did you mean %s = ...?", kind, inner.Type),
				Subject:  inner.TypeRange.Ptr(),
			})
		}
		attrs := hcl.Attributes{}
		for name, a := range sb.Attributes {
			attrs[name] = a.AsHCLAttribute()
		}
		p.attrs = attrs
		return p, diags
	}
	attrs, d := b.Body.JustAttributes()
	p.attrs = attrs
	return p, append(diags, d...)
}

// load looks the plugin up and checks its attributes against the spec. It
// fills Spec, Values and Secret, and returns the ranges of secret literals
// written in the file.
func (p *Plugin) load(lookup Lookup, pipeline string) (hcl.Diagnostics, []hcl.Range) {
	var diags hcl.Diagnostics
	spec, err := lookup(p.Kind, p.Name)
	if err != nil {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown %s plugin %q", p.Kind, p.Name),
			Detail:   err.Error(),
			Subject:  p.nameRange.Ptr(),
		}), nil
	}
	if err := spec.Check(); err != nil {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid spec of %s plugin %q", p.Kind, p.Name),
			Detail:   fmt.Sprintf("The plugin declares a broken spec (a bug in the plugin): %v.", err),
			Subject:  p.nameRange.Ptr(),
		}), nil
	}
	if spec.Kind != p.Kind {
		return append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid spec of %s plugin %q", p.Kind, p.Name),
			Detail:   fmt.Sprintf("The plugin's spec %q is a %s, not a %s (a bug in the plugin or its lookup).", spec.Name, spec.Kind, p.Kind),
			Subject:  p.nameRange.Ptr(),
		}), nil
	}
	p.Spec = spec
	p.Values = map[string]any{}
	p.Secret = map[string]bool{}
	for _, prm := range spec.Params {
		if prm.Secret {
			p.Secret[prm.Name] = true
		}
	}
	what := fmt.Sprintf("%s %q", p.Kind, p.Name)

	attrs := make([]*hcl.Attribute, 0, len(p.attrs))
	for _, a := range p.attrs {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].Range.Start.Byte < attrs[j].Range.Start.Byte })

	var masks []hcl.Range
	var names []string
	suggested := map[string]bool{} // parameters a misspelt attribute may mean
	for _, prm := range spec.Params {
		names = append(names, prm.Name)
	}
	for _, a := range attrs {
		prm, ok := spec.Param(a.Name)
		if !ok {
			if m := closest(a.Name, names); m != "" {
				suggested[m] = true
			}
			valid := "It takes no parameters."
			if len(names) > 0 {
				valid = "Valid parameters: " + strings.Join(names, ", ") + "."
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unsupported parameter",
				Detail:   fmt.Sprintf("%s has no parameter %q.%s %s", what, a.Name, didYouMean(a.Name, names), valid),
				Subject:  a.NameRange.Ptr(),
			})
			continue
		}
		v, fromEnv, d := evaluate(a)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		secret := fromEnv || prm.Secret
		if prm.Secret && !fromEnv {
			masks = append(masks, a.Expr.Range())
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Secret written in the pipeline file",
				Detail:   fmt.Sprintf("Parameter %q of %s is secret; give it with env(\"NAME\") instead of writing it in the file.", a.Name, what),
				Subject:  a.Expr.Range().Ptr(),
				Context:  a.Range.Ptr(),
			})
		}
		if v.IsNull() {
			continue // null means not set: the default applies
		}
		g, problem := toGo(prm.Type, v, secret)
		if problem != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Invalid value for parameter %q", a.Name),
				Detail:   fmt.Sprintf("Parameter %q of %s takes %s; %s.", a.Name, what, typeDesc(prm.Type), problem),
				Subject:  a.Expr.Range().Ptr(),
				Context:  a.Range.Ptr(),
			})
			continue
		}
		p.Values[a.Name] = g
		if secret {
			p.Secret[a.Name] = true
		}
	}
	for _, prm := range spec.Params {
		if _, ok := p.Values[prm.Name]; ok || !prm.Required {
			continue
		}
		if a := p.attrs[prm.Name]; (a != nil && !isNull(a)) || suggested[prm.Name] {
			continue // written wrong or misspelt: already reported
		}
		detail := fmt.Sprintf("%s needs parameter %q (%s).", what, prm.Name, typeDesc(prm.Type))
		if prm.Doc != "" {
			detail += " " + prm.Doc
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Missing required parameter %q", prm.Name),
			Detail:   detail,
			Subject:  p.Range.Ptr(),
		})
	}
	return append(diags, p.checkRules(pipeline, what, diags.HasErrors())...), masks
}

// checkRules checks the values with sdk.NewConfig, the one place the spec's
// rules (Enum, Min, Max, Pattern) are checked, and reports each value that
// breaks one at the attribute's value, with "did you mean" for an enum.
// After earlier errors (reported) only rule violations are reported.
func (p *Plugin) checkRules(pipeline, what string, reported bool) hcl.Diagnostics {
	// A value from env() is secret too: the sdk then words its message
	// without the value and suggests nothing.
	spec := p.Spec
	spec.Params = append([]sdk.Param(nil), spec.Params...)
	for i := range spec.Params {
		spec.Params[i].Secret = p.isSecret(spec.Params[i].Name)
	}
	_, err := sdk.NewConfig(spec, pipeline, p.Values)
	if err == nil {
		return nil
	}
	var diags hcl.Diagnostics
	var cerr *sdk.ConfigError
	if !errors.As(err, &cerr) {
		cerr = &sdk.ConfigError{Err: err}
	}
	var rest []string
	for _, pe := range cerr.Params {
		a := p.attrs[pe.Param]
		if _, set := p.Values[pe.Param]; a == nil || !set {
			rest = append(rest, pe.Error())
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid value for parameter %q", pe.Param),
			Detail:   fmt.Sprintf("Parameter %q of %s: %s.%s", pe.Param, what, pe.Message, suggestion(pe.Suggestion)),
			Subject:  a.Expr.Range().Ptr(),
			Context:  a.Range.Ptr(),
		})
	}
	if cerr.Err != nil {
		rest = append(rest, cerr.Err.Error())
	}
	if len(rest) > 0 && !reported {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid configuration of %s", what),
			Detail:   p.scrub(strings.Join(rest, "; ")),
			Subject:  p.Range.Ptr(),
		})
	}
	return diags
}

// scrub removes secret values from a message.
func (p *Plugin) scrub(msg string) string {
	for name, v := range p.Values {
		if !p.isSecret(name) {
			continue
		}
		var vals []string
		switch x := v.(type) {
		case []string:
			vals = x
		default:
			vals = []string{fmt.Sprint(x)}
		}
		for _, s := range vals {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "(secret)")
			}
		}
	}
	return msg
}

// isNull reports whether an attribute is written as null (which means unset).
func isNull(a *hcl.Attribute) bool {
	v, diags := a.Expr.Value(evalContext())
	return !diags.HasErrors() && v.IsNull()
}
