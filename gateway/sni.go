package gateway

import "strings"

// normalizeSNI lowercases a server name and removes one trailing dot, so
// that "Shop.Example.COM." and "shop.example.com" are the same key
// (DESIGN.md 3).
func normalizeSNI(name string) string {
	name = strings.TrimSuffix(name, ".")
	return strings.ToLower(name)
}

// parentOf returns the part of name after its first label, the key under
// which the wildcard "*.parent" is indexed, or "" when name has no parent.
// "*.example.com" covers "a.example.com" but not "example.com" or
// "a.b.example.com" (RFC 6125 section 6.4.3). It does not allocate.
func parentOf(name string) string {
	i := strings.IndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return ""
	}
	return name[i+1:]
}
