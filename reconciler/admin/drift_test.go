package admin

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"certops/reconciler"
)

// TestDrift checks what --live does not count as drift: material the
// folder names by reference (the daemon resolved it) and the file path
// (the daemon's is relative to its repository root).
func TestDrift(t *testing.T) {
	resolved := reconciler.ChainInfo{Subject: "CN=a", Serial: "1f", NotAfter: time.Unix(2e9, 0).UTC(), KeyType: "ECDSA P-256",
		Fingerprint: "aa", PublicKeyFingerprint: "bb", CertRef: "$env://CERT", KeyRef: "$env://KEY"}
	live := []SSLDoc{
		SSLDocOf(reconciler.EntityInfo{Name: "refs", Type: "server", File: "certs/refs.yaml", SNIs: []string{"a.test"},
			Chains: []reconciler.ChainInfo{resolved}, ClientCA: []reconciler.ChainInfo{{CertRef: "$env://CA"}}}),
		SSLDocOf(reconciler.EntityInfo{Name: "keyref", Type: "server", File: "certs/keyref.yaml", SNIs: []string{"b.test"},
			Chains: []reconciler.ChainInfo{{Subject: "CN=b", Fingerprint: "cc", PublicKeyFingerprint: "dd", KeyRef: "$env://KEY2"}}}),
		SSLDocOf(reconciler.EntityInfo{Name: "changed", Type: "server", File: "certs/changed.yaml", SNIs: []string{"c.test"},
			Chains: []reconciler.ChainInfo{{Subject: "CN=c", Fingerprint: "ee", PublicKeyFingerprint: "ff", CertRef: "$env://OLD", KeyRef: "$env://OLDKEY"}}}),
	}
	local := []reconciler.EntityInfo{
		{Name: "refs", Type: "server", File: "refs.yaml", SNIs: []string{"a.test"},
			Chains: []reconciler.ChainInfo{{CertRef: "$env://CERT", KeyRef: "$env://KEY"}}, ClientCA: []reconciler.ChainInfo{{CertRef: "$env://CA"}}},
		{Name: "keyref", Type: "server", File: "keyref.yaml", SNIs: []string{"b.test"},
			Chains: []reconciler.ChainInfo{{Subject: "CN=b", Fingerprint: "cc", KeyRef: "$env://KEY2"}}},
		{Name: "changed", Type: "server", File: "changed.yaml", SNIs: []string{"c.test"},
			Chains: []reconciler.ChainInfo{{CertRef: "$env://NEW", KeyRef: "$env://OLDKEY"}}},
	}
	plan := Drift(live, local)
	var got []string
	for _, c := range plan.Changes {
		for _, f := range c.Fields {
			got = append(got, c.Name+" "+f.Field)
		}
	}
	if diff := cmp.Diff([]string{"changed cert"}, got); diff != "" {
		t.Errorf("Drift changes (-want +got):\n%s\nplan:\n%s", diff, plan)
	}
	if plan.Summary != (reconciler.Summary{Update: 1, Unchanged: 2}) {
		t.Errorf("Drift summary = %+v, want 1 update, 2 unchanged", plan.Summary)
	}
}
