package schema

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// This file rewrites the ADC and APISIX `ssls:` forms (DESIGN.md 2.3) into
// the native form, keeping the positions of their values.

// adcDocs reads the items of an ADC or APISIX `ssls:` list (DESIGN.md 2.3)
// as native entity documents. Other top-level keys of the file (routes,
// services, ...) belong to the gateway's other objects and are skipped.
func adcDocs(file string, ssls *ast.Field, errs *ErrorList) []*doc {
	list, ok := ssls.Value.(*ast.ListLit)
	if !ok {
		errs.add(cuePos(ssls.Value.Pos()), "ssls", "want a list of SSL objects, got a %s", exprKind(ssls.Value))
		return nil
	}
	var docs []*doc
	for i, e := range list.Elts {
		item, ok := e.(*ast.StructLit)
		if !ok {
			errs.add(cuePos(e.Pos()), "ssls["+strconv.Itoa(i)+"]", "want an SSL object (a mapping), got a %s", exprKind(e))
			continue
		}
		docs = append(docs, adcDoc(file, i, item, errs))
	}
	return docs
}

// adcDoc rewrites one ADC item (certificates: [{certificate, key}]) or
// APISIX item (cert, key, certs, keys, sni), ssls[i], into the native form.
func adcDoc(file string, i int, item *ast.StructLit, errs *ErrorList) *doc {
	prefix := "ssls[" + strconv.Itoa(i) + "]"
	out := &ast.StructLit{Lbrace: item.Lbrace}
	ast.SetPos(out, item.Pos())
	add := func(name string, v ast.Expr) {
		out.Elts = append(out.Elts, &ast.Field{Label: ast.NewIdent(name), Value: v})
	}
	renames := map[string]string{} // native top-level field -> written
	var certificates *ast.ListLit
	var certificatesField ast.Expr
	var hasName, disabled bool
	var snis ast.Expr
	var typ string
	for _, decl := range item.Elts {
		f, ok := decl.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil {
			continue
		}
		switch name {
		case "id":
			v := f.Value
			if lit, ok := v.(*ast.BasicLit); ok && (lit.Kind == token.INT || lit.Kind == token.FLOAT) {
				// APISIX ids are often numbers; names are strings.
				s := ast.NewString(lit.Value)
				ast.SetPos(s, lit.Pos())
				v = s
			}
			add("name", v)
			renames["name"] = "id"
			hasName = true
		case "sni":
			l := ast.NewList(f.Value)
			ast.SetPos(l, f.Value.Pos())
			add("snis", l)
			snis = l
			renames["snis"] = "sni"
		case "certificates":
			certificatesField = f.Value
			if l, ok := f.Value.(*ast.ListLit); ok {
				certificates = l
				for j, c := range l.Elts {
					s, ok := c.(*ast.StructLit)
					if !ok {
						continue
					}
					for _, cd := range s.Elts {
						cf, ok := cd.(*ast.Field)
						if !ok {
							continue
						}
						cn, _, _ := ast.LabelName(cf.Label)
						switch {
						case cn == "certificate" && j == 0:
							add("cert", cf.Value)
						case cn == "key" && j == 0:
							add("key", cf.Value)
						case cn != "certificate" && cn != "key":
							errs.add(cuePos(cf.Label.Pos()), fmt.Sprintf("%s.certificates[%d].%s", prefix, j, cn), "unknown field (want certificate and key)")
						}
					}
				}
			}
		case "snis":
			snis = f.Value
			add(name, f.Value)
		case "type":
			if lit, ok := f.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				typ, _ = literal.Unquote(lit.Value)
			}
			add(name, f.Value)
		case "status":
			// APISIX's status: 1 (or absent) serves the SSL, 0 keeps it
			// in the repository without serving it.
			lit, ok := f.Value.(*ast.BasicLit)
			switch {
			case ok && lit.Kind == token.INT && lit.Value == "0":
				disabled = true
			case ok && lit.Kind == token.INT && lit.Value == "1":
			default:
				errs.add(cuePos(f.Value.Pos()), prefix+".status", "want 1 (enabled) or 0 (disabled), got %s", describeLiteral(f.Value))
			}
		case "create_time", "update_time", "validity_start", "validity_end":
			// APISIX bookkeeping, written by its Admin API: not part of
			// the entity.
		default:
			add(name, f.Value)
		}
	}
	if certificatesField != nil {
		if certificates == nil {
			errs.add(cuePos(certificatesField.Pos()), prefix+".certificates", "want a list of {certificate, key} pairs, got a %s", exprKind(certificatesField))
		} else if len(certificates.Elts) > 1 {
			var certs, keys []ast.Expr
			for _, c := range certificates.Elts[1:] {
				cert, key := ast.Expr(ast.NewNull()), ast.Expr(ast.NewNull())
				if s, ok := c.(*ast.StructLit); ok {
					if f := lookupField(s, "certificate"); f != nil {
						cert = f.Value
					}
					if f := lookupField(s, "key"); f != nil {
						key = f.Value
					}
				}
				ast.SetPos(cert, exprPos(c))
				ast.SetPos(key, exprPos(c))
				certs, keys = append(certs, cert), append(keys, key)
			}
			cl, kl := ast.NewList(certs...), ast.NewList(keys...)
			ast.SetPos(cl, exprPos(certificates.Elts[1]))
			ast.SetPos(kl, exprPos(certificates.Elts[1]))
			add("certs", cl)
			add("keys", kl)
		}
	}
	if !hasName && snis != nil {
		if l, ok := snis.(*ast.ListLit); ok {
			var names []string
			for _, e := range l.Elts {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := literal.Unquote(lit.Value); err == nil {
						names = append(names, s)
					}
				}
			}
			if len(names) > 0 {
				s := ast.NewString(deriveName(names))
				ast.SetPos(s, snis.Pos())
				add("name", s)
				renames["name"] = renameFieldOf(renames, "snis")
			}
		}
	}
	if typ == string(TypeClient) && snis != nil {
		// ADC requires snis on every SSL and APISIX allows them on a
		// client SSL; a client entity is presented to an upstream, so
		// they mean nothing here.
		out.Elts = slices.DeleteFunc(out.Elts, func(d ast.Decl) bool {
			f, ok := d.(*ast.Field)
			if !ok {
				return false
			}
			n, _, _ := ast.LabelName(f.Label)
			return n == "snis"
		})
		field := prefix + "." + renameFieldOf(renames, "snis")
		*errs = append(*errs, &Error{Pos: cuePos(exprPos(snis)), Field: field, Severity: SeverityWarning,
			Msg: "ignored: a client entity is presented to an upstream, so it has no server names"})
	}
	adc := certificatesField != nil
	rename := &itemRename{item: uint32(i), adc: adc, sni: renames["snis"] == "sni",
		// An item with no material at all is told the ADC field it lacks.
		noMaterial: !adc && lookupField(item, "cert") == nil && lookupField(item, "key") == nil}
	switch renames["name"] {
	case "id":
		rename.name = nameFromID
	case "sni":
		rename.name = nameFromSNI
	case "snis":
		rename.name = nameFromSNIs
	}
	d := newDoc(file, out, rename)
	d.disabled = disabled
	d.allowed = apisixFields
	if adc {
		d.allowed = adcFields
		// Errors about a missing cert or key point at certificates.
		d.index["cert"+missingSuffix] = cuePos(certificatesField.Pos())
		d.index["key"+missingSuffix] = cuePos(certificatesField.Pos())
	}
	return d
}

