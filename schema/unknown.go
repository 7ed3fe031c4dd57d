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
			names := allowedFields(def)
			if path == "" && d.allowed != nil {
				names = d.allowed
			}
			if why, ok := unsupported[p]; ok {
				errs.add(pos, shown, "not supported by certops: %s", why)
			} else {
				errs.add(pos, shown, "unknown field%s", fieldHint(name, names))
			}
			d.markBad(p)
			continue
		}
		if sub, ok := f.Value.(*ast.StructLit); ok && name == "client" {
			s.unknownFields(d, sub, p, def.LookupPath(cue.MakePath(cue.Str(name).Optional())), errs)
		}
	}
}

// unsupported holds the APISIX and ADC fields certops knows and does not
// implement, by native path, with the reason (issue 18).
var unsupported = map[string]string{
	"client.skip_mtls_uri_regex": "the gateway checks client certificates in the TLS handshake, before any request URI is known, so it cannot skip mTLS by URI",
	"ocsp_stapling":              "the gateway does not staple OCSP responses",
	"gm":                         "Go's crypto/tls has no ShangMi (SM2, SM3, SM4) cipher suites",
}

// allowedFields lists the fields that def allows.
func allowedFields(def cue.Value) []string {
	it, err := def.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	var names []string
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	return names
}

// fieldHint suggests, for an unknown-field error, the allowed field name
// was probably meant to be, or lists them all.
func fieldHint(name string, names []string) string {
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
