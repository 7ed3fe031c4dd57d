package reconciler

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"

	"certops/gateway"
	"certops/plan"
	"certops/schema"
)

// Resolver returns the value of a secret reference as written in an entity
// file ("$env://NAME", "$secret://vault/..."). The secrets package
// implements it. If the Resolver also has a method `Stale(ref string)
// error`, a non-nil result marks the entities that use ref as degraded.
type Resolver interface {
	Resolve(ctx context.Context, ref string) ([]byte, error)
}

// ErrNoResolver is the (retryable) error of a secret reference when
// Options.Secrets is nil.
var ErrNoResolver = errors.New("no secret resolver configured")

// Staler is a Resolver that knows when a value it returns may be out of
// date (its last refresh failed and the cached value is served).
type Staler interface {
	// Stale returns why the value of ref may be out of date, or nil. The
	// entities that use ref are listed as degraded in the status.
	Stale(ref string) error
}

// Retainer is a Resolver that caches values and can forget them.
type Retainer interface {
	// Retain is called after each applied revision with every reference
	// it uses; the Resolver may forget (and stop refreshing) the others.
	Retain(refs []string)
}

// built is an entity turned into gateway input. It is kept for as long
// as the entity is applied unchanged, so it holds little: the entity, at
// rest once its load is (ref), and the digest it was built from, and the
// rest (see builtMore) only where there is any. Its description is in the
// applied state (see infoOf).
type built struct {
	// entity is the entity while its load is live, and for good when its
	// facts may change (schema.Results.Freeze keeps it live); nil once
	// ref holds it at rest (rest).
	entity *schema.Entity
	ref    schema.EntityRef
	more   *builtMore        // nil for an applied entity with no client CA, reference or kept chains
	key    [sha256.Size]byte // digest of the source position, content and secret values it was built from; last, not scanned
}

// name returns the name of b's entity, without thawing it.
func (b *built) name() string {
	if b.entity != nil {
		return b.entity.Name
	}
	return b.ref.Name()
}

// disabled reports whether b's entity is disabled, without thawing it.
func (b *built) disabled() bool {
	if b.entity != nil {
		return b.entity.Disabled
	}
	return b.ref.Disabled()
}

// ent returns b's entity: the live one, or one thawed from its rest (its
// own copy, about 190 ns).
func (b *built) ent() *schema.Entity {
	if b.entity != nil {
		return b.entity
	}
	return b.ref.Entity()
}

// of reports whether b was built from the entity e, whose reference is
// ref (zero for a live one): the same entity, unchanged.
func (b *built) of(e *schema.Entity, ref schema.EntityRef) bool {
	if b.entity != nil {
		return b.entity == e
	}
	return !ref.IsZero() && b.ref == ref
}

// rest makes b hold its entity at rest where a freeze put it (moves),
// and reports whether b holds a new reference.
func (b *built) rest(moves *schema.Moves) bool {
	if b.entity != nil {
		ref, ok := moves.Live(b.entity)
		if ok {
			b.entity, b.ref = nil, ref
		}
		return ok
	}
	ref, ok := moves.Moved(b.ref)
	if ok {
		b.ref = ref
	}
	return ok
}

// builtMore is what few builds have: a client CA pool, secret references,
// a copy of the chains (when the gateway does not give them back, see
// chainServer, or does not serve the entity, a disabled one), and, until
// its first Apply, what a new build hands over.
type builtMore struct {
	clientCAs *x509.CertPool
	chains    []tls.Certificate // without leaves; nil when the gateway gives them back
	refs      []string
	// leaves are the chains with their parsed leaves and keys, for the
	// first Apply only (see gatewayConfig).
	leaves []tls.Certificate
	// fresh is the description of a new build, until it is planned and
	// applied; then the applied state's infos hold it.
	fresh *plan.EntityInfo
}

// newBuilt returns the build of e, of reference ref (zero for a live
// entity), with what it needs beyond its entity.
func newBuilt(e *schema.Entity, ref schema.EntityRef, key [sha256.Size]byte, m builtMore) *built {
	b := &built{entity: e, key: key}
	if !ref.IsZero() {
		b.entity, b.ref = nil, ref
	}
	if !m.empty() {
		b.more = &m
	}
	return b
}

