package config

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Format renders diagnostics for people, in the layout of hcl's diagnostic
// text writer without color, plus the column and a caret line under the
// subject:
//
//	Error: Unsupported argument
//
//	  on demo.hcl:3:3, in pipeline "demo":
//	     3:   deliver = "exactly-once"
//	          ^^^^^^^
//
//	An argument named "deliver" is not expected here. Did you mean "delivery"? ...
//
// files maps file names to their sources (File.Files); a file missing from it
// is rendered without a snippet.
func Format(diags hcl.Diagnostics, files map[string]*hcl.File) string {
	var b strings.Builder
	for _, d := range diags {
		writeDiag(&b, d, files)
	}
	return b.String()
}

// Format renders diags with this file's source; see the package function
// Format. Secret literals written in the file are masked by Load.
func (f *File) Format(diags hcl.Diagnostics) string { return Format(diags, f.files) }

// Files returns the sources Format needs, by file name. After Load, secret
// literals in them are masked with '*'. Do not modify the map.
func (f *File) Files() map[string]*hcl.File { return f.files }

// Err returns nil when diags has no errors, otherwise an *Error whose text is
// f.Format(diags).
func (f *File) Err(diags hcl.Diagnostics) error {
	if !diags.HasErrors() {
		return nil
	}
	return &Error{Diags: diags, files: f.files}
}

// Error is a failed Parse or Load as a Go error.
type Error struct {
	// Diags are the diagnostics, warnings included.
	Diags hcl.Diagnostics
	files map[string]*hcl.File
}

// Error returns Format's text for the diagnostics, without the final newlines.
func (e *Error) Error() string { return strings.TrimRight(Format(e.Diags, e.files), "\n") }

func writeDiag(b *strings.Builder, d *hcl.Diagnostic, files map[string]*hcl.File) {
	severity := "Error"
	if d.Severity == hcl.DiagWarning {
		severity = "Warning"
	}
	fmt.Fprintf(b, "%s: %s\n\n", severity, d.Summary)
	if s := d.Subject; s != nil {
		fmt.Fprintf(b, "  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
		f := files[s.Filename]
		if f == nil || f.Bytes == nil {
			b.WriteString("\n\n")
		} else {
			if nav, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if c := nav.ContextString(s.Start.Byte); c != "" {
					b.WriteString(", in " + c)
				}
			}
			b.WriteString(":\n")
			writeSnippet(b, f.Bytes, *s, d.Context)
			b.WriteString("\n")
		}
	}
	if d.Detail != "" {
		b.WriteString(d.Detail + "\n\n")
	}
}

// writeSnippet prints the lines covering subject and context with carets under
// the subject.
func writeSnippet(b *strings.Builder, src []byte, subject hcl.Range, context *hcl.Range) {
	from, to := subject.Start.Byte, subject.End.Byte
	if context != nil && context.Filename == subject.Filename {
		from, to = min(from, context.Start.Byte), max(to, context.End.Byte)
	}
	from, to = clamp(from, len(src)), clamp(to, len(src))
	hs, he := clamp(subject.Start.Byte, len(src)), clamp(subject.End.Byte, len(src))
	line := 1 + bytes.Count(src[:from], []byte("\n"))
	start := bytes.LastIndexByte(src[:from], '\n') + 1
	for {
		end := bytes.IndexByte(src[start:], '\n')
		if end < 0 {
			end = len(src)
		} else {
			end += start
		}
		text := strings.TrimRight(string(src[start:end]), "\r")
		fmt.Fprintf(b, "  %4d: %s\n", line, text)
		lo, hi := max(hs, start), min(he, end)
		if lo < hi || (hs == he && hs >= start && hs <= end) {
			var c strings.Builder
			for _, r := range string(src[start:lo]) {
				if r == '\t' {
					c.WriteByte('\t')
				} else {
					c.WriteByte(' ')
				}
			}
			n := max(1, utf8.RuneCount(src[lo:hi]))
			fmt.Fprintf(b, "        %s%s\n", c.String(), strings.Repeat("^", n))
		}
		if to <= end+1 || end >= len(src) {
			return
		}
		start, line = end+1, line+1
	}
}

func clamp(i, n int) int { return max(0, min(i, n)) }
