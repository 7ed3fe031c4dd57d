package reconciler

import (
	"context"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"certops/gateway"
	"certops/plan"
)

// Prover is the served-state proof (DESIGN.md 9) as a [Sink]: after each
// applied revision it makes real loopback handshakes with the gateway for
// every entity the revision created or updated (each SNI; a probe name
// under each wildcard; see [Probes]) and compares the
// served leaf with the applied one. It never fails the revision: the
// result is reported by Result, for the status, a metric and the fleet
// record. The handshakes run in the background, so the reconcile does
// not wait for them. Safe for concurrent use.
type Prover struct {
	addr     string
	log      *slog.Logger
	onResult func(Proof)

	mu     sync.Mutex // guards the fields below
	last   Proof
	cancel context.CancelFunc // of the proof in flight
	done   chan struct{}      // closed when the proof in flight ends
}

// A proof is bounded by proofTimeout and probeTime for each of its
// probes: a cold start of 100,000 entities makes 100,000 probes, which a
// fixed two minutes cut short (the proof never ended, and the node never
// said verified).
var (
	proofTimeout = 2 * time.Minute
	probeTime    = 5 * time.Millisecond
)

// probeBatch is how many probes a proof lists and runs at a time: only
// mismatches are kept, not a result per probe, and the probes of the
// next batch are listed once those of this one have run. A list of all
// of them held 42 MB for 100,000 entities, in the first seconds of
// serving (issue 13).
const probeBatch = 1024

// Proof is the result of the served-state proof of one revision.
type Proof struct {
	Revision   string     `json:"revision"`
	Verified   bool       `json:"verified"`
	Probes     int        `json:"probes"`
	Mismatches []Mismatch `json:"mismatches"`
}

// Mismatch is a name not served with the applied leaf.
type Mismatch struct {
	Entity string `json:"entity"`
	SNI    string `json:"sni"`
	Want   string `json:"want"`
	Got    string `json:"got"` // the served leaf's fingerprint, or why none was seen
}

// ProbeName is the name a wildcard SNI is probed with: one label under it.
const ProbeName = "certops-probe"

// NewProver returns a Prover that dials the gateway at addr (a loopback
// host:port). onResult, when not nil, is called after every proof.
func NewProver(addr string, log *slog.Logger, onResult func(Proof)) *Prover {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Prover{addr: addr, log: log, onResult: onResult}
}

