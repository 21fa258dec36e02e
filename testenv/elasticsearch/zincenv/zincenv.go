// Package zincenv configures ZincSearch before ZincSearch configures itself.
//
// ZincSearch reads its settings from the environment in package init
// functions (pkg/config, pkg/metadata, pkg/core) and opens its data directory
// there. This package's init runs first and sets that environment from the
// command line: Go initialises packages in import-path order among those
// whose imports are ready (the Go spec since 1.21), this package imports only
// the standard library, and its path sorts before github.com/gin-gonic and
// github.com/zincsearch. main checks that ZincSearch saw DataDir.
package zincenv

import (
	"os"
	"strings"
	"time"
)

// DataDir is where ZincSearch keeps its data: the -data-dir flag, or a new
// temporary directory (Temporary is then true and main removes it at exit).
var DataDir string

// Temporary is true when DataDir was made here and belongs to this run.
var Temporary bool

// Err is a problem found here, reported by main (an init cannot fail nicely).
var Err error

// Interval is the -refresh-interval flag: how often ZincSearch indexes what
// its write-ahead log holds (ZINC_WAL_SYNC_INTERVAL).
var Interval = 100 * time.Millisecond

func init() {
	DataDir = flagValue("data-dir")
	if v := flagValue("refresh-interval"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			Err = errString("-refresh-interval wants a positive duration such as 100ms, not " + v)
		} else {
			Interval = d
		}
	}
	if DataDir == "" {
		dir, err := os.MkdirTemp("", "connectd-testenv-es-")
		if err != nil {
			Err = err
			return
		}
		DataDir, Temporary = dir, true
	} else if err := os.MkdirAll(DataDir, 0o755); err != nil {
		Err = err
		return
	}
	set := map[string]string{
		"ZINC_DATA_PATH":            DataDir,
		"ZINC_WAL_SYNC_INTERVAL":    Interval.String(),
		"ZINC_SHARD_NUM":            "1",
		"ZINC_MAX_RESULTS":          "1000000",
		"ZINC_TELEMETRY":            "false",
		"ZINC_SENTRY":               "false",
		"ZINC_PROFILER":             "false",
		"ZINC_PROMETHEUS_ENABLE":    "false",
		"ZINC_SWAGGER_ENABLE":       "false",
		"ZINC_FIRST_ADMIN_USER":     "zinc-admin-unused",
		"ZINC_FIRST_ADMIN_PASSWORD": "zinc-admin-unused",
		"GIN_MODE":                  "release",
	}
	for k, v := range set {
		if err := os.Setenv(k, v); err != nil {
			Err = err
		}
	}
}

// flagValue finds -name VALUE, -name=VALUE or the same with "--" in os.Args.
func flagValue(name string) string {
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

type errString string

func (e errString) Error() string { return string(e) }
