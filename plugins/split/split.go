// Package split owns the "split" processor: it splits a JSON array into one
// record per element.
package split

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/connectd/connectd/sdk"
)

// Plugin is the split plugin: a processor only.
var Plugin = sdk.Plugin{
	Processor: &sdk.ProcessorPlugin{Spec: Spec, New: func() sdk.Processor { return &Processor{} }},
}

// Spec is the split processor's spec.
var Spec = sdk.Spec{
	Name:         "split",
	Version:      "0.1.0",
	Kind:         sdk.KindProcessor,
	Summary:      "Splits a JSON array (the whole value, or the field named by field) into one record per element; deterministic.",
	Capabilities: []sdk.Capability{sdk.CapDeterministic},
	Params: []sdk.Param{
		{Name: "field", Type: sdk.TypeString, Default: "",
			Doc: `Top-level field of a JSON object value that holds the array: each record is the object with the array replaced by one element, its other fields byte for byte as they were. Empty: the whole value is the array, and each record's value is one element.`},
	},
}

// Processor is the split processor. Every record it makes keeps the key,
// headers, timestamp and position of the record it came from (the host
// numbers the records that share a position). A record whose value is not
// a JSON array (not an object with the array in field) is rejected; an
// empty array becomes no record. It keeps no state between batches, so the
// same batch always becomes the same records.
type Processor struct {
	field string
}

var _ sdk.Processor = (*Processor)(nil)

// Open reads the field parameter.
func (p *Processor) Open(_ context.Context, cfg sdk.Config) error {
	p.field = cfg.String("field")
	return nil
}

// Process splits every record of b; the ones that cannot be split are
// rejected with the reason.
func (p *Processor) Process(_ context.Context, b sdk.Batch) ([]sdk.Record, error) {
	out := make([]sdk.Record, 0, len(b.Records))
	var rejected []sdk.Rejection
	for i, r := range b.Records {
		n := len(out)
		var err error
		out, err = p.split(out, r)
		if err != nil {
			out = out[:n]
			rejected = append(rejected, sdk.Rejection{Index: i, Reason: err.Error()})
		}
	}
	if rejected != nil {
		return out, sdk.Reject(rejected...)
	}
	return out, nil
}

// split appends the records r becomes to out.
func (p *Processor) split(out []sdk.Record, r sdk.Record) ([]sdk.Record, error) {
	if p.field == "" {
		elems, err := elements(r.Value)
		if err != nil {
			return out, fmt.Errorf("value: %w", err)
		}
		for _, e := range elems {
			c := r
			c.Value = e
			out = append(out, c)
		}
		return out, nil
	}
	start, end, err := fieldValue(r.Value, p.field)
	if err != nil {
		return out, err
	}
	elems, err := elements(r.Value[start:end])
	if err != nil {
		return out, fmt.Errorf("field %q: %w", p.field, err)
	}
	for _, e := range elems {
		v := make([]byte, 0, len(r.Value)-(end-start)+len(e))
		v = append(append(append(v, r.Value[:start]...), e...), r.Value[end:]...)
		c := r
		c.Value = v
		out = append(out, c)
	}
	return out, nil
}

// elements returns the encoded elements of the JSON array v, as they are in v.
func elements(v []byte) ([]json.RawMessage, error) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '[' {
		return nil, errors.New("not a JSON array")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(t, &elems); err != nil {
		return nil, fmt.Errorf("not a JSON array: %v", err)
	}
	return elems, nil
}

// fieldValue returns where the value of the top-level field name of the
// JSON object v starts and ends in v.
func fieldValue(v []byte, name string) (start, end int, err error) {
	if !json.Valid(v) {
		return 0, 0, errors.New("value is not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return 0, 0, errors.New("value is not a JSON object")
	}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, fmt.Errorf("value is not JSON: %v", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, fmt.Errorf("value is not JSON: %v", err)
		}
		if key != name {
			continue
		}
		if found {
			return 0, 0, fmt.Errorf("field %q appears twice", name)
		}
		found = true
		end = int(dec.InputOffset())
		start = end - len(raw)
	}
	if !found {
		return 0, 0, fmt.Errorf("no field %q", name)
	}
	return start, end, nil
}

// Close does nothing.
func (p *Processor) Close(context.Context) error { return nil }
