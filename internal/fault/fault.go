// Package fault holds connectd's named fault points: places in the host and in
// the sdk's plugin side where a test run can make the process die on the spot,
// as kill -9 would (no deferred cleanup, no flush), or, at a plugin-side point,
// make the call the plugin is serving fail with an error. They do nothing
// unless the environment variable CONNECTD_FAULT names them.
//
// CONNECTD_FAULT is a comma-separated list of point[@batch|%N][:k][/error]
// items:
//
//	host.commit.after               die the first time the host reaches the point
//	host.commit.after@3             die there in batch 3 only
//	sink.write.partial@2:10         in batch 2, die after the sink wrote 10 records
//	sink.write.partial@2:10/error   the same, but the Write call fails instead (once per process)
//	sink.write.partial%5/error      every 5th Write of the process stores half its batch, then fails
//
// An error item is for plugin-side points only; it fires once per process
// (with %N, every Nth time the process reaches the point), since the host
// keeps a plugin whose call failed running and retries the call.
//
// The names are listed in Points and documented in docs/fault-points.md.
package fault

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
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
	SinkWriteCommit   = point("sink.write.commit", "inside a transactional sink's `Write`, dies with batch N's rows written but before its commit (where the sink calls `sdk.FaultBeforeCommit`)")
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
	every int64 // > 0: every Nth time the process reaches the point
	k     int64 // -1: not given
	err   bool  // the error variant: the call fails, the process lives
	calls int64 // times the process reached the point (every > 0)
	fired bool  // an error item without every fired already
}

// Set is the parsed value of CONNECTD_FAULT. The zero Set enables nothing.
type Set struct {
	mu    *sync.Mutex
	items map[string]*item
}

// ErrorSuffix ends a CONNECTD_FAULT item that makes the call fail instead of
// killing the process.
const ErrorSuffix = "/error"

// Parse reads a CONNECTD_FAULT value.
func Parse(s string) (Set, error) {
	set := Set{mu: new(sync.Mutex), items: map[string]*item{}}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		orig := f
		it := &item{k: -1}
		if rest, ok := strings.CutSuffix(f, ErrorSuffix); ok {
			it.err, f = true, rest
		}
		if i := strings.IndexByte(f, ':'); i >= 0 {
			k, err := strconv.ParseInt(f[i+1:], 10, 64)
			if err != nil || k < 0 {
				return Set{}, fmt.Errorf("%s: %q: k after ':' must be a whole number >= 0", Env, orig)
			}
			it.k, f = k, f[:i]
		}
		if i := strings.IndexByte(f, '%'); i >= 0 {
			n, err := strconv.ParseInt(f[i+1:], 10, 64)
			if err != nil || n < 1 {
				return Set{}, fmt.Errorf("%s: %q: N after '%%' must be a whole number >= 1", Env, orig)
			}
			it.every, f = n, f[:i]
		}
		if i := strings.IndexByte(f, '@'); i >= 0 {
			b, err := strconv.ParseInt(f[i+1:], 10, 64)
			if err != nil || b < 1 {
				return Set{}, fmt.Errorf("%s: %q: batch after '@' must be a batch id >= 1", Env, orig)
			}
			it.batch, f = b, f[:i]
		}
		if !Known(f) {
			return Set{}, fmt.Errorf("%s: unknown fault point %q (see docs/fault-points.md)", Env, f)
		}
		if it.batch != 0 && it.every != 0 {
			return Set{}, fmt.Errorf("%s: %q: give a batch (@) or every Nth call (%%), not both", Env, orig)
		}
		if it.every != 0 && !it.err {
			return Set{}, fmt.Errorf("%s: %q: every Nth call (%%N) needs %s: a kill fires only once per run", Env, orig, ErrorSuffix)
		}
		if it.err && strings.HasPrefix(f, "host.") {
			return Set{}, fmt.Errorf("%s: %q: %s is for plugin-side points; a host point can only kill the host", Env, orig, ErrorSuffix)
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
// stderr (see Fire). It is for host points, which have no error variant;
// plugin-side code calls Check.
func Hit(point string, batch int64) {
	if _, ok := Trip(point, batch, 0); ok {
		_ = Fail(point, batch)
	}
}

// Check is Hit for a point with an error variant: if point fires in this
// call for batch, a kill item ends the process (see Fire) and an error item
// returns the error the call must fail with. Otherwise it returns nil.
func Check(point string, batch int64) error {
	if _, ok := Trip(point, batch, 0); ok {
		return Fail(point, batch)
	}
	return nil
}

// Trip reports whether point fires in this call for batch, and for a
// partial point how many of the call's n records go through first (see K).
// Each call counts towards an every-Nth item, so call it once per call that
// reaches the point; an error item without %N fires once per process.
func Trip(point string, batch int64, n int) (int, bool) {
	if active.items == nil {
		return 0, false
	}
	active.mu.Lock()
	defer active.mu.Unlock()
	it, ok := active.items[point]
	switch {
	case !ok, it.batch != 0 && it.batch != batch:
		return 0, false
	case it.every > 0:
		it.calls++
		if it.calls%it.every != 0 {
			return 0, false
		}
	case it.err && it.fired:
		return 0, false
	}
	it.fired = true
	return kOf(it, n), true
}

// Fail ends a call at point, which Trip said fires: for a kill item it
// kills the process (see Fire) and never returns; for an error item it
// returns an *Error.
func Fail(point string, batch int64) error {
	if active.items != nil {
		active.mu.Lock()
		it := active.items[point]
		active.mu.Unlock()
		if it != nil && it.err {
			return &Error{Point: point, Batch: batch}
		}
	}
	Fire(point, batch)
	return nil // not reached
}

// Error is the error a call fails with at a fault point's error variant.
type Error struct {
	Point string
	Batch int64
}

func (e *Error) Error() string {
	return fmt.Sprintf("fault point %q failed the call in batch %d (%s)", e.Point, e.Batch, Env)
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
// k it is half of n. It does not count calls: plugin-side code calls Trip.
func K(point string, batch int64, n int) (int, bool) {
	it, ok := active.items[point]
	if !ok || (it.batch != 0 && it.batch != batch) {
		return 0, false
	}
	return kOf(it, n), true
}

func kOf(it *item, n int) int {
	if it.k < 0 {
		return n / 2
	}
	if it.k > int64(n) {
		return n
	}
	return int(it.k)
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
