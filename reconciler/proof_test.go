package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

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
	// shop: 2 SNIs × (any + ECDSA + RSA) = 6; mtls: 1 × (any + ECDSA) = 2.
	if !p.Verified || p.Probes != 8 || len(p.Mismatches) != 0 || len(got) != 1 {
		t.Fatalf("proof = %+v (%d calls), want verified with 8 probes", p, len(got))
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
