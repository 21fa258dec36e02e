package kafka

import "github.com/connectd/connectd/sdk"

// detach returns a copy of r whose key, value and header values live in
// *arena (nil and empty stay as they were). A batch's records are valid
// until Write returns (sdk.Batch), but kafka-go may still encode a produce
// request after Produce returned: when Write's context is cancelled, Produce
// returns at once while the request can wait for its connection, which then
// reads the records. So the records a request holds are the sink's own.
func detach(r *sdk.Record, arena *[]byte) sdk.Record {
	c := *r
	c.Key, c.Value = own(r.Key, arena), own(r.Value, arena)
	if len(r.Headers) > 0 {
		c.Headers = make([]sdk.Header, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = sdk.Header{Key: h.Key, Value: own(h.Value, arena)}
		}
	}
	return c
}

// own appends b to *arena and returns its copy there, capped at its length;
// nil stays nil.
func own(b []byte, arena *[]byte) []byte {
	if b == nil {
		return nil
	}
	start := len(*arena)
	*arena = append(*arena, b...)
	return (*arena)[start:len(*arena):len(*arena)]
}
