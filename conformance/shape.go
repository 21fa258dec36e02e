package conformance

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/connectd/connectd/host/transform"
)

// Runs through transforms: Options.Transforms, Options.Processor and
// Options.DeadLetter. The expected output of such a run is not its input
// (a filter drops records, a processor adds some, a stage rejects others
// into the dead-letter sink), so the suite first runs each input once
// without faults, the reference run, and judges every other pipeline by
// what the reference left in the sink and in the dead-letter sink.

// defaultDead is the directory of the default dead-letter sink.
const defaultDead = "conformance-dead"

// chain sets up the transform chain and the dead-letter sink from the
// options. names are the plugins the host executable bundles.
func (s *suite) chain(names map[string]bool) error {
	for i, t := range s.o.Transforms {
		if t.Name == "" {
			return usagef("conformance: transform %d has no name: give a built-in (filter, set, …), a bundled processor or a processor's path", i+1)
		}
		s.trs = append(s.trs, side{plugin: t, label: chainLabel(t.Name, names)})
	}
	if s.o.Processor.Name != "" {
		if transform.Builtin(s.o.Processor.Name) {
			return usagef("conformance: %q is a built-in transform, not a processor plugin: put it in Transforms (a transform block in the configuration); the built-ins are deterministic by construction", s.o.Processor.Name)
		}
		s.trs = append(s.trs, side{plugin: s.o.Processor, label: chainLabel(s.o.Processor.Name, names), underTest: true})
		s.prc = &s.trs[len(s.trs)-1]
	}
	switch {
	case s.o.DeadLetter.Name != "":
		s.dl = &side{plugin: s.o.DeadLetter, label: pluginLabel(s.o.DeadLetter.Name, names)}
	case len(s.trs) > 0:
		s.dl = &side{plugin: Plugin{Name: "file", Config: map[string]any{"dir": defaultDead, "mode": "batch"}}, label: "file"}
	}
	return nil
}

// chainLabel is pluginLabel for a transform block: a processor given by
// path never gets a built-in's name, which would name the built-in.
func chainLabel(name string, names map[string]bool) string {
	label := pluginLabel(name, names)
	if strings.ContainsRune(name, '/') && transform.Builtin(label) {
		label += "-plugin"
	}
	return label
}

// shaped reports whether the run's pipelines have transforms or a
// dead-letter sink, so that the reference run's output is the expectation.
func (s *suite) shaped() bool { return len(s.trs) > 0 || s.dl != nil }

// shapeBlocks renders the pipeline's on_record_error, transform blocks and
// dead_letter block, or "" for a run without them.
func (s *suite) shapeBlocks() (string, error) {
	var b strings.Builder
	if s.dl != nil {
		b.WriteString("on_record_error = \"dead_letter\"\n\n")
	}
	for i, t := range s.trs {
		blk, err := block("transform", t.label, t.plugin)
		if err != nil {
			return "", usagef("conformance: transform %d: %v", i+1, err)
		}
		b.WriteString(blk + "\n\n")
	}
	if s.dl != nil {
		blk, err := block("dead_letter", s.dl.label, s.dl.plugin)
		if err != nil {
			return "", usagef("conformance: dead_letter: %v", err)
		}
		b.WriteString(blk + "\n\n")
	}
	return b.String(), nil
}

