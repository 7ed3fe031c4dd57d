package schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	cueyaml "cuelang.org/go/encoding/yaml"
)

// This file is the only one that imports CUE.

//go:embed schemas/ssl.cue
var sslSchema []byte

// Source returns the built-in CUE schema, as `certops schema` prints it.
func Source() []byte { return bytes.Clone(sslSchema) }

// compiled is the schema compiled once per process.
var compiled = sync.OnceValues(func() (*compiler, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(sslSchema, cue.Filename("schemas/ssl.cue"))
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("compile built-in schema: %w", err)
	}
	return &compiler{ctx: ctx, ssl: v.LookupPath(cue.ParsePath("#SSL"))}, nil
})

// compiler validates documents against #SSL. CUE contexts are not safe for
// concurrent use, so mu serialises every use of ctx.
type compiler struct {
	mu  sync.Mutex
	ctx *cue.Context
	ssl cue.Value
}

// decodeYAML splits a YAML (or JSON) file into documents, validates each
// against #SSL and decodes it. Problems are appended to errs.
func (c *compiler) decodeYAML(file string, src []byte, errs *ErrorList) []rawDoc {
	c.mu.Lock()
	defer c.mu.Unlock()
	dec := cueyaml.NewDecoder(file, bytes.NewReader(src))
	var docs []rawDoc
	for {
		expr, err := dec.Extract()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			appendCUEErrors(errs, file, err)
			return docs
		}
		v := c.ctx.BuildExpr(expr, cue.Filename(file))
		if err := v.Err(); err != nil {
			appendCUEErrors(errs, file, err)
			continue
		}
		if k := v.IncompleteKind(); k == cue.NullKind {
			continue // an empty document
		}
		u := c.ssl.Unify(v)
		if err := u.Validate(cue.Concrete(true)); err != nil {
			appendCUEErrors(errs, file, err)
			continue
		}
		var raw rawSSL
		if err := u.Decode(&raw); err != nil {
			appendCUEErrors(errs, file, err)
			continue
		}
		pos := expr.Pos()
		docs = append(docs, rawDoc{ssl: raw, pos: Pos{File: file, Line: pos.Line(), Col: pos.Column()}})
	}
}

// appendCUEErrors converts CUE's errors into ours, one per problem.
func appendCUEErrors(errs *ErrorList, file string, err error) {
	for _, e := range cueerrors.Errors(err) {
		pos := Pos{File: file}
		for _, p := range cueerrors.Positions(e) {
			if p.Filename() == file {
				pos.Line, pos.Col = p.Line(), p.Column()
				break
			}
		}
		format, args := e.Msg()
		*errs = append(*errs, &Error{Pos: pos, Field: cue.MakePath(pathSelectors(e.Path())...).String(), Msg: fmt.Sprintf(format, args...)})
	}
}

func pathSelectors(path []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(path))
	for _, p := range path {
		sels = append(sels, cue.ParsePath(p).Selectors()...)
	}
	return sels
}
