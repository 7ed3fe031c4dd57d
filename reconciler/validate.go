package reconciler

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"certops/schema"
	"certops/source"
)

// loader validates the trees of successive revisions incrementally with
// schema's Validator: a file whose content (blob id) and policy did not
// change since the previous revision is not read or validated again. It is
// used by one reconcile at a time.
type loader struct {
	root string
	opts schema.Options

	set schema.SetChecker // the checks across files, incremental
	// last is the revision loaded last (loaddelta.go). Its results are the
	// cache of the next load (cached): each was computed for its file's
	// content id in last's tree, under lastPolicy. A map by path beside
	// them held 0.75 MiB more for 10,000 files (issue 13).
	last       *loaded
	lastPolicy string // the policy hash last's results were computed under

	// rereadMu serialises reread: the builds of a reconcile parse lean
	// entities at once (build), and go-git's object storage is not
	// documented as safe for concurrent reads.
	rereadMu sync.Mutex

	policyDigest string // of the policy files the validator was built from
	validator    *schema.Validator
	policyErrs   schema.ErrorList
}

func newLoader(root string, opts schema.Options) *loader {
	root = strings.Trim(path.Clean("/"+root), "/")
	opts.Root = root
	return &loader{root: root, opts: opts}
}

// leanWhen makes the entities l validates lean when lean is true: they
// keep no literal PEM text once parsed (see schema.Options.Reread), and l
// reads their files again from the revision it loaded last when they are
// parsed again (after the gateway refused a revision). It returns l and
// is called before the first load.
func (l *loader) leanWhen(lean bool) *loader {
	if lean {
		l.opts.Reread = l.reread
	}
	return l
}

// reread reads the entity file p of the revision loaded last: what a lean
// entity's Material parses again. An entity is in that revision: entities
// come from the last load, and a file's entities are replaced when it
// changes. It is called by the reconcile that holds the loader.
func (l *loader) reread(p string) ([]byte, error) {
	if l.last == nil {
		return nil, fmt.Errorf("read %s: no revision loaded", p)
	}
	if to, ok := l.last.linked[p]; ok {
		p = to // a link: the file it leads to, as load read it
	}
	return l.last.tree.ReadFile(p)
}

// needsPEM reports whether a sink may read the PEM text of the entities it
// is given: whether any reads AppliedRevision.Entities (readsEntities).
// The loader keeps entities lean only when none does.
func needsPEM(sinks []Sink) bool {
	return slices.ContainsFunc(sinks, readsEntities)
}

// loadResult is a validated revision. Its entities and the files'
// problems are in results, which thaws them when asked (entities,
// problems): an incremental reconcile reads neither in full.
type loadResult struct {
	results   *schema.Results  // the entity files', in path order
	head      schema.ErrorList // the listing's and the policy's problems, before the files'
	set       schema.ErrorList // the whole-set checks', after the files'
	validated int              // files validated (not reused) in this load
	removed   int              // entity files gone since the previous load
	files     int              // entity files in the revision
}

// entities returns every entity, in path order then document order, and
// the reference of each that is at rest (see schema.Results.Entities).
func (res *loadResult) entities() ([]*schema.Entity, []schema.EntityRef) {
	return res.results.Entities()
}

// problems returns the errors and warnings, whole-set checks included.
func (res *loadResult) problems() schema.ErrorList {
	return slices.Concat(res.head, res.results.Problems(), res.set)
}

// failed reports whether problems has an error, without making it.
func (res *loadResult) failed() bool {
	return res.results.HasErrors() || res.head.Err() != nil || res.set.Err() != nil
}

// load validates the entity files of t below the loader's root, reusing
// the results of unchanged files, and runs the whole-set checks.
func (l *loader) load(ctx context.Context, t *source.Tree) (*loadResult, error) {
	if res, ok, err := l.loadChanged(ctx, t); ok || err != nil {
		return res, err
	}
	return l.loadAll(ctx, t)
}

