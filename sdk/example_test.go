package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/connectd/connectd/sdk"
)

// A spec declares what a plugin is and which parameters it takes; NewConfig
// checks a pipeline's values against it (as the host does before it starts
// anything) and fills in the defaults. The plugin reads the result in Open.
func ExampleNewConfig() {
	spec := sdk.Spec{
		Name:         "csv",
		Version:      "0.1.0",
		Kind:         sdk.KindSource,
		Capabilities: []sdk.Capability{sdk.CapReplayable},
		Params: []sdk.Param{
			{Name: "paths", Type: sdk.TypeStrings, Required: true, Doc: "Files to read."},
			{Name: "header", Type: sdk.TypeBool, Default: true, Doc: "The first row names the columns."},
			{Name: "poll", Type: sdk.TypeDuration, Default: "200ms", Doc: "How often to look for new files."},
		},
	}
	if err := spec.Check(); err != nil {
		fmt.Println(err)
		return
	}
	// Values as the host sends them: decoded from JSON, only what the user set.
	cfg, err := sdk.NewConfig(spec, "orders", map[string]any{"paths": []any{"in/*.csv"}, "poll": "1s"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Pipeline, cfg.Strings("paths"), cfg.Bool("header"), cfg.Duration("poll"))
	// Output: orders [in/*.csv] true 1s
}

// A capability that holds only for some settings is declared in When; the
// host asks CapabilitiesFor with the pipeline's values.
func ExampleSpec_CapabilitiesFor() {
	spec := sdk.Spec{
		Name: "store",
		Kind: sdk.KindSink,
		When: []sdk.Conditional{{Capability: sdk.CapIdempotent, Param: "mode", Values: []string{"batch"}}},
		Params: []sdk.Param{
			{Name: "mode", Type: sdk.TypeString, Default: "batch", Doc: `"batch" or "append".`},
		},
	}
	fmt.Println(spec.CapabilitiesFor(nil))
	fmt.Println(spec.CapabilitiesFor(map[string]any{"mode": "append"}))
	// Output:
	// [idempotent]
	// []
}

// Offsets map partitions to offsets. They print, and are accepted by
// `connectd offsets reset`, in Spark's JSON form: the group of a partition is
// everything before its last slash. -2 is earliest and -1 latest.
func ExampleOffsets() {
	committed := sdk.Offsets{"orders/0": 23, "orders/1": 7, "in/a.csv": 3}
	fmt.Println(committed)

	var reset sdk.Offsets
	if err := json.Unmarshal([]byte(`{"orders":{"1":-2}}`), &reset); err != nil {
		fmt.Println(err)
		return
	}
	next := committed.Merge(reset)
	fmt.Println(next.Partitions(), next["orders/1"] == sdk.Earliest)
	// Output:
	// {"in":{"a.csv":3},"orders":{"0":23,"1":7}}
	// [in/a.csv orders/0 orders/1] true
}

// SplitPartition and JoinPartition convert between a partition name and its
// group and part.
func ExampleSplitPartition() {
	fmt.Println(sdk.SplitPartition("orders/0"))
	fmt.Println(sdk.SplitPartition("./a.csv"))
	fmt.Println(sdk.JoinPartition("orders", "0"))
	// Output:
	// orders 0
	// . a.csv
	// orders/0
}

// A Read covers a range per partition: From where it started (with -2, -1
// and absent partitions resolved), Until the offset after its last record.
// RangesOf lists those ranges, as a sink's Batch.Ranges does.
func ExampleRangesOf() {
	from := sdk.Offsets{"orders/0": 23, "orders/1": 7}
	until := sdk.Offsets{"orders/0": 42, "orders/1": 7}
	for _, r := range sdk.RangesOf(from, until) {
		fmt.Printf("%s [%d, %d)\n", r.Partition, r.From, r.Until)
	}
	// Output:
	// orders/0 [23, 42)
	// orders/1 [7, 7)
}

// CheckRead is what the sdk applies to every Read before the host sees it
// (and sdktest in tests): here a source that read past the stop offset of
// drain mode.
func ExampleCheckRead() {
	from := sdk.Offsets{"orders/0": 5}
	limits := sdk.Limits{MaxRecords: 10, MaxWait: time.Second, Stop: sdk.Offsets{"orders/0": 6}}
	rd := sdk.Read{
		Records: []sdk.Record{
			{Value: []byte("a"), Position: sdk.Position{Partition: "orders/0", Offset: 5}},
			{Value: []byte("b"), Position: sdk.Position{Partition: "orders/0", Offset: 6}},
		},
		Until: sdk.Offsets{"orders/0": 7},
	}
	fmt.Println(sdk.CheckRead(from, limits, rd))
	rd.Records, rd.Until = rd.Records[:1], sdk.Offsets{"orders/0": 6}
	fmt.Println(sdk.CheckRead(from, limits, rd))
	// Output:
	// record 1 (orders/0@6) is at or past stop offset 6
	// <nil>
}

// A plugin's main is one call to Serve, with the plugin's roles. Serve never
// returns, so this example is compiled but not run.
func ExampleServe() {
	spec := sdk.Spec{Name: "null", Version: "0.1.0", Kind: sdk.KindSink, Capabilities: []sdk.Capability{sdk.CapIdempotent}}
	sdk.Serve(sdk.Plugin{
		Sink: &sdk.SinkPlugin{Spec: spec, New: func() sdk.Sink { return nullSink{} }},
	})
}

// nullSink drops every batch: writing one again changes nothing.
type nullSink struct{}

func (nullSink) Open(ctx context.Context, cfg sdk.Config) error { return nil }
func (nullSink) Write(ctx context.Context, b sdk.Batch) error   { return nil }
func (nullSink) Close(ctx context.Context) error                { return nil }
