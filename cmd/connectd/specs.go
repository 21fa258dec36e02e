package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectd/connectd/sdk"
)

type paramJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Default  any    `json:"default,omitempty"`
	Required bool   `json:"required"`
	Secret   bool   `json:"secret,omitempty"`
	Doc      string `json:"doc"`
	// The rules on the value (sdk.Param): absent when none.
	Enum    []string `json:"enum,omitempty"`
	Min     any      `json:"min,omitempty"`
	Max     any      `json:"max,omitempty"`
	Pattern string   `json:"pattern,omitempty"`
}

type conditionalJSON struct {
	Capability string   `json:"capability"`
	Param      string   `json:"param"`
	Values     []string `json:"values"`
}

type specJSON struct {
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	Kind         string            `json:"kind"`
	Summary      string            `json:"summary"`
	Capabilities []string          `json:"capabilities"`
	When         []conditionalJSON `json:"capabilities_when,omitempty"`
	Params       []paramJSON       `json:"params"`
}

func defaultOf(p sdk.Param) any { return jsonValue(p.Default) }

// jsonValue is a default or a bound as JSON shows it: durations as strings
// such as "1s".
func jsonValue(v any) any {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return v
}

// textValue is a bound as the table shows it: 1024, 0.5, 1ms.
func textValue(v any) string {
	if s, ok := v.(string); ok {
		return s // a duration written as a string
	}
	return fmt.Sprint(jsonValue(v))
}

// ruleText describes a parameter's rules for the table: `one of "a", "b"`,
// `1 to 64`, `>= 1ms`, `matches [a-z]+`; "-" when it has none.
func ruleText(p sdk.Param) string {
	each := ""
	if p.Type == sdk.TypeStrings {
		each = "each "
	}
	var parts []string
	if len(p.Enum) > 0 {
		q := make([]string, len(p.Enum))
		for i, e := range p.Enum {
			q[i] = fmt.Sprintf("%q", e)
		}
		parts = append(parts, each+"one of "+strings.Join(q, ", "))
	}
	switch {
	case p.Min != nil && p.Max != nil:
		parts = append(parts, textValue(p.Min)+" to "+textValue(p.Max))
	case p.Min != nil:
		parts = append(parts, ">= "+textValue(p.Min))
	case p.Max != nil:
		parts = append(parts, "<= "+textValue(p.Max))
	}
	if p.Pattern != "" {
		parts = append(parts, each+"matches "+p.Pattern)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

func specsJSON(specs []sdk.Spec) []specJSON {
	out := make([]specJSON, 0, len(specs))
	for _, s := range specs {
		j := specJSON{Name: s.Name, Version: s.Version, Kind: string(s.Kind), Summary: s.Summary, Capabilities: []string{}, Params: []paramJSON{}}
		for _, c := range s.Capabilities {
			j.Capabilities = append(j.Capabilities, string(c))
		}
		for _, c := range s.When {
			j.When = append(j.When, conditionalJSON{Capability: string(c.Capability), Param: c.Param, Values: c.Values})
		}
		for _, p := range s.Params {
			j.Params = append(j.Params, paramJSON{Name: p.Name, Type: string(p.Type), Default: defaultOf(p), Required: p.Required, Secret: p.Secret, Doc: p.Doc,
				Enum: p.Enum, Min: jsonValue(p.Min), Max: jsonValue(p.Max), Pattern: p.Pattern})
		}
		out = append(out, j)
	}
	return out
}

func writeSpecs(w io.Writer, specs []sdk.Spec) {
	for i, s := range specs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s %q %s — %s\n", s.Kind, s.Name, s.Version, s.Summary)
		var caps []string
		for _, c := range s.Capabilities {
			caps = append(caps, string(c))
		}
		for _, c := range s.When {
			caps = append(caps, fmt.Sprintf("%s when %s = %s", c.Capability, c.Param, strings.Join(c.Values, " or ")))
		}
		if len(caps) == 0 {
			caps = []string{"none (at-most-once and at-least-once only)"}
		}
		fmt.Fprintf(w, "  capabilities: %s\n", strings.Join(caps, "; "))
		if len(s.Params) == 0 {
			fmt.Fprintln(w, "  no parameters")
			continue
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARAMETER\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
		for _, p := range s.Params {
			def := "-"
			switch {
			case p.Required:
				def = "(required)"
			case p.Default != nil:
				b, _ := json.Marshal(defaultOf(p))
				def = string(b)
			}
			doc := p.Doc
			if p.Secret {
				doc += " (secret: use env(\"NAME\"))"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.Name, p.Type, def, ruleText(p), doc)
		}
		tw.Flush()
	}
}
