package plan

import "encoding/json"

// The JSON form of a description is the admin API's SSL document, which
// the README documents key by key: every key but desc, disabled, cert_ref,
// key_ref and trust is always present, and an absent list or map is [] or {}
// rather than null, so that clients need no null checks. Decoding needs no
// method: [] decodes as an empty slice, which compares like nil.

// MarshalJSON encodes e with empty lists and labels as [] and {}.
func (e EntityInfo) MarshalJSON() ([]byte, error) {
	type wire EntityInfo // the same fields without this method
	w := wire(e)
	w.SNIs = nonNil(w.SNIs)
	w.Protocols = nonNil(w.Protocols)
	if w.Labels == nil {
		w.Labels = map[string]string{}
	}
	if w.Chains == nil {
		w.Chains = []ChainInfo{}
	}
	if w.ClientCA == nil {
		w.ClientCA = []ChainInfo{}
	}
	return json.Marshal(w)
}

// MarshalJSON encodes c with no SANs as [].
func (c ChainInfo) MarshalJSON() ([]byte, error) {
	type wire ChainInfo
	w := wire(c)
	w.SANs = nonNil(w.SANs)
	return json.Marshal(w)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
