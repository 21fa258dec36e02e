package config

import (
	"fmt"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/hashicorp/hcl/v2"
)

// Default deadlines of plugin calls (Pipeline.Timeout). A read waits up to
// the batch's max_wait for records before it answers, so its deadline is
// max_wait plus DefaultReadSlack.
const (
	DefaultReadSlack    = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultCallTimeout  = 30 * time.Second
)

// Phase names a kind of plugin call the host bounds with a deadline; the
// names are the attributes of a pipeline's timeouts block.
type Phase string

// The phases of plugin calls.
const (
	PhaseOpen          Phase = "open"           // Open of every plugin
	PhaseRead          Phase = "read"           // a source's Read and Replay
	PhaseWrite         Phase = "write"          // a sink's and the dead-letter sink's Write
	PhaseAck           Phase = "ack"            // a source's Ack
	PhaseLastCommitted Phase = "last_committed" // a transactional sink's LastCommitted
	PhaseProcess       Phase = "process"        // a processor's Process
	PhaseEnd           Phase = "end"            // a source's End
	PhaseClose         Phase = "close"          // Close of every plugin
)

// Phases lists every Phase, in the order the docs give them.
var Phases = []Phase{PhaseOpen, PhaseRead, PhaseWrite, PhaseAck, PhaseLastCommitted, PhaseProcess, PhaseEnd, PhaseClose}

// Timeouts are the deadlines a pipeline's timeouts block sets, per Phase;
// a phase it does not name is absent (Pipeline.Timeout gives its default).
// Every value present is > 0.
type Timeouts map[Phase]time.Duration

// Timeout is how long the host waits for a plugin call of phase ph to
// answer before it kills the plugin process, restarts it and recovers: the
// pipeline's timeouts block, else the default (read: max_wait +
// DefaultReadSlack; write: DefaultWriteTimeout; the others:
// DefaultCallTimeout). It is always > 0.
func (p *Pipeline) Timeout(ph Phase) time.Duration {
	if d, ok := p.Timeouts[ph]; ok && d > 0 {
		return d
	}
	switch ph {
	case PhaseRead:
		return p.Batch.MaxWait + DefaultReadSlack
	case PhaseWrite:
		return DefaultWriteTimeout
	}
	return DefaultCallTimeout
}

func timeoutsSchema() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, ph := range Phases {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: string(ph)})
	}
	return s
}

// parseTimeouts reads a timeouts block: each attribute a duration > 0.
func parseTimeouts(b *hcl.Block) (Timeouts, hcl.Diagnostics) {
	content, diags := bodyContent(b.Body, timeoutsSchema())
	out := Timeouts{}
	for _, ph := range Phases {
		a := content.Attributes[string(ph)]
		if a == nil {
			continue
		}
		v, secret, d := evaluate(a)
		diags = append(diags, d...)
		if d.HasErrors() || v.IsNull() {
			continue
		}
		g, problem := toGo(sdk.TypeDuration, v, secret)
		if problem != "" {
			diags = append(diags, badValue(a, fmt.Sprintf("%s takes %s; %s.", ph, typeDesc(sdk.TypeDuration), problem)))
		} else if w, _ := time.ParseDuration(g.(string)); w <= 0 {
			diags = append(diags, badValue(a, fmt.Sprintf("%s must be > 0 (how long the host waits for a plugin's answer before it kills and restarts the plugin); got %s.", ph, describe(v, secret))))
		} else {
			out[ph] = w
		}
	}
	return out, diags
}
