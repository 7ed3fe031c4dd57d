package schema

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// This file is the only one that imports CUE (STYLE.md): it compiles the
// schema and the repository's policy, turns YAML and JSON documents into
// entity documents (reading the ADC and APISIX forms), validates them, and
// converts CUE's errors into ours.

//go:embed schemas/ssl.cue
var sslSchema []byte

const schemaFile = "schemas/ssl.cue"

// Source returns the built-in CUE schema, as `certops schema` prints it.
func Source() []byte { return bytes.Clone(sslSchema) }

// A lane is one CUE context with the built-in schema compiled in it. CUE
// contexts are not safe for concurrent use, and values of one context do not
// unify with another's, so validation runs on a fixed set of lanes, one per
// CPU, each used by one goroutine at a time (mu). Within a lane the schema
// is compiled once and documents are built with BuildExpr, whose memory is
// reclaimed (BuildFile on a shared context is not).
type lane struct {
	mu      sync.Mutex // guards ctx and every value built in it
	ctx     *cue.Context
	builtin *cueSchema
}

// lanes returns the process's lanes, creating them on first use; freeLanes
// hands out their indexes to File. The channel is made when the package is
// initialised, not on first use: a channel made inside a testing/synctest
// bubble could not be used outside it afterwards.
var (
	freeLanes = make(chan int, max(runtime.GOMAXPROCS(0), 1))
	lanes     = sync.OnceValues(func() ([]*lane, error) {
		ls := make([]*lane, cap(freeLanes))
		for i := range ls {
			l := &lane{ctx: cuecontext.New()}
			f, err := parseBuiltin()
			if err != nil {
				return nil, err
			}
			s, errs := buildSchema(l.ctx, []*ast.File{f})
			if len(errs) > 0 {
				return nil, fmt.Errorf("compile built-in schema: %w", errs)
			}
			l.builtin = s
			ls[i] = l
			freeLanes <- i
		}
		return ls, nil
	})
)

// parseBuiltin parses the built-in schema. Each lane parses its own copy:
// building a syntax tree may annotate it, so trees are not shared.
func parseBuiltin() (*ast.File, error) {
	f, err := parser.ParseFile(schemaFile, sslSchema, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse built-in schema: %w", err)
	}
	return f, nil
}

// mustLanes returns the lanes; the embedded schema is tested, so a failure
// is a build defect.
func mustLanes() []*lane {
	ls, err := lanes()
	if err != nil {
		panic(err)
	}
	return ls
}

// acquireLane takes a free lane and locks it; release it with releaseLane.
func acquireLane() (int, *lane) {
	ls := mustLanes()
	i := <-freeLanes
	ls[i].mu.Lock()
	return i, ls[i]
}

func releaseLane(i int, l *lane) {
	l.mu.Unlock()
	freeLanes <- i
}

// cueSchema is #SSL, from the built-in schema alone or unified with a
// repository's policy, in one lane's context. Use it only with that lane
// locked.
type cueSchema struct {
	ctx *cue.Context
	ssl cue.Value
}

