package config

import (
	"fmt"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// Defaults of a pipeline's restart policy (Restart).
const (
	DefaultRestartAttempts   = 5
	DefaultRestartBackoff    = 200 * time.Millisecond
	DefaultRestartMaxBackoff = 10 * time.Second
)

// Restart is how a pipeline restarts its plugins after a failure (a plugin
// that died, failed a call or did not answer in time): up to Attempts
// failures in a row without a finished batch, waiting Backoff before the
// first restart and twice as long before each next one, at most MaxBackoff.
// A Pipeline returned by Load has the defaults filled in; in one made
// otherwise a zero field means its default.
type Restart struct {
	Attempts   int           // >= 1, default 5
	Backoff    time.Duration // > 0, default 200ms
	MaxBackoff time.Duration // >= Backoff, default 10s
}

var restartSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "attempts"}, {Name: "backoff"}, {Name: "max_backoff"}}}

// parseRestart reads a restart block into out, which holds the defaults.
func parseRestart(b *hcl.Block, out *Restart) hcl.Diagnostics {
	content, diags := bodyContent(b.Body, restartSchema)
	if a := content.Attributes["attempts"]; a != nil {
		n, d := evalInt(a, 1)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if n > 1000 {
				diags = append(diags, badValue(a, fmt.Sprintf("attempts must be at most 1000; got %d.", n)))
			} else {
				out.Attempts = int(n)
			}
		}
	}
	dur := func(name string, dst *time.Duration) *hcl.Attribute {
		a := content.Attributes[name]
		if a == nil {
			return nil
		}
		v, secret, d := evaluate(a)
		diags = append(diags, d...)
		if d.HasErrors() || v.IsNull() {
			return nil
		}
		g, problem := toGo(sdk.TypeDuration, v, secret)
		if problem != "" {
			diags = append(diags, badValue(a, fmt.Sprintf("%s takes %s; %s.", name, typeDesc(sdk.TypeDuration), problem)))
			return nil
		}
		w, _ := time.ParseDuration(g.(string))
		if w <= 0 {
			diags = append(diags, badValue(a, fmt.Sprintf("%s must be > 0; got %s.", name, describe(v, secret))))
			return nil
		}
		*dst = w
		return a
	}
	dur("backoff", &out.Backoff)
	if a := dur("max_backoff", &out.MaxBackoff); a != nil && out.MaxBackoff < out.Backoff {
		diags = append(diags, badValue(a, fmt.Sprintf("max_backoff (%s) must be at least backoff (%s).", out.MaxBackoff, out.Backoff)))
	} else if a == nil && out.MaxBackoff < out.Backoff {
		out.MaxBackoff = out.Backoff // a backoff above the default ceiling is its own ceiling
	}
	return diags
}
