package elasticsearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// genBatch returns batch id of count generator records in parts partitions
// (values are JSON objects with a unique "id").
func genBatch(t *testing.T, id int64, count, parts, size int) sdk.Batch {
	t.Helper()
	src := sdktest.Source(t, generator.Plugin, "test", map[string]any{"count": count, "partitions": parts, "size": size})
	recs, until := sdktest.ReadAll(t, src, nil, sdk.Limits{MaxRecords: count + 1})
	if len(recs) != count {
		t.Fatalf("generator gave %d records, want %d", len(recs), count)
	}
	return sdk.Batch{ID: id, Records: recs, From: sdk.Offsets{}, Until: until}
}

// checkHolds fails the test unless the documents in pattern are exactly the
// records of b, each under its position id with its value as source.
func checkHolds(t *testing.T, pattern string, b sdk.Batch) {
	t.Helper()
	ds := docs(t, pattern)
	got := map[string]doc{}
	for _, d := range ds {
		if _, dup := got[d.ID]; dup {
			t.Errorf("id %q is stored twice", d.ID)
		}
		got[d.ID] = d
	}
	for _, r := range b.Records {
		id := PositionID(r.Position)
		d, ok := got[id]
		if !ok {
			t.Errorf("no document %q for record %s", id, r.Position)
			continue
		}
		if !sameJSON(d.Source, r.Value) {
			t.Errorf("document %q holds %s, want %s", id, d.Source, r.Value)
		}
		delete(got, id)
	}
	for id := range got {
		t.Errorf("unexpected document %q", id)
	}
}

func TestPositionIDsIdempotent(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, nil)
	b := genBatch(t, 1, 60, 3, 150)
	write(t, s, b)
	checkHolds(t, idx, b)
	// A replay writes the same batch again: nothing changes.
	b.Replay = true
	write(t, s, b)
	checkHolds(t, idx, b)
	if got := docs(t, idx)[0].ID; !strings.HasPrefix(got, "generator/") || !strings.Contains(got, "@") {
		t.Errorf("id %q is not <partition>@<offset>", got)
	}
}

func TestKeyIDsLatestWins(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"id": "key"})
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{
		rec("p/0", 0, "k1", `{"v":1}`),
		rec("p/0", 1, "k2", `{"v":1}`),
		rec("p/0", 2, "k1", `{"v":2}`),
	}})
	b2 := sdk.Batch{ID: 2, Records: []sdk.Record{
		rec("p/0", 3, "k3", `{"v":1}`),
		rec("p/0", 4, "k2", `{"v":3}`),
	}}
	write(t, s, b2)
	b2.Replay = true
	write(t, s, b2)
	got := byID(t, docs(t, idx))
	want := map[string]string{"k1": `{"v":2}`, "k2": `{"v":3}`, "k3": `{"v":1}`}
	if len(got) != len(want) {
		t.Errorf("%d documents, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if d, ok := got[idx+"/"+k]; !ok || !sameJSON(d.Source, []byte(v)) {
			t.Errorf("document %q = %s, want %s", k, d.Source, v)
		}
	}

	err := s.Write(context.Background(), sdk.Batch{ID: 3, Records: []sdk.Record{rec("p/0", 5, "k4", `{}`), rec("p/0", 6, "", `{}`)}})
	var rj *sdk.Rejected
	if !errors.As(err, &rj) || len(rj.Records) != 1 || rj.Records[0].Index != 1 || !strings.Contains(rj.Records[0].Reason, "no key") {
		t.Errorf("a record without a key: error %v, want record 1 rejected for its missing key", err)
	}
	if _, ok := byID(t, docs(t, idx))[idx+"/k4"]; !ok {
		t.Error("the record with a key, in the batch with a rejected one, was not written")
	}
}

