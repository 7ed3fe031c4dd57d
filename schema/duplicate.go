package schema

import (
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
)

// This file refuses duplicate keys. CUE unifies the copies of a key while
// a decoder keeps only one of them, so a file with `client:` twice would be
// validated as one entity and served as another (issue 18).

// dropDuplicateKeys reports every key of a mapping in x that repeats an
// earlier key of the same mapping, at the repeated key and naming the
// first, and removes the repetition so that the rest of the document is
// checked as the first copy alone. path is x's field path as written.
func dropDuplicateKeys(x ast.Expr, path string, errs *ErrorList) {
	switch x := x.(type) {
	case *ast.StructLit:
		first := map[string]Pos{}
		kept := x.Elts[:0]
		for _, decl := range x.Elts {
			f, ok := decl.(*ast.Field)
			if !ok {
				kept = append(kept, decl)
				continue
			}
			name, _, err := ast.LabelName(f.Label)
			if err != nil {
				kept = append(kept, decl)
				continue
			}
			p := joinPath(path, name)
			pos := labelPos(f)
			if at, dup := first[name]; dup {
				// The same file: its line and column, which read alike
				// whatever path the report shows the file by.
				errs.add(pos, p, "duplicate key (first at line %d, column %d)", at.Line, at.Col)
				continue
			}
			first[name] = pos
			kept = append(kept, decl)
			dropDuplicateKeys(f.Value, p, errs)
		}
		clear(x.Elts[len(kept):])
		x.Elts = kept
	case *ast.ListLit:
		for i, e := range x.Elts {
			dropDuplicateKeys(e, path+"["+strconv.Itoa(i)+"]", errs)
		}
	}
}

// labelPos returns where a field's key is written.
func labelPos(f *ast.Field) Pos {
	pos := cuePos(f.Label.Pos())
	if pos.Line == 0 {
		pos = cuePos(exprPos(f.Value))
	}
	if strings.HasSuffix(pos.File, ".json") && pos.Col > 1 {
		pos.Col-- // CUE's JSON decoder places a key after its opening quote
	}
	return pos
}
