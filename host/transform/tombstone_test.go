package transform

import (
	"reflect"
	"strings"
	"testing"

	"github.com/connectd/connectd/sdk"
)

// tomb is a tombstone for key k at offset o.
func tomb(k string, o int64) sdk.Record {
	return sdk.Record{Key: []byte(k), Tombstone: true, Position: sdk.Position{Partition: "t/0", Offset: o}}
}

// checkTombstones fails unless out's records are tombstones exactly where
// want says, with no value.
func checkTombstones(t *testing.T, out []sdk.Record, want []bool) {
	t.Helper()
	if len(out) != len(want) {
		t.Fatalf("%d records out, want %d", len(out), len(want))
	}
	for i, r := range out {
		if r.Tombstone != want[i] {
			t.Errorf("record %d: tombstone %v, want %v", i, r.Tombstone, want[i])
		}
		if r.Tombstone && len(r.Value) != 0 {
			t.Errorf("record %d: a tombstone with value %q", i, r.Value)
		}
	}
}

// In CEL a tombstone's value is null; an empty value is empty bytes.
func TestTombstoneValueIsNull(t *testing.T) {
	f := step(t, `transform "filter" { where = "value == null" }`)
	out, rej := f.Apply([]sdk.Record{tomb("k1", 0), {Key: []byte("k2"), Position: sdk.Position{Partition: "t/0", Offset: 1}}, rec(`{"a":1}`, 2)})
	checkReasons(t, rej, nil)
	checkTombstones(t, out, []bool{true})

	f = step(t, `transform "filter" { where = "value == b''" }`)
	out, rej = f.Apply([]sdk.Record{tomb("k1", 0), {Key: []byte("k2"), Value: []byte{}, Position: sdk.Position{Partition: "t/0", Offset: 1}}})
	checkReasons(t, rej, nil)
	checkTombstones(t, out, []bool{false})
}

// A filter that reads a field of the value rejects a tombstone and says
// why, unless the expression tests for null first.
func TestTombstoneFilterFields(t *testing.T) {
	f := step(t, `transform "filter" { where = "value.status == 'paid'" }`)
	out, rej := f.Apply([]sdk.Record{rec(`{"status":"paid"}`, 0), tomb("k1", 1)})
	checkReasons(t, rej, map[int]string{1: "where: the record is a tombstone (its value is null, not a JSON object)"})
	checkTombstones(t, out, []bool{false})

	f = step(t, `transform "filter" { where = "value == null || value.status == 'paid'" }`)
	out, rej = f.Apply([]sdk.Record{rec(`{"status":"paid"}`, 0), tomb("k1", 1), rec(`{"status":"open"}`, 2)})
	checkReasons(t, rej, nil)
	checkTombstones(t, out, []bool{false, true})
}

// drop_fields, rename and mask pass a tombstone on as it is; set keeps it
// when it changes only key and headers, and rejects it when it would assign
// fields (the null value would become an object).
func TestTombstoneThroughSteps(t *testing.T) {
	for _, src := range []string{
		`transform "drop_fields" { fields = ["a"] }`,
		`transform "rename" { fields = { "a" = "b" } }`,
		`transform "mask" {
  fields = ["a"]
  key    = "k"
}`,
		`transform "set" { headers = { "op" = "value == null ? 'delete' : 'upsert'" } }`,
	} {
		out, rej := step(t, src).Apply([]sdk.Record{tomb("k1", 0), rec(`{"a":1}`, 1)})
		checkReasons(t, rej, nil)
		checkTombstones(t, out, []bool{true, false})
		if string(out[0].Key) != "k1" {
			t.Errorf("%s: tombstone's key %q, want k1", src, out[0].Key)
		}
		if strings.HasPrefix(src, `transform "set"`) {
			if got := []string{string(out[0].Header("op")), string(out[1].Header("op"))}; !reflect.DeepEqual(got, []string{"delete", "upsert"}) {
				t.Errorf("set headers op = %q, want delete, upsert", got)
			}
		}
	}

	out, rej := step(t, `transform "set" { fields = { "x" = "1" } }`).Apply([]sdk.Record{tomb("k1", 0), rec(`{"a":1}`, 1)})
	checkReasons(t, rej, map[int]string{0: "the record is a tombstone (its value is null): set cannot assign fields of it"})
	checkTombstones(t, out, []bool{false})
}