func TestIndexTemplates(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx+"-{header:tenant}-{timestamp:2006.01.02}", nil)
	day := time.Date(2024, 3, 9, 23, 59, 0, 0, time.UTC)
	mk := func(o int64, tenant string, ts time.Time) sdk.Record {
		r := rec("p/0", o, "", fmt.Sprintf(`{"n":%d}`, o))
		r.Headers = []sdk.Header{{Key: "tenant", Value: []byte(tenant)}}
		r.Timestamp = ts
		return r
	}
	b := sdk.Batch{ID: 1, Records: []sdk.Record{
		mk(0, "a", day), mk(1, "b", day), mk(2, "a", day.Add(2*time.Minute)), mk(3, "b", day.Add(time.Hour)),
	}}
	write(t, s, b)
	want := map[string]string{
		idx + "-a-2024.03.09/p/0@0": `{"n":0}`,
		idx + "-b-2024.03.09/p/0@1": `{"n":1}`,
		idx + "-a-2024.03.10/p/0@2": `{"n":2}`,
		idx + "-b-2024.03.10/p/0@3": `{"n":3}`,
	}
	got := byID(t, docs(t, idx+"-*"))
	if len(got) != len(want) {
		t.Errorf("%d documents, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if d, ok := got[k]; !ok || !sameJSON(d.Source, []byte(v)) {
			t.Errorf("document %s = %s, want %s", k, d.Source, v)
		}
	}
	vals, err := s.List(context.Background())
	if err != nil || len(vals) != 4 {
		t.Errorf("List over the template's indexes: %d values, %v; want 4", len(vals), err)
	}

	bad := mk(4, "a", day)
	bad.Headers = nil
	err = s.Write(context.Background(), sdk.Batch{ID: 2, Records: []sdk.Record{bad}})
	if err == nil || !strings.Contains(err.Error(), "p/0@4") || !strings.Contains(err.Error(), `no header "tenant"`) {
		t.Errorf("record without the header: error %v, want one naming p/0@4 and the header", err)
	}

	f := openSink(t, idx+"-f-{field:user.region}-{field:n}", nil)
	write(t, f, sdk.Batch{ID: 1, Records: []sdk.Record{
		rec("q/0", 0, "", `{"user":{"region":"eu"},"n":7}`),
		rec("q/0", 1, "", `{"user":{"region":"us"},"n":7}`),
	}})
	got = byID(t, docs(t, idx+"-f-*"))
	for _, k := range []string{idx + "-f-eu-7/q/0@0", idx + "-f-us-7/q/0@1"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no document %s; have %v", k, keysOf(got))
		}
	}
	err = f.Write(context.Background(), sdk.Batch{ID: 2, Records: []sdk.Record{rec("q/0", 2, "", `{"user":{},"n":7}`)}})
	if err == nil || !strings.Contains(err.Error(), "q/0@2") || !strings.Contains(err.Error(), "user.region") {
		t.Errorf("record without the field: error %v, want one naming q/0@2 and the field", err)
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEnvelopes(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6000000, time.UTC)
	withTS := func(r sdk.Record) sdk.Record { r.Timestamp = ts; return r }
	obj := withTS(rec("p/0", 0, "k0", `{"a":1}`))
	obj.Headers = []sdk.Header{{Key: "h", Value: []byte("v")}, {Key: "bin", Value: []byte{0xff, 0x00}}}
	text := withTS(rec("p/0", 1, "", "plain text"))
	binary := withTS(rec("p/0", 2, "", ""))
	binary.Value = []byte{0xfe, 0xff, 0x01}
	array := withTS(rec("p/0", 3, "", `[1,2]`))
	pretty := withTS(rec("p/0", 4, "", "{\n  \"b\": [\n    2\n  ]\n}\n"))
	records := []sdk.Record{obj, text, binary, array, pretty}
	const stamp = `"timestamp":"2024-01-02T03:04:05.006Z"`
	envelopes := map[string]string{
		"p/0@0": `{"key":"k0","value":"{\"a\":1}","headers":[{"key":"h","value":"v"},{"key":"bin","value_base64":"/wA="}],` + stamp + `,"position":{"partition":"p/0","offset":0}}`,
		"p/0@1": `{"value":"plain text",` + stamp + `,"position":{"partition":"p/0","offset":1}}`,
		"p/0@2": `{"value_base64":"/v8B",` + stamp + `,"position":{"partition":"p/0","offset":2}}`,
		"p/0@3": `{"value":"[1,2]",` + stamp + `,"position":{"partition":"p/0","offset":3}}`,
		"p/0@4": `{"value":"{\n  \"b\": [\n    2\n  ]\n}\n",` + stamp + `,"position":{"partition":"p/0","offset":4}}`,
	}
	for _, mode := range []string{DocumentEnvelope, DocumentAuto} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			idx := indexName(t)
			s := openSink(t, idx, map[string]any{"document": mode})
			write(t, s, sdk.Batch{ID: 1, Records: records})
			got := byID(t, docs(t, idx))
			for pos, env := range envelopes {
				want := env
				if mode == DocumentAuto && (pos == "p/0@0" || pos == "p/0@4") {
					want = map[string]string{"p/0@0": `{"a":1}`, "p/0@4": `{"b":[2]}`}[pos]
				}
				if d := got[idx+"/"+pos]; !sameJSON(d.Source, []byte(want)) {
					t.Errorf("document %s = %s, want %s", pos, d.Source, want)
				}
			}
			// List gives back every record value.
			vals, err := s.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(vals) != len(records) {
				t.Fatalf("List returned %d values, want %d", len(vals), len(records))
			}
			for _, r := range records {
				found := false
				for _, v := range vals {
					found = found || string(v) == string(r.Value) || (mode == DocumentAuto && isObject(r.Value) && sameJSON(v, r.Value))
				}
				if !found {
					t.Errorf("List lacks the value of %s (%q)", r.Position, r.Value)
				}
			}
		})
	}
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	s := openSink(t, indexName(t)+"-{header:x}", nil)
	vals, err := s.List(context.Background())
	if err != nil || len(vals) != 0 {
		t.Fatalf("List of nothing: %d values, %v", len(vals), err)
	}
}

