package transform

import (
	"encoding/binary"
	"unicode/utf8"
)

// The fast reader of a record's value: a hand-written scanner of one JSON
// object over its bytes, one level deep, that validates the nested values
// while it skips them. It accepts only what the decoder (jsontext) accepts,
// and leaves everything else to it: when it says no, parse reads the value
// again with the decoder, which finds the error and words the reason. So the
// reasons, and what is JSON, are the decoder's; the scanner is only faster
// on the common value (no name with an escape, no \u escape in a string, no
// deep nesting).

// maxFastDepth bounds the nesting the scanner follows; deeper values go to
// the decoder (which has its own limit).
const maxFastDepth = 64

// maxFastFields bounds the fields of an object the scanner checks for
// duplicate names by comparing each with the others.
const maxFastFields = 64

// scanObject reads b, a JSON object and nothing else, into o.fields; ok is
// false when b is not such an object or is one the scanner leaves to the
// decoder.
func (o *object) scanObject(b []byte) bool {
	o.fields, o.src, o.compact = o.fields[:0], nil, false
	compact := true
	sp := func(i int) int {
		j := skipSpace(b, i)
		compact = compact && j == i
		return j
	}
	i := sp(0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = sp(i + 1)
	if i < len(b) && b[i] == '}' {
		return o.done(b, sp(i+1), compact)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end, esc, ok := scanString(b, i)
		if !ok || esc || len(o.fields) == maxFastFields {
			return false
		}
		name := b[i:end:end]
		for k := range o.fields {
			if string(o.fields[k].rawName) == string(name) {
				return false // a duplicate: the decoder says so
			}
		}
		i = sp(end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = sp(i + 1)
		vEnd, ok := scanValue(b, i, 0)
		if !ok {
			return false
		}
		o.fields = append(o.fields, field{rawName: name, raw: b[i:vEnd:vEnd]})
		i = sp(vEnd)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = sp(i + 1)
		case '}':
			return o.done(b, sp(i+1), compact)
		default:
			return false
		}
	}
}

// done finishes scanObject at i, which must be b's end.
func (o *object) done(b []byte, i int, compact bool) bool {
	if i != len(b) {
		return false
	}
	o.src, o.compact = b, compact
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString reads the string that starts at b[i] (a '"') and returns the
// index after its closing quote, and whether it has an escape. ok is false
// for an invalid string and for one with a \u escape (left to the decoder,
// which checks surrogates).
func scanString(b []byte, i int) (end int, esc, ok bool) {
	i++
	for i < len(b) {
		// Eight plain bytes at a time: no quote, backslash, control byte or
		// byte of a multi-byte character among them.
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				esc = true
				i += 2
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				return 0, false, false
			}
			i += n
		}
	}
	return 0, false, false
}

// scanValue validates the JSON value that starts at b[i] and returns the
// index after it.
func scanValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; c {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case 't':
		return literalEnd(b, i, "true")
	case 'f':
		return literalEnd(b, i, "false")
	case 'n':
		return literalEnd(b, i, "null")
	case '{':
		return scanNested(b, i, depth)
	case '[':
		return scanArray(b, i, depth)
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return scanNumber(b, i)
		}
	}
	return 0, false
}

// literalEnd checks that b holds lit at i.
func literalEnd(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// scanNumber reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	return i, true
}

// scanArray validates the array that starts at b[i].
func scanArray(b []byte, i, depth int) (int, bool) {
	if depth >= maxFastDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := scanValue(b, i, depth+1)
		if !ok {
			return 0, false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// scanNested validates the object that starts at b[i], inside the value:
// its names must be unique too, which it checks for small objects whose
// names have no escapes (others go to the decoder).
func scanNested(b []byte, i, depth int) (int, bool) {
	if depth >= maxFastDepth {
		return 0, false
	}
	var names [16][]byte
	n := 0
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, esc, ok := scanString(b, i)
		if !ok || esc || n == len(names) {
			return 0, false
		}
		name := b[i:end]
		for _, other := range names[:n] {
			if string(other) == string(name) {
				return 0, false
			}
		}
		names[n] = name
		n++
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		end, ok = scanValue(b, skipSpace(b, i+1), depth+1)
		if !ok {
			return 0, false
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the eight bytes in x is a '"', a '\\', a
// control byte (< 0x20) or a byte >= 0x80.
func plain8(x uint64) bool {
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	special := (x - ones*0x20) | (quote-ones)&^quote | (backslash-ones)&^backslash
	return (special|x)&highs == 0
}
