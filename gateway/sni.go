package gateway

import (
	"fmt"
	"strings"
)

// maxNameLen is the longest DNS name (RFC 1035 section 2.3.4, without the
// trailing dot). Longer server names cannot match a configured SNI, so the
// lookup treats them as unknown without looking at them further.
const maxNameLen = 253

// normalizeSNI lowercases a configured server name and removes one trailing
// dot, so that "Shop.Example.COM." and "shop.example.com" are the same key
// (DESIGN.md 3).
func normalizeSNI(name string) string {
	name = strings.TrimSuffix(name, ".")
	return strings.ToLower(name)
}

// checkSNI reports why a normalised configured SNI can never match a
// ClientHello, or nil. "*" (the default entity) and "*.parent" wildcards
// are accepted; a '*' anywhere else is not, because crypto/tls clients send
// names, not patterns. Non-ASCII names must be configured as IDN A-labels
// ("xn--..."), which is what clients put in the server_name extension
// (RFC 6066 section 3).
func checkSNI(sni string) error {
	switch {
	case sni == "":
		return fmt.Errorf("empty server name")
	case sni == "*":
		return nil
	case len(sni) > maxNameLen:
		return fmt.Errorf("server name longer than %d bytes", maxNameLen)
	}
	name := sni
	if strings.HasPrefix(name, "*.") {
		name = name[2:]
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("empty label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c == '*':
				return fmt.Errorf("a wildcard must be the whole first label (*.parent)")
			case c >= 0x80:
				return fmt.Errorf("not ASCII: configure the IDN A-label (xn--...)")
			case c <= ' ' || c == '/' || c == ':' || c == 0x7f:
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}

// appendNormalized appends the lowercased name, without one trailing dot,
// to dst (usually a stack buffer) and returns it. It does not allocate when
// dst has room, which keeps the handshake's lookup allocation-free even for
// mixed-case names. Names longer than maxNameLen return ok false.
func appendNormalized(dst []byte, name string) (b []byte, ok bool) {
	name = strings.TrimSuffix(name, ".")
	if len(name) > maxNameLen {
		return dst, false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// parentOf returns the part of name after its first label, the key under
// which the wildcard "*.parent" is indexed, or nil when name has no parent.
// "*.example.com" covers "a.example.com" but not "example.com" or
// "a.b.example.com" (RFC 6125 section 6.4.3). It does not allocate.
func parentOf(name []byte) []byte {
	for i, c := range name {
		if c == '.' {
			if i == 0 || i == len(name)-1 {
				return nil
			}
			return name[i+1:]
		}
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