func TestListPages(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, nil)
	b := genBatch(t, 1, 2500, 2, 60) // more than one page of 1000
	write(t, s, b)
	vals, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, v := range vals {
		var x struct{ ID string }
		if err := json.Unmarshal(v, &x); err != nil || x.ID == "" {
			t.Fatalf("listed value %s has no id", v)
		}
		seen[x.ID]++
	}
	if len(vals) != 2500 || len(seen) != 2500 {
		t.Errorf("List returned %d values with %d distinct ids, want 2500", len(vals), len(seen))
	}
}

// A document that does not fit the index's mapping fails the batch with a
// message naming the record and Elasticsearch's reason.
func TestRejectedDocumentFails(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"on_record_error": "fail"})
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{rec("p/0", 0, "", `{"n":1}`)}})
	err := s.Write(context.Background(), sdk.Batch{ID: 2, Records: []sdk.Record{
		rec("p/0", 1, "", `{"n":2}`), rec("p/0", 2, "", `{"n":"not a number"}`), rec("p/0", 3, "", `{"n":3}`),
	}})
	if err == nil {
		t.Fatal("a document that does not fit the mapping was accepted")
	}
	for _, want := range []string{"batch 2", "p/0@2", `"` + idx + `"`, "failed to parse", "status 400"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if env.pass != "" && strings.Contains(err.Error(), env.pass) {
		t.Errorf("error %q holds the password", err)
	}
}

