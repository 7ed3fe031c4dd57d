package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/plan"
	"certops/source"
)

// TestProverVerifiesServedState: every SNI, a probe name under the
// wildcard and each chain type of a dual-stack entity are served with the
// applied leaves; a wrong expectation is reported as a mismatch.
func TestProverVerifiesServedState(t *testing.T) {
	ca := fixtures.NewRootCA(t, "proof CA")
	gw := startGateway(t, ca)
	ecdsa := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.test", "*.shop.test"}, Key: fixtures.ECDSA})
	rsa := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.test", "*.shop.test"}, Key: fixtures.RSA})
	mtls := ca.Server(t, "mtls.test")
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test", "*.shop.test"}, Chains: []*fixtures.Leaf{ecdsa, rsa}}),
		"mtls.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "mtls", SNIs: []string{"mtls.test"}, Chains: []*fixtures.Leaf{mtls}, ClientCA: ca}),
	})
	src, err := source.NewDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []Proof
	prover := NewProver(gw.addr, nil, func(p Proof) { got = append(got, p) })
	r := New(Options{Source: src, Gateway: gw, Sinks: []Sink{prover}})
	wantResult(t, reconcileNow(t, r), ResultApplied)
	prover.Wait(context.Background())
	p := prover.Result()
	// shop: 2 SNIs × (any + ECDSA + RSA) = 6; mtls, of one chain: 1 × any = 1.
	if !p.Verified || p.Probes != 7 || len(p.Mismatches) != 0 || len(got) != 1 {
		t.Fatalf("proof = %+v (%d calls), want verified with 7 probes", p, len(got))
	}

	// The same probes against an expectation the gateway does not serve.
	infos := r.Entities()
	infos[1].Chains[1].Fingerprint = "00"
	rev := &AppliedRevision{Revision: "x", Infos: plan.NewSet(infos), Plan: plan.Diff(nil, infos)} // every entity created
	prover.Apply(context.Background(), rev)
	prover.Wait(context.Background())
	p = prover.Result()
	if p.Verified || len(p.Mismatches) != 2 {
		t.Fatalf("proof with a wrong RSA leaf = %+v, want 2 mismatches (the RSA probe of each SNI)", p)
	}
	if m := p.Mismatches[0]; m.Entity != "shop" || m.SNI != "shop.test (rsa)" || m.Got != fingerprint(rsa) {
		t.Errorf("mismatch = %+v, want shop, shop.test (rsa), got the RSA leaf", m)
	}
}

func fingerprint(l *fixtures.Leaf) string {
	sum := sha256.Sum256(l.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// TestProofOutOfTime: a gateway that accepts and never answers holds
// each probe; when the proof's time is up the result says not verified,
// instead of keeping the last one.
func TestProofOutOfTime(t *testing.T) {
	defer func(d, p time.Duration) { proofTimeout, probeTime = d, p }(proofTimeout, probeTime)
	proofTimeout, probeTime = 200*time.Millisecond, 0
	ln := silentGateway(t)
	var infos []plan.EntityInfo
	for _, name := range []string{"a", "b"} {
		infos = append(infos, plan.EntityInfo{Name: name, Type: "server", SNIs: []string{name + ".test"},
			Chains: []plan.ChainInfo{{KeyType: "ECDSA P-256", Fingerprint: "00"}}})
	}
	var logs strings.Builder
	prover := NewProver(ln.Addr().String(), slog.New(slog.NewTextHandler(&logs, nil)), nil)
	start := time.Now()
	prover.Apply(t.Context(), &AppliedRevision{Revision: "r", Infos: plan.NewSet(infos), Plan: plan.Diff(nil, infos)})
	prover.Wait(t.Context())
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the proof took %v, want it ended by its limit (200ms)", took)
	}
	p := prover.Result()
	if p.Revision != "r" || p.Verified || p.Probes != 2 || len(p.Mismatches) == 0 {
		t.Errorf("proof = %+v, want revision r not verified, 2 probes, the cut ones as mismatches", p)
	}
	if !strings.Contains(logs.String(), "served state not verified in time") {
		t.Errorf("log %q does not say the proof ran out of time", logs.String())
	}
}

// TestProbesStream: the proof lists its probes as it runs them (probes),
// in Probes' order, and stops listing when asked to.
func TestProbesStream(t *testing.T) {
	var infos []plan.EntityInfo
	for _, name := range []string{"a", "b", "c"} {
		infos = append(infos, plan.EntityInfo{Name: name, Type: "server", SNIs: []string{name + ".test", "*." + name + ".test"},
			Chains: []plan.ChainInfo{{KeyType: "ECDSA P-256", Fingerprint: "00"}}})
	}
	rev := &AppliedRevision{Revision: "r", Infos: plan.NewSet(infos), Plan: plan.Diff(nil, infos)}
	all := Probes(rev)
	if len(all) != 6 || all[1].ServerName != ProbeName+".a.test" {
		t.Fatalf("Probes = %+v, want 2 per entity, the wildcard's under its probe name", all)
	}
	var got []string
	for p := range probes(rev.Infos, changedNames(rev.Plan)) {
		got = append(got, p.ServerName)
		if len(got) == 3 {
			break
		}
	}
	if want := []string{all[0].ServerName, all[1].ServerName, all[2].ServerName}; !slices.Equal(got, want) {
		t.Errorf("probes, stopped after 3 = %v, want %v", got, want)
	}
}

// TestProofDropsThePlan: while its handshakes run, a proof keeps the
// names it probes, not the revision's plan, which describes every entity
// a cold start creates and which the reconciler drops once every sink
// has it.
func TestProofDropsThePlan(t *testing.T) {
	ln := silentGateway(t)
	infos := []plan.EntityInfo{{Name: "a", Type: "server", SNIs: []string{"a.test"},
		Chains: []plan.ChainInfo{{KeyType: "ECDSA P-256", Fingerprint: "00"}}}}
	prover := NewProver(ln.Addr().String(), nil, nil)
	collected := make(chan struct{})
	func() {
		p := plan.Diff(nil, infos)
		runtime.AddCleanup(p, func(c chan struct{}) { close(c) }, collected)
		prover.Apply(t.Context(), &AppliedRevision{Revision: "r", Infos: plan.NewSet(infos), Plan: p})
	}()
	deadline := time.After(5 * time.Second)
	for done := false; !done; {
		runtime.GC()
		select {
		case <-collected:
			done = true
		case <-deadline:
			t.Fatal("the plan of the revision being proved was not collected")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if p := prover.Result(); p.Revision != "" {
		t.Fatalf("proof ended early: %+v", p)
	}
	prover.Apply(t.Context(), &AppliedRevision{Revision: "next"}) // cancels the proof in flight
	prover.Wait(t.Context())
}

// silentGateway returns a listener that accepts connections and holds
// them open without a word until the test ends: each probe waits on it.
func silentGateway(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln
}
