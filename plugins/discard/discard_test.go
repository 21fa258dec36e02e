package discard

import (
	"context"
	"testing"

	"github.com/connectd/connectd/sdk"
)

func TestDiscard(t *testing.T) {
	spec := Plugin.Sink.Spec
	if err := spec.Check(); err != nil {
		t.Fatal(err)
	}
	if Plugin.Source != nil || Plugin.Name() != "discard" || !spec.Has(sdk.CapIdempotent) {
		t.Fatalf("plugin: %+v", Plugin)
	}
	if _, err := sdk.NewConfig(spec, "pipe", map[string]any{"dir": "x"}); err == nil {
		t.Fatal("unknown parameter accepted")
	}
	cfg, err := sdk.NewConfig(spec, "pipe", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := Plugin.Sink.New().(*Sink)
	if err := s.Open(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, b := range []sdk.Batch{
		{ID: 1, Records: []sdk.Record{{Value: []byte("abc")}, {Key: []byte("k"), Value: []byte("de")}}},
		{ID: 2},
		{ID: 2, Replay: true},
		{ID: 3, Records: []sdk.Record{{Value: []byte("x")}}},
	} {
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if r, b, n := s.Counts(); r != 3 || b != 4 || n != 7 {
		t.Fatalf("counts: %d records, %d batches, %d bytes; want 3, 4, 7", r, b, n)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