// rejectBatch is batch 2 of TestRejectedDocumentReported: record 1 does not
// fit the mapping batch 1 gave field "n", record 3 holds a metadata field
// (which Elasticsearch 8 refuses in any index) and record 4 has no header
// "t" for the index template; the others are written.
func rejectBatch(base string) (sdk.Batch, []string) {
	mk := func(o int64, value, t string) sdk.Record {
		r := rec("p/0", o, "", value)
		if t != "" {
			r.Headers = []sdk.Header{{Key: "t", Value: []byte(t)}}
		}
		return r
	}
	return sdk.Batch{ID: 2, Records: []sdk.Record{
			mk(1, `{"n":2}`, "a"),
			mk(2, `{"n":"not a number"}`, "a"),
			mk(3, `{"n":3}`, "a"),
			mk(4, `{"_id":"x","n":4}`, "b"),
			mk(5, `{"n":5}`, ""),
			mk(6, `{"n":6}`, "b"),
		}}, []string{
			`index "` + base + `-a", id "p/0@2": status 400 document_parsing_exception: `,
			`index "` + base + `-b", id "p/0@4": status 400 document_parsing_exception: `,
			`id "p/0@5": index template "` + base + `-{header:t}": the record has no header "t"`,
		}
}

// With on_record_error = "reject" (the default) the records Elasticsearch
// rejects with a 4xx, and the records whose index cannot be named, are
// listed in an *sdk.Rejected with the error's type and reason; the others
// are written. Writing the batch again (a replay) rejects the same records
// with the same reasons and leaves the same documents.
func TestRejectedDocumentReported(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx+"-{header:t}", nil)
	first := rec("p/0", 0, "", `{"n":1}`)
	first.Headers = []sdk.Header{{Key: "t", Value: []byte("a")}}
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{first}})
	b, reasons := rejectBatch(idx)
	var prev *sdk.Rejected
	for attempt := 0; attempt < 2; attempt++ {
		err := s.Write(context.Background(), b)
		var rj *sdk.Rejected
		if !errors.As(err, &rj) {
			t.Fatalf("write %d: %v, want an *sdk.Rejected", attempt, err)
		}
		var got []int
		for _, r := range rj.Records {
			got = append(got, r.Index)
		}
		if fmt.Sprint(got) != "[1 3 4]" {
			t.Fatalf("write %d rejected records %v (%v), want [1 3 4]", attempt, got, rj)
		}
		for i, want := range reasons {
			if !strings.HasPrefix(rj.Records[i].Reason, want) {
				t.Errorf("write %d: reason %q does not start with %q", attempt, rj.Records[i].Reason, want)
			}
		}
		for _, want := range []string{"[n]", "metadata field"} {
			if !strings.Contains(rj.Error(), want) {
				t.Errorf("write %d: %q does not say %q", attempt, rj.Error(), want)
			}
		}
		t.Logf("write %d: %v", attempt, rj.Records)
		if prev != nil && fmt.Sprint(prev.Records) != fmt.Sprint(rj.Records) {
			t.Errorf("written again, the batch was rejected differently:\n%v\n%v", prev.Records, rj.Records)
		}
		prev = rj
		got2 := byID(t, docs(t, idx+"-*"))
		want := []string{idx + "-a/p/0@0", idx + "-a/p/0@1", idx + "-a/p/0@3", idx + "-b/p/0@6"}
		if len(got2) != len(want) {
			t.Errorf("write %d: documents %v, want %v", attempt, keysOf(got2), want)
		}
		for _, k := range want {
			if _, ok := got2[k]; !ok {
				t.Errorf("write %d: document %s missing", attempt, k)
			}
		}
		b.Replay = true
	}
	if env.pass != "" && strings.Contains(prev.Error(), env.pass) {
		t.Errorf("rejection %q holds the password", prev)
	}
}

