package kafka

import (
	"testing"

	"github.com/connectd/connectd/sdk"
)

// detach copies what a produce request reads of a record (key, value,
// header values) into the arena: overwriting the batch's memory afterwards,
// as the sdk may once Write returns, leaves the copy intact; nil stays nil
// (a tombstone) and empty stays empty.
func TestDetach(t *testing.T) {
	r := sdk.Record{Key: []byte("k"), Value: []byte{}, Headers: []sdk.Header{{Key: "h", Value: []byte("hv")}, {Key: "n"}},
		Position: sdk.Position{Partition: "t/0", Offset: 3}}
	arena := make([]byte, 0, r.Size())
	c := detach(&r, &arena)
	for _, b := range [][]byte{r.Key, r.Value, r.Headers[0].Value} {
		for i := range b {
			b[i] = 'X'
		}
	}
	r.Headers[0].Key = "changed"
	if string(c.Key) != "k" || c.Value == nil || len(c.Value) != 0 || c.Headers[0].Key != "h" || string(c.Headers[0].Value) != "hv" ||
		c.Headers[1].Value != nil || c.Position != r.Position {
		t.Errorf("detach = %+v, want the record as it was", c)
	}
	if nilRec := detach(&sdk.Record{}, &arena); nilRec.Key != nil || nilRec.Value != nil {
		t.Errorf("detach of nil key and value = %q, %q; want nil", nilRec.Key, nilRec.Value)
	}
}
