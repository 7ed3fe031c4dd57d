// Package certcheck checks the hygiene of parsed certificate chains before
// they are deployed: the chain is in order, holds no unrelated or duplicate
// certificate and builds to a trusted root (the system's, or private roots
// given by the operator or pinned in the repository); no key, signature or
// curve is weak; the leaf has the extended key usage its role needs and a
// lifetime within the public maximum of CA/Browser Forum ballot SC-081; the
// leaf passes zlint; no key is shared by two entities or kept across a
// renewal.
//
// Its input is parsed certificates, never private keys, and its output is
// findings: a check name, a field, a severity and a message. A message
// names certificates by subject, serial and fingerprint only: never a PEM
// block or a key. Every check's severity is tunable by a [Policy], which
// repositories write in CUE as #Checks ([CUEDefinition]).
//
// This is the only package that imports zlint. A [Checker] is immutable and
// safe for concurrent use.
package certcheck
