// Package fault holds connectd's named fault points: places in the host and in
// the sdk's plugin side where a test run can make the process die on the spot,
// as kill -9 would (no deferred cleanup, no flush). They do nothing unless the
// environment variable CONNECTD_FAULT names them.
//
// CONNECTD_FAULT is a comma-separated list of point[@batch][:k] items:
//
//	host.commit.after          die the first time the host reaches the point
//	host.commit.after@3        die there in batch 3 only
//	sink.write.partial@2:10    in batch 2, die after the sink wrote 10 records
//
// The names are listed in Points and documented in docs/fault-points.md.
package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Env is the environment variable that enables fault points for one run.
const Env = "CONNECTD_FAULT"

// The fault points, in protocol order: each is declared here once, with
// what dying there simulates (docs/fault-points.md shows the same table, and
// a test keeps the two equal). Host points run in the connectd host; the
// others run inside a plugin process (in the sdk), so they work for
// third-party plugins too. Each variable holds the point's name as
// CONNECTD_FAULT spells it.
var (
	HostPlanBefore    = point("host.plan.before", "dies before asking the source for batch N")
	HostPlanAfter     = point("host.plan.after", "dies after `offsets/N` is durable, before anything is written")
	HostWriteBefore   = point("host.write.before", "dies before sending batch N to the sink")
	HostWritePartial  = point("host.write.partial", "dies after sending k records of batch N to the sink")
	HostDeadLetter    = point("host.deadletter.before", "dies after the sink made batch N durable, before its rejected records are written to the dead-letter sink (pipelines with `on_record_error = \"dead_letter\"`)")
	HostWriteAfter    = point("host.write.after", "dies after the sink made batch N durable (and its dead letters), before `commits/N`")
	HostCommitAfter   = point("host.commit.after", "dies after `commits/N` is durable, before ACK (at-most-once: before WRITE)")
	HostAckAfter      = point("host.ack.after", "dies after the source acknowledged `until(N)`")
	SourceReadBefore  = point("source.read.before", "dies on receiving the read request for batch N")
	SourceReadPartial = point("source.read.partial", "dies after sending k records of batch N")
	SourceReadAfter   = point("source.read.after", "dies after sending every record of batch N, before its range")
	SourceReplay      = point("source.replay.before", "dies on receiving the replay request for batch N")
	SourceAckBefore   = point("source.ack.before", "dies before its Ack of batch N runs")
	SourceAckAfter    = point("source.ack.after", "dies after its Ack of batch N returned, before replying")
	SinkWriteBefore   = point("sink.write.before", "dies with batch N received, before `Write`")
	SinkWritePartial  = point("sink.write.partial", "writes the first k records of batch N (as a batch with the same id), then dies; a transactional sink dies before `Write` instead, since a partial transaction is never visible")
	SinkWriteAfter    = point("sink.write.after", "dies after `Write` made batch N durable, before replying")
	ProcessorBefore   = point("processor.process.before", "dies with batch N received, before `Process`")
	ProcessorAfter    = point("processor.process.after", "dies after `Process` returned batch N's records, before replying")
)

// Point is one fault point.
type Point struct {
	// Name is the point's name as CONNECTD_FAULT spells it; its first
	// element says which process it runs in: host, source, sink or
	// processor.
	Name string
	// Doc says what dying at the point simulates, as the table of
	// docs/fault-points.md says it (Markdown).
	Doc string
}

// Points lists every fault point in protocol order. It is filled by the
// declarations above and never changes afterwards.
var Points []Point

// point adds a fault point to Points and returns its name.
func point(name, doc string) string {
	Points = append(Points, Point{Name: name, Doc: doc})
	return name
}

// Known reports whether name is a fault point.
func Known(name string) bool {
	for _, p := range Points {
		if p.Name == name {
			return true
		}
	}
	return false
}

type item struct {
	batch int64 // 0: any
	k     int64 // -1: not given
}

