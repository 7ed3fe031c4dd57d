package gateway

import (
	"strings"

	"certops/sni"
)

// maxNameLen is the longest DNS name (package sni). Longer server names
// cannot match a configured SNI, so the lookup treats them as unknown
// without looking at them further.
const maxNameLen = sni.MaxLen

// normalizeSNI folds a configured server name (lowercase, one trailing dot
// removed) so that "Shop.Example.COM." and "shop.example.com" are the same
// key (DESIGN.md 3), by the rule of package sni that the schema applies.
func normalizeSNI(name string) string { return sni.Fold(name) }

// checkSNI reports why a folded configured SNI can never match a
// ClientHello, or nil: the syntax rule of package sni, the one the schema
// validates with, so the gateway refuses what validation refuses ("*.com",
// IP literals, U-labels, a '*' anywhere but as the whole first label).
func checkSNI(name string) error { return sni.Check(name) }

// appendNormalized appends the folded name to dst (usually a stack buffer)
// and returns it; see sni.AppendFold. It does not allocate when dst has
// room. Names longer than maxNameLen return ok false.
func appendNormalized(dst []byte, name string) (b []byte, ok bool) { return sni.AppendFold(dst, name) }

// parentOf returns the part of name after its first label, the key under
// which the wildcard "*.parent" is indexed, or nil when name has no parent
// (sni.Parent). It does not allocate.
func parentOf(name []byte) []byte {
	if p := sni.Parent(name); len(p) > 0 {
		return p
	}
	return nil
}

// hostOnly returns the host of an HTTP Host header without its port or
// IPv6 brackets.
func hostOnly(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if i := strings.IndexByte(hostport, ']'); i > 0 {
			return hostport[1:i]
		}
		return hostport
	}
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && strings.Count(hostport, ":") == 1 {
		return hostport[:i]
	}
	return hostport
}
