package admin

import (
	"slices"

	"certops/plan"
)

// Drift compares what a daemon serves (live, from GET /api/v1/ssls) with a
// desired state described without a secret store (local, from
// plan.Describe with no material), for `certops diff --live`.
//
// Two differences are not drift and are taken out before the comparison:
// a certificate or key that the folder names by a secret reference is
// compared by its reference only (the daemon resolved it, the folder
// cannot), and the file an entity sits in is taken from the folder (the
// daemon names files from its repository root, the folder from itself).
func Drift(live, local []plan.EntityInfo) *plan.Plan {
	byName := make(map[string]*plan.EntityInfo, len(local))
	for i := range local {
		byName[local[i].Name] = &local[i]
	}
	running := make([]plan.EntityInfo, 0, len(live))
	for _, e := range live {
		if l, ok := byName[e.Name]; ok {
			e.File = l.File
			e.Chains = slices.Clone(e.Chains) // edited below; live is the caller's
			for i := range min(len(e.Chains), len(l.Chains)) {
				lc, rc := l.Chains[i], &e.Chains[i]
				if lc.CertRef != "" && lc.Fingerprint == "" && lc.CertRef == rc.CertRef {
					keep := plan.ChainInfo{CertRef: rc.CertRef, KeyRef: rc.KeyRef,
						PublicKeyFingerprint: rc.PublicKeyFingerprint}
					*rc = keep
				}
				if lc.KeyRef != "" && lc.PublicKeyFingerprint == "" && lc.KeyRef == rc.KeyRef {
					rc.PublicKeyFingerprint = ""
				}
			}
			if len(l.ClientCA) == 1 && l.ClientCA[0].Fingerprint == "" && l.ClientCA[0].CertRef != "" &&
				len(e.ClientCA) == 1 && e.ClientCA[0].CertRef == l.ClientCA[0].CertRef {
				e.ClientCA = []plan.ChainInfo{{CertRef: l.ClientCA[0].CertRef}}
			}
		}
		running = append(running, e)
	}
	return plan.Diff(running, local)
}