// Records a processor added after a source record (Position.Index 1, 2, …)
// get ids of their own, "<partition>@<offset>#<index>", next to the source
// record's unchanged "<partition>@<offset>"; a replay overwrites the same
// documents, and an envelope holds the index.
func TestPositionIndexIDs(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, nil)
	var recs []sdk.Record
	for k := 0; k < 3; k++ {
		r := rec("p/0", 7, "", fmt.Sprintf(`{"k":%d}`, k))
		r.Position.Index = k
		recs = append(recs, r)
	}
	txt := rec("p/0", 8, "", "text")
	txt.Position.Index = 2
	recs = append(recs, txt)
	b := sdk.Batch{ID: 1, Records: recs}
	for attempt := 0; attempt < 2; attempt++ {
		write(t, s, b)
		got := byID(t, docs(t, idx))
		want := map[string]string{
			"p/0@7": `{"k":0}`, "p/0@7#1": `{"k":1}`, "p/0@7#2": `{"k":2}`,
			"p/0@8#2": `{"value":"text","timestamp":"2023-11-14T22:13:20.008Z","position":{"partition":"p/0","offset":8,"index":2}}`,
		}
		if len(got) != len(want) {
			t.Errorf("write %d: documents %v, want %d", attempt, keysOf(got), len(want))
		}
		for id, v := range want {
			if d, ok := got[idx+"/"+id]; !ok || !sameJSON(d.Source, []byte(v)) {
				t.Errorf("write %d: document %s = %s, want %s", attempt, id, d.Source, v)
			}
		}
		b.Replay = true
	}
}

// With on_record_error = "skip" the rejected document is logged, counted
// and left out; the others are written.
func TestRejectedDocumentSkipped(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"on_record_error": "skip"})
	logs := logTo(s)
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{rec("p/0", 0, "", `{"n":1}`)}})
	write(t, s, sdk.Batch{ID: 2, Records: []sdk.Record{
		rec("p/0", 1, "", `{"n":2}`), rec("p/0", 2, "", `{"n":"not a number"}`), rec("p/0", 3, "", `{"n":3}`),
	}})
	got := byID(t, docs(t, idx))
	for _, pos := range []string{"p/0@0", "p/0@1", "p/0@3"} {
		if _, ok := got[idx+"/"+pos]; !ok {
			t.Errorf("document %s missing", pos)
		}
	}
	if _, ok := got[idx+"/p/0@2"]; ok || len(got) != 3 {
		t.Errorf("documents %v; want p/0@0, p/0@1, p/0@3 only", keysOf(got))
	}
	if n := s.skipped.Load(); n != 1 {
		t.Errorf("skipped %d, want 1", n)
	}
	l := logs.String()
	for _, want := range []string{"p/0@2", "failed to parse", "skipped=1", "batch=2"} {
		if !strings.Contains(l, want) {
			t.Errorf("log does not say %q:\n%s", want, l)
		}
	}
	if env.pass != "" && strings.Contains(l, env.pass) {
		t.Errorf("log holds the password:\n%s", l)
	}
}

// setBlock sets or clears the read_only_allow_delete block, with which
// Elasticsearch answers 429 to every write into the index.
func setBlock(t *testing.T, index string, on bool) {
	t.Helper()
	var v any
	if on {
		v = true
	}
	mustDo(t, "PUT", "/"+index+"/_settings", map[string]any{"index.blocks.read_only_allow_delete": v})
}

// Items answered 429 are retried alone, with backoff, until they succeed;
// Write does not return before.
func TestRetryThrottledItems(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx+"-{header:t}", map[string]any{"retry_backoff": "50ms", "retry_backoff_max": "200ms"})
	mk := func(o int64, t string) sdk.Record {
		r := rec("p/0", o, "", fmt.Sprintf(`{"n":%d}`, o))
		r.Headers = []sdk.Header{{Key: "t", Value: []byte(t)}}
		return r
	}
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{mk(0, "a"), mk(1, "b")}})
	setBlock(t, idx+"-b", true)
	t.Cleanup(func() { setBlock(t, idx+"-b", false) })
	var recs []sdk.Record
	for o := int64(2); o < 12; o++ {
		recs = append(recs, mk(o, map[bool]string{true: "a", false: "b"}[o%2 == 0]))
	}
	before := s.requests.Load()
	done := make(chan error, 1)
	go func() { done <- s.Write(context.Background(), sdk.Batch{ID: 2, Records: recs}) }()
	deadline := time.Now().Add(30 * time.Second)
	for s.requests.Load() < before+4 {
		select {
		case err := <-done:
			t.Fatalf("Write returned (%v) while the index was blocked", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the sink did not retry within 30s")
		}
	}
	setBlock(t, idx+"-b", false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Write after the block was lifted: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Write did not return within 60s of the block being lifted")
	}
	attempts := s.requests.Load() - before
	if retried := s.itemRetries.Load(); retried != 5*(attempts-1) {
		t.Errorf("%d documents resent in %d attempts; want only the 5 throttled ones each time (%d)", retried, attempts, 5*(attempts-1))
	}
	got := byID(t, docs(t, idx+"-*"))
	if len(got) != 12 {
		t.Errorf("%d documents, want 12: %v", len(got), keysOf(got))
	}
}