// Set is the parsed value of CONNECTD_FAULT. The zero Set enables nothing.
type Set struct {
	items map[string]item
}

// Parse reads a CONNECTD_FAULT value.
func Parse(s string) (Set, error) {
	set := Set{items: map[string]item{}}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		it := item{k: -1}
		if i := strings.IndexByte(f, ':'); i >= 0 {
			k, err := strconv.ParseInt(f[i+1:], 10, 64)
			if err != nil || k < 0 {
				return Set{}, fmt.Errorf("%s: %q: k after ':' must be a whole number >= 0", Env, f)
			}
			it.k, f = k, f[:i]
		}
		if i := strings.IndexByte(f, '@'); i >= 0 {
			b, err := strconv.ParseInt(f[i+1:], 10, 64)
			if err != nil || b < 1 {
				return Set{}, fmt.Errorf("%s: %q: batch after '@' must be a batch id >= 1", Env, f)
			}
			it.batch, f = b, f[:i]
		}
		if !Known(f) {
			return Set{}, fmt.Errorf("%s: unknown fault point %q (see docs/fault-points.md)", Env, f)
		}
		set.items[f] = it
	}
	return set, nil
}

var active Set

// Init reads CONNECTD_FAULT from the environment. A bad value is an error; a
// caller must refuse to run with it rather than run without the faults asked for.
func Init() error {
	s, err := Parse(os.Getenv(Env))
	if err != nil {
		return err
	}
	active = s
	return nil
}

// Enabled reports whether any fault point is enabled in this process.
func Enabled() bool { return len(active.items) > 0 }

// Hit kills the process if point is enabled for batch, after saying so on
// stderr (see Fire).
func Hit(point string, batch int64) {
	if it, ok := active.items[point]; ok && (it.batch == 0 || it.batch == batch) {
		Fire(point, batch)
	}
}

// Fire writes one line on stderr naming point and batch, then ends the
// process as Die does. The line is written with one unbuffered write on the
// process's standard error as it started (syscall.Stderr), before the kill,
// so it is never lost with the process. It is that descriptor and not
// os.Stderr because a plugin's go-plugin server points os.Stderr at a pipe
// relayed over gRPC, which dies with the process; the original one is read
// by the host, which copies it to its own stderr.
func Fire(point string, batch int64) {
	_, _ = stderr.Write([]byte(Message(point, batch) + "\n"))
	Die()
}

// stderr is the standard error the process started with.
var stderr = os.NewFile(uintptr(syscall.Stderr), "stderr")

// Message is the line Fire writes: `connectd: fault point "host.commit.after"
// fired in batch 3 (CONNECTD_FAULT): killing process 4242`.
func Message(point string, batch int64) string {
	return fmt.Sprintf("connectd: fault point %q fired in batch %d (%s): killing process %d", point, batch, Env, os.Getpid())
}

// K returns how many records a partial point lets through in batch out of n
// records, and whether point is enabled for batch at all. Without an explicit
// k it is half of n.
func K(point string, batch int64, n int) (int, bool) {
	it, ok := active.items[point]
	if !ok || (it.batch != 0 && it.batch != batch) {
		return 0, false
	}
	if it.k < 0 {
		return n / 2, true
	}
	if it.k > int64(n) {
		return n, true
	}
	return int(it.k), true
}

// Die ends the process at once, as kill -9 would: no deferred function runs,
// nothing is flushed, and it never returns. On Unix the process sends itself
// SIGKILL, so its parent sees it killed by that signal. On Windows it
// terminates itself (TerminateProcess, what taskkill /F does) with exit status
// DieExitCode.
func Die() { killSelf() }

// DieExitCode is the exit status of a process that Die ended on Windows:
// 128+9, what a Unix shell reports for a process killed by SIGKILL. (On Unix
// the process has no exit status: it was killed by the signal.)
const DieExitCode = 137
