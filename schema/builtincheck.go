package schema

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// This file checks a document against the built-in schema without CUE,
// when the repository has no policy: a cold start of 10,000 entities spent
// a fifth of its CPU building and unifying documents that were valid. The
// check only ever says yes: a document it is not sure of (anything but the
// plain literals the built-in #SSL accepts, any doubt about a value) goes
// to CUE, which finds and words the problems as before. Yes means CUE
// would find nothing: the rules below are schemas/ssl.cue's, and
// TestBuiltinCheckAgreesWithCUE and FuzzBuiltinCheck hold them to it.

// builtinCheckOn turns the check on; tests turn it off to compare with CUE.
var builtinCheckOn = true

// builtinName is #SSL's name!: =~"^[a-zA-Z0-9._-]{1,256}$".
var builtinName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,256}$`)

// validBuiltin reports whether x, decoded by decodeAST as raw, is valid
// under the built-in #SSL alone. The caller has found no unknown field.
func validBuiltin(x *ast.StructLit, raw rawSSL) bool {
	seen, ok := plainFields(x)
	if !ok {
		return false
	}
	if !seen["name"] || !seen["cert"] || !seen["key"] || !builtinName.MatchString(raw.Name) || !validUTF8(raw) {
		return false
	}
	if raw.Cert == "" || raw.Key == "" {
		return false // #PEMOrReference: string & !=""
	}
	switch {
	case raw.Type == "client":
		if seen["snis"] {
			return false
		}
	case raw.Type == "server" || !seen["type"]:
		if len(raw.SNIs) == 0 {
			return false
		}
	default:
		return false
	}
	for _, l := range [][]string{raw.SNIs, raw.Certs, raw.Keys} {
		for _, s := range l {
			if s == "" {
				return false
			}
		}
	}
	for _, p := range raw.Protocols {
		if p != "TLSv1.2" && p != "TLSv1.3" {
			return false
		}
	}
	if seen["client"] {
		c := raw.Client
		if c == nil || c.CA == "" || (c.Depth != nil && *c.Depth < 0) {
			return false
		}
		if !hasField(x, "client", "ca") {
			return false
		}
	}
	return true
}

// plainField reports whether f is a regular field, as the YAML and JSON
// decoders write one: a plain or quoted label (not hidden, not a
// definition, not a pattern), no constraint marker, alias or attribute.
func plainField(f *ast.Field) bool {
	if f.Constraint != token.ILLEGAL || f.Alias != nil || len(f.Attrs) > 0 {
		return false
	}
	switch l := f.Label.(type) {
	case *ast.Ident:
		return !strings.HasPrefix(l.Name, "_") && !strings.HasPrefix(l.Name, "#")
	case *ast.BasicLit:
		return l.Kind == token.STRING && plainString(l)
	}
	return false
}

// plainStrings reports whether every string literal in e is a valid UTF-8
// double-quoted string (not bytes) and every struct's fields are plain;
// other literals are left to decodeAST, which refuses what #SSL does not
// type.
func plainStrings(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return x.Kind != token.STRING || plainString(x)
	case *ast.ListLit:
		for _, el := range x.Elts {
			if !plainStrings(el) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		_, ok := plainFields(x)
		return ok
	}
	return false
}

// plainFields reports whether x's fields are all plain, each named once,
// their values plainStrings, and returns the names it saw.
func plainFields(x *ast.StructLit) (map[string]bool, bool) {
	seen := make(map[string]bool, len(x.Elts))
	for _, decl := range x.Elts {
		f, ok := decl.(*ast.Field)
		if !ok || !plainField(f) {
			return nil, false
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil || seen[name] {
			return nil, false
		}
		seen[name] = true
		if !plainStrings(f.Value) {
			return nil, false
		}
	}
	return seen, true
}

// plainString reports whether lit is a double-quoted string literal: a
// bytes literal, single-quoted, is not a string to CUE. (Its value, which
// decodeAST unquotes, is checked in validBuiltin.)
func plainString(lit *ast.BasicLit) bool {
	return strings.HasPrefix(strings.TrimLeft(lit.Value, "#"), `"`)
}

// validUTF8 reports whether every string of raw is valid UTF-8.
func validUTF8(raw rawSSL) bool {
	strs := []string{raw.Name, raw.Type, raw.Desc, raw.Cert, raw.Key}
	strs = append(strs, raw.SNIs...)
	strs = append(strs, raw.Certs...)
	strs = append(strs, raw.Keys...)
	strs = append(strs, raw.Protocols...)
	for k, v := range raw.Labels {
		strs = append(strs, k, v)
	}
	if raw.Client != nil {
		strs = append(strs, raw.Client.CA)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// hasField reports whether the struct at field outer of x has a field
// inner.
func hasField(x *ast.StructLit, outer, inner string) bool {
	f := lookupField(x, outer)
	if f == nil {
		return false
	}
	s, ok := f.Value.(*ast.StructLit)
	return ok && lookupField(s, inner) != nil
}
