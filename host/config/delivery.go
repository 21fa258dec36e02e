package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/connectd/connectd/sdk"
)

// Delivery is a pipeline's delivery guarantee.
type Delivery string

// The three guarantees.
const (
	// AtMostOnce: no record is written twice; a crash may lose records.
	AtMostOnce Delivery = "at-most-once"
	// AtLeastOnce: no record is lost; a crash may write records twice.
	AtLeastOnce Delivery = "at-least-once"
	// ExactlyOnce: no record is lost or written twice. It needs a replayable
	// source and an idempotent or transactional sink.
	ExactlyOnce Delivery = "exactly-once"
)

var deliveries = []Delivery{ExactlyOnce, AtLeastOnce, AtMostOnce}

func (d Delivery) valid() bool { return slices.Contains(deliveries, d) }

func deliveryNames() []string {
	names := make([]string, len(deliveries))
	for i, d := range deliveries {
		names[i] = string(d)
	}
	return names
}

func deliveryList() string { return quoteList(deliveryNames()) }

// CheckDelivery reports whether a source and a sink, configured with the given
// values (as in Plugin.Values; missing ones take the spec's defaults), can keep
// delivery guarantee d. Capabilities are those spec.CapabilitiesFor returns,
// so a conditional capability counts only when the values meet its condition.
// at-most-once and at-least-once accept any plugins; exactly-once needs a
// replayable source and an idempotent or transactional sink. The error names
// the plugin and the missing capability (one line per plugin that falls short)
// and shows a parameter's value only when the spec does not declare it secret.
func CheckDelivery(d Delivery, source, sink sdk.Spec, sourceValues, sinkValues map[string]any) error {
	src := &Plugin{Kind: sdk.KindSource, Name: source.Name, Spec: source, Values: sourceValues}
	snk := &Plugin{Kind: sdk.KindSink, Name: sink.Name, Spec: sink, Values: sinkValues}
	return joinProblems(checkDelivery(d, src, snk, nil, nil))
}

// CheckPipeline is CheckDelivery for a whole pipeline whose plugins run with
// the given specs (the specs the running processes declare, which may differ
// from those the file was loaded with): the source and the sink, and also
// every processor (exactly-once needs each to be deterministic) and the
// dead-letter sink (exactly-once needs it idempotent or transactional).
// processors holds one spec per p.Processors() entry, in order; deadLetter
// is ignored when p has none.
func CheckPipeline(p *Pipeline, source, sink sdk.Spec, processors []sdk.Spec, deadLetter sdk.Spec) error {
	with := func(pl *Plugin, s sdk.Spec) *Plugin {
		c := *pl
		c.Spec = s
		return &c
	}
	var procs []*Plugin
	for i, pl := range p.Processors() {
		if i < len(processors) {
			procs = append(procs, with(pl, processors[i]))
		}
	}
	var dl *Plugin
	if p.DeadLetter != nil {
		dl = with(p.DeadLetter, deadLetter)
	}
	return joinProblems(checkDelivery(p.Delivery, with(&p.Source, source), with(&p.Sink, sink), procs, dl))
}

func joinProblems(problems []string) error {
	var errs []error
	for _, p := range problems {
		errs = append(errs, errors.New(p))
	}
	return errors.Join(errs...)
}

