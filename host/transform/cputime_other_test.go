//go:build !unix

package transform

import (
	"testing"
	"time"
)

// cpuTime is 0 where the process's CPU time is not read: benchmarks report
// wall time only.
func cpuTime(testing.TB) time.Duration { return 0 }