// Result returns the last proof; before the first, Verified is false.
func (p *Prover) Result() Proof {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Apply starts proving the revision served and returns nil at once: the
// handshakes (one per name, three for a dual-stack entity) must not hold
// the reconcile up, and a mismatch is reported, not retried. A proof
// still running for an older revision is cancelled.
func (p *Prover) Apply(ctx context.Context, rev *AppliedRevision) error {
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	// The reconcile's context ends with the reconcile: the proof has its
	// own deadline (prove).
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	p.cancel, p.done = cancel, done
	p.mu.Unlock()
	// The proof keeps the names it probes, not the plan: a cold start's
	// plan describes every entity it creates, field by field (~30 MB for
	// 100,000 entities), and the reconciler drops it once every sink has
	// it (issue 13).
	proved := provedRevision{revision: rev.Revision, infos: rev.Infos, names: changedNames(rev.Plan)}
	go func() {
		defer close(done)
		defer cancel()
		p.prove(pctx, proved)
	}()
	return nil
}

// Wait returns once the proof in flight, if any, has ended, or ctx has.
func (p *Prover) Wait(ctx context.Context) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// provedRevision is what a proof needs of an applied revision.
type provedRevision struct {
	revision string
	infos    *plan.Set
	names    []string // the entities created or updated, in the plan's order
}

// changedNames returns the names of the entities p creates or updates.
func changedNames(p *plan.Plan) []string {
	if p == nil {
		return nil
	}
	var names []string
	for _, c := range p.Changes {
		if c.Action == plan.ActionCreate || c.Action == plan.ActionUpdate {
			names = append(names, c.Name)
		}
	}
	return names
}

func (p *Prover) prove(parent context.Context, rev provedRevision) {
	begin := time.Now()
	proof := Proof{Revision: rev.revision, Verified: true, Mismatches: []Mismatch{}}
	// Each batch may run until proofTimeout plus probeTime for every probe
	// listed so far, this batch's included: the whole proof has the time
	// of its number of probes, which is known once the last is listed.
	limit := func() time.Duration { return proofTimeout + time.Duration(proof.Probes)*probeTime }
	ran := 0
	batch := make([]gateway.Probe, 0, probeBatch)
	run := func() {
		ctx, cancel := context.WithDeadline(parent, begin.Add(limit()))
		defer cancel()
		if ctx.Err() != nil {
			return // out of time: the rest are counted, not run
		}
		ran += len(batch)
		for _, r := range gateway.VerifyServed(ctx, p.addr, batch) {
			if r.OK() {
				continue
			}
			proof.Verified = false
			got := r.Got
			if r.Err != nil {
				got = r.Err.Error()
			}
			sni := r.ServerName
			if r.KeyType != "" {
				sni += " (" + r.KeyType + ")"
			}
			proof.Mismatches = append(proof.Mismatches, Mismatch{Entity: r.Entity, SNI: sni, Want: strings.Join(r.Want, ","), Got: got})
		}
	}
	for pr := range probes(rev.infos, rev.names) {
		if parent.Err() != nil {
			return // superseded by a newer revision, or shut down
		}
		batch = append(batch, pr)
		proof.Probes++
		if len(batch) == probeBatch {
			run()
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		run()
	}
	switch {
	case parent.Err() != nil:
		return // superseded by a newer revision, or shut down
	case ran < proof.Probes || time.Since(begin) > limit() && !proof.Verified:
		// The probes cut short are mismatches ("context deadline
		// exceeded"); those never started are not listed.
		proof.Verified = false
		p.log.Error("served state not verified in time", "revision", rev.revision, "probes", proof.Probes, "limit", limit())
	case proof.Verified:
		p.log.Info("served state verified", "revision", rev.revision, "probes", proof.Probes)
	default:
		p.log.Error("served state differs from the applied revision", "revision", rev.revision, "mismatches", len(proof.Mismatches))
	}
	p.mu.Lock()
	p.last = proof
	p.mu.Unlock()
	if p.onResult != nil {
		p.onResult(proof)
	}
}

// Probes lists the handshakes that prove rev served: for each enabled
// server entity the revision created or updated, one per SNI accepting
// any of its chains, and, for an entity with both an RSA chain and an
// ECDSA or Ed25519 one where TLS 1.2 is allowed, one per SNI and chain
// type asking for that chain. (An entity of one chain type serves the
// same leaf whatever the client asks for: a second probe per name proved
// nothing more, and doubled the proof of a 100,000-entity start.) A
// disabled entity (APISIX status: 0) is not served, and its SNIs may be
// an enabled one's: it is not probed.
func Probes(rev *AppliedRevision) []gateway.Probe {
	return slices.Collect(probes(rev.Infos, changedNames(rev.Plan)))
}

// probes yields the probes of Probes one by one, in the same order, for
// the entities called names.
func probes(infos *plan.Set, names []string) iter.Seq[gateway.Probe] {
	return func(yield func(gateway.Probe) bool) {
		for _, name := range names {
			if !probesOf(infos, name, yield) {
				return
			}
		}
	}
}

// probesOf yields the probes of one entity; false when yield asked to stop.
func probesOf(infos *plan.Set, name string, yield func(gateway.Probe) bool) bool {
	info, ok := infos.Lookup(name)
	if !ok || info.Type == "client" || info.Disabled || len(info.Chains) == 0 {
		return true
	}
	var all []string
	for _, c := range info.Chains {
		all = append(all, c.Fingerprint)
	}
	tls12 := len(info.Protocols) == 0 || slices.Contains(info.Protocols, "TLSv1.2")
	rsa, other := false, false
	for _, c := range info.Chains {
		if chainType(c.KeyType) == "rsa" {
			rsa = true
		} else {
			other = true
		}
	}
	perType := tls12 && rsa && other
	for _, sni := range info.SNIs {
		server := sni // the name the probe sends
		switch {
		case sni == "*":
			server = "" // no SNI reaches the default entity
		case strings.HasPrefix(sni, "*."):
			server = ProbeName + sni[1:]
		}
		if !yield(gateway.Probe{Entity: info.Name, ServerName: server, Want: all}) {
			return false
		}
		if !perType {
			continue
		}
		for _, c := range info.Chains {
			kt := chainType(c.KeyType)
			// ECDSA and Ed25519 chains answer the same TLS 1.2 suites:
			// either passes a probe for one of them.
			var want []string
			for _, o := range info.Chains {
				if ot := chainType(o.KeyType); ot == kt || kt != "rsa" && ot != "rsa" {
					want = append(want, o.Fingerprint)
				}
			}
			if !yield(gateway.Probe{Entity: info.Name, ServerName: server, KeyType: kt, Want: want}) {
				return false
			}
		}
	}
	return true
}

// chainType maps a plan key type ("RSA 2048", "ECDSA P-256", "Ed25519")
// to a probe's.
func chainType(keyType string) string {
	k := strings.ToLower(keyType)
	switch {
	case strings.HasPrefix(k, "rsa"):
		return "rsa"
	case strings.HasPrefix(k, "ecdsa"):
		return "ecdsa"
	case strings.HasPrefix(k, "ed25519"):
		return "ed25519"
	}
	return ""
}
