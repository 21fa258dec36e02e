package split

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

func batch(values ...string) sdk.Batch {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b := sdk.Batch{ID: 4}
	for i, v := range values {
		b.Records = append(b.Records, sdk.Record{
			Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(v), Timestamp: ts.Add(time.Duration(i) * time.Second),
			Headers:  []sdk.Header{{Key: "h", Value: []byte{byte('0' + i)}}},
			Position: sdk.Position{Partition: "in/0", Offset: int64(100 + i)},
		})
	}
	return b
}

// show renders records as value@position, and fails the test if one lost
// the key, headers or timestamp of the record it came from.
func show(t *testing.T, in sdk.Batch, out []sdk.Record) string {
	t.Helper()
	var s []string
	for _, r := range out {
		src := in.Records[r.Position.Offset-100]
		if string(r.Key) != string(src.Key) || !r.Timestamp.Equal(src.Timestamp) || len(r.Headers) != 1 || string(r.Headers[0].Value) != string(src.Headers[0].Value) {
			t.Errorf("record %s lost the key, headers or timestamp of its input", r.Position)
		}
		s = append(s, string(r.Value)+"@"+r.Position.String())
	}
	return strings.Join(s, " ")
}

func rejections(err error) string {
	var rej *sdk.Rejected
	if !errors.As(err, &rej) {
		return fmt.Sprint(err)
	}
	var s []string
	for _, r := range rej.Records {
		s = append(s, fmt.Sprintf("%d: %s", r.Index, r.Reason))
	}
	return strings.Join(s, "; ")
}

func TestSplit(t *testing.T) {
	for _, c := range []struct {
		name, field string
		in          []string
		want, rej   string
	}{
		{"whole value", "", []string{`[1, "a" ,{"x":[2]}]`, ` [] `, `[true]`},
			`1@in/0@100 "a"@in/0@100 {"x":[2]}@in/0@100 true@in/0@102`, ""},
		{"not arrays", "", []string{`{"a":1}`, `[1`, `x`, `[2,3]`, ``},
			`2@in/0@103 3@in/0@103`,
			"0: value: not a JSON array; 1: value: not a JSON array: unexpected end of JSON input; 2: value: not a JSON array; 4: value: not a JSON array"},
		{"field", "items", []string{`{"id":7, "items" : [{"n":1},2] ,"z":"…"}`, `{"items":[]}`, `{"items":["x"]}`},
			`{"id":7, "items" : {"n":1} ,"z":"…"}@in/0@100 {"id":7, "items" : 2 ,"z":"…"}@in/0@100 {"items":"x"}@in/0@102`, ""},
		{"field missing or wrong", "items", []string{`{"other":[1]}`, `[1]`, `{"items":3}`, `{"items":[1],"items":[2]}`, `{"items":[1]`, `{"a":{"items":[1]},"items":[5]}`},
			`{"a":{"items":[1]},"items":5}@in/0@105`,
			`0: no field "items"; 1: value is not a JSON object; 2: field "items": not a JSON array; 3: field "items" appears twice; 4: value is not JSON`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := sdktest.Processor(t, Plugin, "p", map[string]any{"field": c.field})
			b := batch(c.in...)
			out, err := p.Process(context.Background(), b)
			if got := show(t, b, out); got != c.want {
				t.Errorf("records:\n got %s\nwant %s", got, c.want)
			}
			if c.rej == "" && err != nil {
				t.Errorf("Process error: %v", err)
			}
			if c.rej != "" && rejections(err) != c.rej {
				t.Errorf("rejections:\n got %s\nwant %s", rejections(err), c.rej)
			}
			again, err2 := p.Process(context.Background(), b)
			if show(t, b, again) != show(t, b, out) || rejections(err2) != rejections(err) {
				t.Error("the same batch split twice gives different records: not deterministic")
			}
		})
	}
}

// The spec is a processor's, deterministic, and sdktest refuses an unknown
// parameter as the host does.
func TestSpec(t *testing.T) {
	if err := Spec.Check(); err != nil || !Spec.Has(sdk.CapDeterministic) || Spec.Kind != sdk.KindProcessor {
		t.Fatalf("spec: %v", err)
	}
	if _, err := sdk.NewConfig(Spec, "p", map[string]any{"fields": "x"}); err == nil {
		t.Error("a misspelled parameter was accepted")
	}
}