// packBuilds moves the new builds of jobs into one allocation: a build
// lives as long as its entity is unchanged, and 10,000 builds of a start
// were 10,000 small objects for every garbage collection to mark, each
// pinning a span among the start's garbage (issue 13). The slab stays
// alive while any of its builds does: at most one start's worth (48 bytes
// a build) more.
func packBuilds(jobs []*buildJob) {
	n := 0
	for _, j := range jobs {
		if j.out != nil && j.out != j.applied {
			n++
		}
	}
	if n < 2 {
		return
	}
	slab := make([]built, 0, n)
	for _, j := range jobs {
		if j.out != nil && j.out != j.applied {
			slab = append(slab, *j.out)
			j.out = &slab[len(slab)-1]
		}
	}
}

func (m *builtMore) empty() bool {
	return m.clientCAs == nil && m.chains == nil && m.refs == nil && m.leaves == nil && m.fresh == nil
}

func (b *built) refs() []string {
	if b.more == nil {
		return nil
	}
	return b.more.refs
}

// fresh returns the description of a new build, until it is handed over.
func (b *built) fresh() *plan.EntityInfo {
	if b.more == nil {
		return nil
	}
	return b.more.fresh
}

// infoOf returns the description of b: its own while it is new, else the
// applied state's, which has every entity of r.applied.built.
func (r *Reconciler) infoOf(b *built) plan.EntityInfo {
	if f := b.fresh(); f != nil {
		return *f
	}
	if a := r.applied; a != nil {
		if info, ok := a.infos.Lookup(b.name()); ok {
			return info
		}
	}
	return plan.Describe(b.ent(), nil) // not reached: a build is new or applied
}

// gatewayEntity is the gateway input of b, without chains.
func (b *built) gatewayEntity() gateway.Entity {
	e := b.ent()
	minV, maxV := tlsVersions(e.Protocols)
	var pool *x509.CertPool
	if b.more != nil {
		pool = b.more.clientCAs
	}
	return gateway.Entity{
		Name:        e.Name,
		Client:      e.Type == schema.TypeClient,
		SNIs:        e.SNIs,
		ClientCAs:   pool,
		ClientDepth: e.ClientDepth,
		MinVersion:  minV,
		MaxVersion:  maxV,
	}
}

// chainServer is an Applier that gives back the chains it serves, without
// their keys ([gateway.Server.ServedChains]): the reconciler then keeps no
// copy of the certificates of an applied entity, only the gateway does.
type chainServer interface {
	ServedChains(name string) ([]tls.Certificate, bool)
}

var _ chainServer = (*gateway.Server)(nil)

// gatewayConfig is the gateway input of desired: its enabled entities.
// An entity built anew hands the gateway its parsed leaves and keys, once:
// they are dropped here, so that only the gateway's compact copy outlives
// the Apply. An entity applied before is given without keys, which the
// gateway keeps for the leaves it serves, and with the chains the gateway
// serves (from served, the Applier as a chainServer, when it is one):
// applied is what it serves, as Apply is all or nothing and the reconciler
// its only caller. Should it refuse a Config all the same, the next build
// parses every entity again (rebuild). A disabled entity, never served,
// keeps its keys.
func gatewayConfig(desired []*built, served chainServer) gateway.Config {
	cfg := gateway.Config{Entities: make([]gateway.Entity, 0, len(desired))}
	for _, b := range desired {
		if gw, ok := b.handOver(served); ok {
			cfg.Entities = append(cfg.Entities, gw)
		}
	}
	return cfg
}

// handOver returns the gateway input of b, planned by now, and false for a
// disabled entity, which is not served. A build made anew hands over its
// parsed leaves and keys, once; an applied one its chains, or the ones
// served gives back (see gatewayConfig).
func (b *built) handOver(served chainServer) (gateway.Entity, bool) {
	m := b.more
	if m == nil {
		m = &builtMore{}
	}
	defer func() {
		// Handed over: what is left is kept, if anything.
		if m.empty() {
			b.more = nil
		}
	}()
	m.fresh = nil // the description is in the desired state
	if b.disabled() {
		m.leaves = nil // its chains keep the keys, not the leaves
		return gateway.Entity{}, false
	}
	gw := b.gatewayEntity()
	switch {
	case m.leaves != nil:
		gw.Chains = m.leaves
		m.leaves = nil
	case m.chains != nil:
		gw.Chains = m.chains
	case served != nil:
		// Not served, it goes without chains and the gateway refuses
		// the Config, which makes the next build parse every entity
		// again.
		gw.Chains, _ = served.ServedChains(gw.Name)
	}
	return gw, true
}

