package certcheck

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	// zlint's root package registers every lint in the global registry.
	_ "github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// This file is the only one that imports zlint (STYLE.md: one package per
// heavy library).

// privateSources are the lint sources that hold for any X.509 certificate;
// the CA/B Forum and root program lints are for publicly trusted ones.
var privateSources = lint.SourceList{lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC8813}

// lintSet is the certificate lints of one zlint registry, listed once:
// zlint's LintCertificateEx lists, sorts and maps the registry's names on
// every call, which cost a fifth of the lint time of a leaf. Running each
// lint's Execute with the registry's configuration is what
// LintCertificateEx does, minus that bookkeeping.
type lintSet struct {
	lints  []*lint.CertificateLint
	config lint.Configuration
}

func newLintSet(reg lint.Registry) lintSet {
	return lintSet{lints: reg.CertificateLints().Lints(), config: reg.GetConfiguration()}
}

// lintSets returns the lints for publicly and privately trusted leaves,
// filtered once per process.
var lintSets = sync.OnceValues(func() (lintSet, lintSet) {
	global := lint.GlobalRegistry()
	var public []string
	for _, n := range global.Names() {
		// The lifetime limits of SC-081 are lifetime_public's and
		// lifetime_private's, which report them with their severity.
		if !strings.Contains(n, "_valid_time_longer_than_") {
			public = append(public, n)
		}
	}
	pub, err := global.Filter(lint.FilterOptions{IncludeNames: public})
	if err != nil {
		pub = global
	}
	priv, err := global.Filter(lint.FilterOptions{IncludeSources: privateSources})
	if err != nil {
		priv = global
	}
	return newLintSet(pub), newLintSet(priv)
})

// lintResult is one lint that did not pass.
type lintResult struct {
	name        string
	description string
	status      lintStatus
	details     string
}

// lintStatus is zlint's verdict of a lint, for the files beside this one
// (which do not import zlint).
type lintStatus = lint.LintStatus

// runLints runs zlint on leaf: every lint for a publicly trusted leaf, the
// RFC lints for a private one. It returns the lints that reported a
// warning, an error or a fatal result, sorted by name.
func runLints(leaf *x509.Certificate, public bool) ([]lintResult, error) {
	key := lintKey{sum: sha256.Sum256(leaf.Raw), public: public}
	if res, ok := lints.get(key, time.Now()); ok {
		return res, nil
	}
	res, err := lintLeaf(leaf, public)
	if err == nil {
		lints.put(key, res, time.Now())
	}
	return res, err
}

