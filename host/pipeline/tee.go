package pipeline

import "time"

// Tee returns a Progress that passes every report to each of ps in order
// (nil ones skipped).
func Tee(ps ...Progress) Progress {
	var out tee
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

type tee []Progress

func (t tee) Batch(r Report) {
	for _, p := range t {
		p.Batch(r)
	}
}

func (t tee) Done(pipeline string, batches, records int64, elapsed time.Duration) {
	for _, p := range t {
		p.Done(pipeline, batches, records, elapsed)
	}
}

// Heartbeat passes h to each Progress that is a Heartbeater and reports
// whether one of them showed it.
func (t tee) Heartbeat(h Heartbeat) bool {
	shown := false
	for _, p := range t {
		if hb, ok := p.(Heartbeater); ok && hb.Heartbeat(h) {
			shown = true
		}
	}
	return shown
}