// loadAll is load from the full listing of t: every file is looked up
// among the last load's results.
func (l *loader) loadAll(ctx context.Context, t *source.Tree) (*loadResult, error) {
	var entityFiles, policyFiles []string
	policy := make(map[string]string)
	// target maps a listed path to the file read for it: itself, or the
	// file inside the root a symbolic link leads to.
	target := make(map[string]string)
	listed, err := l.list(ctx, t)
	if err != nil {
		return nil, err
	}
	var linked map[string]string // the listed paths that are links, for reread
	for _, f := range listed.Files {
		target[f.Path] = f.Target
		if f.Target != f.Path {
			if linked == nil {
				linked = make(map[string]string)
			}
			linked[f.Path] = f.Target
		}
		switch f.Kind {
		case schema.FileEntity:
			entityFiles = append(entityFiles, f.Path)
		case schema.FilePolicy:
			policy[f.Path] = t.Files[f.Target]
			policyFiles = append(policyFiles, f.Path)
		}
	}
	slices.Sort(entityFiles)
	slices.Sort(policyFiles)

	// The validator is rebuilt only when the policy changes.
	if digest := source.Digest(policy); l.validator == nil || digest != l.policyDigest {
		var pf []schema.PolicyFile
		for _, p := range policyFiles {
			src, err := t.ReadFile(target[p])
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			pf = append(pf, schema.PolicyFile{Path: p, Src: src})
		}
		l.validator, l.policyErrs = schema.NewValidator(pf, l.opts)
		l.policyDigest = digest
	}
	policyHash := l.validator.PolicyHash() + l.policyDigest

	// The files to validate are listed first and read one at a time as a
	// worker is free for them: read up front, the bytes of every file
	// (10,000 files of a cold start, ~40 MB) would be live together, on
	// top of the results, and would set the heap's peak. Blobs are read by
	// this goroutine only: go-git's object storage is not documented as
	// safe for concurrent reads.
	type job struct {
		path string
		src  []byte
		res  *schema.FileResult
	}
	var jobs []*job
	results := make([]*schema.FileResult, len(entityFiles)) // nil for a file of the last load's, reused
	reuse := make([]int, len(entityFiles))                  // the index of such a file in the last load
	jobOf := make([]int, 0, len(entityFiles))               // the index in results of each job
	kept := 0                                               // files of the last load that this one lists too
	for i, p := range entityFiles {
		id := t.Files[target[p]]
		at, ok, inLast := l.cached(p, id, policyHash)
		if inLast {
			kept++
		}
		if ok {
			reuse[i] = at
			continue
		}
		// The size first, from the listing or the object store: a huge
		// file is refused without being read (issue 16 items 5 and 9).
		if r, ok := oversize(t, p); ok {
			results[i] = r
			continue
		}
		jobs = append(jobs, &job{path: p})
		jobOf = append(jobOf, i)
	}

	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), max(len(jobs), 1))
	// A few files read ahead, so that a worker done with one finds the
	// next one read.
	work := make(chan *job, 2*workers)
	for range workers {
		wg.Go(func() {
			for j := range work {
				j.res = l.validator.File(j.path, j.src)
				j.src = nil
			}
		})
	}
	var readErr error
	for _, j := range jobs {
		if readErr = ctx.Err(); readErr != nil {
			break
		}
		src, err := t.ReadFile(target[j.path])
		if err != nil {
			readErr = fmt.Errorf("read %s: %w", j.path, err)
			break
		}
		j.src = src
		work <- j
	}
	close(work)
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	// The results of a start are moved into a few allocations (schema.Pack):
	// they stay for as long as their files are unchanged, until the
	// reconcile is done with them (freeze).
	fresh := make([]*schema.FileResult, len(jobs))
	for i, j := range jobs {
		fresh[i] = j.res
	}
	for i, fr := range schema.Pack(fresh) {
		results[jobOf[i]] = fr
	}
	var from *schema.Results
	if l.last != nil {
		from = l.last.files
	}
	b := schema.NewResultsBuilder(from, len(entityFiles))
	for i, r := range results {
		if r == nil {
			b.Reuse(reuse[i])
		} else {
			b.Add(r)
		}
	}
	// The files of the last load not in this one: a rename counts here
	// and as a validated file.
	removed := 0
	if l.last != nil {
		removed = l.last.files.Len() - kept
	}

	res := &loadResult{validated: len(jobs), removed: removed}
	res.head = append(res.head, listed.Problems...)
	l.last, l.lastPolicy = &loaded{tree: t, files: b.Results(), linked: linked}, policyHash
	res.fill(l, l.last.files)
	return res, nil
}

