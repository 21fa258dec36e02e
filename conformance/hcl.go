package conformance

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Config is what a conformance configuration file holds: the settings of
// the source under test, the sink under test, the processor under test,
// and of the input sink that puts records into the source; the transform
// chain and the dead-letter sink (Options.Transforms, Options.DeadLetter).
// A nil field is a block the file does not have.
//
// The file is HCL with top-level blocks, each written as in a pipeline file
// (one-line blocks with commas included): at most one source, sink,
// processor, input and dead_letter block, and any number of transform
// blocks, in the order the records pass them (before the processor under
// test):
//
//	source "file"      { paths = ["in/*.txt"] }
//	sink "file"        { dir = "out", mode = "batch" }
//	input "file"       { dir = "in" }
//	transform "filter" { where = "value.offset % 5 != 1" }
//	processor "split"  { field = "items" }
//	dead_letter "file" { dir = "dead", mode = "batch" }
//
// A block's label is the plugin's name (a transform's: a built-in's, a
// bundled processor's, or a processor executable's path; a dead_letter's:
// a sink's name or path); for a plugin under test given by path it is
// informative only. Plugins run in a fresh directory per pipeline, so
// relative paths are relative to it.
type Config struct {
	Source, Sink, Input, Processor, DeadLetter *Plugin
	Transforms                                 []Plugin
}

// ReadConfig reads a conformance configuration file. Block bodies are kept as
// written (in Plugin.HCL) and checked against the plugins' specs when the
// suite starts; here only the file's shape is checked, and an error names
// the file, line and column.
func ReadConfig(path string) (Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return parseConfig(src, path)
}

func parseConfig(src []byte, path string) (Config, error) {
	toks, diags := hclsyntax.LexConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return Config{}, fmt.Errorf("%s", diags.Error())
	}
	var c Config
	at := func(t hclsyntax.Token) string {
		return fmt.Sprintf("%s:%d:%d", path, t.Range.Start.Line, t.Range.Start.Column)
	}
	i := 0
	skip := func() {
		for i < len(toks) && (toks[i].Type == hclsyntax.TokenNewline || toks[i].Type == hclsyntax.TokenComment) {
			i++
		}
	}
	for {
		skip()
		if i >= len(toks) || toks[i].Type == hclsyntax.TokenEOF {
			break
		}
		t := toks[i]
		kind := string(t.Bytes)
		var dst **Plugin
		var tr *Plugin
		switch {
		case t.Type == hclsyntax.TokenIdent && kind == "transform":
			tr = &Plugin{}
			dst = &tr
		case t.Type == hclsyntax.TokenIdent && kind == "processor":
			dst = &c.Processor
		case t.Type == hclsyntax.TokenIdent && kind == "dead_letter":
			dst = &c.DeadLetter
		case t.Type == hclsyntax.TokenIdent && kind == "source":
			dst = &c.Source
		case t.Type == hclsyntax.TokenIdent && kind == "sink":
			dst = &c.Sink
		case t.Type == hclsyntax.TokenIdent && kind == "input":
			dst = &c.Input
		default:
			return Config{}, fmt.Errorf("%s: unexpected %q: a conformance file holds source, sink, input, transform, processor and dead_letter blocks, such as sink \"file\" { dir = \"out\" }", at(t), string(t.Bytes))
		}
		if *dst != nil && tr == nil {
			return Config{}, fmt.Errorf("%s: a second %s block; the file holds at most one of each", at(t), kind)
		}
		i++
		if i+3 >= len(toks) || toks[i].Type != hclsyntax.TokenOQuote || toks[i+1].Type != hclsyntax.TokenQuotedLit || toks[i+2].Type != hclsyntax.TokenCQuote {
			return Config{}, fmt.Errorf("%s: %s block needs one label, the plugin's name: %s \"file\" { ... }", at(t), kind, kind)
		}
		label := string(toks[i+1].Bytes)
		i += 3
		if toks[i].Type != hclsyntax.TokenOBrace {
			return Config{}, fmt.Errorf("%s: want { after %s %q", at(toks[i]), kind, label)
		}
		open := toks[i]
		depth := 0
		for ; i < len(toks); i++ {
			switch toks[i].Type {
			case hclsyntax.TokenOBrace, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
				depth++
			case hclsyntax.TokenCBrace, hclsyntax.TokenTemplateSeqEnd:
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if i >= len(toks) {
			return Config{}, fmt.Errorf("%s: %s %q block is not closed", at(open), kind, label)
		}
		body := string(src[open.Range.End.Byte:toks[i].Range.Start.Byte])
		i++
		*dst = &Plugin{Name: label, HCL: body}
		if tr != nil {
			c.Transforms = append(c.Transforms, **dst)
		}
	}
	return c, nil
}

// block renders a plugin block of a pipeline file.
func block(kind, label string, p Plugin) (string, error) {
	if p.HCL != "" {
		if strings.Contains(p.HCL, "\n") {
			return fmt.Sprintf("%s %s {\n%s\n}", kind, quote(label), p.HCL), nil
		}
		return fmt.Sprintf("%s %s {%s}", kind, quote(label), p.HCL), nil
	}
	keys := make([]string, 0, len(p.Config))
	for k := range p.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s {\n", kind, quote(label))
	for _, k := range keys {
		v, err := literal(p.Config[k])
		if err != nil {
			return "", fmt.Errorf("%s %q: parameter %q: %w", kind, p.Name, k, err)
		}
		if !hclsyntax.ValidIdentifier(k) {
			return "", fmt.Errorf("%s %q: %q is not a valid parameter name", kind, p.Name, k)
		}
		fmt.Fprintf(&b, "  %s = %s\n", k, v)
	}
	b.WriteString("}")
	return b.String(), nil
}

// literal renders a Go value as an HCL literal.
func literal(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quote(x), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return "", fmt.Errorf("%v is not a number HCL can hold", x)
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Duration:
		return quote(x.String()), nil
	case []string:
		q := make([]string, len(x))
		for i, s := range x {
			q[i] = quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	}
	return "", fmt.Errorf("value of type %T: want string, bool, int, int64, float64, time.Duration or []string", v)
}

// quote renders s as an HCL quoted string: no interpolation, no template
// directives, escapes HCL understands.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case (r == '$' || r == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteRune(r)
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// pluginLabel is the block label for a plugin: its name when bundled, and
// for an executable a name derived from the file (connectd-plugin-jsonl →
// jsonl), made different from every bundled name.
func pluginLabel(name string, bundled map[string]bool) string {
	if !strings.ContainsRune(name, '/') {
		return name
	}
	base := strings.TrimPrefix(filepath.Base(name), "connectd-plugin-")
	var b strings.Builder
	for _, r := range base {
		if r == '_' || r == '-' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	label := strings.TrimLeft(b.String(), ".")
	if label == "" {
		label = "plugin"
	}
	if bundled[label] {
		label += "-under-test"
	}
	return label
}
