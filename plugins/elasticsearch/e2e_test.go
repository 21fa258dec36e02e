package elasticsearch

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/e2e"
	"github.com/connectd/connectd/internal/proc"

	"github.com/connectd/connectd/plugins/generator"
	"github.com/connectd/connectd/sdk"
	"github.com/connectd/connectd/sdk/sdktest"
)

// End-to-end: the real connectd binary runs generator → elasticsearch,
// crashes (fault points, SIGKILL), recovers, and the index must then hold
// exactly one document per generated record, holding that record.

// pipelineHCL is a generator → elasticsearch pipeline; credentials come
// from the environment through env().
func pipelineHCL(index string, count, parts, maxRecords int, extra string) string {
	tls := ""
	if env.caFile != "" {
		tls = `tls_ca_file = env("ES_CA_CERT")`
	}
	return fmt.Sprintf(`
pipeline "es" {
  delivery = "exactly-once"
  source "generator" {
    count      = %d
    partitions = %d
    size       = 200
    %s
  }
  sink "elasticsearch" {
    addresses = [env("ES_URL")]
    index     = %q
    username  = env("ES_USERNAME")
    password  = env("ES_PASSWORD")
    %s
    retry_backoff = "20ms"
  }
  batch {
    max_records = %d
    max_wait    = "100ms"
  }
  checkpoint { dir = "state" }
}
`, count, parts, extra, index, tls, maxRecords)
}

// e2eDir makes a working directory with the pipeline file.
func e2eDir(t *testing.T, hcl string) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	cfg = filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(cfg, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// connectdEnv is the environment that points a pipeline at the test server, plus extra.
func connectdEnv(extra ...string) []string {
	e := []string{"ES_URL=" + env.url, "ES_USERNAME=" + env.user, "ES_PASSWORD=" + env.pass}
	if env.caFile != "" {
		e = append(e, "ES_CA_CERT="+env.caFile)
	}
	return append(e, extra...)
}

// connectd runs the binary in dir with the test server's environment.
func connectd(t *testing.T, dir string, extraEnv []string, args ...string) e2e.Result {
	t.Helper()
	return e2e.Run(t, env.connectd, dir, connectdEnv(extraEnv...), args...)
}

// checkExactlyOnce fails the test unless index holds one document per
// record of the generator (count records in parts partitions, size 200),
// under its position id, holding that record's value.
func checkExactlyOnce(t *testing.T, index string, count, parts int) {
	t.Helper()
	src := sdktest.Source(t, generator.Plugin, "check", map[string]any{"count": count, "partitions": parts, "size": 200})
	recs, until := sdktest.ReadAll(t, src, nil, sdk.Limits{MaxRecords: count + 1})
	checkHolds(t, index, sdk.Batch{Records: recs, Until: until})
	if t.Failed() {
		t.Logf("index %s should hold %d documents, one per generated record", index, count)
	}
}

func TestCrashRecoveryExactlyOnce(t *testing.T) {
	t.Parallel()
	const count, parts = 400, 2
	for _, point := range []string{
		"host.plan.after", "host.write.partial", "host.write.after", "host.commit.after",
		"sink.write.before", "sink.write.partial", "sink.write.after",
	} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			idx := indexName(t)
			dir, cfg := e2eDir(t, pipelineHCL(idx, count, parts, 60, ""))
			first := connectd(t, dir, []string{"CONNECTD_FAULT=" + point + "@3"}, "run", "--drain", cfg)
			host := strings.HasPrefix(point, "host.")
			switch {
			case host && !first.Killed:
				t.Fatalf("fault point %s did not kill the host (exit %d):\n%s", point, first.Code, first.Stderr)
			case !host && first.Code != 0:
				t.Fatalf("plugin fault point %s: exit %d, want 0 after the host restarted the sink:\n%s", point, first.Code, first.Stderr)
			}
			if host {
				// The crash left batch 3 unfinished: the index holds fewer
				// documents now, so the recovery run has something to do.
				if n := len(docs(t, idx)); n >= count {
					t.Fatalf("after the crash the index already holds %d documents", n)
				}
			}
			second := connectd(t, dir, nil, "run", "--drain", cfg)
			if second.Code != 0 {
				t.Fatalf("recovery run: exit %d:\n%s", second.Code, second.Stderr)
			}
			checkExactlyOnce(t, idx, count, parts)
		})
	}
}

// TestRandomKills kills the host or a plugin with SIGKILL at random moments,
// several times, then drains.
func TestRandomKills(t *testing.T) {
	t.Parallel()
	const count, parts = 3000, 3
	for _, seed := range []int64{1, 2} {
		t.Run("seed"+strconv.FormatInt(seed, 10), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewSource(seed))
			idx := indexName(t)
			// At 600 records/s a round (up to a second) cannot finish the
			// 3000 records, so every kill lands in the middle of the run.
			dir, cfg := e2eDir(t, pipelineHCL(idx, count, parts, 50, "rate = 600"))
			kills := 0
			for round := 0; round < 4; round++ {
				cmd := exec.Command(env.connectd, "run", cfg)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), connectdEnv()...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(200+rng.Intn(400)) * time.Millisecond)
				victim, what := cmd.Process.Pid, "host"
				if kids := e2e.Children(victim); len(kids) > 0 && rng.Intn(2) == 0 {
					victim, what = kids[rng.Intn(len(kids))], "plugin"
				}
				if proc.Kill(victim) == nil {
					kills++
				}
				if what == "plugin" {
					time.Sleep(time.Duration(100+rng.Intn(300)) * time.Millisecond)
					_ = cmd.Process.Kill()
				}
				_ = cmd.Wait()
				t.Logf("round %d: killed the %s", round, what)
			}
			if kills == 0 {
				t.Fatal("no process was killed")
			}
			if n := len(docs(t, idx)); n >= count {
				t.Fatalf("the pipeline finished before the kills (%d documents): nothing was tested", n)
			}
			r := connectd(t, dir, nil, "run", "--drain", cfg)
			if r.Code != 0 {
				t.Fatalf("drain after kills: exit %d:\n%s", r.Code, r.Stderr)
			}
			checkExactlyOnce(t, idx, count, parts)
		})
	}
}

// A rejected document stops the pipeline with an error that names it; the
// password never appears in the output.
func TestRejectedDocumentStopsPipeline(t *testing.T) {
	t.Parallel()
	idx := indexName(t)
	// The generator's values have no field "nope" to name the index with.
	dir, cfg := e2eDir(t, pipelineHCL(idx+"-{field:nope}", 10, 1, 5, ""))
	r := connectd(t, dir, nil, "run", "--drain", cfg)
	if r.Code == 0 {
		t.Fatalf("a pipeline whose records cannot be indexed finished:\n%s", r.Stderr)
	}
	for _, want := range []string{"generator/0@0", "nope", "rejected"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
		}
	}
	if env.pass != "" && strings.Contains(r.Stderr, env.pass) {
		t.Errorf("stderr holds the password:\n%s", r.Stderr)
	}
}