// reference runs each input the matrix uses once, without faults, at
// least once, and keeps what the sink and the dead-letter sink hold after
// it: the expectation of every cell (see judge). With an Options.Reader the
// sink's part is what the Reader found. At the full level it also counts
// the batches of the crash input's run (s.last), running the crash input
// even without transforms: the crash rows crash in its last batch too.
func (s *suite) reference(ctx context.Context) error {
	if !s.shaped() && s.o.Level != Full {
		return nil
	}
	ins := []input{s.crash}
	if s.shaped() {
		s.expect = map[input]*listed{}
		if s.applies(PointSoak) {
			ins = append(ins, s.soak)
		}
	}
	for i, in := range ins {
		dir := filepath.Join(s.work, fmt.Sprintf("reference-%d", i+1))
		name := fmt.Sprintf("conformance-%s-ref%d", s.runID, i+1)
		err := s.writeFiles(dir, name, AtLeastOnce, in, 0, s.batch)
		if err == nil {
			err = s.putInput(ctx, dir, name, in)
		}
		if err != nil {
			return err
		}
		r, err := s.child(ctx, dir, name, nil, modeRun, pipelineFile, "list")
		if err != nil {
			return err
		}
		if err := r.failed("conformance: the reference run's settings are wrong", "conformance: the reference run (the pipeline once without faults, whose output every cell must match) failed"); err != nil {
			return err
		}
		got := r.status.Listed
		if got == nil {
			return fmt.Errorf("conformance: the reference run did not read the sink back: %s", r.tail())
		}
		if in == s.crash && s.o.Level == Full {
			if r.status.Batches < 1 {
				return fmt.Errorf("conformance: the reference run (the pipeline once without faults) moved no batch: the source returned none of the %d input records", in.count)
			}
			s.last = int(r.status.Batches)
			s.logf("conformance: reference run of %d input records: %d batches; the full level crashes in batches %s\n", in.count, s.last, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(s.crashBatches())), ", "), "[]"))
		}
		if !s.shaped() {
			continue
		}
		if s.o.Reader != nil {
			if got, err = s.readBack(ctx, dir, name, got); err != nil {
				return fmt.Errorf("conformance: the reference run: %w", err)
			}
		}
		if got.Records+got.DeadRecords == 0 {
			return fmt.Errorf("conformance: the reference run left nothing in the sink or the dead-letter sink: the transforms drop every record, and a matrix of empty outputs tests nothing")
		}
		s.expect[in] = got
		s.logf("conformance: reference run of %d input records: %d records in the sink, %d in the dead-letter sink\n", in.count, got.Records, got.DeadRecords)
	}
	return nil
}

// judge compares what a pipeline's sink and dead-letter sink hold (got)
// with the reference run's (want): lost counts copies of ids below the
// reference, duplicated copies above it, in either sink; unexpected lists
// ids one of the sinks holds that the reference did not have there (an id
// in the wrong sink is lost from one and unexpected in the other).
func judge(want, got *listed) (lost, dup int, unexpected []string, detail string) {
	l1, d1, u1 := diffCounts(want.IDs, got.IDs)
	l2, d2, u2 := diffCounts(want.Dead, got.Dead)
	unexpected = append(u1, u2...)
	var notes []string
	if l2 > 0 || d2 > 0 || len(u2) > 0 {
		notes = append(notes, fmt.Sprintf("the dead-letter sink holds %d records, the reference run %d: %d lost, %d duplicated, %d ids it did not hold there", got.DeadRecords, want.DeadRecords, l2, d2, len(u2)))
	}
	for _, id := range u1 {
		if want.Dead[id] > 0 {
			notes = append(notes, fmt.Sprintf("id %q is in the sink; the reference run had it in the dead-letter sink", id))
			break
		}
	}
	for _, id := range u2 {
		if want.IDs[id] > 0 {
			notes = append(notes, fmt.Sprintf("id %q is in the dead-letter sink; the reference run had it in the sink", id))
			break
		}
	}
	return l1 + l2, d1 + d2, unexpected, strings.Join(notes, "\n")
}

// diffCounts compares held id counts with wanted ones.
func diffCounts(want, seen map[string]int) (lost, dup int, unexpected []string) {
	for id, w := range want {
		switch n := seen[id]; {
		case n < w:
			lost += w - n
		case n > w:
			dup += n - w
		}
	}
	for _, id := range slices.Sorted(maps.Keys(seen)) {
		if want[id] == 0 {
			unexpected = append(unexpected, id)
		}
	}
	return lost, dup, unexpected
}

// describeChain describes the transform chain and the dead-letter sink for
// the report: `filter → set → processor "split" 0.1.0 under test`.
func (s *suite) describeChain() (string, string) {
	var parts []string
	procs := s.probe.Processors
	for _, t := range s.trs {
		if transform.Builtin(t.label) {
			parts = append(parts, t.label)
			continue
		}
		d := fmt.Sprintf("processor %q", t.label)
		if len(procs) > 0 {
			d = fmt.Sprintf("processor %q %s", procs[0].Name, procs[0].Version)
			procs = procs[1:]
		}
		if strings.ContainsRune(t.plugin.Name, '/') {
			d += " (" + t.plugin.Name + ")"
		}
		if t.underTest {
			d += " under test"
		}
		parts = append(parts, d)
	}
	dl := ""
	if s.dl != nil && s.probe.DeadLetter != nil {
		dl = fmt.Sprintf("sink %q %s", s.probe.DeadLetter.Name, s.probe.DeadLetter.Version)
	}
	return strings.Join(parts, " → "), dl
}
