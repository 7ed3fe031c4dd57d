package certcheck

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Entity is what the checks need of an SSL entity: its name, its role and
// its parsed chains. It holds no private key.
type Entity struct {
	Name string
	// Client is true for a client entity (presented to an upstream), whose
	// leaf needs clientAuth instead of serverAuth.
	Client bool
	Chains []Chain
}

// Chain is one parsed certificate chain as written, leaf first.
type Chain struct {
	// Field is the entity field holding the chain: "cert" or "certs[i]".
	Field string
	Certs []*x509.Certificate
}

// Options configure a Checker.
type Options struct {
	// Public holds the publicly trusted roots; nil is the system's
	// (SystemRoots: the embedded Mozilla set on a machine without any).
	Public *x509.CertPool
	// Private holds the private roots: --roots files and a repository's
	// *.roots.pem. A chain to one of them is privately trusted.
	Private []*x509.Certificate
	// Policy tunes the severity of each check; nil is the defaults.
	Policy Policy
	// Now returns the time that chains are verified at; nil is time.Now.
	Now func() time.Time
}

// Checker runs the hygiene checks. It is immutable and safe for concurrent
// use.
type Checker struct {
	public  *x509.CertPool
	private *x509.CertPool
	// publicSubjects holds the raw subjects of the public roots, or nil
	// where the platform verifies the system roots (publicCandidate).
	publicSubjects map[string]bool
	policy         Policy
	now            func() time.Time
}

// New returns a Checker for opts.
func New(opts Options) *Checker {
	c := &Checker{public: opts.Public, policy: opts.Policy, now: opts.Now}
	if c.public == nil {
		c.public = SystemRoots()
	}
	c.publicSubjects = poolSubjects(c.public)
	if len(opts.Private) > 0 {
		c.private = Pool(opts.Private)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Policy returns the checker's policy.
func (c *Checker) Policy() Policy { return c.policy }

// report collects the findings of one chain under a policy.
type report struct {
	policy   Policy
	entity   string
	field    string
	findings []Finding
}

func (r *report) add(check Check, format string, args ...any) {
	sev := r.policy.Severity(check)
	if sev == SeverityOff {
		return
	}
	r.findings = append(r.findings, Finding{Check: check, Severity: sev, Entity: r.entity, Field: r.field,
		Message: fmt.Sprintf(format, args...)})
}

// Entity runs the checks of one entity's chains: structure and trust,
// weak material, extended key usage, lifetime and zlint on each leaf.
// Findings come in chain order, then in the order of Checks.
func (c *Checker) Entity(e Entity) []Finding {
	out, _ := c.EntityTrust(e)
	return out
}

// EntityTrust is Entity, and also the trust verdict of each chain (as
// Trust gives it), in the order of e.Chains: the one verification serves
// both, so a description need not verify the chain again.
func (c *Checker) EntityTrust(e Entity) ([]Finding, []Trust) {
	var out []Finding
	verdicts := make([]Trust, len(e.Chains))
	now := c.now()
	for i, ch := range e.Chains {
		if len(ch.Certs) == 0 {
			continue
		}
		r := &report{policy: c.policy, entity: e.Name, field: ch.Field}
		leaf := ch.Certs[0]
		t := c.checkChain(r, ch.Certs, now)
		verdicts[i] = t.verdict()
		c.checkWeak(r, ch.Certs)
		checkEKU(r, leaf, e.Client)
		if msg, over := lifetimeMessage(leaf.NotBefore, leaf.NotAfter); over && !e.Client {
			if t == trustPublic {
				r.add(LifetimePublic, "%s", msg)
			} else {
				r.add(LifetimePrivate, "%s", msg)
			}
		}
		checkLints(r, leaf, t == trustPublic)
		out = append(out, r.findings...)
	}
	return out, verdicts
}
