package sdk

import (
	"sync"

	"github.com/connectd/connectd/internal/poison"
	"github.com/connectd/connectd/internal/protocol/rawv1"
)

// PoisonEnv names the environment variable that, set to 1 in a plugin
// process, makes the sdk overwrite a batch's record memory as soon as the
// sink's Write returns (the processor's reply is sent): a plugin that kept
// references to a batch's records past the call then reads, and writes out,
// "connectd poison: …" instead of another batch's records. The conformance
// suite sets it on every plugin it starts; sdktest always poisons. Unset or
// 0 is off; any other value fails Open with an error that names it.
const PoisonEnv = poison.Env

// batchMemory is the memory a received batch's records alias: the buffers
// its messages were received into and the records decoded from them. A
// server reuses one batch after batch (a batch's records are valid until
// Write returns, see Batch) instead of taking fresh memory for each.
type batchMemory struct {
	bufs   [][]byte // message buffers, reused in order
	used   int      // bufs in use by the current batch
	recs   []Record // the current batch's records (reused backing array)
	poison bool     // overwrite the batch's memory on release (PoisonEnv)
	lent   []Record // with poison: the records as decoded, to poison each key and value from its start
}

// keepBytes bounds the memory a batchMemory keeps for the next batch: a
// batch larger than that gives what is past it back to the garbage
// collector.
const keepBytes = 64 << 20

// recordBytes is about the size of a Record, for keepBytes.
const recordBytes = 128

// buffer returns n bytes for the batch's next message.
func (m *batchMemory) buffer(n int) []byte {
	if m.used < len(m.bufs) && cap(m.bufs[m.used]) >= n {
		m.used++
		return m.bufs[m.used-1][:n]
	}
	c := n
	if n >= 64<<10 {
		c = max(n, chunkCap) // a chunk: room for the next batch's chunks at this place
	}
	b := make([]byte, n, c)
	if m.used < len(m.bufs) {
		m.bufs[m.used] = b
	} else {
		m.bufs = append(m.bufs, b)
	}
	m.used++
	return b
}

// decode decodes the batch's chunks, which alias its buffers, into its
// records.
func (m *batchMemory) decode(chunks [][]byte) ([]Record, error) {
	recs, err := DecodeChunks(m.recs[:0], chunks)
	m.recs = recs[:0]
	if m.poison {
		m.lent = append(m.lent[:0], recs...)
	}
	return recs, err
}

// release ends the batch: its memory may be reused by the next one. With
// poison it is overwritten first: every buffer, each key and value from the
// start of poison.Pattern, and the records' positions. release is
// idempotent.
func (m *batchMemory) release() {
	if m.poison {
		for _, b := range m.bufs[:m.used] {
			poison.Fill(b)
		}
		recs := m.recs[:len(m.lent)]
		for i := range m.lent {
			poison.Fill(m.lent[i].Key)
			poison.Fill(m.lent[i].Value)
			recs[i].Position = Position{Partition: poison.Pattern[:len("connectd poison")], Offset: -1}
		}
		clear(m.lent)
		m.lent = m.lent[:0]
	}
	m.used = 0
	kept := cap(m.recs) * recordBytes
	for i, b := range m.bufs {
		if kept += cap(b); kept > keepBytes {
			clear(m.bufs[i:])
			m.bufs = m.bufs[:i]
			break
		}
	}
	if cap(m.recs)*recordBytes > keepBytes {
		m.recs = nil
	}
}

// memoryPool holds a server's batchMemory between calls; a call that finds
// it taken (calls at the same time) gets a memory of its own.
type memoryPool struct {
	mu   sync.Mutex
	free *batchMemory
}

// get returns a batchMemory for one call, poisoning on release when poison
// is set.
func (p *memoryPool) get(poison bool) *batchMemory {
	p.mu.Lock()
	m := p.free
	p.free = nil
	p.mu.Unlock()
	if m == nil {
		m = &batchMemory{}
	}
	m.poison = poison
	return m
}

// put releases m and keeps it for the next call.
func (p *memoryPool) put(m *batchMemory) {
	m.release()
	p.mu.Lock()
	p.free = m
	p.mu.Unlock()
}

// pooledWrite is a WriteRequest that serverCodec receives into the buffers
// of a batchMemory: its chunk aliases them.
type pooledWrite struct {
	*rawv1.RawWriteRequest
	mem *batchMemory
}

// pooledProcess is a ProcessRequest received as pooledWrite is.
type pooledProcess struct {
	*rawv1.RawProcessRequest
	mem *batchMemory
}
