package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/tally"

	"github.com/connectd/connectd/internal/fault"
)

// TestBadInput checks that every kind of bad input ends in a clear message
// and the documented exit code, never a panic.
func TestBadInput(t *testing.T) {
	good := genPipeline("exactly-once", "batch", 10, 1, 5, "")
	cases := []struct {
		name, hcl string
		args      []string // after the config path; "run" is the command when empty
		code      int
		want      []string // all must appear in stderr
	}{
		{"broken HCL", "pipeline \"p\" {\n  delivery = \n}\n", nil, 2, []string{"p.hcl:2"}},
		{"unknown plugin", strings.Replace(good, `sink "file"`, `sink "nosuch"`, 1), nil, 2, []string{`"nosuch"`, "p.hcl:"}},
		{"unknown parameter", strings.Replace(good, "size       = 80", "sise = 80", 1), nil, 2, []string{"sise", "p.hcl:"}},
		{"wrong type", strings.Replace(good, "count      = 10", `count = "ten"`, 1), nil, 2, []string{"count", "p.hcl:"}},
		{"missing capability", strings.Replace(good, `mode = "batch"`, `mode = "append"`, 1), nil, 2, []string{"exactly-once", `"file"`, "idempotent"}},
		{"unset env", strings.Replace(good, `dir  = "out"`, `dir = env("CONNECTD_TEST_UNSET_VAR")`, 1), nil, 2, []string{"CONNECTD_TEST_UNSET_VAR"}},
		{"missing plugin binary", "plugin_dir = \"plugins\"\n" + strings.Replace(good, `sink "file"`, `sink "thirdparty"`, 1), nil, 2, []string{"connectd-plugin-thirdparty"}},
		{"unknown pipeline", good, []string{"--pipeline", "nope"}, 2, []string{"nope"}},
		{"bad fault point", good, []string{"--fault-env"}, 2, []string{"unknown fault point"}},
		{"bad log format", good, []string{"--log-format", "yaml"}, 2, []string{`--log-format "yaml": want text or json`}},
		{"bad log level", good, []string{"--log-level", "verbose"}, 2, []string{`--log-level "verbose": want debug, info, warn or error`}},
		{"value outside its enum", genPipeline("at-least-once", "bogus", 10, 1, 5, ""), nil, 2, []string{`"bogus" is not one of`, "p.hcl:12:12"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := write(t, dir, "p.hcl", c.hcl)
			args := []string{"run", "--drain", cfg}
			var env []string
			for _, a := range c.args {
				if a == "--fault-env" {
					env = append(env, fault.Env+"=no.such.point")
					continue
				}
				args = append(args, a)
			}
			r := connectd(t, dir, env, args...)
			if r.Code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", r.Code, c.code, r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.Stderr)
				}
			}
			if strings.Contains(r.Stderr, "panic") || strings.Contains(r.Stderr, "goroutine ") {
				t.Errorf("stderr shows a panic:\n%s", r.Stderr)
			}
		})
	}
}

// TestSecretsNotLogged: a value read with env() never shows in output.
func TestSecretsNotLogged(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", strings.Replace(genPipeline("exactly-once", "batch", 10, 1, 5, ""), `dir  = "out"`, `dir = env("CONNECTD_TEST_SECRET_DIR")`, 1))
	r := connectd(t, dir, []string{"CONNECTD_TEST_SECRET_DIR=s3cr3t-out"}, "run", "--drain", cfg)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr+r.Stdout, "s3cr3t") {
		t.Errorf("secret value appears in output:\n%s%s", r.Stdout, r.Stderr)
	}
}

// TestCorruptCheckpoint: a damaged checkpoint stops the pipeline with an
// error naming the file, and nothing restarts from the beginning.
func TestCorruptCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 100, 1, 10, ""))
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	log := filepath.Join(dir, "state", "p", "offsets.log")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	lines[2] = strings.Replace(lines[2], `"batch":3`, `"batch":4`, 1)
	if err := os.WriteFile(log, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	before := ids(t, dir)
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "offsets.log") || !strings.Contains(r.Stderr, "line 3") {
		t.Errorf("error does not name the file and line:\n%s", r.Stderr)
	}
	if after := ids(t, dir); len(after) != len(before) {
		t.Errorf("the sink's output changed after a corrupt checkpoint: %d → %d ids", len(before), len(after))
	}
}

