// Package examples holds the example repositories of certops and the demo
// that `certops run` serves without --source.
//
// examples/basic is the example repository: an exact-SNI entity, a
// wildcard entity, a dual RSA+ECDSA entity and a default entity. It is
// checked in, embedded as [Basic], and read by `certops validate
// examples/basic`, the docs and the tests. Its leaves are valid for 100
// years so that it never expires in a checkout; checks.cue turns the
// private-lifetime check off for them.
//
// `certops run` without --source does not serve those 100-year leaves: it
// builds the same repository in memory at start ([NewDemo]), with the same
// entities (names, SNIs, labels, chains and their key types), fresh keys,
// and leaves valid for 90 days that name a CRL the daemon serves on its
// admin listener ([CRLPath]). Nothing of it is written to disk or to the
// data dir, and it goes through the same source, loader and checks as any
// repository. A restarted demo serves new leaves; one left running for
// more than 60 days shows the expiry warning (--warn-within, 30 days), and
// its leaves expire after 90.
//
// Both forms are issued by the demo CA, examples/basic/ca.pem, so
// `curl --cacert examples/basic/ca.pem` verifies either. Its key,
// examples/ca-key.pem, is an example key, published on purpose, like every
// key of these repositories: the CA is name-constrained to example.com,
// example.net and certops.invalid (no IP address) with a path length of 0,
// so its key cannot issue a certificate that verifies for any other name.
// `go generate ./examples` (gen.go) makes a new CA and new checked-in files.
package examples

import "embed"

//go:generate go run gen.go

// Basic is the example repository examples/basic, below "basic": the four
// entities with their checked-in 100-year leaves, and the demo CA (ca.pem,
// pinned by ca.roots.pem).
//
//go:embed basic
var Basic embed.FS

// caKeyPEM is the published key of the demo CA, examples/ca-key.pem.
//
//go:embed ca-key.pem
var caKeyPEM []byte
