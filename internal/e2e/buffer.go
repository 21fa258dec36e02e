package e2e

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that one goroutine may read (String) while others
// write to it: a process's or a pipeline's log, collected by a test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