// TestPluginCrashingAtStart: a third-party plugin that dies at start-up is a
// runtime failure whose message quotes its stderr.
func TestPluginCrashingAtStart(t *testing.T) {
	dir := t.TempDir()
	script := write(t, dir, "plugins/connectd-plugin-broken", "#!/bin/sh\necho 'cannot find libfoo.so' >&2\nexit 3\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := write(t, dir, "p.hcl", "plugin_dir = \"plugins\"\n"+strings.Replace(genPipeline("at-least-once", "append", 10, 1, 5, ""), `sink "file" {
    dir  = "out"
    mode = "append"
  }`, `sink "broken" {}`, 1))
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code == 0 {
		t.Fatalf("exit 0 with a plugin that cannot start:\n%s", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "cannot find libfoo.so") {
		t.Errorf("error does not quote the plugin's stderr:\n%s", r.Stderr)
	}
}

// TestOffsetsShowAndReset: show prints committed offsets in Spark's form;
// reset is refused while the pipeline runs and rewinds to a batch otherwise.
func TestOffsetsShowAndReset(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 100, 2, 10, ""))
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	r := connectd(t, dir, nil, "offsets", "show", cfg, "--json")
	if r.Code != 0 {
		t.Fatalf("show: exit %d:\n%s", r.Code, r.Stderr)
	}
	var st struct {
		Committed map[string]map[string]int64 `json:"committed"`
		LastBatch int64                       `json:"last_committed_batch"`
		Batches   []struct {
			Batch int64 `json:"batch"`
		} `json:"batches"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("show --json: %v\n%s", err, r.Stdout)
	}
	if st.Committed["generator"]["0"] != 50 || st.Committed["generator"]["1"] != 50 || st.LastBatch != 10 {
		t.Errorf("committed %v at batch %d, want generator 0 and 1 at 50 after batch 10", st.Committed, st.LastBatch)
	}
	if text := connectd(t, dir, nil, "offsets", "show", cfg); !strings.Contains(text.Stdout, `{"generator":{"0":50,"1":50}}`) {
		t.Errorf("text show lacks Spark-form offsets:\n%s", text.Stdout)
	}

	// Refused while running: hold the lock with a running pipeline.
	cfg2 := write(t, dir, "slow.hcl", strings.Replace(genPipeline("exactly-once", "batch", 0, 1, 10, "rate = 50"), "state/p", "state/slow", 1))
	cfg2 = write(t, dir, "slow.hcl", strings.Replace(readFile(t, cfg2), `dir  = "out"`, `dir  = "out-slow"`, 1))
	run := exec.Command(bin, "run", cfg2)
	run.Dir = dir
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	var refused e2e.Result
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		refused = connectd(t, dir, nil, "offsets", "reset", cfg2, "--pipeline", "p", "--to", "earliest")
		if strings.Contains(refused.Stderr, "already running") {
			break
		}
	}
	if refused.Code != 1 || !strings.Contains(refused.Stderr, "already running") {
		t.Errorf("reset while running: exit %d, want 1 and 'already running':\n%s", refused.Code, refused.Stderr)
	}

	// Rewind to batch 6: batches 6..10 (50 records) run again.
	if r := connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", "batch:6"); r.Code != 0 {
		t.Fatalf("reset: exit %d:\n%s", r.Code, r.Stderr)
	}
	if r := connectd(t, dir, nil, "run", "--drain", cfg); r.Code != 0 {
		t.Fatalf("run after reset: exit %d:\n%s", r.Code, r.Stderr)
	}
	_, dup, _ := tally.Tally(e2e.GenIDs(100, 2), ids(t, dir))
	if dup != 50 {
		t.Errorf("after reset to batch:6, %d records delivered twice, want 50", dup)
	}

	// A partition the pipeline never had is refused, naming the known ones,
	// and changes nothing.
	r = connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", `{"gen":{"0":5}}`)
	if r.Code != 2 || !strings.Contains(r.Stderr, `unknown partition(s) "gen/0"`) || !strings.Contains(r.Stderr, `it knows "generator/0", "generator/1"`) {
		t.Errorf("reset to an unknown partition: exit %d, want 2 naming it and the known ones:\n%s", r.Code, r.Stderr)
	}
	// Spark JSON moves only the partitions it names and says what changed.
	r = connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", `{"generator":{"0":40}}`)
	if r.Code != 0 || !strings.Contains(r.Stdout, "generator/0: 50 → 40") || strings.Contains(r.Stdout, "generator/1:") {
		t.Errorf("reset of one partition: exit %d, want 0 and only generator/0: 50 → 40 listed:\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if text := connectd(t, dir, nil, "offsets", "show", cfg); !strings.Contains(text.Stdout, `committed offsets: {"generator":{"0":40,"1":50}}`) {
		t.Errorf("after resetting generator/0 only, show says:\n%s", text.Stdout)
	}
}

// TestOffsetsHelpAndMissingFile: `offsets --help` is help, not an error, and
// a pipeline file that cannot be read says why.
func TestOffsetsHelpAndMissingFile(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []string{"--help", "-h"} {
		r := connectd(t, dir, nil, "offsets", h)
		if r.Code != 0 || !strings.Contains(r.Stdout, "connectd offsets reset FILE") {
			t.Errorf("offsets %s: exit %d, want 0 and the usage on stdout:\n%s%s", h, r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, args := range [][]string{{"run", "nothere.hcl"}, {"validate", "nothere.hcl"}, {"offsets", "show", "nothere.hcl"}} {
		r := connectd(t, dir, nil, args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, "open nothere.hcl: no such file or directory") {
			t.Errorf("%q: exit %d, want 2 and the OS's reason:\n%s", args, r.Code, r.Stderr)
		}
	}
}

// TestPluginsCommand lists the bundled specs, as text and JSON.
func TestPluginsCommand(t *testing.T) {
	r := connectd(t, t.TempDir(), nil, "plugins", "--json")
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	var specs []struct {
		Name, Kind   string
		Capabilities []string
		Params       []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &specs); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, s := range specs {
		found[s.Kind+" "+s.Name] = true
	}
	for _, w := range []string{"source generator", "source file", "sink file", "sink discard", "processor split"} {
		if !found[w] {
			t.Errorf("plugins --json lacks %s: %v", w, found)
		}
	}
	if text := connectd(t, t.TempDir(), nil, "plugins"); !strings.Contains(text.Stdout, "replayable") {
		t.Errorf("plugins text output lacks capabilities:\n%s", text.Stdout)
	}
}

// TestConfigsValidate runs `connectd validate` on every example config (with
// the secrets they read through env() set, as their comments say).
func TestConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	for _, f := range files {
		abs, _ := filepath.Abs(f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := connectd(t, t.TempDir(), []string{"MASK_KEY=example-key"}, "validate", abs)
			if r.Code != 0 {
				t.Errorf("validate %s: exit %d:\n%s", f, r.Code, r.Stderr)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPluginsDoc keeps docs/plugins.md's copy of `connectd plugins` exact.
func TestPluginsDoc(t *testing.T) {
	r := connectd(t, t.TempDir(), nil, "plugins")
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	doc := readFile(t, "../../docs/plugins.md")
	if !strings.Contains(doc, "```text\n"+r.Stdout+"```") {
		t.Errorf("docs/plugins.md does not hold the current output of `connectd plugins`; paste it in:\n%s", r.Stdout)
	}
}

// TestThirdPartyOneRole builds examples/jsonl (a sink only, in a module of its
// own, as an outside author ships it) into a plugin directory: `plugins
// --plugin-dir` lists its sink and exits 0, and a pipeline that names it as a
// source is refused by validate and run with exit 2, saying that it offers no
// source.
func TestThirdPartyOneRole(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	build := exec.Command("go", "build", "-mod=mod", "-o", filepath.Join(plugins, "connectd-plugin-jsonl"), ".")
	build.Dir = filepath.Join("..", "..", "examples", "jsonl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/jsonl: %v\n%s", err, out)
	}
	r := connectd(t, dir, nil, "plugins", "--plugin-dir", plugins)
	if r.Code != 0 || !strings.Contains(r.Stdout, `sink "jsonl"`) || strings.Contains(r.Stdout, `source "jsonl"`) {
		t.Errorf("plugins --plugin-dir: exit %d, want 0 and the jsonl sink (only) listed; stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	r = connectd(t, dir, nil, "plugins", "--json", "--plugin-dir", plugins)
	var specs []struct{ Name, Kind string }
	if err := json.Unmarshal([]byte(r.Stdout), &specs); err != nil || r.Code != 0 {
		t.Fatalf("plugins --json --plugin-dir: exit %d, %v; stderr:\n%s", r.Code, err, r.Stderr)
	}
	var jsonl []string
	for _, s := range specs {
		if s.Name == "jsonl" {
			jsonl = append(jsonl, s.Kind)
		}
	}
	if len(jsonl) != 1 || jsonl[0] != "sink" {
		t.Errorf("plugins --json lists jsonl as %v, want [sink]", jsonl)
	}

	cfg := write(t, dir, "p.hcl", "plugin_dir = \"plugins\"\n"+strings.Replace(genPipeline("at-least-once", "append", 10, 1, 5, ""), `source "generator" {
    count      = 10
    partitions = 1
    size       = 80
    
  }`, `source "jsonl" {}`, 1))
	for _, cmd := range []string{"validate", "run"} {
		r := connectd(t, dir, nil, cmd, cfg)
		if r.Code != 2 || !strings.Contains(r.Stderr, `plugin "jsonl" offers no source`) || !strings.Contains(r.Stderr, "p.hcl:") {
			t.Errorf("%s with jsonl as a source: exit %d, want 2 and `plugin \"jsonl\" offers no source` at p.hcl:…; stderr:\n%s", cmd, r.Code, r.Stderr)
		}
	}
}

// TestPluginsBrokenThirdParty: a plugin in the directory that cannot start
// makes `plugins` exit 1 with its stderr, after listing the rest.
func TestPluginsBrokenThirdParty(t *testing.T) {
	dir := t.TempDir()
	script := write(t, dir, "plugins/connectd-plugin-broken", "#!/bin/sh\necho 'cannot find libfoo.so' >&2\nexit 3\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	r := connectd(t, dir, nil, "plugins", "--plugin-dir", filepath.Join(dir, "plugins"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "cannot find libfoo.so") || !strings.Contains(r.Stdout, `sink "file"`) {
		t.Errorf("exit %d, want 1 with the plugin's stderr and the bundled plugins listed; stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

// TestPermanentErrorNotRetried: a source refusing offsets it has no partition
// for fails the run at once (no restart loop), as a configuration error.
func TestPermanentErrorNotRetried(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 100, 2, 10, ""))
	// A checkpoint that knows no partition yet takes any: the run finds out.
	if r := connectd(t, dir, nil, "offsets", "reset", cfg, "--pipeline", "p", "--to", `{"gen":{"0":5}}`); r.Code != 0 {
		t.Fatalf("reset of a fresh checkpoint: exit %d:\n%s", r.Code, r.Stderr)
	}
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code != 2 || !strings.Contains(r.Stderr, `unknown partition "gen/0"`) || !strings.Contains(r.Stderr, "not retried") {
		t.Fatalf("run: exit %d, want 2 and the unknown partition, not retried:\n%s", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr, "restarting") {
		t.Errorf("a permanent error was retried:\n%s", r.Stderr)
	}
}

// TestLogFlags: --log-format json writes one JSON object per log line;
// --log-level warn hides the info lines.
func TestLogFlags(t *testing.T) {
	dir := t.TempDir()
	cfg := write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 20, 1, 10, ""))
	r := connectd(t, dir, nil, "run", "--drain", "--log-format", "json", "--log-level", "debug", cfg)
	if r.Code != 0 {
		t.Fatalf("exit %d:\n%s", r.Code, r.Stderr)
	}
	logged := 0
	for _, line := range strings.Split(r.Stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %v: %s", err, line)
		}
		if rec["msg"] == "starting pipeline" && rec["pipeline"] == "p" && rec["level"] == "INFO" {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("want one JSON log object for \"starting pipeline\", got %d:\n%s", logged, r.Stderr)
	}
	if strings.Contains(r.Stderr, "level=INFO") {
		t.Errorf("--log-format json still wrote text log lines:\n%s", r.Stderr)
	}
	dir = t.TempDir()
	cfg = write(t, dir, "p.hcl", genPipeline("exactly-once", "batch", 20, 1, 10, ""))
	r = connectd(t, dir, nil, "run", "--drain", "--log-level", "warn", cfg)
	if r.Code != 0 || strings.Contains(r.Stderr, "starting pipeline") {
		t.Errorf("--log-level warn: exit %d, want 0 and no info lines:\n%s", r.Code, r.Stderr)
	}
}
