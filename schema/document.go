package schema

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// This file holds an entity document ready for CUE and the index of its
// fields' positions, which every diagnostic goes through.

// A doc is one entity document, in the native form, ready for CUE: ADC and
// APISIX items are rewritten into it, keeping the positions of their
// values.
type doc struct {
	expr *ast.StructLit
	// placed is what an entity keeps of its document: where each field is
	// written.
	placed
	kinds map[string]string // native field path -> kind of its value, as exprKind names it
	// bad holds the top-level fields that failed the schema, and loose
	// the document as plain data when it did: the checks in Go still run
	// on the other fields, so one round of review finds every problem.
	bad   map[string]bool
	loose map[string]any
	// disabled is APISIX's status: 0.
	disabled bool
	// allowed lists the top-level fields as written in this form, for
	// unknown-field hints; nil is the native form, whose schema says.
	allowed []string
}

// placed locates the fields of a document.
type placed struct {
	pos   Pos
	index map[string]Pos // native field path -> position of its value
	// fields is index in compact form once the document is validated
	// (see release); index is then nil.
	fields fieldIndex
	// rename maps a native field path to the path as written in the file
	// (they differ for ADC and APISIX items); nil is the identity.
	rename *itemRename
}

// markBad records that the field at a native path failed the schema.
func (d *doc) markBad(path string) {
	if d.bad == nil {
		d.bad = map[string]bool{}
	}
	d.bad[path] = true
}

// where returns the position and the written path of a native field path:
// the position of the field, or of its nearest parent that is written, or
// of the document.
func (d *placed) where(field string) (Pos, string) {
	shown := field
	if d.rename != nil {
		shown = d.rename.path(field)
	}
	for p := field; ; {
		if pos, ok := d.lookup(p); ok && pos.File != "" {
			return pos, shown
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return d.pos, shown
		}
		p = p[:i]
	}
}

func (d *placed) lookup(path string) (Pos, bool) {
	if d.index == nil {
		return d.fields.lookup(path, d.pos.File)
	}
	pos, ok := d.index[path]
	return pos, ok
}

// release drops what only validation needs (the syntax tree, the kinds of
// values) and compacts the field index: the entities of a validated file
// live as long as the file is unchanged, and a map of positions per entity
// was most of the pointers the collector scanned in a large repository.
// An entity keeps the document's placement only (see placement).
func (d *doc) release() {
	d.expr, d.kinds = nil, nil
	if f, ok := compactIndex(d.index, d.pos.File); ok {
		d.fields, d.index = f, nil
	}
}

// fieldIndex is a document's field positions in one allocation: each
// path, ended by a NUL, followed by its line and column (4 bytes each,
// little-endian). Every position is in the document's file (or unknown:
// line -1). It holds no pointer but the string's: an entity keeps it for
// as long as its file is unchanged.
type fieldIndex struct {
	s string
}

// compactIndex returns the compact form of index, or false when a position
// is in another file than file or does not fit.
func compactIndex(index map[string]Pos, file string) (fieldIndex, bool) {
	n := 0
	for p := range index {
		n += len(p) + 9
	}
	var b strings.Builder // its String does not copy
	b.Grow(n)
	var at [8]byte
	for p, pos := range index {
		if strings.IndexByte(p, 0) >= 0 || pos.File != "" && pos.File != file ||
			pos.Line < 0 || pos.Col < 0 || pos.Line > math.MaxInt32 || pos.Col > math.MaxInt32 {
			return fieldIndex{}, false
		}
		line := int32(pos.Line)
		if pos.File == "" {
			line = -1 // written, position unknown
		}
		b.WriteString(p)
		b.WriteByte(0)
		binary.LittleEndian.PutUint32(at[:4], uint32(line))
		binary.LittleEndian.PutUint32(at[4:], uint32(pos.Col))
		b.Write(at[:])
	}
	return fieldIndex{s: b.String()}, true
}

func (f fieldIndex) lookup(path, file string) (Pos, bool) {
	for rest := f.s; len(rest) > 0; {
		i := strings.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+9 {
			return Pos{}, false // not reached: compactIndex wrote it
		}
		p, at := rest[:i], rest[i+1:i+9]
		rest = rest[i+9:]
		if p != path {
			continue
		}
		line := int32(le32(at[:4]))
		if line < 0 {
			return Pos{}, true
		}
		return Pos{File: file, Line: int(line), Col: int(int32(le32(at[4:])))}, true
	}
	return Pos{}, false
}

// le32 decodes 4 little-endian bytes.
func le32(s string) uint32 {
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func newDoc(file string, x *ast.StructLit, rename *itemRename) *doc {
	d := &doc{expr: x, placed: placed{pos: cuePos(x.Pos()), index: map[string]Pos{}, rename: rename}, kinds: map[string]string{}}
	if d.pos.File == "" {
		d.pos = Pos{File: file, Line: 1, Col: 1}
	}
	indexExpr(d, "", x)
	return d
}

// indexExpr records the position of every value below x by field path.
func indexExpr(d *doc, path string, x ast.Expr) {
	switch x := x.(type) {
	case *ast.StructLit:
		for _, decl := range x.Elts {
			f, ok := decl.(*ast.Field)
			if !ok {
				continue
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil {
				continue
			}
			p := joinPath(path, name)
			if _, dup := d.index[p]; !dup {
				d.index[p] = cuePos(f.Value.Pos())
				d.kinds[p] = exprKind(f.Value)
			}
			indexExpr(d, p, f.Value)
		}
	case *ast.ListLit:
		for i, e := range x.Elts {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.index[p] = cuePos(e.Pos())
			d.kinds[p] = exprKind(e)
			indexExpr(d, p, e)
		}
	}
}

// joinPath appends a field name to a path, quoting it unless it is a plain
// identifier.
func joinPath(path, name string) string {
	if !isPlainLabel(name) {
		name = "[" + strconv.Quote(name) + "]"
		return path + name
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func isPlainLabel(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-'):
		default:
			return false
		}
	}
	return true
}

func lookupField(x *ast.StructLit, name string) *ast.Field {
	for _, decl := range x.Elts {
		if f, ok := decl.(*ast.Field); ok {
			if n, _, err := ast.LabelName(f.Label); err == nil && n == name {
				return f
			}
		}
	}
	return nil
}

// exprPos returns where x starts; a YAML block mapping has no brace, so
// that is where its first field starts.
func exprPos(x ast.Expr) token.Pos {
	if p := x.Pos(); p.IsValid() {
		return p
	}
	if s, ok := x.(*ast.StructLit); ok && len(s.Elts) > 0 {
		return s.Elts[0].Pos()
	}
	return token.NoPos
}

// missingSuffix is never a real path: it keeps a fallback position for an
// absent field in the index without shadowing a written one.
const missingSuffix = "\x00"

func exprKind(x ast.Expr) string {
	switch x := x.(type) {
	case *ast.ListLit:
		return "list"
	case *ast.StructLit:
		return "mapping"
	case *ast.BasicLit:
		switch x.Kind {
		case token.STRING:
			return "string"
		case token.INT, token.FLOAT:
			return "number"
		case token.TRUE, token.FALSE:
			return "boolean"
		case token.NULL:
			return "null"
		}
	case *ast.Ident:
		if x.Name == "true" || x.Name == "false" {
			return "boolean"
		}
	}
	return "value"
}
