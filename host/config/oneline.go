package config

import (
	"os"
	"sort"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// HCL v2 allows one argument in a single-line block; connectd's documented
// form also accepts several, separated by commas:
//
//	sink "file" { dir = "out", mode = "batch" }
//
// oneLine rewrites such blocks into multi-line ones before parsing: a comma
// at block level becomes a newline (same length), and a newline is inserted
// after the opening and before the closing brace when missing. It returns the
// new source and, sorted, the offsets in the new source of inserted bytes, so
// that positions can be mapped back to the file as written.
func oneLine(src []byte, filename string) ([]byte, []int) {
	toks, diags := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return src, nil // let the parser report it
	}
	type open struct {
		block  bool
		commas bool
		tok    int
	}
	var stack []open
	var commas []int           // byte offsets of block-level commas
	insertAt := map[int]bool{} // original offsets before which a newline goes
	prev := hclsyntax.TokenNil
	for i, t := range toks {
		switch t.Type {
		case hclsyntax.TokenOBrace:
			block := (prev == hclsyntax.TokenIdent || prev == hclsyntax.TokenCQuote) && (len(stack) == 0 || stack[len(stack)-1].block)
			stack = append(stack, open{block: block, tok: i})
		case hclsyntax.TokenOParen, hclsyntax.TokenOBrack, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			stack = append(stack, open{tok: i})
		case hclsyntax.TokenCBrace, hclsyntax.TokenCParen, hclsyntax.TokenCBrack, hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 0 {
				o := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if o.block && o.commas {
					if toks[o.tok+1].Type != hclsyntax.TokenNewline {
						insertAt[toks[o.tok].Range.End.Byte] = true
					}
					if prev != hclsyntax.TokenNewline {
						insertAt[t.Range.Start.Byte] = true
					}
				}
			}
		case hclsyntax.TokenComma:
			if len(stack) > 0 && stack[len(stack)-1].block {
				stack[len(stack)-1].commas = true
				commas = append(commas, t.Range.Start.Byte)
			}
		}
		if t.Type != hclsyntax.TokenComment {
			prev = t.Type
		}
	}
	if len(commas) == 0 {
		return src, nil
	}
	out := make([]byte, 0, len(src)+len(insertAt))
	var inserted []int
	isComma := map[int]bool{}
	for _, c := range commas {
		isComma[c] = true
	}
	for i := 0; i <= len(src); i++ {
		if insertAt[i] {
			inserted = append(inserted, len(out))
			out = append(out, '\n')
		}
		if i == len(src) {
			break
		}
		if isComma[i] {
			out = append(out, '\n')
		} else {
			out = append(out, src[i])
		}
	}
	return out, inserted
}

// parseFile parses path with the one-line block rewrite. The returned parser
// files hold the source as written, and remap turns a position in the
// rewritten source into one in the source as written; the diagnostics are
// not remapped yet (File.fix does that once for all of them).
func parseFile(path string) (*hcl.File, map[string]*hcl.File, hcl.Diagnostics, func(hcl.Pos) hcl.Pos) {
	ident := func(p hcl.Pos) hcl.Pos { return p }
	src, err := os.ReadFile(path)
	if err != nil {
		// The operating system's reason (`open x.hcl: no such file or
		// directory`), which hclparse's own diagnostic leaves out.
		return nil, map[string]*hcl.File{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read file",
			Detail:   err.Error(),
		}}, ident
	}
	out, inserted := oneLine(src, path)
	parser := hclparse.NewParser()
	hf, diags := parser.ParseHCL(out, path)
	files := parser.Files()
	if len(inserted) == 0 {
		return hf, files, diags, ident
	}
	if f := files[path]; f != nil {
		f.Bytes = src
	}
	remap := func(p hcl.Pos) hcl.Pos {
		n := sort.SearchInts(inserted, p.Byte+1) // inserted bytes at or before p.Byte
		b := p.Byte - n
		if b < 0 {
			b = 0
		}
		if b > len(src) {
			b = len(src)
		}
		line, col := 1, 1
		for i := 0; i < b; {
			r, size := utf8.DecodeRune(src[i:])
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i += size
		}
		return hcl.Pos{Line: line, Column: col, Byte: b}
	}
	return hf, files, diags, remap
}

// remapDiags maps the positions of diags with remap.
func remapDiags(diags hcl.Diagnostics, remap func(hcl.Pos) hcl.Pos) hcl.Diagnostics {
	fix := func(r *hcl.Range) *hcl.Range {
		if r == nil {
			return nil
		}
		c := *r
		c.Start, c.End = remap(r.Start), remap(r.End)
		return &c
	}
	for _, d := range diags {
		d.Subject = fix(d.Subject)
		d.Context = fix(d.Context)
	}
	return diags
}

// fix maps diagnostics from the rewritten source back to the file as written.
func (f *File) fix(diags hcl.Diagnostics) hcl.Diagnostics {
	if f.remap == nil {
		return diags
	}
	return remapDiags(diags, f.remap)
}
