package reconciler

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing/fstest"

	"certops/schema"
)

// fileResult is what validating one entity file found.
type fileResult struct {
	key      string // content id and policy digest it was computed for
	entities []*schema.Entity
	problems schema.ErrorList
}

// loader validates the trees of successive revisions incrementally: a file
// whose content (blob id) and policy did not change since the previous
// revision is not read or validated again. It is used by one reconcile at a
// time.
type loader struct {
	root  string
	opts  schema.Options
	cache map[string]*fileResult // path -> result of its last content
}

func newLoader(root string, opts schema.Options) *loader {
	opts.Root = root
	return &loader{root: root, opts: opts, cache: make(map[string]*fileResult)}
}

// loadResult is a validated revision.
type loadResult struct {
	entities  []*schema.Entity // in path order, then document order
	problems  schema.ErrorList // errors and warnings, whole-set checks included
	validated int              // files validated (not reused) in this load
}

// load validates the entity files of t below the loader's root, reusing
// the results of unchanged files, and runs the whole-set checks.
func (l *loader) load(ctx context.Context, t *Tree) (*loadResult, error) {
	var entityFiles []string
	policy := make(map[string]string)
	for p, id := range t.Files {
		switch classify(l.root, p) {
		case kindEntity:
			entityFiles = append(entityFiles, p)
		case kindPolicy:
			policy[p] = id
		}
	}
	slices.Sort(entityFiles)
	policyDigest := listingDigest(policy)

	// Policy is read only when some file needs validating.
	var policyFS fstest.MapFS
	readPolicy := func() error {
		if policyFS != nil {
			return nil
		}
		policyFS = make(fstest.MapFS, len(policy))
		for _, p := range slices.Sorted(maps.Keys(policy)) {
			src, err := t.ReadFile(p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			policyFS[p] = &fstest.MapFile{Data: src, Mode: 0o644}
		}
		return nil
	}

	type job struct {
		path string
		key  string
		src  []byte
		res  *fileResult
	}
	var jobs []*job
	next := make(map[string]*fileResult, len(entityFiles))
	for _, p := range entityFiles {
		key := t.Files[p] + "\x00" + policyDigest
		if r, ok := l.cache[p]; ok && r.key == key {
			next[p] = r
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := readPolicy(); err != nil {
			return nil, err
		}
		// Blobs are read one at a time: go-git's object storage is not
		// documented as safe for concurrent reads.
		src, err := t.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		jobs = append(jobs, &job{path: p, key: key, src: src})
	}

	var wg sync.WaitGroup
	work := make(chan *job)
	for range min(runtime.GOMAXPROCS(0), max(len(jobs), 1)) {
		wg.Go(func() {
			for j := range work {
				j.res = l.validateFile(j.path, j.key, j.src, policyFS)
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	for _, j := range jobs {
		next[j.path] = j.res
	}
	l.cache = next

	res := &loadResult{validated: len(jobs)}
	for _, p := range entityFiles {
		r := next[p]
		res.entities = append(res.entities, r.entities...)
		res.problems = append(res.problems, r.problems...)
	}
	res.problems = append(res.problems, checkSet(res.entities)...)
	return res, nil
}

// validateFile validates one file with the repository's policy.
func (l *loader) validateFile(p, key string, src []byte, policy fstest.MapFS) *fileResult {
	fsys := make(fstest.MapFS, len(policy)+1)
	maps.Copy(fsys, policy)
	fsys[p] = &fstest.MapFile{Data: src, Mode: 0o644}
	res, err := schema.Load(fsys, l.opts)
	if err != nil {
		return &fileResult{key: key, problems: schema.ErrorList{{Pos: schema.Pos{File: p}, Msg: err.Error()}}}
	}
	r := &fileResult{key: key, entities: res.Entities}
	for _, e := range res.Problems {
		if e.Pos.File == p || e.Pos.File == "" {
			r.problems = append(r.problems, e)
		}
	}
	return r
}

// checkSet runs the checks that need the whole set of entities: no entity
// name and no SNI twice (DESIGN.md 2.1). Both places are named.
func checkSet(entities []*schema.Entity) schema.ErrorList {
	var errs schema.ErrorList
	names := make(map[string]*schema.Entity, len(entities))
	snis := make(map[string]*schema.Entity, len(entities))
	for _, e := range entities {
		if prev, ok := names[e.Name]; ok {
			errs = append(errs, &schema.Error{Pos: e.Pos, Field: "name", Msg: fmt.Sprintf("entity name %q is also used at %s", e.Name, prev.Pos)})
		} else {
			names[e.Name] = e
		}
		for i, s := range e.SNIs {
			if prev, ok := snis[s]; ok && prev != e {
				errs = append(errs, &schema.Error{Pos: e.Pos, Field: fmt.Sprintf("snis[%d]", i), Msg: fmt.Sprintf("SNI %q is also claimed by entity %q at %s", s, prev.Name, prev.Pos)})
			} else {
				snis[s] = e
			}
		}
	}
	return errs
}