// build resolves each entity's secret references and turns it into gateway
// input, reusing what the previous revision built when the entity's
// source and secret values are unchanged. A failure to resolve is
// retryable; a resolved value that is not valid material stalls.
//
// The references are resolved first, in entity order, by this goroutine
// (a Resolver need not be safe for concurrent use); the entities to build
// anew then parse their material on every CPU (buildJob.run), which is
// most of what a cold start's resolve costs; the results are assembled in
// entity order, so the outcome does not depend on the schedule.
//
// refs are the references of the entities at rest, by index (zero for a
// live one; nil when none is at rest).
func (r *Reconciler) build(ctx context.Context, entities []*schema.Entity, refs []schema.EntityRef) (out []*built, degraded []Degraded, unresolved, invalid schema.ErrorList) {
	values := make(map[string][]byte)
	resolveErr := make(map[string]error)
	resolve := func(ref string) ([]byte, error) {
		if v, ok := values[ref]; ok {
			return v, nil
		}
		if err, ok := resolveErr[ref]; ok {
			return nil, err
		}
		var v []byte
		var err error
		if r.opts.Secrets == nil {
			err = ErrNoResolver
		} else {
			v, err = r.opts.Secrets.Resolve(ctx, ref)
		}
		if err != nil {
			resolveErr[ref] = err
			return nil, err
		}
		values[ref] = v
		return v, nil
	}
	var stale Staler
	if s, ok := r.opts.Secrets.(Staler); ok {
		stale = s
	}
	var old map[string]*built
	if r.applied != nil && !r.rebuild {
		old = r.applied.built
	}
	r.rebuild = false
	// slots holds, in entity order, a reused build or one to make.
	type slot struct {
		b   *built    // reused
		job *buildJob // or made
	}
	slots := make([]slot, 0, len(entities))
	var jobs []*buildJob
	for i, e := range entities {
		var ref schema.EntityRef
		if refs != nil {
			ref = refs[i]
		}
		// An entity from a cached file result is the one applied (the
		// same pointer, or the same reference at rest): without
		// references, nothing about it can differ.
		if b, ok := old[e.Name]; ok && b.of(e, ref) && len(b.refs()) == 0 {
			slots = append(slots, slot{b: b})
			continue
		}
		refs := references(e)
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", e.Pos, e.Name, e.Hash)
		var failed bool
		for _, ref := range refs {
			v, err := resolve(ref)
			if err != nil {
				// err names ref (secrets.ReferenceError): once is enough.
				unresolved = append(unresolved, &schema.Error{Pos: e.Pos, Msg: fmt.Sprintf("entity %s: %v", e.Name, err)})
				failed = true
				continue
			}
			// The digest of secret values stays in memory and only tells
			// whether a value changed.
			fmt.Fprintf(h, "%s\x00%d\x00%s\x00", ref, len(v), v)
			if stale != nil {
				if err := stale.Stale(ref); err != nil {
					degraded = append(degraded, Degraded{Entity: e.Name, Reason: fmt.Sprintf("%s: %v", ref, err), Served: true})
				}
			}
		}
		if failed {
			continue
		}
		var key [sha256.Size]byte
		h.Sum(key[:0])
		if b, ok := old[e.Name]; ok && b.key == key {
			slots = append(slots, slot{b: b})
			continue
		}
		j := &buildJob{e: e, ref: ref, key: key, refs: refs}
		if b, ok := r.appliedBuild(e.Name); ok && b.of(e, ref) {
			j.applied = b
		}
		jobs = append(jobs, j)
		slots = append(slots, slot{job: j})
	}
	// Every reference of a job resolved above: from here values is only
	// read, by the builds running at once.
	lookup := func(v string) ([]byte, error) {
		if !schema.IsReference(v) {
			return []byte(v), nil
		}
		if b, ok := values[v]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s: not resolved", v) // not reached: a job's references resolved
	}
	_, keepChains := r.opts.Gateway.(chainServer)
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		g.Go(func() error {
			j.run(lookup, !keepChains)
			return nil
		})
	}
	g.Wait()
	packBuilds(jobs)
	for _, j := range jobs {
		if j.out != nil && j.out.entity != nil {
			r.live = append(r.live, j.out) // its entity goes to rest with its load (restBuilds)
		}
	}
	for _, s := range slots {
		switch j := s.job; {
		case j == nil:
			out = append(out, s.b)
		case j.err != nil:
			pos := j.e.Pos // the entity's document; the field at fault when Material names it
			if me := (*schema.MaterialError)(nil); errors.As(j.err, &me) {
				pos = me.Pos
			}
			invalid = append(invalid, &schema.Error{Pos: pos, Msg: j.err.Error()})
		default:
			out = append(out, j.out)
		}
	}
	return out, degraded, unresolved, invalid
}

