package elasticsearch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/connectd/connectd/sdk"
)

// maxIDBytes is Elasticsearch's limit on the length of a document id.
const maxIDBytes = 512

// PositionID returns the document id of a record in id = "position" mode:
// "<partition>@<offset>", "<partition>@<offset>#<index>" when p.Index is not
// 0 (a record a processor added after the source record at that position),
// or "sha256:<hex>" of that when it is longer than Elasticsearch allows. The
// id of a position with Index 0 is the one every earlier version gave it.
func PositionID(p sdk.Position) string {
	return limitID(p.String())
}

func limitID(id string) string {
	if len(id) <= maxIDBytes {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// KeyID returns the document id of a record in id = "key" mode: its key, or
// "sha256:<hex>" of it when it is longer than Elasticsearch allows. A record
// without a key, or with a key that is not UTF-8, has no id.
func KeyID(r *sdk.Record) (string, error) {
	switch {
	case len(r.Key) == 0:
		return "", errors.New(`the record has no key, and id = "key" needs one`)
	case !utf8.Valid(r.Key):
		return "", errors.New(`the record key is not UTF-8, and id = "key" needs text`)
	}
	return limitID(string(r.Key)), nil
}

// Envelope is the document written for a record whose value is not a JSON
// object, and for every record with document = "envelope". Key and value are
// text when they are UTF-8, otherwise base64 in KeyBase64 and ValueBase64.
type Envelope struct {
	Key         *string          `json:"key,omitempty"`
	KeyBase64   []byte           `json:"key_base64,omitempty"`
	Value       *string          `json:"value,omitempty"`
	ValueBase64 []byte           `json:"value_base64,omitempty"`
	Headers     []EnvelopeHeader `json:"headers,omitempty"`
	Timestamp   *time.Time       `json:"timestamp,omitempty"`
	Position    EnvelopePosition `json:"position"`
	// Tombstone is true for a tombstone (a null value, which has no
	// value field), written in id = "position" mode.
	Tombstone bool `json:"tombstone,omitempty"`
}

// EnvelopeHeader is one record header in an Envelope; its value is text,
// or base64 in ValueBase64 when it is not UTF-8.
type EnvelopeHeader struct {
	Key         string  `json:"key"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 []byte  `json:"value_base64,omitempty"`
}

// EnvelopePosition is the record's source position in an Envelope; Index
// (left out when 0) tells apart the records a processor added after it.
type EnvelopePosition struct {
	Partition string `json:"partition"`
	Offset    int64  `json:"offset"`
	Index     int    `json:"index,omitempty"`
}

// NewEnvelope returns the envelope of record r.
func NewEnvelope(r *sdk.Record) Envelope {
	e := Envelope{Position: EnvelopePosition{Partition: r.Position.Partition, Offset: r.Position.Offset, Index: r.Position.Index}, Tombstone: r.Tombstone}
	if r.Key != nil {
		e.Key, e.KeyBase64 = text(r.Key)
	}
	if r.Value != nil {
		e.Value, e.ValueBase64 = text(r.Value)
	}
	for _, h := range r.Headers {
		eh := EnvelopeHeader{Key: h.Key}
		eh.Value, eh.ValueBase64 = text(h.Value)
		e.Headers = append(e.Headers, eh)
	}
	if !r.Timestamp.IsZero() {
		ts := r.Timestamp.UTC()
		e.Timestamp = &ts
	}
	return e
}

// text returns b as a string when it is UTF-8, otherwise as bytes for base64.
func text(b []byte) (*string, []byte) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, b
}

// RecordValue returns the record value an envelope holds.
func (e Envelope) RecordValue() []byte {
	if e.Value != nil {
		return []byte(*e.Value)
	}
	return e.ValueBase64
}

// appendDocument appends the document of record r to buf on one line: the
// value itself when it is a JSON object and auto is set (compacted, so that
// it holds no newline), otherwise its envelope.
func appendDocument(buf []byte, r *sdk.Record, auto bool) ([]byte, error) {
	if auto && isObject(r.Value) {
		if bytes.IndexAny(r.Value, "\r\n") < 0 {
			if json.Valid(r.Value) {
				return append(buf, r.Value...), nil
			}
		} else {
			var b bytes.Buffer
			if err := json.Compact(&b, r.Value); err == nil {
				return append(buf, b.Bytes()...), nil
			}
		}
		// Not valid JSON after all: an envelope keeps it.
	}
	doc, err := json.Marshal(NewEnvelope(r))
	if err != nil {
		return buf, fmt.Errorf("encoding the envelope: %w", err)
	}
	return append(buf, doc...), nil
}

// isObject reports whether b starts like a JSON object.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// appendAction appends a bulk "index" action line for index and id.
func appendAction(buf []byte, index, id string) []byte {
	buf = append(buf, `{"index":{"_index":`...)
	buf = appendString(buf, index)
	buf = append(buf, `,"_id":`...)
	buf = appendString(buf, id)
	return append(buf, "}}\n"...)
}

// appendDelete appends a bulk "delete" action line for index and id (a
// delete has no document line).
func appendDelete(buf []byte, index, id string) []byte {
	buf = append(buf, `{"delete":{"_index":`...)
	buf = appendString(buf, index)
	buf = append(buf, `,"_id":`...)
	buf = appendString(buf, id)
	return append(buf, "}}\n"...)
}

// appendString appends s as a JSON string.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			b, _ := json.Marshal(s) // rare: let encoding/json escape it
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// recordValueOf returns the record value a stored document holds: the
// value of an envelope, or the document itself. With onlyEnvelopes unset a
// document is taken as an envelope only when it has an envelope's shape.
func recordValueOf(source json.RawMessage, onlyEnvelopes bool) ([]byte, error) {
	if onlyEnvelopes || looksLikeEnvelope(source) {
		var e Envelope
		if err := json.Unmarshal(source, &e); err != nil {
			return nil, fmt.Errorf("reading an envelope: %w", err)
		}
		return e.RecordValue(), nil
	}
	return source, nil
}

// looksLikeEnvelope reports whether a document has exactly the fields an
// envelope may have, among them a position with a partition and an offset.
func looksLikeEnvelope(source json.RawMessage) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(source, &fields) != nil {
		return false
	}
	for k := range fields {
		switch k {
		case "key", "key_base64", "value", "value_base64", "headers", "timestamp", "position", "tombstone":
		default:
			return false
		}
	}
	var p struct {
		Partition *string `json:"partition"`
		Offset    *int64  `json:"offset"`
	}
	return fields["position"] != nil && json.Unmarshal(fields["position"], &p) == nil && p.Partition != nil && p.Offset != nil
}
