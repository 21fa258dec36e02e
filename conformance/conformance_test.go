package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/fault"
	"github.com/connectd/connectd/sdk"
)

// The suite's own tests run real pipelines. Most of them re-execute a
// connectd binary built without the race detector as host and plugin server
// (Options.Exe), which keeps the package's `go test -race` fast; one test
// uses the default, the test binary itself.

var (
	bin     string                // a connectd binary
	liars   = map[string]string{} // testdata plugin name → executable
	scratch string
)

func TestMain(m *testing.M) {
	// Children re-executed from this test binary never get here: init serves them.
	var err error
	scratch, err = os.MkdirTemp("", "conformance-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(scratch)
		bin = filepath.Join(scratch, "connectd")
		build := exec.Command("go", "build", "-o", bin, "../cmd/connectd")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building connectd: %v\n%s", err, out)
			return 1
		}
		for _, name := range []string{"ackfirst", "appender", "badreplay", "dropack", "hider", "counter", "retrydup", "replayonce", "keeper"} {
			exe, err := BuildPlugin(scratch, "./testdata/"+name)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			liars[name] = exe
		}
		return m.Run()
	}()
	os.Exit(code)
}

// options are the defaults of these tests: the prebuilt connectd as host.
func options(t *testing.T) Options {
	return Options{Exe: bin, Seed: 7, Log: logWriter{t}}
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = rep.WriteTable(&b)
	t.Log("\n" + b.String())
	return rep
}

// expectRows fails the test unless the report has a cell for every fault
// point of the given prefixes (in batch 2) and guarantee: a matrix that
// silently shrinks cannot pass. host.deadletter.before is expected only in
// a run with a dead-letter sink, which alone reaches it, and sink.write.commit
// only for a transactional sink (one with a transactional contract check).
func expectRows(t *testing.T, rep *Report, prefixes ...string) {
	t.Helper()
	for _, p := range fault.Points {
		if p.Name == fault.HostDeadLetter && rep.DeadLetter == "" {
			continue
		}
		if _, tx := rep.Find(PointContract, string(sdk.CapTransactional)); p.Name == fault.SinkWriteCommit && !tx {
			continue // only transactional sinks reach it
		}
		keep := false
		for _, pre := range prefixes {
			keep = keep || strings.HasPrefix(p.Name, pre)
		}
		if !keep {
			continue
		}
		for _, g := range rep.Claimed {
			if _, ok := rep.Find(p.Name+"@2", g); !ok {
				t.Errorf("no cell for %s@2 under %s", p.Name, g)
			}
		}
	}
	for _, g := range rep.Claimed {
		for _, row := range []string{PointNone, PointSoak} {
			if _, ok := rep.Find(row, g); !ok {
				t.Errorf("no %s cell under %s", row, g)
			}
		}
	}
}

func claims(t *testing.T, rep *Report, want ...string) {
	t.Helper()
	if strings.Join(rep.Claimed, ",") != strings.Join(want, ",") {
		t.Fatalf("claimed %q, want %q", rep.Claimed, want)
	}
}

// TestGeneratorToFile is CI's generator → file (batch mode, idempotent) pair.
func TestGeneratorToFile(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = LevelFromEnv()
	o.Source = Plugin{Name: "generator"}
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	rep := Test(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	if o.Level == Quick {
		expectRows(t, rep, "host.", "source.", "sink.")
	}
	for _, c := range []string{"replayable", "idempotent"} {
		if r, ok := rep.Find(PointContract, c); !ok || !r.Pass {
			t.Errorf("contract %s: %+v (present %v)", c, r, ok)
		}
	}
}

// TestFileToFile is CI's file → file pair: the file source's input is put in
// place by the file sink.
func TestFileToFile(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = LevelFromEnv()
	o.Source = Plugin{Name: "file", HCL: `paths = ["in/*.txt"]`}
	o.Sink = Plugin{Name: "file", HCL: `dir = "out", mode = "batch"`}
	o.Input = Plugin{Name: "file", Config: map[string]any{"dir": "in"}}
	rep := Test(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	if o.Level == Quick {
		expectRows(t, rep, "host.", "source.", "sink.")
	}
}

// TestGeneratorToFileAppend is CI's at-least-once pair: the append sink
// cannot be exactly-once, duplicates are counted, nothing is lost.
func TestGeneratorToFileAppend(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = LevelFromEnv()
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "append"}}
	rep := Test(t, o)
	claims(t, rep, AtLeastOnce, AtMostOnce)
	if !strings.Contains(rep.NotClaimed, "append") {
		t.Errorf("NotClaimed %q does not say why", rep.NotClaimed)
	}
	if o.Level == Quick {
		expectRows(t, rep, "host.", "sink.")
	}
	dups := 0
	for _, r := range rep.Results {
		if r.Guarantee == AtLeastOnce {
			dups += r.Duplicated
			if r.Lost != 0 {
				t.Errorf("%s: %d lost under at-least-once", r.FaultPoint, r.Lost)
			}
		}
		if strings.HasPrefix(r.FaultPoint, "source.") {
			t.Errorf("%s: the generator is not under test, its fault points are not in the matrix", r.FaultPoint)
		}
	}
	if r, _ := rep.Find(fault.HostWriteAfter+"@2", AtLeastOnce); r.Duplicated == 0 {
		t.Errorf("host.write.after@2 at-least-once counted no duplicate: %+v", r)
	}
	if dups == 0 {
		t.Error("no duplicates counted anywhere under at-least-once with an appending sink")
	}
}

