package plan_test

import (
	"fmt"
	"time"

	"certops/plan"
)

// ExampleDiff compares a running entity with its next revision: a new SNI,
// a renewed certificate on a new key, a label, and an entity removed.
func ExampleDiff() {
	notAfter := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	running := []plan.EntityInfo{
		{Name: "shop", Type: "server", File: "shop.yaml", SNIs: []string{"shop.example.com"},
			Chains: []plan.ChainInfo{{Serial: "1a", NotAfter: notAfter, Fingerprint: "aaaaaaaaaaaaaaaaaaaa", PublicKeyFingerprint: "1111111111111111ffff"}}},
		{Name: "old", Type: "server", File: "old.yaml", SNIs: []string{"old.example.com"}},
	}
	desired := []plan.EntityInfo{
		{Name: "shop", Type: "server", File: "shop.yaml", SNIs: []string{"shop.example.com", "www.shop.example.com"},
			Labels: map[string]string{"team": "web"},
			Chains: []plan.ChainInfo{{Serial: "2b", NotAfter: notAfter.AddDate(0, 3, 0), Fingerprint: "bbbbbbbbbbbbbbbbbbbb", PublicKeyFingerprint: "2222222222222222ffff"}}},
	}
	fmt.Print(plan.Diff(running, desired))
	// Output:
	// - delete old (old.yaml)
	// ~ update shop (shop.yaml)
	//     snis: + www.shop.example.com
	//     cert: serial 1a, not after 2027-03-01T00:00:00Z, sha256 aaaaaaaaaaaaaaaa → serial 2b, not after 2027-06-01T00:00:00Z, sha256 bbbbbbbbbbbbbbbb
	//     key: public key sha256 1111111111111111 → public key sha256 2222222222222222
	//     labels: + team=web
	// Summary: 0 to create, 1 to update, 1 to delete, 0 unchanged.
}
