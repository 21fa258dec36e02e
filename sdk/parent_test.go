package sdk

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchParentDiesAtOnceWhenTheParentIsGone(t *testing.T) {
	var checks, deaths atomic.Int32
	watchParent(func() bool { checks.Add(1); return false }, time.Millisecond, func() { deaths.Add(1) })
	if deaths.Load() != 1 {
		t.Fatalf("die called %d times before watchParent returned, want 1", deaths.Load())
	}
	time.Sleep(20 * time.Millisecond)
	if n := deaths.Load(); n != 1 {
		t.Fatalf("die called %d times, want once", n)
	}
	if n := checks.Load(); n != 1 {
		t.Fatalf("the parent was checked %d times after it was gone, want once", n)
	}
}

func TestWatchParentDiesOnceWhenTheParentEnds(t *testing.T) {
	const aliveChecks = 5
	var checks atomic.Int32
	died := make(chan int32, 2)
	watchParent(func() bool { return checks.Add(1) <= aliveChecks },
		time.Millisecond, func() { died <- checks.Load() })
	select {
	case at := <-died:
		if at != aliveChecks+1 {
			t.Fatalf("die called at check %d, want at check %d (the first to find the parent gone)", at, aliveChecks+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("die not called within 5s; the parent was checked %d times", checks.Load())
	}
	time.Sleep(20 * time.Millisecond)
	if len(died) != 0 {
		t.Fatal("die called a second time")
	}
	if n := checks.Load(); n != aliveChecks+1 {
		t.Fatalf("the parent was checked %d times, want the watch to stop after check %d", n, aliveChecks+1)
	}
}

// A parent pid of 1 means the host died and init adopted the plugin, unless
// the host said it is pid 1 itself (a container's entrypoint): there every
// plugin used to kill itself at start.
func TestSameParent(t *testing.T) {
	for _, c := range []struct {
		parent, ppid int
		hostPID      string
		want         bool
	}{
		{parent: 4242, ppid: 4242, want: true},
		{parent: 4242, ppid: 4242, hostPID: "4242", want: true},
		{parent: 4242, ppid: 1, want: false},               // adopted by init
		{parent: 4242, ppid: 77, want: false},              // adopted by a subreaper
		{parent: 1, ppid: 1, want: false},                  // started by a host already dead
		{parent: 1, ppid: 1, hostPID: "1", want: true},     // the host is pid 1
		{parent: 1, ppid: 1, hostPID: "4242", want: false}, // a wrapper's host died
	} {
		if got := sameParent(c.parent, c.ppid, c.hostPID); got != c.want {
			t.Errorf("sameParent(%d, %d, %q) = %v, want %v", c.parent, c.ppid, c.hostPID, got, c.want)
		}
	}
}