// TestTransactionalSink runs the file sink's transactional mode: its
// exactly-once comes from LastCommitted, which the contract check verifies.
func TestTransactionalSink(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "transactional"}}
	o.Points = []string{PointNone, fault.HostWriteAfter, fault.HostCommitAfter, fault.SinkWriteCommit, fault.SinkWriteAfter, PointContract, PointRecovery}
	rep := run(t, o)
	if !rep.Passed() {
		t.Errorf("failed: %+v", rep.Failed())
	}
	// Its commit holds a written batch, so the recovery rows crash first
	// with batch 2 only planned: the restarted host must replay it.
	for _, p := range []string{"host.plan.after@2+host.write.after@2", "host.plan.after@2+sink.write.partial@2"} {
		if r, ok := rep.Find(PointRecovery+":"+p, ExactlyOnce); !ok || !r.Pass {
			t.Errorf("%s:%s / %s: %+v (present %v)", PointRecovery, p, ExactlyOnce, r, ok)
		}
	}
	for _, g := range rep.Claimed {
		// The file sink calls sdk.FaultBeforeCommit: the crash is inside its
		// transaction (the row fails as "not reached" otherwise).
		if r, ok := rep.Find("sink.write.commit@2", g); !ok || !r.Pass || !strings.Contains(r.Detail, "crashed at sink.write.commit@2") {
			t.Errorf("sink.write.commit@2 / %s: %+v (present %v)", g, r, ok)
		}
	}
	if r, ok := rep.Find(PointContract, "transactional"); !ok || !r.Pass || !strings.Contains(r.Detail, "after a restart") {
		t.Errorf("transactional contract: %+v (present %v)", r, ok)
	}
	if _, ok := rep.Find(PointContract, "idempotent"); ok {
		t.Error("an idempotent check for a sink that does not claim idempotence")
	}
}

// failsWith asserts that a cell failed with counts in the given ranges.
func failsWith(t *testing.T, rep *Report, point, guarantee string, lost, dup bool) {
	t.Helper()
	r, ok := rep.Find(point, guarantee)
	switch {
	case !ok:
		t.Errorf("no cell %s / %s", point, guarantee)
	case r.Pass:
		t.Errorf("%s / %s passed; want a failure: %+v", point, guarantee, r)
	case lost != (r.Lost > 0) || dup != (r.Duplicated > 0):
		t.Errorf("%s / %s: %d lost %d duplicated; want lost %v, duplicates %v", point, guarantee, r.Lost, r.Duplicated, lost, dup)
	}
}

func passes(t *testing.T, rep *Report, point, guarantee string) {
	t.Helper()
	if r, ok := rep.Find(point, guarantee); !ok || !r.Pass {
		t.Errorf("%s / %s: %+v (present %v); want a pass", point, guarantee, r, ok)
	}
}