// checkDelivery returns one problem per plugin that cannot keep d. A
// processor that is not deterministic, or a dead-letter sink that is neither
// idempotent nor transactional, breaks exactly-once too: a replayed batch
// would be written as other records, or its dead letters twice.
func checkDelivery(d Delivery, source, sink *Plugin, processors []*Plugin, deadLetter *Plugin) []string {
	switch d {
	case AtMostOnce, AtLeastOnce:
		return nil
	case ExactlyOnce:
	default:
		return []string{fmt.Sprintf("unknown delivery %q: want one of %s", d, deliveryList())}
	}
	var problems []string
	if !slices.Contains(source.Spec.CapabilitiesFor(source.Values), sdk.CapReplayable) {
		msg := fmt.Sprintf("delivery %q needs a replayable source, but %s", d, source.title())
		if conds := source.conditionals(sdk.CapReplayable); len(conds) > 0 {
			msg += fmt.Sprintf(" with %s is not replayable (%s)", source.settings(conds), source.hints(conds))
		} else {
			msg += fmt.Sprintf(" does not declare capability %q", sdk.CapReplayable)
		}
		problems = append(problems, msg)
	}
	caps := sink.Spec.CapabilitiesFor(sink.Values)
	if !slices.Contains(caps, sdk.CapIdempotent) && !slices.Contains(caps, sdk.CapTransactional) {
		msg := fmt.Sprintf("delivery %q needs an idempotent or transactional sink, but %s", d, sink.title())
		if conds := sink.conditionals(sdk.CapIdempotent, sdk.CapTransactional); len(conds) > 0 {
			msg += fmt.Sprintf(" with %s is neither (it is at-least-once only; %s)", sink.settings(conds), sink.hints(conds))
		} else {
			msg += fmt.Sprintf(" declares neither capability %q nor %q (it is at-least-once only)", sdk.CapIdempotent, sdk.CapTransactional)
		}
		problems = append(problems, msg)
	}
	for _, pr := range processors {
		if !slices.Contains(pr.Spec.CapabilitiesFor(pr.Values), sdk.CapDeterministic) {
			problems = append(problems, fmt.Sprintf("delivery %q needs deterministic transforms (a replayed batch must become the same records), but %s does not declare capability %q", d, pr.title(), sdk.CapDeterministic))
		}
	}
	if deadLetter != nil {
		caps := deadLetter.Spec.CapabilitiesFor(deadLetter.Values)
		if !slices.Contains(caps, sdk.CapIdempotent) && !slices.Contains(caps, sdk.CapTransactional) {
			msg := fmt.Sprintf("delivery %q needs an idempotent or transactional dead-letter sink (a replayed batch writes its dead letters again), but dead_letter %q", d, deadLetter.Name)
			if conds := deadLetter.conditionals(sdk.CapIdempotent, sdk.CapTransactional); len(conds) > 0 {
				msg += fmt.Sprintf(" with %s is neither (%s)", deadLetter.settings(conds), deadLetter.hints(conds))
			} else {
				msg += fmt.Sprintf(" declares neither capability %q nor %q", sdk.CapIdempotent, sdk.CapTransactional)
			}
			problems = append(problems, msg)
		}
	}
	return problems
}

// title is `source "name" (version v)`.
func (p *Plugin) title() string {
	s := fmt.Sprintf("%s %q", p.Kind, p.Name)
	if p.Spec.Version != "" {
		s += fmt.Sprintf(" (version %s)", p.Spec.Version)
	}
	return s
}

// conditionals returns the spec's conditional capabilities among caps.
func (p *Plugin) conditionals(caps ...sdk.Capability) []sdk.Conditional {
	var out []sdk.Conditional
	for _, c := range p.Spec.When {
		if slices.Contains(caps, c.Capability) {
			out = append(out, c)
		}
	}
	return out
}

// settings renders the current values of the parameters conds depend on:
// `mode = "append"`, `mode = "append" (the default)`, `mode unset`.
func (p *Plugin) settings(conds []sdk.Conditional) string {
	var seen []string
	var parts []string
	for _, c := range conds {
		if slices.Contains(seen, c.Param) {
			continue
		}
		seen = append(seen, c.Param)
		v, ok := p.Values[c.Param]
		suffix := ""
		if !ok {
			if prm, found := p.Spec.Param(c.Param); found && prm.Default != nil {
				v, suffix = prm.Default, " (the default)"
			} else {
				parts = append(parts, c.Param+" unset")
				continue
			}
		}
		text := goValueText(v)
		if p.isSecret(c.Param) {
			text = `"(secret)"`
		}
		parts = append(parts, c.Param+" = "+text+suffix)
	}
	return strings.Join(parts, " and ")
}

// hints says under which values each conditional capability holds:
// `it is idempotent with mode = "batch"`.
func (p *Plugin) hints(conds []sdk.Conditional) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		prm, _ := p.Spec.Param(c.Param)
		vals := make([]string, len(c.Values))
		for j, v := range c.Values {
			if prm.Type == sdk.TypeString || prm.Type == sdk.TypeDuration {
				v = fmt.Sprintf("%q", v)
			}
			vals[j] = v
		}
		parts[i] = fmt.Sprintf("it is %s with %s = %s", c.Capability, c.Param, strings.Join(vals, " or "))
	}
	return strings.Join(parts, "; ")
}
