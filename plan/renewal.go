package plan

import "certops/certcheck"

// RenewalFindings compares the running (or base) entities with the
// desired ones and reports, under c's policy, every chain whose
// certificate changed while its public key did not: a key reused across
// renewal (cert-manager#2402). A key behind a secret reference is judged
// by its certificate's public key (see ChainInfo.PublicKeyFingerprint);
// only a chain whose certificate is an unresolved reference too carries
// no fingerprint and is not judged.
func RenewalFindings(c *certcheck.Checker, running, desired []EntityInfo) []certcheck.Finding {
	old := make(map[string]*EntityInfo, len(running))
	for i := range running {
		old[running[i].Name] = &running[i]
	}
	var out []certcheck.Finding
	for _, d := range desired {
		o, ok := old[d.Name]
		if !ok {
			continue
		}
		for i, ch := range d.Chains {
			if i >= len(o.Chains) {
				break
			}
			was := o.Chains[i]
			if ch.Fingerprint == "" || was.Fingerprint == "" || ch.Fingerprint == was.Fingerprint {
				continue
			}
			// The fingerprint is of the key field, which validation matched
			// to the certificate; a key reference has none here.
			out = append(out, c.RenewalFingerprints(d.Name, chainField("cert", i), was.PublicKeyFingerprint, ch.PublicKeyFingerprint)...)
		}
	}
	return out
}
