package fault

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]item
		wantErr string
	}{
		{"empty", "", map[string]item{}, ""},
		{"only separators", " , ,, ", map[string]item{}, ""},
		{"plain point", "host.commit.after", map[string]item{HostCommitAfter: {batch: 0, k: -1}}, ""},
		{"batch", "host.commit.after@3", map[string]item{HostCommitAfter: {batch: 3, k: -1}}, ""},
		{"batch and k", "sink.write.partial@2:10", map[string]item{SinkWritePartial: {batch: 2, k: 10}}, ""},
		{"k without batch", "source.read.partial:0", map[string]item{SourceReadPartial: {batch: 0, k: 0}}, ""},
		{"several with spaces", " host.plan.before@1 , sink.write.after ,host.write.partial@4:7",
			map[string]item{
				HostPlanBefore:   {batch: 1, k: -1},
				SinkWriteAfter:   {batch: 0, k: -1},
				HostWritePartial: {batch: 4, k: 7},
			}, ""},
		{"last of a repeated point wins", "host.ack.after@1,host.ack.after@2", map[string]item{HostAckAfter: {batch: 2, k: -1}}, ""},
		{"unknown point", "host.nap", nil, `unknown fault point "host.nap"`},
		{"unknown point after a good one", "host.plan.before,sink.explode@2", nil, `unknown fault point "sink.explode"`},
		{"case matters", "HOST.PLAN.BEFORE", nil, `unknown fault point "HOST.PLAN.BEFORE"`},
		{"empty name with batch", "@3", nil, `unknown fault point ""`},
		{"batch zero", "host.commit.after@0", nil, "batch after '@' must be a batch id >= 1"},
		{"negative batch", "host.commit.after@-1", nil, "batch after '@' must be a batch id >= 1"},
		{"batch not a number", "host.commit.after@x", nil, "batch after '@' must be a batch id >= 1"},
		{"empty batch", "host.commit.after@", nil, "batch after '@' must be a batch id >= 1"},
		{"negative k", "sink.write.partial@1:-1", nil, "k after ':' must be a whole number >= 0"},
		{"k not a number", "sink.write.partial:half", nil, "k after ':' must be a whole number >= 0"},
		{"empty k", "sink.write.partial@2:", nil, "k after ':' must be a whole number >= 0"},
		{"k before batch", "sink.write.partial:3@2", nil, "k after ':' must be a whole number >= 0"},
		{"error variant", "sink.write.before@2/error", map[string]item{SinkWriteBefore: {batch: 2, k: -1, err: true}}, ""},
		{"error variant with k", "sink.write.partial@2:10/error", map[string]item{SinkWritePartial: {batch: 2, k: 10, err: true}}, ""},
		{"every N", "sink.write.partial%7/error", map[string]item{SinkWritePartial: {every: 7, k: -1, err: true}}, ""},
		{"every N with k", "source.read.partial%3:1/error", map[string]item{SourceReadPartial: {every: 3, k: 1, err: true}}, ""},
		{"every N kills", "sink.write.before%3", nil, "needs /error"},
		{"every zero", "sink.write.before%0/error", nil, "N after '%' must be a whole number >= 1"},
		{"every not a number", "sink.write.before%x/error", nil, "N after '%' must be a whole number >= 1"},
		{"batch and every", "sink.write.before@2%3/error", nil, "not both"},
		{"error on a host point", "host.commit.after/error", nil, "plugin-side points"},
		{"other suffix", "sink.write.before/oops", nil, `unknown fault point "sink.write.before/oops"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want error containing %q", tt.in, set.items, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), Env+": ") {
					t.Fatalf("Parse(%q) error %q, want %s: ... %q", tt.in, err, Env, tt.wantErr)
				}
				if len(set.items) != 0 {
					t.Errorf("Parse(%q) failed but enabled %v", tt.in, set.items)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			got := map[string]item{}
			for k, v := range set.items {
				got[k] = *v
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, set.items, tt.want)
			}
		})
	}
}

func TestEveryPointParses(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Points {
		if seen[p.Name] {
			t.Errorf("point %q listed twice", p.Name)
		}
		seen[p.Name] = true
		if p.Doc == "" {
			t.Errorf("point %q has no doc", p.Name)
		}
		if !Known(p.Name) {
			t.Errorf("Known(%q) = false", p.Name)
		}
		if _, err := Parse(p.Name + "@1:2"); err != nil {
			t.Errorf("Parse(%q): %v", p.Name+"@1:2", err)
		}
	}
	if Known("nope") || Known("") {
		t.Error("Known accepts a name that is not a point")
	}
}

// withActive enables s for one test.
func withActive(t *testing.T, s string) {
	t.Helper()
	set, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	old := active
	active = set
	t.Cleanup(func() { active = old })
}

func TestK(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		point  string
		batch  int64
		n      int
		wantK  int
		wantOK bool
	}{
		{"not enabled", "", SinkWritePartial, 1, 10, 0, false},
		{"other point enabled", "source.read.partial", SinkWritePartial, 1, 10, 0, false},
		{"default half", "sink.write.partial", SinkWritePartial, 1, 10, 5, true},
		{"default half rounds down", "sink.write.partial", SinkWritePartial, 7, 9, 4, true},
		{"default half of one", "sink.write.partial", SinkWritePartial, 1, 1, 0, true},
		{"default half of none", "sink.write.partial", SinkWritePartial, 1, 0, 0, true},
		{"explicit k", "sink.write.partial:3", SinkWritePartial, 1, 10, 3, true},
		{"explicit zero", "sink.write.partial:0", SinkWritePartial, 1, 10, 0, true},
		{"explicit k equal to n", "sink.write.partial:10", SinkWritePartial, 1, 10, 10, true},
		{"explicit k capped at n", "sink.write.partial:50", SinkWritePartial, 1, 10, 10, true},
		{"explicit k capped at zero records", "sink.write.partial:5", SinkWritePartial, 1, 0, 0, true},
		{"batch matches", "host.write.partial@2:3", HostWritePartial, 2, 10, 3, true},
		{"batch matches default half", "host.write.partial@2", HostWritePartial, 2, 8, 4, true},
		{"other batch", "host.write.partial@2:3", HostWritePartial, 3, 10, 0, false},
		{"earlier batch", "host.write.partial@2", HostWritePartial, 1, 10, 0, false},
		{"any batch", "host.write.partial:1", HostWritePartial, 99, 10, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withActive(t, tt.env)
			k, ok := K(tt.point, tt.batch, tt.n)
			if k != tt.wantK || ok != tt.wantOK {
				t.Errorf("with %q, K(%s, %d, %d) = %d, %v; want %d, %v", tt.env, tt.point, tt.batch, tt.n, k, ok, tt.wantK, tt.wantOK)
			}
		})
	}
}

func TestInitAndEnabled(t *testing.T) {
	old := active
	t.Cleanup(func() { active = old })
	tests := []struct {
		env         string
		wantErr     bool
		wantEnabled bool
	}{
		{"", false, false},
		{"host.plan.before@5", false, true},
		{"bogus", true, true}, // a bad value leaves the previous set in place
		{" , ", false, false},
	}
	for _, tt := range tests {
		t.Setenv(Env, tt.env)
		err := Init()
		if (err != nil) != tt.wantErr {
			t.Errorf("Init with %q: %v, want error %v", tt.env, err, tt.wantErr)
		}
		if Enabled() != tt.wantEnabled {
			t.Errorf("after Init with %q: Enabled() = %v, want %v", tt.env, Enabled(), tt.wantEnabled)
		}
	}
}

// TestHitNotEnabled checks Hit returns when its point is not enabled for the
// batch. (A wrong answer kills the test binary, which also fails the test.)
func TestHitNotEnabled(t *testing.T) {
	tests := []struct {
		name  string
		env   string
		point string
		batch int64
	}{
		{"nothing enabled", "", HostCommitAfter, 1},
		{"other point", "host.plan.before", HostCommitAfter, 1},
		{"other batch", "host.commit.after@3", HostCommitAfter, 2},
		{"later batch", "host.commit.after@3", HostCommitAfter, 4},
		{"unknown point name", "host.commit.after", "host.commit.afterwards", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withActive(t, tt.env)
			Hit(tt.point, tt.batch)
		})
	}
}

func TestMessageNamesPointAndBatch(t *testing.T) {
	got := Message(HostCommitAfter, 3)
	want := fmt.Sprintf(`connectd: fault point "host.commit.after" fired in batch 3 (CONNECTD_FAULT): killing process %d`, os.Getpid())
	if got != want {
		t.Errorf("Message = %q, want %q", got, want)
	}
}

// TestCheckErrorVariant: an error item makes Check return an *Error naming
// the point and batch (the process lives), once per process; a %N item every
// Nth call that reaches the point, whatever the batch.
func TestCheckErrorVariant(t *testing.T) {
	withActive(t, "sink.write.before@2/error,source.read.before%3/error")
	if err := Check(SinkWriteBefore, 1); err != nil {
		t.Fatalf("batch 1: %v, want nil", err)
	}
	err := Check(SinkWriteBefore, 2)
	var fe *Error
	if !errors.As(err, &fe) || fe.Point != SinkWriteBefore || fe.Batch != 2 {
		t.Fatalf("batch 2: %v, want *Error for %s in batch 2", err, SinkWriteBefore)
	}
	if !strings.Contains(err.Error(), `"sink.write.before"`) || !strings.Contains(err.Error(), "batch 2") {
		t.Errorf("message %q does not name the point and batch", err)
	}
	if err := Check(SinkWriteBefore, 2); err != nil {
		t.Errorf("batch 2 again: %v; an error item fires once per process", err)
	}
	var fired []int64
	for b := int64(1); b <= 10; b++ {
		if err := Check(SourceReadBefore, b); err != nil {
			fired = append(fired, b)
		}
	}
	if want := []int64{3, 6, 9}; !reflect.DeepEqual(fired, want) {
		t.Errorf("%%3 fired in calls %v, want %v", fired, want)
	}
}

// TestTripPartialError: a partial error item says how many records go
// through, and Fail then returns the error instead of killing.
func TestTripPartialError(t *testing.T) {
	withActive(t, "sink.write.partial%2:3/error")
	if _, ok := Trip(SinkWritePartial, 1, 10); ok {
		t.Fatal("first call tripped; %2 trips the second")
	}
	k, ok := Trip(SinkWritePartial, 2, 10)
	if !ok || k != 3 {
		t.Fatalf("second call: Trip = %d, %v; want 3, true", k, ok)
	}
	if err := Fail(SinkWritePartial, 2); err == nil {
		t.Fatal("Fail of an error item returned nil")
	}
}
