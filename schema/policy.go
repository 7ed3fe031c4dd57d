package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// This file compiles the built-in schema with a repository's *.cue policy.

// cueSchema is #SSL, from the built-in schema alone or unified with a
// repository's policy, in one lane's context. Use it only with that lane
// locked.
type cueSchema struct {
	ctx *cue.Context
	ssl cue.Value
	// checks is #Checks decoded: check name -> severity.
	checks map[string]string
	// builtin is set for the built-in schema without policy, which
	// validBuiltin checks in Go.
	builtin bool
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
		// Err says the first problem; Validate walks the whole instance,
		// so that a policy's every mistake is reported in one run.
		if all := v.Validate(); all != nil {
			err = all
		}
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
	checks, errs := decodeChecks(v, files)
	if len(errs) > 0 {
		return nil, errs
	}
	builtin := len(files) == 1 && files[0].Filename == schemaFile
	return &cueSchema{ctx: ctx, ssl: ssl, checks: checks, builtin: builtin}, nil
}

// decodeChecks decodes #Checks, the severities of the hygiene checks
// (certcheck), with the policy's tuning unified in: an unknown check or
// severity is an error at the policy's line.
func decodeChecks(v cue.Value, files []*ast.File) (map[string]string, ErrorList) {
	var errs ErrorList
	c := v.LookupPath(cue.ParsePath("#Checks"))
	if err := c.Validate(cue.Concrete(true)); err != nil {
		appendCUEErrors(&errs, err, nil, files...)
		return nil, errs
	}
	m := map[string]string{}
	if err := c.Decode(&m); err != nil {
		appendCUEErrors(&errs, err, nil, files...)
		return nil, errs
	}
	return m, nil
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
	h.Write(builtinSource())
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