// buildSchema builds files as one instance of package certops in ctx and
// returns its #SSL. The caller holds ctx's lane.
func buildSchema(ctx *cue.Context, files []*ast.File) (*cueSchema, ErrorList) {
	inst := build.NewContext().NewInstance("", nil)
	var errs ErrorList
	for _, f := range files {
		if err := inst.AddSyntax(f); err != nil {
			appendCUEErrors(&errs, err, nil)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	v := ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		appendCUEErrors(&errs, err, nil, files...)
		return nil, errs
	}
	ssl := v.LookupPath(cue.ParsePath("#SSL"))
	if err := ssl.Err(); err != nil {
		appendCUEErrors(&errs, err, nil, files...)
		return nil, errs
	}
	if err := ssl.Validate(); err != nil {
		appendCUEErrors(&errs, err, nil, files...)
		return nil, errs
	}
	return &cueSchema{ctx: ctx, ssl: ssl}, nil
}

// compilePolicy unifies the built-in schema with the policy files in every
// lane and returns the lanes' schemas, indexed like the lanes, and a hash of
// the inputs. It returns the built-in schema alone, with the problems, when
// a policy file does not compile.
func compilePolicy(policy []PolicyFile) ([]*cueSchema, string, ErrorList) {
	ls := mustLanes()
	builtins := make([]*cueSchema, len(ls))
	for i, l := range ls {
		builtins[i] = l.builtin
	}
	h := sha256.New()
	h.Write(sslSchema)
	if len(policy) == 0 {
		return builtins, hex.EncodeToString(h.Sum(nil)), nil
	}
	policy = slices.Clone(policy)
	slices.SortFunc(policy, func(a, b PolicyFile) int { return strings.Compare(a.Path, b.Path) })
	var errs ErrorList
	for _, p := range policy {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", p.Path, len(p.Src))
		h.Write(p.Src)
		if len(p.Src) > MaxFileSize {
			errs.add(Pos{File: p.Path}, "", "file is %s; files are limited to 1 MiB", sizeString(len(p.Src)))
			continue
		}
		f, err := parsePolicy(p)
		if err != nil {
			appendCUEErrors(&errs, err, nil)
			continue
		}
		switch name := f.PackageName(); name {
		case "certops":
		case "":
			errs.add(Pos{File: p.Path, Line: 1, Col: 1}, "", "policy file has no package clause; write `package certops` first")
		default:
			pos := Pos{File: p.Path, Line: 1, Col: 1}
			for _, d := range f.Decls {
				if pkg, ok := d.(*ast.Package); ok {
					pos = cuePos(pkg.Name.Pos())
				}
			}
			errs.add(pos, "", "policy file is package %s; policy files are package certops", name)
		}
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if len(errs) > 0 {
		return builtins, hash, errs
	}
	// Each lane builds from syntax trees of its own (building may annotate
	// a tree), so the files are parsed again per lane.
	schemas := make([]*cueSchema, len(ls))
	for i, l := range ls {
		s, errs := func() (s *cueSchema, errs ErrorList) {
			l.mu.Lock()
			defer l.mu.Unlock()
			defer func() {
				if r := recover(); r != nil {
					s, errs = nil, ErrorList{{Pos: Pos{File: policy[0].Path}, Msg: scrub(fmt.Sprintf("the policy could not be compiled: CUE failed (%v)", r))}}
				}
			}()
			base, err := parseBuiltin()
			if err != nil {
				panic(err) // the embedded schema is tested
			}
			files := []*ast.File{base}
			for _, p := range policy {
				f, err := parsePolicy(p)
				if err != nil {
					appendCUEErrors(&errs, err, nil)
					return nil, errs
				}
				files = append(files, f)
			}
			return buildSchema(l.ctx, files)
		}()
		if len(errs) > 0 {
			return builtins, hash, errs
		}
		schemas[i] = s
	}
	return schemas, hash, nil
}

// parsePolicy parses one policy file; a panic of the parser on hostile
// input is an error.
func parsePolicy(p PolicyFile) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("%s: the CUE parser failed (%v)", p.Path, r)
		}
	}()
	return parser.ParseFile(p.Path, p.Src, parser.ParseComments)
}

// A doc is one entity document, in the native form, ready for CUE: ADC and
// APISIX items are rewritten into it, keeping the positions of their
// values.
type doc struct {
	expr  *ast.StructLit
	pos   Pos
	index map[string]Pos    // native field path -> position of its value
	kinds map[string]string // native field path -> kind of its value, as exprKind names it
	// rename maps a native field path to the path as written in the file
	// (they differ for ADC and APISIX items); nil is the identity.
	rename func(string) string
	// bad holds the top-level fields that failed the schema, and loose
	// the document as plain data when it did: the checks in Go still run
	// on the other fields, so one round of review finds every problem.
	bad   map[string]bool
	loose map[string]any
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
func (d *doc) where(field string) (Pos, string) {
	shown := field
	if d.rename != nil {
		shown = d.rename(field)
	}
	for p := field; ; {
		if pos, ok := d.index[p]; ok && pos.File != "" {
			return pos, shown
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return d.pos, shown
		}
		p = p[:i]
	}
}

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

func newDoc(file string, x *ast.StructLit, rename func(string) string) *doc {
	d := &doc{expr: x, pos: cuePos(x.Pos()), index: map[string]Pos{}, kinds: map[string]string{}, rename: rename}
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
		prefix := "ssls[" + strconv.Itoa(i) + "]"
		item, ok := e.(*ast.StructLit)
		if !ok {
			errs.add(cuePos(e.Pos()), prefix, "want an SSL object (a mapping), got a %s", exprKind(e))
			continue
		}
		docs = append(docs, adcDoc(file, prefix, item, errs))
	}
	return docs
}