// buildJob is an entity of build to build anew, with what it is built
// into: out, or err for material that is not valid.
type buildJob struct {
	e       *schema.Entity
	ref     schema.EntityRef // of e at rest; zero for a live entity
	key     [sha256.Size]byte
	refs    []string
	applied *built // the applied build of the same entity, if any

	out *built
	err error
}

// run parses j's material with values, which it only reads, and
// describes it; copyChains keeps a copy of the chains without their
// leaves (see below). It is safe to run jobs of distinct entities at once.
func (j *buildJob) run(values schema.Values, copyChains bool) {
	e := j.e
	m, err := e.Material(values)
	if j.applied != nil && errors.Is(err, schema.ErrFileChanged) {
		// A lean entity of the applied revision rebuilt after its file
		// changed (a refused revision meanwhile): the gateway serves its
		// applied build, which stays good.
		j.out = j.applied
		return
	}
	if err != nil {
		j.err = err
		return
	}
	info := plan.Describe(e, m)
	if schema.IsReference(e.ClientCA) {
		// The pool does not give its certificates back: describe the
		// resolved bundle, so that a rotated client CA shows in plans.
		if v, err := values(e.ClientCA); err == nil {
			info.ClientCA = plan.DescribeCAs(v, e.ClientCA)
		}
	}
	// The material is ours (the entity no longer holds it). Its parsed
	// leaves and keys go to the next Apply only, so the gateway need not
	// parse them again; the copy kept for later Applies has neither:
	// parsed certificates and keys kept here would be the pointer-dense
	// heap DESIGN.md 8 warns about, the gateway checks unchanged leaves
	// without parsing them, and a chain it serves already keeps its key
	// without being given it again.
	//
	// When the gateway gives its chains back (chainServer), an enabled
	// entity keeps no copy of its certificates either.
	var chains []tls.Certificate
	if copyChains || e.Disabled {
		chains = slices.Clone(m.Chains)
		for i := range chains {
			chains[i].Leaf = nil
			if !e.Disabled {
				chains[i].PrivateKey = nil
			}
		}
	}
	j.out = newBuilt(e, j.ref, j.key, builtMore{
		clientCAs: m.ClientCAs,
		chains:    chains,
		refs:      j.refs,
		leaves:    m.Chains,
		fresh:     &info,
	})
}

// references lists the secret references of an entity, as written.
func references(e *schema.Entity) []string {
	var refs []string
	add := func(v string) {
		if schema.IsReference(v) && !slices.Contains(refs, v) {
			refs = append(refs, v)
		}
	}
	for _, c := range e.Chains {
		add(c.Cert)
		add(c.Key)
	}
	add(e.ClientCA)
	return refs
}

func sameBuild(old map[string]*built, desired []*built) bool {
	if len(old) != len(desired) {
		return false
	}
	for _, b := range desired {
		if o, ok := old[b.name()]; !ok || o.key != b.key {
			return false
		}
	}
	return true
}

// tlsVersions maps ssl_protocols to the gateway's version bounds; an empty
// list means TLS 1.2 and 1.3.
func tlsVersions(protocols []string) (min, max uint16) {
	for _, p := range protocols {
		v := uint16(tls.VersionTLS12)
		if p == "TLSv1.3" {
			v = tls.VersionTLS13
		}
		if min == 0 || v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	return min, max
}
