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

func defaultOf(p sdk.Param) any {
	if d, ok := p.Default.(time.Duration); ok {
		return d.String()
	}
	return p.Default
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
			j.Params = append(j.Params, paramJSON{Name: p.Name, Type: string(p.Type), Default: defaultOf(p), Required: p.Required, Secret: p.Secret, Doc: p.Doc})
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
		fmt.Fprintln(tw, "  PARAMETER\tTYPE\tDEFAULT\tDESCRIPTION")
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
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, p.Type, def, doc)
		}
		tw.Flush()
	}
}