// A batch that cannot be written within retry_timeout fails, naming a
// record that is still waiting and why; a later write succeeds.
func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"retry_backoff": "20ms", "retry_backoff_max": "50ms", "retry_timeout": "300ms"})
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{rec("p/0", 0, "", `{"n":0}`)}})
	setBlock(t, idx, true)
	t.Cleanup(func() { setBlock(t, idx, false) })
	b := sdk.Batch{ID: 2, Records: []sdk.Record{rec("p/0", 1, "", `{"n":1}`)}}
	start := time.Now()
	err := s.Write(context.Background(), b)
	if err == nil {
		t.Fatal("Write into a blocked index succeeded")
	}
	for _, want := range []string{"gave up", "retry_timeout", "p/0@1", "status 429", idx} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("gave up after %s with retry_timeout 300ms", d)
	}
	setBlock(t, idx, false)
	write(t, s, b)
	if n := len(docs(t, idx)); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
}

// The test server's knob makes single items fail with 429 or 503: exactly
// those are sent again.
func TestRetryInjectedItemFaults(t *testing.T) {
	knobs(t) // not parallel: the knob is server-wide
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"retry_backoff": "20ms"})
	b := genBatch(t, 1, 8, 1, 80)
	for _, f := range []struct{ status, count int }{{429, 3}, {503, 2}} {
		statsBefore := testenvStats(t)
		mustDo(t, "POST", "/_testenv/bulk_faults", map[string]int{"status": f.status, "count": f.count})
		reqs, retried := s.requests.Load(), s.itemRetries.Load()
		write(t, s, b)
		if got := s.itemRetries.Load() - retried; got != int64(f.count) {
			t.Errorf("status %d on %d items: %d documents resent", f.status, f.count, got)
		}
		if got := s.requests.Load() - reqs; got != 2 {
			t.Errorf("status %d on %d items: %d requests, want 2", f.status, f.count, got)
		}
		after := testenvStats(t)
		if after.Injected-statsBefore.Injected != f.count || after.BulkItems-statsBefore.BulkItems != 8+f.count {
			t.Errorf("server saw %d items with %d injected faults; want %d and %d",
				after.BulkItems-statsBefore.BulkItems, after.Injected-statsBefore.Injected, 8+f.count, f.count)
		}
	}
	checkHolds(t, idx, b)
}

type serverStats struct {
	BulkRequests int `json:"bulk_requests"`
	BulkItems    int `json:"bulk_items"`
	Injected     int `json:"injected"`
}

func testenvStats(t *testing.T) serverStats {
	t.Helper()
	var st serverStats
	if err := json.Unmarshal(mustDo(t, "GET", "/_testenv/stats", nil), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// With refresh = "wait_for" documents are searchable when Write returns.
func TestRefreshWaitFor(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"refresh": "wait_for"})
	b := genBatch(t, 1, 200, 2, 300)
	write(t, s, b)
	// No explicit refresh here.
	body := mustDo(t, "POST", "/"+idx+"/_search", map[string]any{"size": 0, "track_total_hits": true})
	var res struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Hits.Total.Value != 200 {
		t.Errorf("%d documents searchable after Write with refresh = wait_for, want 200", res.Hits.Total.Value)
	}
}

