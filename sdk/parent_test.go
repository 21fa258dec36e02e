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
