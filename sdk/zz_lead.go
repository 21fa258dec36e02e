package sdk

// Lead-branch stand-ins for the exports the protocol branch adds.

// DecodeChunks decodes chunks into records.
func DecodeChunks(dst []Record, chunks [][]byte) ([]Record, error) { return decodeChunks(dst, chunks) }

// EncodeChunks encodes records into chunks.
func EncodeChunks(recs []Record) (chunks [][]byte, n int64, err error) {
	e := encoder{handOff: true}
	err = e.add(recs, func(b []byte) error { chunks = append(chunks, b); return nil })
	if c := e.finish(); c != nil {
		chunks = append(chunks, c)
	}
	return chunks, e.bytes, err
}
