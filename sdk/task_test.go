package sdk

import (
	"context"
	"testing"

	pb "github.com/connectd/connectd/internal/protocol/connectorv1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// taskSource keeps the Config it was opened with.
type taskSource struct {
	fixedSource
	cfg *Config
}

func (s *taskSource) Open(_ context.Context, c Config) error { *s.cfg = c; return nil }

// TestOpenTask: the sdk's server gives the source the task the host sent
// (0 and 0, from a host that predates tasks, mean task 0 of 1) and refuses
// a task outside [0, tasks).
func TestOpenTask(t *testing.T) {
	spec := Spec{Name: "t", Kind: KindSource, Capabilities: []Capability{CapReplayable, CapSplittable}}
	if err := spec.Check(); err != nil {
		t.Fatalf("a source may declare %q: %v", CapSplittable, err)
	}
	var got Config
	srv := &sourceServer{def: &SourcePlugin{Spec: spec, New: func() Source { return &taskSource{cfg: &got} }}}
	for _, tc := range []struct {
		task, tasks         int32
		wantTask, wantTasks int
	}{{0, 0, 0, 1}, {0, 1, 0, 1}, {2, 3, 2, 3}} {
		if _, err := srv.Open(context.Background(), &pb.OpenRequest{Pipeline: "p-2", Task: tc.task, Tasks: tc.tasks}); err != nil {
			t.Fatalf("Open task %d of %d: %v", tc.task, tc.tasks, err)
		}
		if got.Task != tc.wantTask || got.Tasks != tc.wantTasks || got.Pipeline != "p-2" {
			t.Errorf("task %d of %d: Config has task %d of %d (%q), want %d of %d", tc.task, tc.tasks, got.Task, got.Tasks, got.Pipeline, tc.wantTask, tc.wantTasks)
		}
	}
	for _, bad := range [][2]int32{{3, 3}, {-1, 2}, {1, 0}} {
		_, err := srv.Open(context.Background(), &pb.OpenRequest{Pipeline: "p", Task: bad[0], Tasks: bad[1]})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("Open task %d of %d: %v, want INVALID_ARGUMENT", bad[0], bad[1], err)
		}
	}
	if c, err := NewConfig(spec, "p", nil); err != nil || c.Task != 0 || c.Tasks != 1 {
		t.Errorf("NewConfig: task %d of %d, %v; want 0 of 1", c.Task, c.Tasks, err)
	}
	sink := Spec{Name: "s", Kind: KindSink, Capabilities: []Capability{CapSplittable}}
	if err := sink.Check(); err == nil {
		t.Errorf("a sink declaring %q passes Check", CapSplittable)
	}
}