func renameFieldOf(renames map[string]string, native string) string {
	if w, ok := renames[native]; ok {
		return w
	}
	return native
}

// itemRename maps a native field path of an ADC or APISIX item to the
// path as the file writes it ("cert" of item 2 is
// "ssls[2].certificates[0].certificate"). It is what the rewrite learnt
// of the item, not a function of it, so that an entity at rest can keep
// it as a few integers (frozen.go); it holds no pointer.
type itemRename struct {
	item       uint32   // the item's index in ssls
	name       nameFrom // where the native name is written
	adc        bool     // certificates: [{certificate, key}] holds the chains
	noMaterial bool     // neither cert, key nor certificates is written
	sni        bool     // APISIX's sni is written for snis
}

// nameFrom is the field an item's native name is written as.
type nameFrom uint8

const (
	nameAsName   nameFrom = iota // no name written and none derived
	nameFromID                   // id
	nameFromSNI                  // derived from APISIX's sni
	nameFromSNIs                 // derived from snis
)

// path returns the native field path p as the item writes it.
func (r *itemRename) path(p string) string {
	prefix := "ssls[" + strconv.FormatUint(uint64(r.item), 10) + "]"
	head, rest := p, ""
	if i := strings.IndexAny(p, ".["); i >= 0 {
		head, rest = p[:i], p[i:]
	}
	switch {
	case r.noMaterial && (head == "cert" || head == "key"):
		return prefix + ".certificates"
	case r.adc && (head == "cert" || head == "key"):
		w := "certificate"
		if head == "key" {
			w = "key"
		}
		return prefix + ".certificates[0]." + w + rest
	case r.adc && (head == "certs" || head == "keys") && strings.HasPrefix(rest, "["):
		j, tail, _ := strings.Cut(rest[1:], "]")
		n, err := strconv.Atoi(j)
		if err != nil {
			break
		}
		w := "certificate"
		if head == "keys" {
			w = "key"
		}
		return prefix + ".certificates[" + strconv.Itoa(n+1) + "]." + w + tail
	case r.adc && (head == "certs" || head == "keys"):
		return prefix + ".certificates" + rest
	case head == "snis" && r.sni:
		return prefix + ".sni"
	}
	if head == "name" && r.name != nameAsName {
		head = [...]string{nameFromID: "id", nameFromSNI: "sni", nameFromSNIs: "snis"}[r.name]
	}
	return prefix + "." + head + rest
}

// The top-level fields of an item, as an unknown-field error lists them.
var (
	adcFields    = []string{"id", "desc", "type", "snis", "certificates", "client", "ssl_protocols", "labels", "status"}
	apisixFields = []string{"id", "desc", "type", "sni", "snis", "cert", "key", "certs", "keys", "client", "ssl_protocols", "labels", "status"}
)

// describeLiteral names a value for a message: a short literal as written,
// else its kind.
func describeLiteral(x ast.Expr) string {
	if lit, ok := x.(*ast.BasicLit); ok && len(lit.Value) <= 20 {
		return lit.Value
	}
	return article(exprKind(x))
}