// lintLeaf is runLints without the cache.
func lintLeaf(leaf *x509.Certificate, public bool) ([]lintResult, error) {
	zc, err := zx509.ParseCertificate(leaf.Raw)
	if err != nil {
		return nil, fmt.Errorf("zlint cannot parse the leaf: %w", err)
	}
	pub, priv := lintSets()
	set := priv
	if public {
		set = pub
	}
	var out []lintResult
	for _, l := range set.lints {
		// Execute applies zlint's own filters first (the framework's
		// source filter, CheckApplies, the effective dates), so a lint
		// that cannot apply costs a test, not a run.
		if res := l.Execute(zc, set.config); res.Status >= lint.Warn {
			out = append(out, lintResult{name: l.Name, description: l.Description, status: res.Status, details: res.Details})
		}
	}
	slices.SortFunc(out, func(a, b lintResult) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// lints caches the results of runLints by leaf, for the process: a leaf
// served by many entities (a wildcard), a file validated again after an
// edit that kept its certificate, or every entity again under a new
// policy (results do not depend on the policy, which only weighs them in
// checkLints) is linted once. zlint's lints are functions of the
// certificate, except two of the public set that read the clock for the
// list of top-level domains
// (e_sub_cert_aia_contains_internal_names and its S/MIME twin), so a
// public leaf's results hold for the UTC day they were made on only. Its
// entries hold no certificate, only the results (most leaves have none
// or one). A [LintStore] keeps them in a file across restarts.
var lints = &lintCache{}

// lintCacheMax bounds the cache, above the 100,000 leaves a daemon is
// measured with; when it is full it starts again empty.
const lintCacheMax = 1 << 17

type lintKey struct {
	sum    [sha256.Size]byte // of the leaf's DER
	public bool              // the lint set: publicly or privately trusted
}

// lintEntry is the results of one leaf and, for the public set, the UTC
// day they hold for (0 for the private set, whose lints read no clock).
type lintEntry struct {
	day int64
	res []lintResult // read-only once stored
}

// heldEntry is a lintEntry as the cache holds it, without pointers (the
// collector does not scan the map): its results are an index of the
// cache's distinct result lists, which most leaves of a repository share
// (none, or the same warning).
type heldEntry struct {
	day int32  // UTC days fit until the year 5 million
	res uint32 // index of lintCache.results
}

// lintCache is safe for concurrent use.
type lintCache struct {
	mu sync.Mutex // guards the fields below
	m  map[lintKey]heldEntry
	// results are the distinct result lists of m's entries, found by
	// their encoding in ids; results[0] is no result.
	results [][]lintResult
	ids     map[string]uint32
	// order lists the keys of m as they were stored (a key again when its
	// entry was replaced) since the last Save: the keys a LintStore has
	// not written yet. base is the number stored before order[0] in this
	// epoch, so that base+i counts order[i] among all stored; a Save drops
	// what it wrote (trim), which kept 3.3 MB of keys for 100,000 leaves.
	order []lintKey
	base  int
	// epoch counts the times m started again empty, which makes a
	// LintStore rewrite its file rather than append to it.
	epoch int
}

func (c *lintCache) get(k lintKey, now time.Time) ([]lintResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entry(k)
	if !ok || (k.public && e.day != utcDay(now)) {
		return nil, false
	}
	return e.res, true
}

// entry returns the entry of k; c.mu is held.
func (c *lintCache) entry(k lintKey) (lintEntry, bool) {
	h, ok := c.m[k]
	if !ok {
		return lintEntry{}, false
	}
	e := lintEntry{day: int64(h.day)}
	if h.res != 0 { // 0 is no result, and results is nil until a leaf has one
		e.res = c.results[h.res]
	}
	return e, true
}

func (c *lintCache) put(k lintKey, res []lintResult, now time.Time) {
	var day int64
	if k.public {
		day = utcDay(now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.store(k, lintEntry{day: day, res: res})
}

// store adds an entry; c.mu is held.
func (c *lintCache) store(k lintKey, e lintEntry) {
	switch {
	case c.m == nil:
		c.m = make(map[lintKey]heldEntry)
	case len(c.m) >= lintCacheMax || len(c.results) >= lintCacheMax:
		// (results keeps the lists of replaced entries too)
		c.m, c.order, c.base, c.results, c.ids = make(map[lintKey]heldEntry), nil, 0, nil, nil
		c.epoch++
	}
	c.m[k] = heldEntry{day: int32(e.day), res: c.resultsID(e.res)}
	c.order = append(c.order, k)
}

// resultsID returns the index of res in c.results, adding it when it is
// new; c.mu is held.
func (c *lintCache) resultsID(res []lintResult) uint32 {
	if len(res) == 0 {
		return 0
	}
	if c.results == nil {
		c.results, c.ids = [][]lintResult{nil}, map[string]uint32{}
	}
	var b []byte
	for _, r := range res {
		b = fmt.Appendf(b, "%s\x00%s\x00%d\x00%s\x00", r.name, r.description, r.status, r.details)
	}
	if id, ok := c.ids[string(b)]; ok {
		return id
	}
	id := uint32(len(c.results))
	c.results = append(c.results, res)
	c.ids[string(b)] = id
	return id
}

// reset empties the cache.
func (c *lintCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.order, c.base, c.results, c.ids = nil, nil, 0, nil, nil
	c.epoch++
}

// stored returns how many keys were stored in this epoch; c.mu is held.
func (c *lintCache) stored() int { return c.base + len(c.order) }

// since returns the keys stored after the first n of this epoch, or
// false when some of them were trimmed; c.mu is held.
func (c *lintCache) since(n int) ([]lintKey, bool) {
	if n < c.base {
		return nil, false
	}
	return c.order[n-c.base:], true
}

// trim drops the keys stored before the first n of this epoch, which a
// LintStore has written; c.mu is held.
func (c *lintCache) trim(n int) {
	if n <= c.base {
		return
	}
	if rest := c.order[n-c.base:]; len(rest) > 0 {
		c.order = slices.Clone(rest)
	} else {
		c.order = nil
	}
	c.base = n
}

func utcDay(t time.Time) int64 { return t.Unix() / 86400 }

// checkLints reports zlint's warnings and errors on leaf with the lint's
// name and description.
func checkLints(r *report, leaf *x509.Certificate, public bool) {
	results, err := runLints(leaf, public)
	if err != nil {
		r.add(LintError, "%v", err)
		return
	}
	for _, l := range results {
		check := LintWarning
		switch {
		case l.status >= lint.Error:
			check = LintError
		case !public:
			check = LintPrivateWarning
		}
		msg := fmt.Sprintf("zlint %s: %s", l.name, strings.TrimSuffix(l.description, "."))
		if l.details != "" {
			msg += " (" + strings.TrimSuffix(l.details, ".") + ")"
		}
		r.add(check, "%s", msg)
	}
}