// Batches larger than bulk_max_bytes go out in several requests, some at
// the same time.
func TestBulkSplitting(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx, map[string]any{"bulk_max_bytes": 1024, "bulk_concurrency": 3})
	b := genBatch(t, 1, 30, 1, 300)
	write(t, s, b)
	if n := s.requests.Load(); n < 10 {
		t.Errorf("%d bulk requests for 30 documents of 300 bytes in requests of 1024 bytes, want at least 10", n)
	}
	checkHolds(t, idx, b)
}

func TestRefusedCredentials(t *testing.T) {
	t.Parallel()
	wrong := fmt.Sprintf("wrong-%d", time.Now().UnixNano())
	cfg := baseConfig("x")
	cfg["password"] = wrong
	if env.user == "" {
		cfg["username"] = "nobody"
	}
	c, err := sdk.NewConfig(Spec, "test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = Plugin.Sink.New().Open(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "as user") {
		t.Fatalf("open with a wrong password: %v; want an error saying the user was refused", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error %q holds the password", err)
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		set  map[string]any
		want string
	}{
		{map[string]any{"id": "uuid"}, `parameter "id": "uuid" is not one of "position", "key"`},
		{map[string]any{"document": "raw"}, `parameter "document": "raw" is not one of "auto", "envelope"`},
		{map[string]any{"on_record_error": "ignore"}, `parameter "on_record_error": "ignore" is not one of "reject", "fail", "skip"`},
		{map[string]any{"refresh": "wait-for"}, `parameter "refresh": "wait-for" is not one of "false", "wait_for", "true"; did you mean "wait_for"?`},
		{map[string]any{"index": "a-{nope:x}"}, "unknown placeholder"},
		{map[string]any{"addresses": []string{"https://u:hunter2@h:9200"}}, "holds credentials"},
		{map[string]any{"addresses": []string{"h:9200"}}, "not an http:// or https:// URL"},
		{map[string]any{"bulk_concurrency": 0}, `parameter "bulk_concurrency": 0 is outside the range 1 to 64`},
		{map[string]any{"bulk_max_bytes": 10}, `parameter "bulk_max_bytes": 10 is less than the minimum 1024`},
		{map[string]any{"request_timeout": "0s"}, `parameter "request_timeout"`},
		{map[string]any{"retry_backoff": "1m"}, "retry_backoff 1m0s is more than retry_backoff_max 10s"},
		{map[string]any{"retry_timeout": "-1s"}, `parameter "retry_timeout": -1s is less than the minimum 0s`},
	} {
		cfg := baseConfig("x")
		for k, v := range c.set {
			cfg[k] = v
		}
		sc, err := sdk.NewConfig(Spec, "test", cfg)
		if err == nil {
			err = Plugin.Sink.New().Open(context.Background(), sc)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !sdk.IsConfigError(err) {
			t.Errorf("%v: error %v, want a configuration error saying %q", c.set, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q holds the password of the address", err)
		}
	}
	// A missing file is the system's answer, not a configuration error.
	cfg := baseConfig("x")
	cfg["tls_ca_file"] = "/nonexistent/ca.pem"
	sc, err := sdk.NewConfig(Spec, "test", cfg)
	if err == nil {
		err = Plugin.Sink.New().Open(context.Background(), sc)
	}
	if err == nil || !strings.Contains(err.Error(), "tls_ca_file") || sdk.IsConfigError(err) {
		t.Errorf("missing CA file: %v", err)
	}
}

// HTTPS with a private CA and an API key, as Elasticsearch 8 runs by
// default: against the test server (a second instance, with -tls-dir and
// -api-key), or against ES_URL when ES_API_KEY is given.
func TestTLSAndAPIKey(t *testing.T) {
	t.Parallel()
	url, ca, key := env.url, env.caFile, env.apiKey
	if key == "" {
		if st, _ := esDo(t, "GET", "/_testenv/stats", nil); st != 200 {
			t.Skip("ES_URL is a real Elasticsearch and ES_API_KEY is not set")
		}
		serverBinary(t)
		dir := t.TempDir()
		key = fmt.Sprintf("a2V5LWlkOnNlY3JldA-%d", time.Now().UnixNano())
		srv, err := startServer(dir, "tls", "-tls-dir", dir, "-api-key", key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.stop)
		if !strings.HasPrefix(srv.url, "https://") {
			t.Fatalf("the server with -tls-dir serves %s", srv.url)
		}
		url, ca = srv.url, dir+"/ca.pem"
	}
	idx := indexName(t)
	open := func(extra map[string]any) (*Sink, error) {
		cfg := map[string]any{"addresses": []string{url}, "index": idx, "api_key": key, "tls_ca_file": ca}
		for k, v := range extra {
			cfg[k] = v
		}
		c, err := sdk.NewConfig(Spec, "test", cfg)
		if err != nil {
			t.Fatal(err)
		}
		s := Plugin.Sink.New().(*Sink)
		err = s.Open(context.Background(), c)
		if err == nil {
			t.Cleanup(func() { s.Close(context.Background()) })
		}
		return s, err
	}

	s, err := open(nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{rec("p/0", 0, "", `{"n":0}`), rec("p/0", 1, "", `{"n":1}`)}})
	if vals, err := s.List(context.Background()); err != nil || len(vals) != 2 {
		t.Errorf("List over HTTPS with an API key: %d values, %v; want 2", len(vals), err)
	}

	wrong := key + "x"
	if _, err := open(map[string]any{"api_key": wrong}); err == nil || !strings.Contains(err.Error(), "API key") || strings.Contains(err.Error(), wrong) {
		t.Errorf("a wrong API key: %v; want an error that names the API key without showing it", err)
	}

	// Without the CA the server's certificate is not trusted: Open only
	// warns (the cluster may be down), Write fails once it gives up.
	s, err = open(map[string]any{"tls_ca_file": "", "retry_backoff": "10ms", "retry_timeout": "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	logTo(s)
	if ca != "" {
		err = s.Write(context.Background(), sdk.Batch{ID: 2, Records: []sdk.Record{rec("p/0", 2, "", `{"n":2}`)}})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Write to a server whose CA is not trusted: %v; want a certificate error", err)
		}
	}
}

// compress = true sends gzip bodies; a record whose index template cannot
// be filled is skipped like a rejected document.
func TestCompressedAndSkippedTemplate(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	s := openSink(t, idx+"-{header:t}", map[string]any{"compress": true, "on_record_error": "skip"})
	logs := logTo(s)
	st, _ := esDo(t, "GET", "/_testenv/stats", nil)
	gz := func() int {
		var v struct {
			Gzip int `json:"gzip_bodies"`
		}
		_ = json.Unmarshal(mustDo(t, "GET", "/_testenv/stats", nil), &v)
		return v.Gzip
	}
	var gz0 int
	if st == 200 {
		gz0 = gz()
	}
	ok := rec("p/0", 0, "", `{"n":0}`)
	ok.Headers = []sdk.Header{{Key: "t", Value: []byte("a")}}
	write(t, s, sdk.Batch{ID: 1, Records: []sdk.Record{ok, rec("p/0", 1, "", `{"n":1}`)}})
	got := byID(t, docs(t, idx+"-*"))
	if _, found := got[idx+"-a/p/0@0"]; !found || len(got) != 1 {
		t.Errorf("documents %v, want only %s-a/p/0@0", keysOf(got), idx)
	}
	if n := s.skipped.Load(); n != 1 || !strings.Contains(logs.String(), "position=p/0@1") {
		t.Errorf("skipped %d, log:\n%s\nwant p/0@1 skipped and logged", n, logs.String())
	}
	if st == 200 && gz() == gz0 {
		t.Error("the test server received no gzip-encoded body with compress = true")
	}
}
