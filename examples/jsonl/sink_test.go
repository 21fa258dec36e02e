package main

import (
	"context"
	"testing"

	"github.com/connectd/connectd/conformance"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// TestWriteList is a unit test of the sink in this process, with sdktest.
func TestWriteList(t *testing.T) {
	sk := sdktest.Sink(t, Plugin, "p", map[string]any{"dir": t.TempDir(), "fsync": false})
	b := sdk.Batch{ID: 1, Records: []sdk.Record{
		{Value: []byte(`{"id":"a"}`), Position: sdk.Position{Partition: "x/0", Offset: 0}},
		{Value: []byte("plain text"), Position: sdk.Position{Partition: "x/0", Offset: 1}},
	}}
	for i := 0; i < 2; i++ { // the second write is a replay: nothing changes
		if err := sk.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sk.(sdk.Lister).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[0]) != `{"id":"a"}` || string(got[1]) != "plain text" {
		t.Fatalf("List = %q", got)
	}
}

// TestConformance builds the plugin as a third-party executable and runs the
// conformance suite against it: generator → jsonl under every guarantee the
// sink claims (exactly-once included, since it is idempotent), crashed at
// every fault point. CONNECTD_CONFORMANCE_FULL=1 runs the full level.
func TestConformance(t *testing.T) {
	exe := conformance.Build(t, ".")
	rep := conformance.Test(t, conformance.Options{
		Sink: conformance.Plugin{Name: exe, Config: map[string]any{"dir": "out"}},
	})
	if len(rep.Claimed) != 3 {
		t.Errorf("claimed %v, want all three guarantees", rep.Claimed)
	}
}
