package conformance

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	cases := []struct {
		g                   string
		lost, dup, unexp    int
		pass, informational bool
	}{
		{ExactlyOnce, 0, 0, 0, true, false},
		{ExactlyOnce, 1, 0, 0, false, false},
		{ExactlyOnce, 0, 1, 0, false, false},
		{AtLeastOnce, 0, 5, 0, true, false},
		{AtLeastOnce, 1, 0, 0, false, false},
		{AtMostOnce, 7, 0, 0, true, true},
		{AtMostOnce, 0, 0, 0, true, false},
		{AtMostOnce, 0, 1, 0, false, false},
		{AtLeastOnce, 0, 0, 1, false, false}, // a record never input fails every guarantee
		{AtMostOnce, 3, 0, 1, false, false},
		{"sometimes-once", 0, 0, 0, false, false},
	}
	for _, c := range cases {
		pass, info := verdict(c.g, c.lost, c.dup, c.unexp)
		if pass != c.pass || info != c.informational {
			t.Errorf("verdict(%s, lost %d, dup %d, unexpected %d) = %v, %v; want %v, %v", c.g, c.lost, c.dup, c.unexp, pass, info, c.pass, c.informational)
		}
	}
}

func TestIDsAndTally(t *testing.T) {
	vals := [][]byte{[]byte(`{"id":"0-1","pad":"x"}`), []byte(`{"id":"0-1"}`), []byte("plain"), []byte(`{"other":1}`), []byte(`{"id":"9-9"}`)}
	seen := Count(vals)
	if seen["0-1"] != 2 || seen["plain"] != 1 || seen[`{"other":1}`] != 1 {
		t.Fatalf("Count = %v", seen)
	}
	lost, dup, unexpected := Tally([]string{"0-0", "0-1", "plain"}, seen)
	if lost != 1 || dup != 1 || strings.Join(unexpected, ",") != `9-9,{"other":1}` {
		t.Fatalf("Tally = %d lost, %d dup, unexpected %q", lost, dup, unexpected)
	}
}

