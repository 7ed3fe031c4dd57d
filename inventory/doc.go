// Package inventory lists every certificate of a repository, of a
// running daemon or of what a fleet publishes, for auditors and planners: entity, SNIs, file, issuer,
// subject, serial, key type and size, validity, days left, trust, labels
// and owner, and the Git commit that last changed the file (which the
// caller finds with source.LastCommits). It renders the
// list as text, JSON, CSV or Markdown, and forecasts the renewal work of
// the coming weeks, now and under the public lifetime schedule of CA/B
// Forum ballot SC-081 (certcheck.Schedule).
//
// A record holds public facts only: never a PEM block or a key. Secret
// references are listed as written, and their certificates are not read.
// Everything here is a pure function of its input and safe for concurrent
// use.
package inventory
