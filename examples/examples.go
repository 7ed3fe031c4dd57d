// Package examples holds the example repositories of certops. Basic is
// embedded in the binary, so `certops run` without --source serves it.
//
// The keys in these repositories are example keys, published on purpose.
package examples

import "embed"

//go:generate go run gen.go

// Basic is the example repository examples/basic: an exact-SNI entity, a
// wildcard entity, a dual RSA+ECDSA entity and a default entity, issued by
// the CA in basic/ca.pem and valid for 100 years.
//
//go:embed basic
var Basic embed.FS
