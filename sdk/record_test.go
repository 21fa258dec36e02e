package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestOffsetsJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Offsets
		want string // Spark's form
	}{
		{"empty", Offsets{}, `{}`},
		{"nil", nil, `{}`},
		{"topic partitions", Offsets{"orders/0": 23, "orders/1": -1}, `{"orders":{"0":23,"1":-1}}`},
		{"earliest", Offsets{"orders/0": -2}, `{"orders":{"0":-2}}`},
		{"several groups", Offsets{"b/1": 5, "a/0": 1, "a/1": 0}, `{"a":{"0":1,"1":0},"b":{"1":5}}`},
		{"dot slash file", Offsets{"./a.txt": 7}, `{".":{"a.txt":7}}`},
		{"nested dirs split at last slash", Offsets{"dir/sub/name.txt": 9}, `{"dir/sub":{"name.txt":9}}`},
		{"no slash", Offsets{"orders": 4}, `{"orders":{"":4}}`},
		{"leading slash", Offsets{"/x": 3}, `{"":{"x":3}}`},
		{"mixed slash and none", Offsets{"orders": 1, "orders/0": 2}, `{"orders":{"":1,"0":2}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tt.want {
				t.Fatalf("Marshal = %s, want %s", b, tt.want)
			}
			if s := tt.in.String(); s != tt.want {
				t.Errorf("String = %s, want %s", s, tt.want)
			}
			var back Offsets
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if back == nil {
				t.Fatalf("Unmarshal(%s) left a nil map", b)
			}
			if !back.Equal(tt.in) {
				t.Errorf("round trip = %v, want %v", back, tt.in)
			}
		})
	}
}

func TestOffsetsUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Offsets
		wantErr string
	}{
		{"spark form", `{"orders":{"0":23,"1":-1}}`, Offsets{"orders/0": 23, "orders/1": -1}, ""},
		{"earliest", `{"t":{"0":-2}}`, Offsets{"t/0": -2}, ""},
		{"whitespace", " { \"t\" : { \"3\" : 0 } } ", Offsets{"t/3": 0}, ""},
		{"empty object", `{}`, Offsets{}, ""},
		{"empty group", `{"t":{}}`, Offsets{}, ""},
		{"dot slash", `{".":{"a.txt":5}}`, Offsets{"./a.txt": 5}, ""},
		{"offset below earliest", `{"t":{"0":-3}}`, nil, `offset -3 for "t/0"`},
		{"very negative", `{"t":{"7":-100}}`, nil, `offset -100 for "t/7"`},
		{"flat map", `{"t/0":5}`, nil, `offsets must look like`},
		{"array", `[1,2]`, nil, `offsets must look like`},
		{"string offset", `{"t":{"0":"5"}}`, nil, `offsets must look like`},
		{"fractional offset", `{"t":{"0":1.5}}`, nil, `offsets must look like`},
		{"truncated", `{"t":{"0":5}`, nil, `offsets must look like`},
		{"not json", `earliest`, nil, `offsets must look like`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Called directly, the method explains the form it wants;
			// through encoding/json, a syntax error is reported before it runs.
			var direct, viaJSON Offsets
			err := direct.UnmarshalJSON([]byte(tt.in))
			jerr := json.Unmarshal([]byte(tt.in), &viaJSON)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("UnmarshalJSON(%s) = %v, want error containing %q", tt.in, direct, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("UnmarshalJSON(%s) error %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if jerr == nil {
					t.Fatalf("json.Unmarshal(%s) = %v, want an error", tt.in, viaJSON)
				}
				return
			}
			if err != nil || jerr != nil {
				t.Fatalf("Unmarshal(%s): %v, %v", tt.in, err, jerr)
			}
			if direct == nil || !direct.Equal(tt.want) {
				t.Errorf("UnmarshalJSON(%s) = %#v, want %#v", tt.in, direct, tt.want)
			}
			if viaJSON == nil || !viaJSON.Equal(tt.want) {
				t.Errorf("json.Unmarshal(%s) = %#v, want %#v", tt.in, viaJSON, tt.want)
			}
		})
	}
}

func TestOffsetsUnmarshalReplaces(t *testing.T) {
	o := Offsets{"old/0": 1}
	if err := o.UnmarshalJSON([]byte(`{"new":{"0":2}}`)); err != nil {
		t.Fatal(err)
	}
	if want := (Offsets{"new/0": 2}); !o.Equal(want) {
		t.Errorf("after UnmarshalJSON: %v, want %v", o, want)
	}
	// A failed decode leaves the value alone.
	if err := o.UnmarshalJSON([]byte(`{"x":{"0":-9}}`)); err == nil {
		t.Fatal("want error for -9")
	}
	if want := (Offsets{"new/0": 2}); !o.Equal(want) {
		t.Errorf("after failed UnmarshalJSON: %v, want %v", o, want)
	}
}

func TestOffsetsInStruct(t *testing.T) {
	type wrap struct {
		From  Offsets `json:"from"`
		Until Offsets `json:"until"`
	}
	w := wrap{From: Offsets{"t/0": 1}, Until: Offsets{"t/0": 5, "t/1": 2}}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"from":{"t":{"0":1}},"until":{"t":{"0":5,"1":2}}}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var back wrap
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.From.Equal(w.From) || !back.Until.Equal(w.Until) {
		t.Errorf("round trip = %+v, want %+v", back, w)
	}
}

func TestOffsetsClone(t *testing.T) {
	if c := Offsets(nil).Clone(); c != nil {
		t.Errorf("nil.Clone() = %#v, want nil", c)
	}
	e := Offsets{}.Clone()
	if e == nil || len(e) != 0 {
		t.Errorf("empty.Clone() = %#v, want empty non-nil", e)
	}
	o := Offsets{"a/0": 1, "a/1": 2}
	c := o.Clone()
	if !c.Equal(o) {
		t.Fatalf("Clone = %v, want %v", c, o)
	}
	c["a/0"] = 99
	c["b/0"] = 3
	if o["a/0"] != 1 || len(o) != 2 {
		t.Errorf("changing the clone changed the original: %v", o)
	}
}

func TestOffsetsMerge(t *testing.T) {
	tests := []struct {
		name string
		o, n Offsets
		want Offsets
	}{
		{"both nil", nil, nil, Offsets{}},
		{"nil base", nil, Offsets{"a/0": 1}, Offsets{"a/0": 1}},
		{"nil over", Offsets{"a/0": 1}, nil, Offsets{"a/0": 1}},
		{"override", Offsets{"a/0": 1, "a/1": 2}, Offsets{"a/1": 5}, Offsets{"a/0": 1, "a/1": 5}},
		{"add", Offsets{"a/0": 1}, Offsets{"b/0": 7}, Offsets{"a/0": 1, "b/0": 7}},
		{"special offsets", Offsets{"a/0": 10}, Offsets{"a/0": -2}, Offsets{"a/0": -2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, nBefore := tt.o.Clone(), tt.n.Clone()
			got := tt.o.Merge(tt.n)
			if got == nil || !got.Equal(tt.want) {
				t.Errorf("Merge = %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(tt.o, before) || !reflect.DeepEqual(tt.n, nBefore) {
				t.Errorf("Merge changed its inputs: %v, %v", tt.o, tt.n)
			}
			got["zzz/0"] = 1
			if _, ok := tt.o["zzz/0"]; ok {
				t.Errorf("Merge result aliases its receiver")
			}
		})
	}
}

func TestOffsetsEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b Offsets
		want bool
	}{
		{"nil nil", nil, nil, true},
		{"nil empty", nil, Offsets{}, true},
		{"same", Offsets{"a/0": 1, "a/1": 2}, Offsets{"a/1": 2, "a/0": 1}, true},
		{"value differs", Offsets{"a/0": 1}, Offsets{"a/0": 2}, false},
		{"key differs", Offsets{"a/0": 1}, Offsets{"a/1": 1}, false},
		{"missing key with zero value", Offsets{"a/0": 0}, Offsets{"a/1": 0}, false},
		{"longer", Offsets{"a/0": 1}, Offsets{"a/0": 1, "a/1": 1}, false},
		{"nil vs one", nil, Offsets{"a/0": 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Errorf("%v.Equal(%v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Errorf("%v.Equal(%v) = %v, want %v (not symmetric)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestOffsetsPartitions(t *testing.T) {
	tests := []struct {
		in   Offsets
		want []string
	}{
		{nil, []string{}},
		{Offsets{"b/0": 1, "a/10": 2, "a/2": 3, "a": 0}, []string{"a", "a/10", "a/2", "b/0"}},
	}
	for _, tt := range tests {
		got := tt.in.Partitions()
		if got == nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v.Partitions() = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestSplitJoinPartition(t *testing.T) {
	tests := []struct {
		p           string
		group, part string
		roundTrips  bool
	}{
		{"orders/0", "orders", "0", true},
		{"./a.txt", ".", "a.txt", true},
		{"dir/sub/name.txt", "dir/sub", "name.txt", true},
		{"/abs/file", "/abs", "file", true},
		{"/x", "", "x", true},
		{"orders", "orders", "", true},
		{"", "", "", true},
		{"trailing/", "trailing", "", false}, // reads back as "trailing"
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			g, part := SplitPartition(tt.p)
			if g != tt.group || part != tt.part {
				t.Errorf("SplitPartition(%q) = %q, %q; want %q, %q", tt.p, g, part, tt.group, tt.part)
			}
			if got := JoinPartition(g, part) == tt.p; got != tt.roundTrips {
				t.Errorf("JoinPartition(SplitPartition(%q)) = %q; round trip %v, want %v", tt.p, JoinPartition(g, part), got, tt.roundTrips)
			}
		})
	}
	if got := JoinPartition("t", "3"); got != "t/3" {
		t.Errorf(`JoinPartition("t", "3") = %q`, got)
	}
	if got := JoinPartition("t", ""); got != "t" {
		t.Errorf(`JoinPartition("t", "") = %q`, got)
	}
}

func TestRangesOf(t *testing.T) {
	tests := []struct {
		name        string
		from, until Offsets
		want        []Range
	}{
		{"empty", nil, nil, []Range{}},
		{"simple", Offsets{"t/0": 0}, Offsets{"t/0": 5}, []Range{{"t/0", 0, 5}}},
		{"sorted by partition", Offsets{"t/1": 3, "a/0": 1}, Offsets{"t/1": 4, "a/0": 2},
			[]Range{{"a/0", 1, 2}, {"t/1", 3, 4}}},
		{"missing from starts at until", Offsets{}, Offsets{"t/0": 9}, []Range{{"t/0", 9, 9}}},
		{"nil from", nil, Offsets{"t/0": 9, "t/1": 1}, []Range{{"t/0", 9, 9}, {"t/1", 1, 1}}},
		{"from only partition left out", Offsets{"t/0": 1, "gone/0": 4}, Offsets{"t/0": 2}, []Range{{"t/0", 1, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RangesOf(tt.from, tt.until)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RangesOf(%v, %v) = %#v, want %#v", tt.from, tt.until, got, tt.want)
			}
			b := Batch{From: tt.from, Until: tt.until}
			if got := b.Ranges(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Batch.Ranges() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRecordSizeAndHeader(t *testing.T) {
	r := Record{
		Key:     []byte("k1"),
		Value:   []byte("value"),
		Headers: []Header{{Key: "h", Value: []byte("one")}, {Key: "h", Value: []byte("two")}, {Key: "empty"}},
	}
	if got, want := r.Size(), 2+5+(1+3)+(1+3)+5; got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
	if got := string(r.Header("h")); got != "one" {
		t.Errorf(`Header("h") = %q, want the first, "one"`, got)
	}
	if got := r.Header("missing"); got != nil {
		t.Errorf(`Header("missing") = %q, want nil`, got)
	}
	if got := (Position{Partition: "t/0", Offset: 42}).String(); got != "t/0@42" {
		t.Errorf("Position.String() = %q", got)
	}
	var zero Record
	if zero.Size() != 0 {
		t.Errorf("zero record Size = %d", zero.Size())
	}
}