// cached returns the index of entity file p among the results of the
// revision loaded last when its result was computed under policy for
// content id, the id of what p was (or led to) in that revision's tree.
// inLast reports whether p was an entity file of that revision at all,
// reusable or not.
func (l *loader) cached(p, id, policy string) (i int, ok, inLast bool) {
	last := l.last
	if last == nil {
		return 0, false, false
	}
	i, inLast = last.files.Find(p)
	if !inLast || l.lastPolicy != policy {
		return 0, false, inLast
	}
	was := p
	if to, ok := last.linked[p]; ok {
		was = to
	}
	if last.tree.Files[was] != id {
		return 0, false, true
	}
	return i, true, true
}

// fileKind classifies a path of a tree below root (DESIGN.md 2) with
// schema.Classify: entity files, policy, or neither.
type fileKind int

const (
	kindIgnored fileKind = iota
	kindEntity
	kindPolicy
)

// loads is the loader's reading rule as a source.Selector: entity and
// policy files below root, up to schema.MaxFileSize.
func loads(root string) source.Selector {
	return func(p string, size int64) bool {
		return classify(root, p) != kindIgnored && size <= schema.MaxFileSize
	}
}

func classify(root, p string) fileKind {
	rel := p
	if root != "" && root != "." {
		var ok bool
		rel, ok = strings.CutPrefix(p, strings.Trim(root, "/")+"/")
		if !ok {
			return kindIgnored
		}
	}
	switch schema.Classify(rel) {
	case schema.FileEntity:
		return kindEntity
	case schema.FilePolicy:
		return kindPolicy
	}
	return kindIgnored
}

// list lists the entity and policy files of t below the loader's root by
// schema's reading rule, the one `validate` follows (schema.ListTree, issue
// 18 item 2). A tree without links or special entries is listed from its
// file map directly; otherwise its shape (files without content, links
// with their targets, special entries with their types) goes through
// schema.ListTree, which reads no file.
func (l *loader) list(ctx context.Context, t *source.Tree) (*schema.Listing, error) {
	if len(t.Links)+len(t.Special) == 0 {
		listed := &schema.Listing{}
		for p := range t.Files {
			switch k := classify(l.root, p); k {
			case kindEntity, kindPolicy:
				kind := schema.FileEntity
				if k == kindPolicy {
					kind = schema.FilePolicy
				}
				listed.Files = append(listed.Files, schema.TreeFile{Path: p, Target: p, Kind: kind})
			}
		}
		return listed, nil
	}
	// The shape reads no content: unchanged files stay unread.
	shape := t.Shape()
	root := l.root
	if root == "" {
		root = "."
	}
	if _, err := fs.Stat(shape, root); err != nil {
		return &schema.Listing{}, nil // no such folder in this revision: no entities
	}
	listed, err := schema.ListTree(ctx, shape, root)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	return listed, nil
}

// oversize returns the result of the entity file p of t when it is over
// the size limit, known from the listing or the object store without
// reading it (issue 16 items 5 and 9).
func oversize(t *source.Tree, p string) (*schema.FileResult, bool) {
	fi, err := t.Stat(p)
	if err != nil || fi.Size() <= schema.MaxFileSize {
		return nil, false
	}
	return &schema.FileResult{Path: p, Problems: schema.ErrorList{{
		Severity: schema.SeverityError, Pos: schema.Pos{File: p},
		Msg: fmt.Sprintf("file is %d bytes; files are limited to %d (it is not read)", fi.Size(), schema.MaxFileSize),
	}}}, true
}