// adcDoc rewrites one ADC item (certificates: [{certificate, key}]) or
// APISIX item (cert, key, certs, keys, sni) into the native form.
func adcDoc(file, prefix string, item *ast.StructLit, errs *ErrorList) *doc {
	out := &ast.StructLit{Lbrace: item.Lbrace}
	ast.SetPos(out, item.Pos())
	add := func(name string, v ast.Expr) {
		out.Elts = append(out.Elts, &ast.Field{Label: ast.NewIdent(name), Value: v})
	}
	renames := map[string]string{} // native top-level field -> written
	var certificates *ast.ListLit
	var certificatesField ast.Expr
	var hasName bool
	var snis ast.Expr
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
		case "status", "create_time", "update_time", "validity_start", "validity_end":
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
	adc := certificatesField != nil
	rename := func(p string) string {
		head, rest := p, ""
		if i := strings.IndexAny(p, ".["); i >= 0 {
			head, rest = p[:i], p[i:]
		}
		switch {
		case adc && (head == "cert" || head == "key"):
			w := "certificate"
			if head == "key" {
				w = "key"
			}
			return prefix + ".certificates[0]." + w + rest
		case adc && (head == "certs" || head == "keys") && strings.HasPrefix(rest, "["):
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
		case adc && (head == "certs" || head == "keys"):
			return prefix + ".certificates" + rest
		case head == "snis" && renames["snis"] == "sni":
			return prefix + ".sni"
		}
		if w, ok := renames[head]; ok {
			head = w
		}
		return prefix + "." + head + rest
	}
	d := newDoc(file, out, rename)
	if adc {
		// Errors about a missing cert or key point at certificates.
		d.index["cert"+missingSuffix] = cuePos(certificatesField.Pos())
		d.index["key"+missingSuffix] = cuePos(certificatesField.Pos())
	}
	return d
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

func renameFieldOf(renames map[string]string, native string) string {
	if w, ok := renames[native]; ok {
		return w
	}
	return native
}

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

// check validates d against the schema and decodes it. Unknown fields are
// found here rather than by CUE, which reports them only once every other
// error is fixed. The caller holds s's lane.
func (s *cueSchema) check(d *doc, errs *ErrorList) (rawSSL, bool) {
	n := len(*errs)
	s.unknownFields(d, d.expr, "", s.ssl, errs)
	v := s.ctx.BuildExpr(d.expr)
	if err := v.Err(); err != nil {
		appendCUEErrors(errs, err, d)
		return rawSSL{}, false
	}
	u := s.ssl.Unify(v)
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
	if len(*errs) > n {
		var loose map[string]any
		if v.Decode(&loose) == nil {
			d.loose = loose
		}
		return rawSSL{}, false
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
			if lp := cuePos(f.Label.Pos()); lp.Line > 0 && d.rename == nil {
				if strings.HasSuffix(lp.File, ".json") && lp.Col > 1 {
					lp.Col-- // CUE's JSON decoder places a key after its opening quote
				}
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

// appendParseError reports a file that is not valid YAML or JSON at the
// parser's position.
func appendParseError(errs *ErrorList, file string, src []byte, err error) {
	if strings.HasSuffix(file, ".json") {
		// encoding/json says what is wrong; CUE only that something is.
		var v any
		var syn *json.SyntaxError
		if jerr := json.Unmarshal(src, &v); errors.As(jerr, &syn) {
			line, col := lineCol(src, int(syn.Offset))
			errs.add(Pos{File: file, Line: line, Col: col}, "", "invalid JSON: %s", scrub(syn.Error()))
			return
		}
	}
	for _, e := range cueerrors.Errors(err) {
		pos := cuePos(e.Position())
		if pos.File == "" {
			pos.File = file
		}
		format, args := e.Msg()
		msg := fmt.Sprintf(format, redactArgs(args)...)
		if msg == "" {
			msg = e.Error()
		}
		// yaml.v3 style "file:line: message": the position says it.
		if i := strings.Index(msg, file+":"); i >= 0 {
			rest := msg[i+len(file)+1:]
			if j := strings.Index(rest, ": "); j >= 0 {
				if n, err := strconv.Atoi(rest[:j]); err == nil {
					if pos.Line == 0 {
						pos.Line = n
					}
					msg = rest[j+2:]
				}
			}
		}
		errs.add(pos, "", "invalid YAML: %s", scrub(msg))
	}
}

// lineCol converts a byte offset into a line and column, counting from 1.
func lineCol(src []byte, off int) (int, int) {
	off = min(max(off, 0), len(src))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// appendCUEErrors converts CUE's errors into ours, one per problem. With a
// doc, positions come from the document's field index: CUE often points at
// the schema or the policy only.
func appendCUEErrors(errs *ErrorList, err error, d *doc, policy ...*ast.File) {
	type key struct{ path, msg string }
	seen := map[key]bool{}
	list := cueerrors.Errors(err)
	for i := 0; i < len(list); i++ {
		e := list[i]
		path := nativePath(e.Path())
		format, args := e.Msg()
		if strings.HasSuffix(format, "errors in empty disjunction:") {
			// The next errors are the alternatives: say it once.
			var alts []string
			for i+1 < len(list) && slices.Equal(list[i+1].Path(), e.Path()) {
				i++
				f, a := list[i].Msg()
				switch {
				case strings.HasPrefix(f, "conflicting values ") && len(a) == 2:
					alts = append(alts, fmt.Sprint(a[0]))
				case strings.HasPrefix(f, "invalid value ") && strings.Contains(f, "out of bound") && len(a) == 2:
					alts = append(alts, fmt.Sprint(a[1]))
				}
			}
			slices.Sort(alts)
			alts = slices.Compact(alts)
			format, args = "value not allowed", nil
			if d != nil && len(alts) > 0 {
				format, args = "value not allowed: want one of %s", []any{strings.Join(alts, ", ")}
			}
			if d == nil {
				format = "value not allowed by the built-in schema"
			}
			if d == nil && i+1 < len(list) && slices.Equal(list[i+1].Path(), e.Path()) {
				continue // the alternatives that follow say more, with positions
			}
		}
		args = redactArgs(args)
		msg := fmt.Sprintf(format, args...)
		if msg == "field not allowed" && d != nil {
			continue // reported by unknownFields, with a hint
		}
		if d != nil {
			if m := mismatched.FindStringSubmatch(msg); m != nil {
				got := d.kinds[path]
				want := m[1]
				if kindName(want) == got {
					want = m[2]
				}
				switch {
				case got == "null":
					msg = "required field is missing" // an empty value, or an ADC pair without it
				case got != "" && kindName(want) != got:
					msg = "want " + article(kindName(want)) + ", got " + article(got)
				}
			}
		}
		if strings.HasSuffix(msg, `(out of bound !="")`) {
			msg = "must not be empty"
		}
		if msg == "field is required but not present" {
			msg = "required field is missing"
		}
		if d != nil && strings.HasPrefix(format, "incomplete value") {
			if _, written := d.index[path]; !written {
				// A policy made a field required: `labels: team: string`.
				msg = "required field is missing (want " + strings.TrimPrefix(msg, "incomplete value ") + ")"
			}
		}
		if path == "name" && strings.Contains(msg, "out of bound =~") && len(args) > 0 && strings.Contains(fmt.Sprint(args[len(args)-1]), "a-z0-9._-") {
			msg = "invalid name " + fmt.Sprint(args[0]) + ": want 1 to 100 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
		}
		k := key{path, msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		var pos Pos
		shown := path
		if d == nil {
			shown = strings.Join(e.Path(), ".")
		}
		if d != nil {
			d.markBad(path)
			pos, shown = d.where(path)
			if _, written := d.index[path]; !written && strings.HasPrefix(msg, "required field is missing") {
				pos = d.pos
				if p, ok := d.index[path+missingSuffix]; ok {
					pos = p
				}
			}
		} else {
			for _, p := range cueerrors.Positions(e) {
				if p.Filename() != schemaFile || pos.File == "" {
					pos = cuePos(p)
				}
			}
			if pos.File == "" || pos.File == schemaFile {
				// CUE points at the schema or nowhere: find the field in
				// the policy.
				if p := findField(policy, e.Path()); p.IsValid() {
					pos = cuePos(p)
				}
			}
		}
		*errs = append(*errs, &Error{Pos: pos, Field: scrubField(shown), Msg: scrub(msg)})
	}
}

var mismatched = regexp.MustCompile(`\(mismatched types (\w+) and (\w+)\)`)

// kindName maps a CUE kind to the names exprKind uses.
func kindName(k string) string {
	switch k {
	case "int", "float", "number":
		return "number"
	case "bool":
		return "boolean"
	case "struct":
		return "mapping"
	}
	return k
}

func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// findField returns the position of the first declaration of the field at
// path in files, following nested structs (`#SSL: labels: team: string`).
func findField(files []*ast.File, path []string) token.Pos {
	var find func(decls []ast.Decl, path []string) token.Pos
	var inExpr func(x ast.Expr, path []string) token.Pos
	inExpr = func(x ast.Expr, path []string) token.Pos {
		switch x := x.(type) {
		case *ast.StructLit:
			return find(x.Elts, path)
		case *ast.BinaryExpr:
			if p := inExpr(x.X, path); p.IsValid() {
				return p
			}
			return inExpr(x.Y, path)
		}
		return token.NoPos
	}
	find = func(decls []ast.Decl, path []string) token.Pos {
		for _, decl := range decls {
			f, ok := decl.(*ast.Field)
			if !ok {
				continue
			}
			if name, _, err := ast.LabelName(f.Label); err != nil || name != path[0] {
				continue
			}
			if len(path) == 1 {
				return f.Value.Pos()
			}
			if p := inExpr(f.Value, path[1:]); p.IsValid() {
				return p
			}
		}
		return token.NoPos
	}
	if len(path) == 0 {
		return token.NoPos
	}
	for _, f := range files {
		if f.Filename == schemaFile {
			continue
		}
		if p := find(f.Decls, path); p.IsValid() {
			return p
		}
	}
	return token.NoPos
}

// nativePath formats a CUE error path as our field path, without the #SSL
// the schema's paths start with.
func nativePath(path []string) string {
	var p string
	for i, s := range path {
		if i == 0 && s == "#SSL" {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			p += "[" + s + "]"
			continue
		}
		if uq, err := literal.Unquote(s); err == nil {
			s = uq
		}
		p = joinPath(p, s)
	}
	return p
}

// redactArgs replaces values in a CUE message that could be certificate or
// key material (multi-line, PEM or long strings) by a placeholder.
func redactArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		s := fmt.Sprint(a)
		if len(s) > 80 || strings.Contains(s, "\n") || strings.Contains(s, `\n`) || strings.Contains(s, "-----") {
			out[i] = "(value not shown)"
			continue
		}
		out[i] = a
	}
	return out
}

func cuePos(p token.Pos) Pos {
	if !p.IsValid() {
		return Pos{}
	}
	return Pos{File: p.Filename(), Line: p.Line(), Col: p.Column()}
}
