// Package transform is a stand-in until the built-ins land (lead branch only).
package transform

import (
	"bytes"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// Step is one built-in transform.
type Step interface {
	Name() string
	Apply(recs []sdk.Record) (out []sdk.Record, rejected []sdk.Rejection)
}

// Builtin reports whether name is a built-in transform.
func Builtin(name string) bool { return name == "filter" }

type filter struct{}

func (filter) Name() string { return "filter" }
func (filter) Apply(recs []sdk.Record) (out []sdk.Record, rejected []sdk.Rejection) {
	for i, r := range recs {
		switch {
		case bytes.Contains(r.Value, []byte("reject")):
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: "stub rejects"})
		case bytes.Contains(r.Value, []byte("drop")):
		default:
			out = append(out, r)
		}
	}
	return out, rejected
}

// Decode compiles a block.
func Decode(name string, body hcl.Body, ctx *hcl.EvalContext) (Step, hcl.Diagnostics) {
	_, diags := body.JustAttributes()
	return filter{}, diags
}