// TestCatchesAckBeforeWrite: a sink that acknowledges a batch before it is
// written loses it when the host dies after committing.
func TestCatchesAckBeforeWrite(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: liars["ackfirst"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{PointNone, fault.HostWriteBefore, fault.HostCommitAfter, fault.HostAckAfter, PointContract}
	rep := run(t, o)
	if rep.Passed() {
		t.Fatal("the suite passed a sink that acknowledges before it writes")
	}
	for _, g := range []string{ExactlyOnce, AtLeastOnce} {
		passes(t, rep, PointNone, g)
		failsWith(t, rep, "host.commit.after@2", g, true, false)
		failsWith(t, rep, "host.ack.after@2", g, true, false)
	}
	if r, _ := rep.Find("host.commit.after@2", AtMostOnce); !r.Pass || !r.Informational {
		t.Errorf("at-most-once losing records must pass as informational: %+v", r)
	}
	failsWith(t, rep, PointContract, "idempotent", true, false)
}

// TestCatchesAppendingIdempotentSink: a sink that claims idempotence but
// appends stores a rewritten batch twice.
func TestCatchesAppendingIdempotentSink(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Sink = Plugin{Name: liars["appender"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{PointNone, fault.HostWriteAfter, fault.SinkWriteAfter, PointContract}
	rep := run(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	passes(t, rep, PointNone, ExactlyOnce)
	for _, p := range []string{"host.write.after@2", "sink.write.after@2"} {
		failsWith(t, rep, p, ExactlyOnce, false, true)
		passes(t, rep, p, AtLeastOnce) // duplicates are what at-least-once allows
	}
	failsWith(t, rep, PointContract, "idempotent", false, true)
}

// findPrefix returns the result of the first cell whose point starts with
// prefix, under guarantee.
func findPrefix(rep *Report, prefix, guarantee string) (Result, bool) {
	for _, r := range rep.Results {
		if strings.HasPrefix(r.FaultPoint, prefix) && r.Guarantee == guarantee {
			return r, true
		}
	}
	return Result{}, false
}

// TestCatchesDuplicatingRetry: a sink whose bug lives only on the retry path
// of a failed write (testdata/retrydup: it stores half a batch, fails, and
// stores the retry under other names) passes the kill rows and the
// idempotence contract, and is caught at the quick level by the rows whose
// Write fails with an error: once in batch 2, and every Nth call over a run.
func TestCatchesDuplicatingRetry(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = Quick
	o.Sink = Plugin{Name: liars["retrydup"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{PointNone, fault.HostWriteAfter, fault.SinkWritePartial, PointContract}
	rep := run(t, o)
	claims(t, rep, ExactlyOnce, AtLeastOnce, AtMostOnce)
	for _, p := range []string{PointNone, "host.write.after@2", "sink.write.partial@2"} {
		passes(t, rep, p, ExactlyOnce)
	}
	passes(t, rep, PointContract, "idempotent")
	failsWith(t, rep, "sink.write.partial@2/error", ExactlyOnce, false, true)
	passes(t, rep, "sink.write.partial@2/error", AtLeastOnce) // duplicates are what at-least-once allows
	r, ok := findPrefix(rep, "sink.write.partial%", ExactlyOnce)
	switch {
	case !ok:
		t.Error("no row of repeated sink.write.partial%N/error failures")
	case r.Pass || r.Duplicated == 0 || r.Lost > 0:
		t.Errorf("%s: %+v; want duplicates caught", r.FaultPoint, r)
	}
}

// TestFailedCallsHonestSink: the honest file sink (batch mode) and the
// generator pass the rows of failed calls, each of which was reached.
func TestFailedCallsHonestSink(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Level = Quick
	o.Source = Plugin{Name: "generator"}
	o.Sink = Plugin{Name: "file", Config: map[string]any{"dir": "out", "mode": "batch"}}
	o.Points = []string{fault.SinkWritePartial, fault.SourceReadBefore}
	rep := run(t, o)
	if !rep.Passed() {
		t.Errorf("failed: %+v", rep.Failed())
	}
	for _, g := range rep.Claimed {
		for _, p := range []string{"sink.write.partial@2/error", "source.read.before@2/error", "sink.write.partial%"} {
			r, ok := findPrefix(rep, p, g)
			if !ok {
				t.Errorf("no cell %s under %s", p, g)
				continue
			}
			if !strings.Contains(r.Detail, "call failed at") {
				t.Errorf("%s / %s: detail %q does not say the call failed", r.FaultPoint, g, r.Detail)
			}
		}
	}
}

// spread writes values into n files dir/in/part-<i>.txt, round robin.
func spread(dir string, values [][]byte, n int) error {
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		return err
	}
	files := make([][]byte, n)
	for i, v := range values {
		files[i%n] = append(append(files[i%n], v...), '\n')
	}
	for i, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "in", fmt.Sprintf("part-%d.txt", i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// TestCatchesReplayThatDiffers: a source whose replay returns other records
// breaks exactly-once (and at-least-once) after a crash that needs a replay.
func TestCatchesReplayThatDiffers(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Source = Plugin{Name: liars["badreplay"], Config: map[string]any{"paths": []string{"in/*.txt"}}}
	o.InputFunc = func(dir string, values [][]byte) error { return spread(dir, values, 2) }
	o.Points = []string{PointNone, fault.HostPlanAfter, fault.HostWriteAfter, fault.HostAckAfter, PointContract}
	rep := run(t, o)
	for _, g := range []string{ExactlyOnce, AtLeastOnce} {
		passes(t, rep, PointNone, g)
		passes(t, rep, "host.ack.after@2", g) // no replay there
		failsWith(t, rep, "host.plan.after@2", g, true, true)
		failsWith(t, rep, "host.write.after@2", g, true, true)
	}
	failsWith(t, rep, PointContract, "replayable", true, true)
	if r, _ := rep.Find(PointContract, "replayable"); !strings.Contains(r.Error, "differs from its read") {
		t.Errorf("replay contract error %q does not say what differs", r.Error)
	}
}

// TestCatchesDropOnAck: a source that deletes more than was acknowledged
// loses records when it crashes after an ack.
func TestCatchesDropOnAck(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Source = Plugin{Name: liars["dropack"], Config: map[string]any{"path": "in/spool.txt"}}
	o.InputFunc = func(dir string, values [][]byte) error {
		if err := spread(dir, values, 1); err != nil {
			return err
		}
		return os.Rename(filepath.Join(dir, "in", "part-0.txt"), filepath.Join(dir, "in", "spool.txt"))
	}
	o.Points = []string{PointNone, fault.HostAckAfter, fault.SourceAckAfter, PointContract}
	rep := run(t, o)
	for _, g := range []string{ExactlyOnce, AtLeastOnce} {
		passes(t, rep, PointNone, g)
		failsWith(t, rep, "host.ack.after@2", g, true, false)
		failsWith(t, rep, "source.ack.after@2", g, true, false)
	}
	failsWith(t, rep, PointContract, "replayable", true, false)
}

// TestTestBinaryAsHost runs the suite the way a plugin author's go test
// does: the default Exe is this test binary, re-executed as host and as the
// bundled plugins' server. (Under -race every child is race-instrumented and
// slow, so the matrix here is small.)
func TestTestBinaryAsHost(t *testing.T) {
	t.Parallel()
	o := options(t)
	o.Exe = ""
	o.Sink = Plugin{Name: liars["appender"], Config: map[string]any{"dir": "out"}}
	o.Points = []string{fault.HostWriteAfter}
	rep := run(t, o)
	failsWith(t, rep, "host.write.after@2", ExactlyOnce, false, true)
	passes(t, rep, "host.write.after@2", AtLeastOnce)
	passes(t, rep, "host.write.after@2", AtMostOnce)
}

// connectd runs the connectd binary in dir and returns its exit code and output.
func connectd(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestCLI runs `connectd conformance` as CI and scripts do.
func TestCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("file.hcl", "sink \"file\" { dir = \"out\" }\n")
	junit := filepath.Join(dir, "report.xml")
	code, out, errs := connectd(t, dir, "conformance", "--source", "generator", "--sink", "file", "--config", cfg,
		"--quick", "--json", "--junit", junit, "--points", "none,host.write.after", "--seed", "3")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var rep struct {
		Seed    int64            `json:"seed"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json printed no single JSON object: %v\n%s", err, out)
	}
	if rep.Seed != 3 || len(rep.Results) != 6 {
		t.Errorf("seed %d, %d results; want seed 3 and 2 rows × 3 guarantees", rep.Seed, len(rep.Results))
	}
	for _, r := range rep.Results {
		for _, k := range []string{"fault_point", "guarantee", "lost", "duplicated", "pass"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result lacks %q: %v", k, r)
			}
		}
	}
	if x, err := os.ReadFile(junit); err != nil || !bytes.Contains(x, []byte(`<testcase name="host.write.after@2" classname="conformance.exactly-once"`)) {
		t.Errorf("--junit: %v\n%s", err, x)
	}
	if !strings.Contains(errs, "[6/6]") {
		t.Errorf("no progress on stderr:\n%s", errs)
	}

	// A liar given by path fails, with a table that names the fault point.
	liar := write("liar.hcl", "sink \"appender\" {\n  dir = \"out\"\n}\n")
	code, out, errs = connectd(t, dir, "conformance", "--sink", liars["appender"], "--config", liar, "--quick", "--points", "host.write.after")
	if code != 1 || !regexp.MustCompile(`host\.write\.after@2 +FAIL 0 lost [1-9][0-9]* dup +pass \([0-9]+ dup\)`).MatchString(out) {
		t.Errorf("appending sink: exit %d, want 1 and a failed exactly-once cell\n%s\n%s", code, out, errs)
	}

	// A processor under test, behind a transform, with a dead-letter sink:
	// the config file's transform, processor and dead_letter blocks.
	chain := write("chain.hcl", `transform "set" { fields = { "id" = "[value.id + '-a', value.id + '-b']" } }
processor "split" { field = "id" }
dead_letter "file" { dir = "dead" }
`)
	code, out, errs = connectd(t, dir, "conformance", "--processor", "split", "--config", chain, "--quick", "--points", "contract")
	if code != 0 || !strings.Contains(out, `through: set → processor "split"`) || !strings.Contains(out, `dead letters: sink "file"`) || !regexp.MustCompile(`deterministic +pass`).MatchString(out) {
		t.Errorf("--processor split: exit %d, want 0 and a passed deterministic check through set → split\n%s\n%s", code, out, errs)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--processor", "filter"}, "is a built-in transform, not a processor plugin"},
		{[]string{"--sink", "file", "--config", write("twoproc.hcl", "processor \"split\" {}")}, "no --processor names the processor under test"},
		{[]string{"--quick"}, "give --source, --sink, --processor or several"},
		{[]string{"--sink", "file", "--points", "host.nowhere"}, `unknown point "host.nowhere"`},
		{[]string{"--sink", "file", "--config", write("bad.hcl", "sink \"file\" { dir = \"out\"")}, "not closed"},
		{[]string{"--sink", "file", "--config", write("typo.hcl", "sink \"file\" { dri = \"out\" }")}, `has no parameter "dri"`},
		{[]string{"--sink", "file", "--config", write("other.hcl", "sink \"discard\" {}")}, `has sink "discard", but --sink is "file"`},
		{[]string{"--source", "file", "--config", write("noinput.hcl", "source \"file\" { paths = [\"in/*\"] }")}, "needs known input"},
		{[]string{"--sink", "file", "--bogus"}, "flag provided but not defined"},
	} {
		code, _, errs := connectd(t, dir, append([]string{"conformance"}, bad.args...)...)
		if code != 2 || !strings.Contains(errs, bad.want) {
			t.Errorf("%q: exit %d, want 2 and %q in:\n%s", bad.args, code, bad.want, errs)
		}
	}
	// A sink the suite cannot read back is a runtime failure.
	code, _, errs = connectd(t, dir, "conformance", "--sink", "discard", "--quick")
	if code != 1 || !strings.Contains(errs, "sdk.Lister") {
		t.Errorf("discard: exit %d, want 1 and a word about sdk.Lister:\n%s", code, errs)
	}
}

// TestLabelsAvoidTheHostsPlugins: a plugin given by path is linked under a
// name that none of the host executable's bundled plugins has: the connectd
// binary bundles kafka, this test binary does not; an Exe that cannot host the
// suite is refused, and so is a name the host does not bundle.
func TestLabelsAvoidTheHostsPlugins(t *testing.T) {
	o := Options{Sink: Plugin{Name: "/x/connectd-plugin-kafka"}}
	for exe, want := range map[string]string{bin: "kafka-under-test", "": "kafka"} {
		o.Exe = exe
		s, err := newSuite(o)
		if err != nil {
			t.Fatalf("Exe %q: %v", exe, err)
		}
		if s.snk.label != want {
			t.Errorf("Exe %q: label %q, want %q", exe, s.snk.label, want)
		}
	}
	o.Exe = ""
	o.Sink = Plugin{Name: "kafka"}
	if _, err := newSuite(o); err == nil || !strings.Contains(err.Error(), `plugin "kafka" is not bundled`) {
		t.Errorf("kafka by name in a test binary: %v, want a UsageError saying it is not bundled", err)
	}
	o.Exe = liars["appender"] // a plugin, not a host
	var u *UsageError
	if _, err := newSuite(o); !errors.As(err, &u) || !strings.Contains(err.Error(), "cannot host") {
		t.Errorf("Exe that is a plugin: %v, want a UsageError saying it cannot host", err)
	}
}