func sample() *Report {
	return &Report{
		Source: `source "generator" 0.1.0 under test`, Sink: `sink "file" 0.1.0 under test`,
		Claimed: []string{ExactlyOnce, AtLeastOnce, AtMostOnce}, Level: Quick, Seed: 42, Seconds: 3.5,
		Results: []Result{
			{FaultPoint: "host.write.after@2", Guarantee: ExactlyOnce, Pass: true},
			{FaultPoint: "host.write.after@2", Guarantee: AtLeastOnce, Duplicated: 4, Pass: true},
			{FaultPoint: "host.commit.after@2", Guarantee: AtMostOnce, Lost: 40, Pass: true, Informational: true},
			{FaultPoint: "host.commit.after@2", Guarantee: ExactlyOnce, Lost: 3, Pass: false, Detail: "host killed at host.commit.after@2"},
			{FaultPoint: PointSoak, Guarantee: AtLeastOnce, Pass: false, Error: "final drain failed (exit 1): boom"},
			{FaultPoint: PointContract, Guarantee: "idempotent", Pass: true},
		},
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"FAULT POINT", "EXACTLY-ONCE", "AT-LEAST-ONCE", "AT-MOST-ONCE",
		"pass (4 dup)", "pass (40 lost)", "FAIL 3 lost 0 dup", "FAIL: final drain failed",
		"soak (seed 42)", "--seed 42", "idempotent   pass",
		"FAIL: 6 cells, 2 failed, 1 informational",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Rows keep the order of the results; columns the order of Guarantees.
	if strings.Index(out, "host.write.after@2") > strings.Index(out, "host.commit.after@2") {
		t.Errorf("rows out of order:\n%s", out)
	}
	rep := sample()
	rep.Results = rep.Results[:3]
	b.Reset()
	_ = rep.WriteTable(&b)
	if !strings.Contains(b.String(), "PASS: 3 cells, 0 failed") || !rep.Passed() {
		t.Errorf("a passing report:\n%s", b.String())
	}
	if (&Report{}).Passed() {
		t.Error("an empty report passed")
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Results []map[string]any `json:"results"`
		Seed    int64            `json:"seed"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Results) != 6 || got.Seed != 42 {
		t.Fatalf("%d results, seed %d", len(got.Results), got.Seed)
	}
	for _, r := range got.Results {
		for _, k := range []string{"fault_point", "guarantee", "lost", "duplicated", "pass"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result %v lacks %q", r, k)
			}
		}
	}
	if got.Results[3]["lost"] != float64(3) || got.Results[3]["pass"] != false {
		t.Errorf("result 3 = %v", got.Results[3])
	}
}

func TestJUnit(t *testing.T) {
	var b bytes.Buffer
	if err := sample().WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name      string    `xml:"name,attr"`
				Classname string    `xml:"classname,attr"`
				Failure   *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	s := got.Suites[0]
	if s.Tests != 6 || s.Failures != 2 || len(s.Cases) != 6 {
		t.Fatalf("suite: %+v", s)
	}
	if c := s.Cases[3]; c.Name != "host.commit.after@2" || c.Classname != "conformance.exactly-once" || c.Failure == nil {
		t.Errorf("case 3: %+v", c)
	}
	if s.Cases[0].Failure != nil {
		t.Errorf("a passing case has a failure")
	}
}

func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.hcl")
	src := `# settings
source "file" { paths = ["in/*.txt"] }
sink "file" {
  dir  = "out-${env("CONNECTD_CONFORMANCE_CELL")}"
  mode = "batch"
}
input "file" { dir = "in", fsync = false }
transform "filter" { where = "value.offset % 5 != 1" }
processor "split" { field = "id" }
transform "./connectd-plugin-x" {}
dead_letter "file" { dir = "dead" }
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source == nil || c.Source.Name != "file" || c.Source.HCL != ` paths = ["in/*.txt"] ` {
		t.Errorf("source %+v", c.Source)
	}
	if c.Sink == nil || !strings.Contains(c.Sink.HCL, `"out-${env("CONNECTD_CONFORMANCE_CELL")}"`) || !strings.Contains(c.Sink.HCL, `mode = "batch"`) {
		t.Errorf("sink %+v", c.Sink)
	}
	if c.Input == nil || c.Input.HCL != ` dir = "in", fsync = false ` {
		t.Errorf("input %+v", c.Input)
	}
	if len(c.Transforms) != 2 || c.Transforms[0].Name != "filter" || c.Transforms[0].HCL != ` where = "value.offset % 5 != 1" ` || c.Transforms[1].Name != "./connectd-plugin-x" {
		t.Errorf("transforms %+v, want filter and ./connectd-plugin-x in order", c.Transforms)
	}
	if c.Processor == nil || c.Processor.Name != "split" || c.Processor.HCL != ` field = "id" ` {
		t.Errorf("processor %+v", c.Processor)
	}
	if c.DeadLetter == nil || c.DeadLetter.Name != "file" || c.DeadLetter.HCL != ` dir = "dead" ` {
		t.Errorf("dead_letter %+v", c.DeadLetter)
	}
	for _, bad := range []struct{ src, want string }{
		{`pipeline "x" {}`, `c.hcl:1:1: unexpected "pipeline"`},
		{"dead_letter \"a\" {}\ndead_letter \"b\" {}", "c.hcl:2:1: a second dead_letter block"},
		{"sink \"a\" {}\nsink \"b\" {}", "c.hcl:2:1: a second sink block"},
		{`sink {}`, "needs one label"},
		{`sink "a" { dir = "x"`, "not closed"},
		{`sink "a" = 3`, "want {"},
	} {
		if err := os.WriteFile(path, []byte(bad.src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadConfig(path); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want one containing %q", bad.src, err, bad.want)
		}
	}
}

func TestBlock(t *testing.T) {
	got, err := block("sink", "file", Plugin{Config: map[string]any{
		"dir": "a \"b\" ${x} %{y} \\ \n", "n": 3, "m": int64(4), "f": 0.5, "ok": true,
		"list": []string{"x", "y"}, "wait": 1500 * time.Millisecond,
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `sink "file" {
  dir = "a \"b\" $${x} %%{y} \\ \n"
  f = 0.5
  list = ["x", "y"]
  m = 4
  n = 3
  ok = true
  wait = "1.5s"
}`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := block("sink", "file", Plugin{Config: map[string]any{"x": struct{}{}}}); err == nil {
		t.Error("a struct value was rendered")
	}
	if got, _ := block("sink", "x", Plugin{HCL: `dir = "out", mode = "batch"`}); got != `sink "x" {dir = "out", mode = "batch"}` {
		t.Errorf("one-line HCL: %s", got)
	}
	bundled := map[string]bool{"file": true}
	for in, want := range map[string]string{
		"file": "file", "./bin/connectd-plugin-jsonl": "jsonl", "/x/connectd-plugin-file": "file-under-test", "/x/my plugin!": "my_plugin_",
	} {
		if got := pluginLabel(in, bundled); got != want {
			t.Errorf("pluginLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
