package schema

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// This file turns YAML and JSON files into entity documents, checks them
// against the schema and decodes them.

// splitDocs parses a YAML or JSON file into entity documents. Problems that
// make a document unreadable are appended to errs; the other documents are
// still returned.
func splitDocs(file string, src []byte, errs *ErrorList) []*doc {
	var next func() (ast.Expr, error)
	if strings.HasSuffix(file, ".json") {
		dec := cuejson.NewDecoder(nil, file, bytes.NewReader(src))
		next = dec.Extract
	} else {
		dec := cueyaml.NewDecoder(file, bytes.NewReader(src))
		next = dec.Extract
	}
	var docs []*doc
	for {
		expr, err := next()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			appendParseError(errs, file, src, err)
			return docs
		}
		dropDuplicateKeys(expr, "", errs)
		switch x := expr.(type) {
		case *ast.StructLit:
			if ssls := lookupField(x, "ssls"); ssls != nil {
				docs = append(docs, adcDocs(file, ssls, errs)...)
				continue
			}
			docs = append(docs, newDoc(file, x, nil))
		case *ast.BinaryExpr:
			continue // an empty document: *null | _
		case *ast.BasicLit:
			if x.Kind == token.NULL {
				continue // an empty document
			}
			errs.add(cuePos(x.Pos()), "", "document is a %s, want an entity (a mapping) or an ssls: list", exprKind(x))
		default:
			errs.add(cuePos(expr.Pos()), "", "document is a %s, want an entity (a mapping) or an ssls: list", exprKind(expr))
		}
	}
}

// check validates d against the schema and decodes it. Unknown fields are
// found here rather than by CUE, which reports them only once every other
// error is fixed. The caller holds s's lane.
func (s *cueSchema) check(d *doc, errs *ErrorList) (rawSSL, bool) {
	n := len(*errs)
	s.unknownFields(d, d.expr, "", s.ssl, errs)
	// A document that the built-in schema alone accepts, as validBuiltin
	// can tell without CUE, needs no CUE value; any other is built and
	// unified.
	var plain *rawSSL
	if s.builtin && builtinCheckOn && len(*errs) == n {
		if raw, ok := decodeAST(d.expr); ok && validBuiltin(d.expr, raw) {
			plain = &raw
		}
	}
	var v, u cue.Value
	if plain == nil {
		v = s.ctx.BuildExpr(d.expr)
		if err := v.Err(); err != nil {
			appendCUEErrors(errs, err, d)
			return rawSSL{}, false
		}
		u = s.ssl.Unify(v)
		if err := u.Validate(cue.Concrete(true)); err != nil {
			// CUE leaves out incomplete values (a field a policy requires)
			// once it has found a conflict; validating field by field finds
			// them too. appendCUEErrors drops the duplicates.
			all := cueerrors.Promote(err, "")
			if it, ierr := u.Fields(); ierr == nil {
				for it.Next() {
					if ferr := it.Value().Validate(cue.Concrete(true)); ferr != nil {
						all = cueerrors.Append(all, cueerrors.Promote(ferr, ""))
					}
				}
			}
			appendCUEErrors(errs, all, d)
		}
	}
	if d.rename == nil && !d.bad["name"] {
		if f := lookupField(d.expr, "name"); f != nil {
			if lit, ok := f.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if name, err := literal.Unquote(lit.Value); err == nil && !nativeName.MatchString(name) {
					errs.add(cuePos(f.Value.Pos()), "name", "invalid name %s: %s", lit.Value, nativeNameRule)
					d.markBad("name")
				}
			}
		}
	}
	if len(*errs) > n {
		if plain != nil {
			v = s.ctx.BuildExpr(d.expr) // valid to the schema: CUE decodes it
		}
		var loose map[string]any
		if v.Decode(&loose) == nil {
			d.loose = loose
		}
		return rawSSL{}, false
	}
	if plain != nil {
		return *plain, true
	}
	// Decoding the validated document from its syntax is several times
	// cheaper than Value.Decode; CUE decodes what the syntax walk does not
	// know.
	if raw, ok := decodeAST(d.expr); ok {
		return raw, true
	}
	var raw rawSSL
	if err := u.Decode(&raw); err != nil {
		appendCUEErrors(errs, err, d)
		return rawSSL{}, false
	}
	return raw, true
}

