package admin

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"certops/plan"
)

// TestDrift checks what --live does not count as drift: material the
// folder names by reference (the daemon resolved it) and the file path
// (the daemon's is relative to its repository root).
func TestDrift(t *testing.T) {
	resolved := plan.ChainInfo{Subject: "CN=a", Serial: "1f", NotAfter: time.Unix(2e9, 0).UTC(), KeyType: "ECDSA P-256",
		Fingerprint: "aa", PublicKeyFingerprint: "bb", CertRef: "$env://CERT", KeyRef: "$env://KEY"}
	// live is what `diff --live` reads: the served descriptions after a
	// trip through the admin API's JSON.
	live := wireTrip(t, []plan.EntityInfo{
		{Name: "refs", Type: "server", File: "certs/refs.yaml", SNIs: []string{"a.test"},
			Chains: []plan.ChainInfo{resolved}, ClientCA: []plan.ChainInfo{{CertRef: "$env://CA"}}},
		{Name: "keyref", Type: "server", File: "certs/keyref.yaml", SNIs: []string{"b.test"},
			Chains: []plan.ChainInfo{{Subject: "CN=b", Fingerprint: "cc", PublicKeyFingerprint: "dd", KeyRef: "$env://KEY2"}}},
		{Name: "changed", Type: "server", File: "certs/changed.yaml", SNIs: []string{"c.test"},
			Chains: []plan.ChainInfo{{Subject: "CN=c", Fingerprint: "ee", PublicKeyFingerprint: "ff", CertRef: "$env://OLD", KeyRef: "$env://OLDKEY"}}},
	})
	before := wireTrip(t, live)
	local := []plan.EntityInfo{
		{Name: "refs", Type: "server", File: "refs.yaml", SNIs: []string{"a.test"},
			Chains: []plan.ChainInfo{{CertRef: "$env://CERT", KeyRef: "$env://KEY"}}, ClientCA: []plan.ChainInfo{{CertRef: "$env://CA"}}},
		{Name: "keyref", Type: "server", File: "keyref.yaml", SNIs: []string{"b.test"},
			Chains: []plan.ChainInfo{{Subject: "CN=b", Fingerprint: "cc", KeyRef: "$env://KEY2"}}},
		{Name: "changed", Type: "server", File: "changed.yaml", SNIs: []string{"c.test"},
			Chains: []plan.ChainInfo{{CertRef: "$env://NEW", KeyRef: "$env://OLDKEY"}}},
	}
	p := Drift(live, local)
	var got []string
	for _, c := range p.Changes {
		for _, f := range c.Fields {
			got = append(got, c.Name+" "+f.Field)
		}
	}
	if diff := cmp.Diff([]string{"changed cert"}, got); diff != "" {
		t.Errorf("Drift changes (-want +got):\n%s\nplan:\n%s", diff, p)
	}
	if p.Summary != (plan.Summary{Update: 1, Unchanged: 2}) {
		t.Errorf("Drift summary = %+v, want 1 update, 2 unchanged", p.Summary)
	}
	if diff := cmp.Diff(before, live); diff != "" {
		t.Errorf("Drift changed its live argument (-before +after):\n%s", diff)
	}
}

// wireTrip encodes infos as the admin API does and decodes them as its
// client does.
func wireTrip(tb testing.TB, infos []plan.EntityInfo) []plan.EntityInfo {
	tb.Helper()
	b, err := json.Marshal(infos)
	if err != nil {
		tb.Fatal(err)
	}
	var out []plan.EntityInfo
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}
