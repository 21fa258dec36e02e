package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/connectd/connectd/plugins/file"
	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/plugins/split"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// A source test: Source configures and opens the plugin's source as the host
// would, ReadAll reads it batch after batch (each Read checked against the
// contract), and Unwrap reaches the optional interfaces to replay a range.
func ExampleSource() {
	t := newT() // in a test function: its *testing.T
	defer t.done()

	src := sdktest.Source(t, generator.Plugin, "p", map[string]any{"count": 4, "partitions": 2})
	recs, until := sdktest.ReadAll(t, src, nil, sdk.Limits{MaxRecords: 3, MaxWait: time.Millisecond})
	for _, r := range recs {
		fmt.Println(r.Position, string(r.Key))
	}
	fmt.Println("until", until)

	again, err := sdktest.Unwrap(src).(sdk.Replayer).Replay(context.Background(), sdk.Offsets{"generator/1": 0}, sdk.Offsets{"generator/1": 2})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	fmt.Println("replayed", len(again), again[0].Position)
	// Output:
	// generator/0@0 0-0
	// generator/1@0 1-0
	// generator/0@1 0-1
	// generator/1@1 1-1
	// until {"generator":{"0":2,"1":2}}
	// replayed 2 generator/1@0
}

// A sink test: Sink configures and opens the plugin's sink; writing the same
// batch twice shows that it is idempotent, and its sdk.Lister reads back what
// it holds.
func ExampleSink() {
	t := newT() // in a test function: its *testing.T
	defer t.done()

	dir := t.TempDir()
	sk := sdktest.Sink(t, file.Plugin, "p", map[string]any{"dir": dir, "fsync": false})
	b := sdk.Batch{
		ID: 1,
		Records: []sdk.Record{
			{Value: []byte(`{"id":"a"}`), Position: sdk.Position{Partition: "in/x", Offset: 0}},
			{Value: []byte(`{"id":"b"}`), Position: sdk.Position{Partition: "in/x", Offset: 1}},
		},
		From:  sdk.Offsets{"in/x": 0},
		Until: sdk.Offsets{"in/x": 2},
	}
	for range 2 { // the second write is a replay: nothing changes
		if err := sk.Write(context.Background(), b); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	held, err := sk.(sdk.Lister).List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	fmt.Printf("%s\n", held)
	// Output: [{"id":"a"} {"id":"b"}]
}

// A processor test: Processor configures and opens the plugin's processor;
// every Process is checked against the contract (each output record at an
// input record's position, rejections within the batch). The host numbers the
// records that share a position when it gets them (Position.Index).
func ExampleProcessor() {
	t := newT() // in a test function: its *testing.T
	defer t.done()

	p := sdktest.Processor(t, split.Plugin, "p", map[string]any{"field": "items"})
	b := sdk.Batch{ID: 1, Records: []sdk.Record{
		{Value: []byte(`{"order":7,"items":["a","b"]}`), Position: sdk.Position{Partition: "orders/0", Offset: 12}},
		{Value: []byte(`{"order":8}`), Position: sdk.Position{Partition: "orders/0", Offset: 13}},
	}}
	out, err := p.Process(context.Background(), b)
	for _, r := range out {
		fmt.Println(r.Position, string(r.Value))
	}
	var rej *sdk.Rejected
	if errors.As(err, &rej) {
		fmt.Println("rejected:", rej.Records)
	}
	// Output:
	// orders/0@12 {"order":7,"items":"a"}
	// orders/0@12 {"order":7,"items":"b"}
	// rejected: [{1 no field "items"}]
}

// exampleT stands in for the *testing.T that an Example function does not
// have: enough of testing.TB for sdktest. A failure prints the message and
// ends the example, whose output then differs from what it expects.
type exampleT struct {
	testing.TB // nil: only the methods below are called
	cleanups   []func()
	dirs       []string
}

func newT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()                   {}
func (t *exampleT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(f string, a ...any) { fmt.Printf("error: "+f+"\n", a...) }
func (t *exampleT) Fatalf(f string, a ...any) {
	fmt.Printf("fatal: "+f+"\n", a...)
	panic(t) // recovered by done
}

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "sdktest-example-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.dirs = append(t.dirs, dir)
	return dir
}

// done runs the cleanups, last first, as a test does at its end, removes the
// temporary directories, and ends a Fatalf quietly.
func (t *exampleT) done() {
	r := recover()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
	if r != nil && r != any(t) {
		panic(r)
	}
}
