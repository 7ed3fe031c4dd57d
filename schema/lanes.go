package schema

import (
	"bytes"
	_ "embed"
	"fmt"
	"runtime"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"
)

// This file holds the CUE contexts ("lanes") validation runs on and the
// built-in schema compiled in each.

//go:embed schemas/ssl.cue
var sslSchema []byte

const schemaFile = "schemas/ssl.cue"

// Source returns the built-in CUE schema, as `certops schema` prints it.
func Source() []byte { return bytes.Clone(builtinSource()) }

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
	f, err := parser.ParseFile(schemaFile, builtinSource(), parser.ParseComments)
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
