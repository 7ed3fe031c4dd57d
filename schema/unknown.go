package schema

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
)

// This file finds unknown fields, with a hint of the fields allowed.

func (s *cueSchema) unknownFields(d *doc, x *ast.StructLit, path string, def cue.Value, errs *ErrorList) {
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
		if !def.Allows(cue.Str(name)) {
			pos, shown := d.where(p)
			if lp := labelPos(f); lp.Line > 0 && d.rename == nil {
				pos = lp
			}
			errs.add(pos, shown, "unknown field%s", fieldHint(name, def))
			d.markBad(p)
			continue
		}
		if sub, ok := f.Value.(*ast.StructLit); ok && name == "client" {
			s.unknownFields(d, sub, p, def.LookupPath(cue.MakePath(cue.Str(name).Optional())), errs)
		}
	}
}

// fieldHint lists the fields that def allows, for an unknown-field error.
func fieldHint(name string, def cue.Value) string {
	it, err := def.Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	if len(names) == 0 {
		return ""
	}
	for _, n := range names {
		if strings.EqualFold(n, name) || strings.EqualFold(strings.ReplaceAll(n, "_", ""), strings.ReplaceAll(name, "_", "")) ||
			strings.HasPrefix(n, name) || strings.HasSuffix(name, "_"+n) {
			return fmt.Sprintf(" (did you mean %s?)", n)
		}
	}
	return " (want one of " + strings.Join(names, ", ") + ")"
}