// decodeAST reads a document that passed the schema from its syntax. It
// reports false on anything but plain literals, lists and mappings.
func decodeAST(x *ast.StructLit) (raw rawSSL, ok bool) {
	str := func(e ast.Expr) (string, bool) {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return "", false
		}
		s, err := literal.Unquote(lit.Value)
		return s, err == nil
	}
	strs := func(e ast.Expr) ([]string, bool) {
		l, ok := e.(*ast.ListLit)
		if !ok {
			return nil, false
		}
		out := make([]string, 0, len(l.Elts))
		for _, el := range l.Elts {
			s, ok := str(el)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	for _, decl := range x.Elts {
		f, isField := decl.(*ast.Field)
		if !isField {
			return raw, false
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil {
			return raw, false
		}
		ok := true
		switch name {
		case "name":
			raw.Name, ok = str(f.Value)
		case "type":
			raw.Type, ok = str(f.Value)
		case "desc":
			raw.Desc, ok = str(f.Value)
		case "cert":
			raw.Cert, ok = str(f.Value)
		case "key":
			raw.Key, ok = str(f.Value)
		case "snis":
			raw.SNIs, ok = strs(f.Value)
		case "certs":
			raw.Certs, ok = strs(f.Value)
		case "keys":
			raw.Keys, ok = strs(f.Value)
		case "ssl_protocols":
			raw.Protocols, ok = strs(f.Value)
		case "labels":
			s, isStruct := f.Value.(*ast.StructLit)
			if !isStruct {
				return raw, false
			}
			raw.Labels = make(map[string]string, len(s.Elts))
			for _, ld := range s.Elts {
				lf, isField := ld.(*ast.Field)
				if !isField {
					return raw, false
				}
				k, _, err := ast.LabelName(lf.Label)
				v, isStr := str(lf.Value)
				if err != nil || !isStr {
					return raw, false
				}
				raw.Labels[k] = v
			}
		case "client":
			s, isStruct := f.Value.(*ast.StructLit)
			if !isStruct {
				return raw, false
			}
			raw.Client = &struct {
				CA    string `json:"ca"`
				Depth *int   `json:"depth"`
			}{}
			for _, cd := range s.Elts {
				cf, isField := cd.(*ast.Field)
				if !isField {
					return raw, false
				}
				switch k, _, _ := ast.LabelName(cf.Label); k {
				case "ca":
					raw.Client.CA, ok = str(cf.Value)
				case "depth":
					lit, isLit := cf.Value.(*ast.BasicLit)
					if !isLit || lit.Kind != token.INT {
						return raw, false
					}
					n, err := strconv.ParseInt(lit.Value, 0, 32)
					if err != nil {
						return raw, false
					}
					depth := int(n)
					raw.Client.Depth = &depth
				default:
					return raw, false // a field a policy added: let CUE decode
				}
				if !ok {
					return raw, false
				}
			}
		default:
			return raw, false
		}
		if !ok {
			return raw, false
		}
	}
	return raw, true
}

// A name written as `name:` follows the native rule; an ADC or APISIX id
// follows ADC's (`^[a-zA-Z0-9-_.]+$`, up to 256 characters), which the
// built-in schema checks for both. Neither is normalised: the name as
// written is the entity's identity.
var nativeName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,98}[a-z0-9])?$`)

const (
	nativeNameRule = "want 1 to 100 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
	adcNameRule    = "want 1 to 256 letters, digits, '.', '_' or '-' (ADC's rule for ids)"
)
